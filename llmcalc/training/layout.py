"""The parallel layout of a training job and the checks that make it possible.

Conventions (Megatron-LM / Megatron-Core):

- Degrees: ``tp`` tensor, ``pp`` pipeline, ``dp`` data, ``cp`` context, ``ep`` expert parallel.
  GPUs = tp·pp·dp·cp. Expert parallelism lives *inside* data parallelism (Megatron-Core: the EP
  group is carved out of the DP ranks), so ``ep`` must divide ``dp`` and the number of experts; the
  expert weights are also tensor-parallel over ``tp`` (expert-TP = TP). Expert-data-parallel degree
  (the group that replicates and ZeRO-shards expert weights) is dp·cp/ep.
- Rank order, innermost first: TP, CP, EP, DP (the rest of it), PP. A group whose ranks span at
  most ``hardware.scale_up.domain_size`` consecutive ranks stays inside the NVLink domain.
- Every numeric degree may be a numpy array (a sweep). Scalar calls raise :class:`LayoutError` with
  a message naming the option; sweeps get a boolean ``valid`` mask instead (one bad element must not
  abort a million-point grid).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..core.checks import MAX_COUNT, fmt_input, plain
from ..core.errors import LayoutError
from ..core.specs import Model

RECOMPUTE_CODES = {"none": 0, "selective": 1, "full": 2}
RECOMPUTE_NAMES = {v: k for k, v in RECOMPUTE_CODES.items()}


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

    @property
    def gpus(self):
        return self.tp * self.pp * self.dp * self.cp

    @property
    def expert_dp(self):
        """Ranks that hold the same expert shard: the expert-data-parallel group (dp·cp/ep)."""
        return self.dp * self.cp // self.ep

    def with_(self, **kw) -> Layout:
        return replace(self, **kw)


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


def where(cond, a, b):
    """np.where that gives back a plain Python number when everything is scalar (tidy JSON and text)."""
    r = np.where(cond, a, b)
    return r.item() if r.ndim == 0 else r


def is_sweep(*values) -> bool:
    return any(np.ndim(v) > 0 for v in values)


def check_layout(model: Model, layout: Layout, *, gpus=None, micro_batch=1, seq=None, global_batch=None):
    """Validate ``layout`` for ``model``. Scalars: raise LayoutError on the first problem, else return True.
    Sweeps (any numpy array): return the boolean mask of valid elements (broadcast shape)."""
    t, p, d, e, c, v = layout.tp, layout.pp, layout.dp, layout.ep, layout.cp, layout.interleave
    a = model.attention
    name = model.display_name
    checks: list[tuple[Any, str]] = []

    def bad(cond, msg: str) -> None:
        checks.append((cond, msg))

    for opt, val in (("--tp", t), ("--pp", p), ("--dp", d), ("--ep", e), ("--cp", c), ("--interleave", v),
                     ("--micro-batch", micro_batch), ("--seq", seq), ("--global-batch", global_batch),
                     ("--gpus", gpus)):
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
        if np.any(np.asarray(val, dtype=float) > MAX_COUNT):  # int64 products would overflow silently
            raise LayoutError(f"{opt} is out of range (at most 2**53), got {fmt_input(val)}")
        bad(np.asarray(val) < 1, f"{opt} must be a positive integer (at least 1), got {fmt_input(val)}")
    if not np.all(np.isin(layout.zero, (0, 1, 2, 3))):
        raise LayoutError(f"--zero expects a stage 0, 1, 2 or 3 (FSDP = 3), got {fmt_input(layout.zero)}")
    bad(a.n_heads % np.maximum(t, 1) != 0,
        f"--tp {fmt_input(t)} does not divide the {a.n_heads} attention heads of {name}")
    if not a.mla:  # Megatron shards whole key/value groups across TP ranks
        bad(a.n_kv_heads % np.maximum(t, 1) != 0,
            f"--tp {fmt_input(t)} does not divide the {a.n_kv_heads} key/value heads of {name} "
            f"(each TP rank must own whole KV groups)")
    bad(model.n_layers % np.maximum(p * v, 1) != 0,
        f"--pp {fmt_input(p)}" + (f" × --interleave {fmt_input(v)}" if np.any(np.asarray(v) > 1) else "")
        + f" does not divide the {model.n_layers} layers of {name}")
    bad((np.asarray(v) > 1) & (np.asarray(p) < 2), f"--interleave {fmt_input(v)} needs --pp of at least 2")
    if model.moe:
        bad(model.moe.n_experts % np.maximum(e, 1) != 0,
            f"--ep {fmt_input(e)} does not divide the {model.moe.n_experts} experts of {name}")
    else:
        bad(np.asarray(e) != 1, f"--ep {fmt_input(e)} given but {name} is dense (no experts); use --ep 1")
    bad(np.asarray(d) % np.maximum(e, 1) != 0,
        f"--ep {fmt_input(e)} must divide --dp {fmt_input(d)} (expert parallelism is carved out of data parallelism)")
    if seq is not None:  # only context parallelism needs the 2·cp split; any length works without it
        bad((np.asarray(c) > 1) & (np.asarray(seq) % (2 * np.maximum(c, 1)) != 0),
            f"--seq {fmt_input(seq)} must split into 2·cp = {fmt_input(2 * np.asarray(c))} equal chunks for context "
            f"parallelism --cp {fmt_input(c)} (Megatron-Core load-balances causal attention this way)")
    if gpus is not None:
        bad(t * p * d * c != gpus,
            f"tp·pp·dp·cp = {fmt_input(t)}·{fmt_input(p)}·{fmt_input(d)}·{fmt_input(c)} = {fmt_input(t * p * d * c)} "
            f"but --gpus is {fmt_input(gpus)}")
    if global_batch is not None:
        bad(np.asarray(global_batch) % (micro_batch * d) != 0,
            f"--global-batch {fmt_input(global_batch)} is not divisible by micro-batch·dp = "
            f"{fmt_input(micro_batch)}·{fmt_input(d)} (every DP rank runs whole micro-batches)")

    if not is_sweep(t, p, d, e, c, v, micro_batch, seq, gpus, global_batch, layout.zero):
        for cond, msg in checks:
            if bool(cond):
                raise LayoutError(msg)
        return True
    valid = np.ones(np.broadcast(*[np.asarray(x) for x in (t, p, d, e, c, v, micro_batch)]).shape, bool)
    for cond, _ in checks:
        valid = valid & ~np.asarray(cond, bool)
    return valid


def microbatches(layout: Layout, micro_batch, global_batch):
    """m: micro-batches each pipeline runs per step = global_batch / (micro_batch·dp)."""
    return global_batch // (micro_batch * layout.dp)


def group_spans(layout: Layout) -> dict[str, Any]:
    """How many consecutive ranks each group spans under the order TP, CP, EP, DP, PP (innermost first)."""
    t, c, d = layout.tp, layout.cp, layout.dp
    return {"tp": t, "cp": t * c, "ep": t * c * layout.ep, "dp": t * c * d, "edp": t * c * d,
            "pp": t * c * d * layout.pp}


RANK_ORDER = "rank order (innermost first): TP, CP, EP, DP, PP; EP is a sub-group of DP (Megatron-Core)"
