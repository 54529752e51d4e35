"""The ``llmcalc`` command line: one Typer app, commands grouped by concern in sibling modules.

``from llmcalc.cli import app`` gives the app with every command. The console script (:func:`main`)
imports only the module that defines the command it was asked for, which keeps one-liners fast; a
bare ``llmcalc``, ``--help`` or shell completion loads them all.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys

# The order here is the order of `llmcalc --help`.
MODULES = ("core", "training", "scaling", "parallel", "plan", "inference", "validation", "calibrate", "rl", "study",
           "dashboard")
COMMANDS = {
    "params": "core", "list": "core", "show": "core", "notation": "core", "import": "core", "summary": "core",
    "flops": "training", "chinchilla": "training", "train": "training", "loss": "scaling",
    "memory": "parallel", "comms": "parallel", "step": "parallel",
    "plan": "plan", "plan-serve": "plan",
    "kv": "inference", "fit": "inference", "infer": "inference", "sweep": "inference", "serve": "inference",
    "speculative": "inference", "batching": "inference",
    "validate": "validation", "calibrate": "calibrate",
    "rl": "rl",
    "sheet": "study", "shard": "study", "drill": "study", "why": "study",
    "app": "dashboard",
}


def _register(modules) -> None:
    for m in modules:
        importlib.import_module(f"{__name__}.{m}")  # each module registers its commands on import


def __getattr__(name: str):
    if name == "app":
        from ._app import app

        _register(MODULES)
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    # Start-up creates ~10^5 objects that live as long as the process (typer, numpy, our specs); the
    # cyclic collector, run every 700 allocations, scans them again and again: ~3-5% of a one-liner (issue #13).
    # Collect every 200,000 instead: no one-liner reaches it (at 50,000 each paid one ~9 ms pass over its imports);
    # cycles are still collected in longer runs (`validate` peaks at ~56 MB either way).
    gc.set_threshold(200_000, *gc.get_threshold()[1:])
    from ._app import app

    words = [a for a in sys.argv[1:] if not a.startswith("-")]
    completing = any(k.endswith("_COMPLETE") for k in os.environ)
    one = COMMANDS.get(words[0]) if words and not completing else None
    _register((one,) if one else MODULES)
    everything = app.registered_commands
    if one:  # typer converts every registered command to a click one (~10 ms for the seven of inference.py)
        asked = [c for c in everything if (c.name or c.callback.__name__.lower().replace("_", "-")) == words[0]]
        app.registered_commands = asked or everything
    try:
        app(prog_name="llmcalc")  # also under `python -m llmcalc`, so usage lines and shell completion agree
    finally:
        app.registered_commands = everything


def _keep_freed_memory() -> None:
    """glibc gives a freed block of 128 KiB or more back to the OS, and the next array of that size faults its
    pages in again: ~2 µs per 4 KiB page on the development VM, 10-20x the arithmetic on one of the planner's
    grid-sized arrays (5.7 MB: 1.5-2 ms fresh, 0.1 ms reused; issue #13). A one-shot process keeps them: blocks up
    to 32 MiB (glibc's largest M_MMAP_THRESHOLD) come from the heap, which is not trimmed before exit. `plan
    gpt-3-175b` over three GPU counts: ~20 ms less; the peak memory is the same. Not glibc: nothing to do.

    The first touch of each page still faults: that plan touches ~19,000 4 KiB pages, ~35 ms. So the heap grows
    once by 256 MiB (M_TOP_PAD: address space, nothing touched) and that range is marked MADV_HUGEPAGE, as glibc's
    own `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` does: where transparent huge pages are `always` or `madvise`
    (Debian's default), the kernel faults 2 MiB pages, ~4,600 faults in all, 0.25 s instead of 0.29 s (issue #13,
    benchmarks/bench_cli.py). Where it is refused (THP `never`, no brk heap) pages stay 4 KiB; no number changes."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        mallopt = libc.mallopt
    except (ImportError, OSError, AttributeError):  # macOS, Windows, no ctypes
        return
    mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD (glibc malloc.h)
    mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
    try:
        mallopt(-2, 256 << 20)  # M_TOP_PAD: the next growth of the heap reserves this much more
        libc.malloc.restype = libc.sbrk.restype = ctypes.c_void_p
        libc.free.argtypes, libc.sbrk.argtypes = [ctypes.c_void_p], [ctypes.c_ssize_t]
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        block = libc.malloc(1 << 20)  # below the mmap threshold: from the heap, which now grows by 257 MiB
        if not block:
            return
        huge = 2 << 20
        start, top = (block + huge - 1) & ~(huge - 1), libc.sbrk(0)
        if top and top > start:
            libc.madvise(start, top - start, 14)  # MADV_HUGEPAGE (linux/mman.h); an error leaves 4 KiB pages
        libc.free(block)
    except AttributeError:  # a libc without sbrk or madvise
        return


def run() -> None:
    """The console script and ``python -m llmcalc``: :func:`main`, then leave at once. A finished one-liner has
    nothing to tear down that the OS does not reclaim, yet Python's own exit runs a full garbage collection and
    deallocates every module: 20-40 ms of a 0.3 s budget (issue #13; benchmarks/bench_cli.py). atexit handlers
    still run (they include weakref finalizers, e.g. temporary folders) and both streams are flushed; SystemExit's
    code means what it means to Python; any other exception takes Python's normal path (its traceback)."""
    _keep_freed_memory()
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): Python prints it and exits 1
        print(code, file=sys.stderr)
        code = 1
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # the reader left (`| head`) or the stream was closed: nothing to say
            pass
    os._exit(code & 0xFF)  # as Python: sys.exit(-1) is status 255
