"""The parallel layout of a training job and the checks that make it possible.

Conventions (Megatron-LM / Megatron-Core):

- Degrees: ``tp`` tensor, ``pp`` pipeline, ``dp`` data, ``cp`` context, ``ep`` expert parallel.
  GPUs = tp·pp·dp·cp. Expert parallelism lives *inside* data parallelism (Megatron-Core: the EP
  group is carved out of the DP ranks), so ``ep`` must divide ``dp`` and the number of experts; with an
  explicit ``etp`` the expert grid is its own (MoE parallel folding, Liu et al. 2025, arXiv 2504.14960:
  the expert layers re-fold the attention layers' TP×CP×DP ranks), so EP may reach beyond DP as long as
  etp·ep divides tp·cp·dp (e.g. TP2 DP8 with ETP1 EP16). Expert weights are tensor-parallel over ``etp``
  ranks (Megatron-Core ``--expert-tensor-parallel-size``; default None = ``tp``); the expert grid is
  ETP × EP × EDP × PP (Megatron-Core parallel_state.py: expert_data_parallel_size = world /
  (etp·ep·pp); MoE README, "MoE Parallel Folding"), so the expert-data-parallel group (which replicates
  and ZeRO-shards expert weights) is tp·cp·dp/(etp·ep) — dp·cp/ep when etp = tp.
- Rank order, innermost first: TP, CP, EP, DP (the rest of it), PP. A group whose ranks span at
  most ``hardware.scale_up.domain_size`` consecutive ranks stays inside the NVLink domain. With an
  explicit ``etp`` the expert layers use Megatron-Core's own expert grid (ETP innermost, then EP):
  the EP group spans etp·ep consecutive ranks.
- Pipeline stages may be uneven (:func:`stage_layers`): when ``pp`` does not divide the layer count,
  the middle stages get ⌈L/p⌉ layers and the first and last stage share the deficit (Llama 3 §3.3.2
  ran 126 layers on PP16 as 7, 8×14, 7: "we reduce one Transformer layer each from the first and the
  last stages"); Megatron-Core's ``--decoder-first/last-pipeline-num-layers`` (``pp_first``,
  ``pp_last``: the other stages split the rest evenly) and an explicit per-stage list (``pp_layers``)
  are accepted too. The slowest stage sets the pace; memory checks the first, the fullest middle and
  the last stage.
- Every numeric degree may be a numpy array (a sweep). Scalar calls raise :class:`LayoutError` with
  a message naming the option; sweeps get a boolean ``valid`` mask instead (one bad element must not
  abort a million-point grid).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..core.checks import MAX_COUNT, beyond_max_count, fmt_input, plain
from ..core.errors import LayoutError
from ..core.specs import Model

RECOMPUTE_CODES = {"none": 0, "selective": 1, "full": 2}
RECOMPUTE_NAMES = {v: k for k, v in RECOMPUTE_CODES.items()}
SCHEDULES = ("1f1b", "dualpipe")


@dataclass(frozen=True)
class Layout:
    """Parallel degrees and per-rank memory options. Numeric fields accept numpy arrays."""

    tp: Any = 1
    pp: Any = 1
    dp: Any = 1
    ep: Any = 1
    cp: Any = 1
    sp: Any = False  # sequence parallelism (Korthikanti et al. 2022 §4.2.2); only meaningful with tp > 1
    zero: Any = 0  # ZeRO stage 0..3 (FSDP full shard = 3), over the DP×CP group
    interleave: Any = 1  # v: virtual pipeline stages per device (Narayanan et al. 2021 §2.2)
    pp_first: Any = None  # layers on the first stage (Megatron-Core --decoder-first-pipeline-num-layers)
    pp_last: Any = None  # layers on the last stage (--decoder-last-pipeline-num-layers)
    pp_layers: tuple[int, ...] | None = None  # explicit layers per stage, first to last (scalar layouts only)
    schedule: str = "1f1b"  # pipeline schedule: "1f1b" (interleaved when v > 1) or "dualpipe" (DeepSeek-V3 §3.2.1)
    etp: Any = None  # expert tensor parallelism (Megatron-Core --expert-tensor-parallel-size); None (0 in sweeps) = tp

    @property
    def gpus(self):
        return self.tp * self.pp * self.dp * self.cp

    @property
    def expert_tp(self):
        """The expert tensor-parallel degree: ``etp``, or ``tp`` where it is None (0 in a sweep)."""
        if self.etp is None:
            return self.tp
        return where(np.asarray(self.etp) == 0, self.tp, self.etp)

    @property
    def etp_explicit(self):
        """True where ``etp`` was given (Megatron-Core's expert grid), False for the default (etp = tp)."""
        if self.etp is None:
            return False
        return where(np.asarray(self.etp) != 0, True, False)

    @property
    def expert_dp(self):
        """Ranks that hold the same expert shard: the expert-data-parallel group tp·cp·dp/(etp·ep) (Megatron-Core
        parallel_state.py: world / (etp·ep·pp)); dp·cp/ep when etp = tp."""
        return self.tp * self.dp * self.cp // (self.expert_tp * self.ep)

    def with_(self, **kw) -> Layout:
        return replace(self, **kw)


def stage_layers(n_layers: int, layout: Layout) -> dict[str, Any]:
    """Layers on the first, the fullest middle, and the last pipeline stage (``middle`` is 0 when pp ≤ 2),
    the most on any stage (``max``), whether the split is uneven, and whether we chose it (``auto``).

    Default split (no pp_first/pp_last/pp_layers): even when pp divides the layers; otherwise ⌈L/p⌉ on
    every middle stage and the deficit ⌈L/p⌉·p − L taken from the two ends, the last stage (LM head and
    loss) giving up the larger half (Llama 3 §3.3.2: 126 layers on 16 stages as 7, 8×14, 7). With only
    pp_first/pp_last the other stages split the rest evenly (Megatron-Core transformer_config.py:
    num_layers_in_first/last_pipeline_stage). Values may be arrays; impossible splits show up as a first
    or last stage below one layer or a fractional middle, which :func:`check_layout` names."""
    p = layout.pp
    if layout.pp_layers is not None:
        s = [int(x) for x in layout.pp_layers]
        mid = max(s[1:-1]) if len(s) > 2 else 0
        return {"first": s[0], "middle": mid, "last": s[-1], "max": max(s), "uneven": len(set(s)) > 1,
                "auto": False, "explicit": True}
    pa = np.asarray(p)
    if (layout.pp_first is None and layout.pp_last is None and pa.size > 4096 and pa.dtype.kind in "iu"
            and 0 <= pa.min() and pa.max() < min(4 * n_layers, 4096)):  # the table's own call takes the path below
        # a planner's sweep (10⁵-10⁶ layouts, a few dozen pp values): every entry is a function of pp alone, so
        # evaluate it once per pp value and look it up
        tab = stage_layers(n_layers, replace(layout, pp=np.arange(int(pa.max()) + 1, dtype=pa.dtype)))
        return {k: (np.asarray(v)[pa] if np.ndim(v) else v) for k, v in tab.items()}
    if layout.pp_first is None and layout.pp_last is None:
        c = -(-n_layers // np.maximum(pa, 1))  # ceil(L/p)
        deficit = c * pa - n_layers
        first, last, mid = c - deficit // 2, c - (deficit - deficit // 2), c
        auto = where(deficit > 0, True, False)
    else:
        given_f, given_l = layout.pp_first is not None, layout.pp_last is not None
        f = np.asarray(layout.pp_first if given_f else 0)
        lst = np.asarray(layout.pp_last if given_l else 0)
        rest = pa - int(given_f) - int(given_l)
        mid = (n_layers - f - lst) / np.maximum(rest, 1)
        mid = where(rest > 0, mid, 0)
        first = f if given_f else mid
        last = lst if given_l else mid
        auto = False
    first = where(pa == 1, n_layers, first)
    last = where(pa == 1, n_layers, last)
    mid = where(pa > 2, mid, 0)
    mx = np.maximum(np.maximum(first, last), mid)
    uneven = (np.asarray(first) != mx) | (np.asarray(last) != mx) | ((pa > 2) & (np.asarray(mid) != mx))
    return {"first": first, "middle": mid, "last": last, "max": where(True, mx, 0),
            "uneven": where(True, uneven, False), "auto": auto, "explicit": False}


def parse_pp_layers(text: str) -> tuple[int, ...]:
    """'7,8,8,7' or '7,8x14,7' (also 8×14, 8*14) -> layers per stage; LayoutError naming --pp-layers."""
    out: list[int] = []
    for part in str(text).replace("×", "x").replace("*", "x").split(","):
        part = part.strip()
        n, _, rep = part.partition("x")
        try:
            layers, count = int(n), int(rep) if rep else 1
        except ValueError:
            raise LayoutError(f"--pp-layers expects whole layer counts per stage such as 7,8x14,7; got {text!r}") \
                from None
        if layers < 1 or count < 1:
            raise LayoutError(f"--pp-layers: every stage needs at least one layer (and a repeat of at least 1); "
                              f"got {part!r}")
        out += [layers] * count
    return tuple(out)


def describe_stages(n_layers: int, layout: Layout) -> str:
    """'7, 8×14, 7' for a scalar layout (``'8×16'`` when even)."""
    if layout.pp_layers is not None:
        pieces = [(float(x), 1) for x in layout.pp_layers]
    else:  # run lengths, never a list of pp stages (pp may be huge in a bad input)
        sl = stage_layers(n_layers, layout)
        p = int(layout.pp)
        f, m, last = (float(sl[k]) for k in ("first", "middle", "last"))
        pieces = [(f, 1)] if p == 1 else [(f, 1), (m, p - 2), (last, 1)]
    runs: list[list] = []
    for x, n in pieces:
        if n <= 0:
            continue
        if runs and runs[-1][0] == x:
            runs[-1][1] += n
        else:
            runs.append([x, n])
    return ", ".join(f"{x:g}" + (f"×{n}" if n > 1 else "") for x, n in runs)


def stage_notes(model: Model, layout: Layout) -> list[str]:
    """One line naming an uneven split (scalar layouts), empty otherwise."""
    if is_sweep(layout.pp, layout.pp_first, layout.pp_last):
        return []
    sl = stage_layers(model.n_layers, layout)
    if not bool(sl["uneven"]):
        return []
    how = ("as given (--pp-layers)" if sl["explicit"] else
           "chosen: ⌈L/p⌉ per middle stage, the first and last stage lighter (Llama 3 §3.3.2)" if bool(sl["auto"])
           else "first/last stage as given, the rest even (Megatron-Core)")
    return [f"uneven pipeline: {model.n_layers} layers over {int(layout.pp)} stages as "
            f"{describe_stages(model.n_layers, layout)}, {how}; the slowest stage sets the pace"]


def recompute_code(recompute) -> Any:
    """'none' | 'selective' | 'full' (or their codes 0/1/2, arrays allowed) -> int code(s)."""
    if isinstance(recompute, str):
        if recompute.lower() not in RECOMPUTE_CODES:  # case-insensitive, as flops/train accept "FULL"
            raise LayoutError(f"--recompute expects one of {', '.join(RECOMPUTE_CODES)}, got {recompute!r}")
        return RECOMPUTE_CODES[recompute.lower()]
    code = np.asarray(recompute)
    if np.any((code < 0) | (code > 2)):
        raise LayoutError(f"recompute codes are 0 (none), 1 (selective), 2 (full); got {recompute!r}")
    return recompute


def check_recompute_layers(rc, recompute_layers) -> None:
    """--recompute-layers k: whole layers (at least 1, at most 2**53), and only with --recompute full."""
    if recompute_layers is None:
        return
    k = np.asarray(recompute_layers)
    if isinstance(recompute_layers, (bool, np.bool_)) or k.dtype.kind not in "iu" or np.any(k < 1) \
            or np.any(k > MAX_COUNT):
        raise LayoutError(f"--recompute-layers expects a whole number of layers from 1 to 2**53, got "
                          f"{plain(recompute_layers)}")
    if np.any(np.asarray(rc) != 2):
        raise LayoutError("--recompute-layers k recomputes the first k layers of each stage in full: give it with "
                          "--recompute full")


def recompute_share(rc, recompute_layers, stage_layers_, v=1):
    """The fraction of a stage's layers that full recompute re-runs: 1 under full recompute of every layer, k/(Ls/v)
    when only the first k layers of each stage (each virtual chunk) are recomputed (Megatron-Core
    --recompute-method block --recompute-num-layers k), 0 otherwise."""
    full = where(np.asarray(rc) == 2, 1, 0)
    if recompute_layers is None:
        return full
    chunk = np.maximum(np.asarray(stage_layers_, float) / np.maximum(np.asarray(v), 1), 1e-300)
    return where(np.asarray(rc) == 2, np.minimum(np.asarray(recompute_layers, float), chunk) / chunk, 0)


def where(cond, a, b):
    """np.where that gives back a plain Python number when everything is scalar (tidy JSON and text)."""
    r = np.where(cond, a, b)
    return r.item() if r.ndim == 0 else r


def is_sweep(*values) -> bool:
    return any(np.ndim(v) > 0 for v in values)


def masked_sweep(fn):
    """For a calculator over a layout sweep: elements that ``check_layout`` marks invalid (tp = 0, a degree that
    does not divide) are computed along with the rest and masked by ``valid``; their divisions by zero must not
    warn (pytest turns RuntimeWarning into an error). Scalar calls are untouched: there a bad layout raises first."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        lay = next((a for a in (*args, *kwargs.values()) if isinstance(a, Layout)), None)
        degrees = () if lay is None else (lay.tp, lay.pp, lay.dp, lay.ep, lay.cp, lay.zero, lay.interleave, lay.etp)
        if not is_sweep(*degrees, *args[2:], *kwargs.values()):
            return fn(*args, **kwargs)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return fn(*args, **kwargs)

    return wrapper


# The CLI option that sets each layout degree, as check_layout's messages name it.
OPTIONS: dict[str, str | None] = {
    "tp": "--tp", "pp": "--pp", "dp": "--dp", "ep": "--ep", "cp": "--cp", "etp": "--etp", "sp": "--sp",
    "interleave": "--interleave", "pp_layers": "--pp-layers", "pp_first": "--pp-first", "pp_last": "--pp-last",
    "zero": "--zero", "schedule": "--schedule", "micro_batch": "--micro-batch", "seq": "--seq",
    "global_batch": "--global-batch", "gpus": "--gpus"}


def check_layout(model: Model, layout: Layout, *, gpus=None, micro_batch=1, seq=None, global_batch=None,
                 options: dict[str, str | None] | None = None):
    """Validate ``layout`` for ``model``. Scalars: raise LayoutError on the first problem, else return True.
    Sweeps (any numpy array): return the boolean mask of valid elements (broadcast shape). Messages name each
    degree by its CLI option (:data:`OPTIONS`); ``options`` renames some for a face with other names (rl's
    trainer: ``{"tp": "--train-tp", ...}``; ``"pp_layers": None`` where uneven stages cannot be given)."""
    o = OPTIONS if options is None else {**OPTIONS, **options}
    t, p, d, e, c, v = layout.tp, layout.pp, layout.dp, layout.ep, layout.cp, layout.interleave
    a = model.attention
    name = model.display_name
    checks: list[tuple[Any, str]] = []

    def bad(cond, msg: str) -> None:
        checks.append((cond, msg))

    for opt, val in ((o["tp"], t), (o["pp"], p), (o["dp"], d), (o["ep"], e), (o["cp"], c), (o["interleave"], v),
                     (o["micro_batch"], micro_batch), (o["seq"], seq), (o["global_batch"], global_batch),
                     (o["gpus"], gpus)):
        if val is None:
            continue
        try:
            as_float = np.asarray(val, dtype=float)
        except (OverflowError, TypeError, ValueError):
            raise LayoutError(f"{opt} must be a finite positive integer, got {plain(val)}") from None
        if isinstance(val, (bool, np.bool_)) or as_float.dtype != float or np.asarray(val).dtype == bool:
            raise LayoutError(f"{opt} must be a positive integer, got {plain(val)}")
        if not np.all(np.isfinite(as_float)):  # NaN passes every `< 1` test: reject first
            raise LayoutError(f"{opt} must be a finite positive integer, got {fmt_input(val)}")
        if beyond_max_count(val)[0]:  # int64 products would overflow silently
            raise LayoutError(f"{opt} is out of range (at most 2**53), got {fmt_input(val)}")
        bad(np.asarray(val) < 1, f"{opt} must be a positive integer (at least 1), got {fmt_input(val)}")
    # every product of degrees below stays within 2**53 (exact in float64, no int64 overflow) once the device
    # count does: a layout of more devices is refused first (fuzz, 30 Nov 2026: --ep and --etp of 2**53 each)
    devices = np.asarray(t, float) * np.asarray(p, float) * np.asarray(d, float) * np.asarray(c, float)
    bad(devices > MAX_COUNT, f"tp·pp·dp·cp = {fmt_input(t)}·{fmt_input(p)}·{fmt_input(d)}·{fmt_input(c)} is "
                             f"more than 2**53 devices")
    z = np.asarray(layout.zero)
    if not np.all((z == 0) | (z == 1) | (z == 2) | (z == 3)):  # np.isin's set machinery: 10x slower on a sweep
        raise LayoutError(f"{o['zero']} expects a stage 0, 1, 2 or 3 (FSDP = 3), got {fmt_input(layout.zero)}")
    bad(a.n_heads % np.maximum(t, 1) != 0,
        f"{o['tp']} {fmt_input(t)} does not divide the {a.n_heads} attention heads of {name}")
    if not a.mla:  # Megatron shards whole key/value groups across TP ranks
        bad(a.n_kv_heads % np.maximum(t, 1) != 0,
            f"{o['tp']} {fmt_input(t)} does not divide the {a.n_kv_heads} key/value heads of {name} "
            f"(each TP rank must own whole KV groups)")
    L = model.n_layers
    if layout.pp_layers is not None:
        s = list(layout.pp_layers)
        if is_sweep(p) or len(s) != int(p) or sum(s) != L or min(s) < 1 or any(int(x) != x for x in s):
            raise LayoutError(f"{o['pp_layers']} {','.join(f'{x:g}' for x in s)} must list {fmt_input(p)} stages "
                              f"(one per {o['pp']} stage) of at least one layer each, adding up to the {L} layers "
                              f"of {name} (they add up to {sum(s):g})")
    sl = stage_layers(L, layout)
    fl, ml, ll = (np.asarray(sl[k]) for k in ("first", "middle", "last"))
    if layout.pp_first is None and layout.pp_last is None and layout.pp_layers is None:
        bad((np.asarray(p) > L) | ((np.asarray(p) > 1) & ((fl < 1) | (ll < 1))),
            f"{o['pp']} {fmt_input(p)} cannot split the {L} layers of {name} with every middle stage holding "
            f"⌈{L}/pp⌉ layers and the first and last stage at least one; "
            + (f"give {o['pp_layers']}" if o["pp_layers"] else f"lower {o['pp']}"))
    elif layout.pp_layers is None:
        bad((np.asarray(p) < 2),
            f"{o['pp_first']}/{o['pp_last']} need {o['pp']} of at least 2 (got {o['pp']} {fmt_input(p)})")
        bad((fl < 1) | (ll < 1) | ((np.asarray(p) > 2) & ((ml < 1) | (ml != np.floor(ml))))
            | ((np.asarray(p) == 2) & (fl + ll != L)),
            f"{o['pp_first']} {fmt_input(layout.pp_first)} / {o['pp_last']} {fmt_input(layout.pp_last)} leave "
            f"layers that do not split evenly over the other stages of {o['pp']} {fmt_input(p)} ({L} layers in {name})")
    # Interleaving cuts every stage into v chunks of k = Ls_max/v layers. A middle stage may be short in one
    # chunk only; the first and last stage may give up a whole chunk to the embedding or the LM head and loss
    # (Llama 3 §3.3.2: "the first model chunk on the first stage has only the embedding, and the last model
    # chunk on the last stage has only output projection and loss"; Megatron-Core
    # --account-for-embedding/loss-in-pipeline-split).
    vv = np.maximum(np.asarray(v), 1)
    mx = np.asarray(sl["max"])
    k = mx // vv
    ends = np.minimum(fl, ll)
    middle = np.where(np.asarray(p) > 2, ml, mx)
    if layout.pp_layers is not None and len(layout.pp_layers) > 2:  # explicit: the lightest middle stage counts
        middle = np.asarray(min(int(x) for x in layout.pp_layers[1:-1]))
    bad((mx % vv != 0) | (ends < (vv - 1) * k) | (middle <= (vv - 1) * k),
        f"{o['pp']} {fmt_input(p)}" + (f" × {o['interleave']} {fmt_input(v)}" if np.any(np.asarray(v) > 1) else "")
        + f" does not divide the {L} layers of {name}"
        + (f" (stages of {describe_stages(L, layout)} layers)" if not is_sweep(p, v) and np.any(sl["uneven"])
           else ""))
    bad((np.asarray(v) > 1) & (np.asarray(p) < 2), f"{o['interleave']} {fmt_input(v)} needs {o['pp']} of at least 2")
    if layout.schedule not in SCHEDULES:
        raise LayoutError(f"{o['schedule']} expects one of {', '.join(SCHEDULES)}, got {plain(layout.schedule)}")
    if layout.schedule == "dualpipe":  # DeepSeek-V3 §3.2.1: "the pipeline stages and micro-batches be divisible by 2"
        bad((np.asarray(p) < 2) | (np.asarray(p) % 2 != 0) | (np.asarray(v) != 1),
            f"{o['schedule']} dualpipe needs an even {o['pp']} of at least 2 and no {o['interleave']} (got "
            f"{o['pp']} {fmt_input(p)}, {o['interleave']} {fmt_input(v)}); DualPipe runs two stages per device in "
            "opposite directions")
        if global_batch is not None:
            per = np.maximum(np.asarray(micro_batch, float) * np.asarray(d, float), 1)
            bad(np.floor(np.asarray(global_batch, float) / per) % 2 != 0,
                f"{o['schedule']} dualpipe needs an even number of micro-batches per DP rank: {o['global_batch']} "
                f"{fmt_input(global_batch)} / ({o['micro_batch']} {fmt_input(micro_batch)} · dp {fmt_input(d)}) is odd")
    if model.moe:
        bad(model.moe.n_experts % np.maximum(e, 1) != 0,
            f"{o['ep']} {fmt_input(e)} does not divide the {model.moe.n_experts} experts of {name}")
    else:
        bad(np.asarray(e) != 1, f"{o['ep']} {fmt_input(e)} given but {name} is dense (no experts); use {o['ep']} 1")
    if layout.etp is not None:
        _check_etp(model, layout, bad, o)
    # without --etp, EP is carved out of DP; with it, _check_etp's etp·ep | tp·cp·dp is the rule (parallel folding)
    bad(~np.asarray(layout.etp_explicit) & (np.asarray(d) % np.maximum(e, 1) != 0),
        f"{o['ep']} {fmt_input(e)} must divide {o['dp']} {fmt_input(d)} (expert parallelism is carved out of data "
        f"parallelism; give {o['etp']} to fold experts over tp·cp·dp instead, MoE parallel folding)")
    if seq is not None:  # only context parallelism needs the 2·cp split; any length works without it
        bad((np.asarray(c) > 1) & (np.asarray(seq) % (2 * np.maximum(c, 1)) != 0),
            f"{o['seq']} {fmt_input(seq)} must split into 2·cp = {fmt_input(2 * np.asarray(c))} equal chunks for "
            f"context parallelism {o['cp']} {fmt_input(c)} (Megatron-Core load-balances causal attention this way)")
    if gpus is not None:
        bad(devices != np.asarray(gpus, float),  # exact: at most 2**53 where it matters (above)
            f"tp·pp·dp·cp = {fmt_input(t)}·{fmt_input(p)}·{fmt_input(d)}·{fmt_input(c)} = {fmt_input(devices)} "
            f"but {o['gpus']} is {fmt_input(gpus)}")
    if global_batch is not None:
        per_step = np.asarray(micro_batch, dtype=float) * np.asarray(d, dtype=float)  # float: no C-long overflow
        # max(·, 1): a zero micro-batch or dp is named by its own check above; x % 0 would warn first (fuzz)
        bad(np.asarray(global_batch, dtype=float) % np.maximum(per_step, 1) != 0,
            f"{o['global_batch']} {fmt_input(global_batch)} is not divisible by micro-batch·dp = "
            f"{fmt_input(micro_batch)}·{fmt_input(d)} (every DP rank runs whole micro-batches)")

    if not is_sweep(t, p, d, e, c, v, micro_batch, seq, gpus, global_batch, layout.zero, layout.pp_first,
                    layout.pp_last, layout.etp):
        for cond, msg in checks:
            if bool(cond):
                raise LayoutError(msg)
        return True
    for cond, msg in checks:  # a check that fails whatever the swept values (tp = 0 while seq is swept) raises
        if np.ndim(cond) == 0 and bool(cond):
            raise LayoutError(msg)
    valid = np.ones(np.broadcast(*[np.asarray(x) for x in (t, p, d, e, c, v, micro_batch, fl, ll)]).shape, bool)
    for cond, _ in checks:
        valid = valid & ~np.asarray(cond, bool)
    return valid


def _check_etp(model: Model, layout: Layout, bad, o: dict) -> None:
    """--etp: a whole number (0 only inside a sweep, meaning "= tp"), MoE only, dividing the expert FFN width, with
    etp·ep dividing tp·cp·dp (Megatron-Core parallel_state.py: world % (etp·ep·pp) == 0), and with --sp when
    tp > 1 (Megatron-Core moe_layer.py refuses MoE training with TP > 1 without sequence parallelism)."""
    x = layout.etp
    arr = np.asarray(x)
    if isinstance(x, (bool, np.bool_)) or arr.dtype.kind not in "iu" or np.any(arr < 0) or np.any(arr > MAX_COUNT) \
            or (not is_sweep(x) and arr == 0):
        raise LayoutError(f"{o['etp']} expects a whole expert tensor-parallel degree of at least 1, got {plain(x)}")
    name = model.display_name
    if not model.moe:
        bad(np.asarray(layout.etp_explicit),
            f"{o['etp']} {fmt_input(x)} given but {name} is dense (no experts); drop {o['etp']}")
        return
    et = np.maximum(np.asarray(layout.expert_tp), 1)
    fe = model.moe.d_ff_expert
    bad(fe % et != 0, f"{o['etp']} {fmt_input(x)} does not divide the expert FFN width {fe} of {name}")
    t, c, d, e = layout.tp, layout.cp, layout.dp, layout.ep
    # in float64: tp·cp·dp <= 2**53 is exact there (check_layout refuses more devices first); a larger etp·ep is
    # then not a divisor either way, and cannot overflow
    bad((np.asarray(t, float) * np.asarray(c, float) * np.asarray(d, float))
        % (np.asarray(et, float) * np.maximum(np.asarray(e, float), 1)) != 0,
        f"{o['etp']} {fmt_input(x)} × {o['ep']} {fmt_input(e)} must divide tp·cp·dp = {fmt_input(t)}·{fmt_input(c)}·"
        f"{fmt_input(d)} (Megatron-Core: the expert grid ETP × EP × EDP fills the same ranks)")
    bad(np.asarray(layout.etp_explicit) & (np.asarray(t) > 1) & ~np.asarray(layout.sp, bool),
        f"{o['etp']} {fmt_input(x)} with {o['tp']} {fmt_input(t)} > 1 needs {o['sp']} (Megatron-Core refuses MoE "
        "training with tensor parallelism but no sequence parallelism)")


def microbatches(layout: Layout, micro_batch, global_batch):
    """m: micro-batches each pipeline runs per step = global_batch / (micro_batch·dp)."""
    return global_batch // (micro_batch * layout.dp)


def group_spans(layout: Layout) -> dict[str, Any]:
    """How many consecutive ranks each group spans under the order TP, CP, EP, DP, PP (innermost first)."""
    t, c, d = layout.tp, layout.cp, layout.dp
    et = layout.expert_tp
    # Explicit etp: Megatron-Core's expert grid ETP, EP, EDP (innermost first), the EP group spans etp·ep ranks.
    ep_span = where(layout.etp_explicit, et * layout.ep, t * c * layout.ep)
    return {"tp": t, "cp": t * c, "ep": ep_span, "etp": et, "dp": t * c * d, "edp": t * c * d,
            "pp": t * c * d * layout.pp}


RANK_ORDER = "rank order (innermost first): TP, CP, EP, DP, PP; EP is a sub-group of DP (Megatron-Core)"
