"""The training planner: every parallel layout of one job, evaluated as numpy arrays, ranked.

Space (each dimension enumerated only where it divides what it must):
- TP: divisors of the attention heads (and of the KV heads, Megatron shards whole KV groups) that divide
  the GPU count; sequence parallelism on or off when TP > 1 (Korthikanti et al. 2022 §4.2.2);
- PP: 1..L dividing GPUs/TP, uneven stages allowed (lighter first/last stage: Llama 3 §3.3.2);
- virtual stages v: every chunking of the stage's layers that :func:`check_layout` accepts (Narayanan 2021 §2.2);
- CP: powers of two up to ``max_cp`` where 2·cp splits the sequence (Megatron-Core load balancing);
- DP: the rest; EP (MoE only): divisors of the experts that divide DP; expert TP (MoE only): etp = tp (0 in the
  arrays) and every other divisor of the expert FFN width up to the scale-up domain with etp·ep dividing tp·cp·dp
  (Megatron-Core --expert-tensor-parallel-size; needs SP when tp > 1; an ETP group across nodes is not searched);
- micro-batch: divisors of global_batch/DP (every DP rank runs whole micro-batches);
- ZeRO 0-3 over DP×CP (stage 1 = Megatron's distributed optimizer), recompute none/selective/full, and
  full recompute of only the fewest first layers per stage that make a layout fit (Megatron-Core block method);
- optimizer offload (ZeRO-Offload, ZeRO 1-3, hardware with a host link): a post-pass adds the offloaded version of
  every candidate that does not fit without it and fits with it (offload only slows a layout that already fits).

Every candidate goes through the same :func:`training_memory` and :func:`training_step` the
``memory`` and ``step`` commands use, as ONE vectorised call each: memory first on everything that
divides, step only on what fits (memory pruning). Not searched: DualPipe (the step model times 1F1B/interleaved
schedules).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.efficiency import training_efficiency
from ..core.errors import LlmcalcError
from ..core.results import Result, derive
from ..core.specs import Hardware, Model
from .layout import RECOMPUTE_CODES, RECOMPUTE_NAMES, Layout, check_layout, describe_stages
from .memory import DEFAULT_OPTIMIZER, training_memory
from .step import MFU_BEYOND_PUBLISHED, SRC_BEST_MFU, training_step

DIMS = ("gpus", "tp", "pp", "v", "cp", "dp", "ep", "mb", "zero", "rc", "sp", "rk", "etp", "off")
RC_LABELS = {0: "no-rc", 1: "sel-rc", 2: "full-rc"}  # 3: full recompute of the first rk layers per stage
OBJECTIVES = {"time": "tokens/s (fastest run)", "cost": "tokens/s per GPU (cheapest run; $ ∝ GPU-hours)",
              "mfu": "MFU (model FLOPs utilisation)"}
DAY_S = 86400.0
SRC_DAYS = "days = tokens / (tokens/s) / 86400; cost = GPUs × hours × price per GPU-hour"


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def _pins(pins: dict | None) -> dict[str, set]:
    out: dict[str, set] = {}
    for k, v in (pins or {}).items():
        if v is None:
            continue
        if k not in DIMS:
            raise LlmcalcError(f"cannot pin {k!r}; pinnable: {', '.join(DIMS[1:])}")
        vals = v if isinstance(v, (list, tuple, set)) else [v]
        if k == "rc":
            vals = [RECOMPUTE_CODES[x.lower()] if isinstance(x, str) else int(x) for x in vals]
        if k == "off":
            vals = [int(bool(x)) for x in vals]
        out[k] = {int(x) for x in vals}
    return out


@dataclass(frozen=True)
class Space:
    """Flat candidate arrays (one element per layout) and the counts at each stage of pruning."""

    arrays: dict[str, np.ndarray]
    raw: int  # the Cartesian product of every dimension's own values, before any cross-dimension check
    divisible: int  # what is left after divisibility (layout, batch and sequence splits)
    per_dimension: dict[str, int]


def enumerate_space(m: Model, gpus_list, *, global_batch: int, seq: int, pins: dict | None = None,
                    max_cp: int = 16, max_tp: int | None = None, max_etp: int | None = None) -> Space:
    """Every divisible layout for each GPU count in ``gpus_list`` as flat numpy arrays."""
    pin = _pins(pins)
    a = m.attention
    L = m.n_layers

    def allowed(name, values):
        return [x for x in values if name not in pin or x in pin[name]]

    head_div = math.gcd(a.n_heads, a.n_kv_heads) if not a.mla else a.n_heads
    tp_all = allowed("tp", [t for t in _divisors(head_div) if max_tp is None or t <= max_tp])
    pp_all = allowed("pp", list(range(1, L + 1)))
    cp_all = allowed("cp", [c for c in (2**i for i in range(0, 12))
                            if c <= max_cp and (c == 1 or seq % (2 * c) == 0)])
    ep_all = allowed("ep", _divisors(m.moe.n_experts) if m.moe else [1])
    fe_div = _divisors(m.moe.d_ff_expert) if m.moe else []
    if max_etp is not None:
        fe_div = [x for x in fe_div if x <= max_etp]

    def etps(t: int, c: int, d: int, e: int) -> list[int]:  # 0 = expert TP = tp; else Megatron-Core's expert grid
        vals = [0] + [x for x in fe_div if x != t and (t * c * d) % (x * e) == 0]
        return vals if "etp" not in pin else [x for x in vals if (x or t) in pin["etp"]]
    mb_all = allowed("mb", _divisors(global_batch))
    zero_all = allowed("zero", [0, 1, 2, 3])
    rc_all = allowed("rc", [0, 1, 2])
    sp_all = allowed("sp", [0, 1])
    v_all = allowed("v", list(range(1, L + 1)))
    per_dim = {"gpus": len(gpus_list), "tp": len(tp_all), "pp": len(pp_all), "v": len(v_all), "cp": len(cp_all),
               "ep": len(ep_all), "mb": len(mb_all), "zero": len(zero_all), "rc": len(rc_all), "sp": len(sp_all),
               "etp": 1 + len(fe_div)}
    raw = int(np.prod([n for n in per_dim.values()], dtype=float))

    v_by_pp: dict[int, list[int]] = {}

    def chunkings(p: int) -> list[int]:  # virtual stages that cut p stages into whole chunks (same for every tp)
        if p not in v_by_pp:
            vs = [v for v in v_all if v == 1 or p > 1]
            ok = np.atleast_1d(check_layout(m, Layout(pp=p, interleave=np.array(vs, dtype=np.int64)))) if vs else []
            v_by_pp[p] = [v for v, good in zip(vs, ok, strict=True) if good]
        return v_by_pp[p]

    outer: list[tuple[int, ...]] = []
    for n in gpus_list:
        for t in tp_all:
            if n % t:
                continue
            for p in pp_all:
                if (n // t) % p or p > L:
                    continue
                for c in cp_all:
                    if (n // t // p) % c:
                        continue
                    d = n // (t * p * c)
                    if "dp" in pin and d not in pin["dp"]:
                        continue
                    if global_batch % d:
                        continue
                    vs = chunkings(p)
                    if not vs:
                        continue
                    for e in ep_all:
                        if d % e:
                            continue
                        ets = etps(t, c, d, e)
                        for mb in mb_all:
                            if (global_batch // d) % mb:
                                continue
                            outer += [(n, t, p, v, c, d, e, mb, x) for x in ets for v in vs]
    if not outer:
        return Space({k: np.zeros(0, int) for k in DIMS}, raw, 0, per_dim)
    o = np.array(outer, dtype=np.int64)
    inner = np.array([(z, r, s) for z in zero_all for r in rc_all for s in sp_all], dtype=np.int64)
    if len(inner) == 0:
        return Space({k: np.zeros(0, int) for k in DIMS}, raw, 0, per_dim)
    # every outer row with every inner (zero, rc, sp), outer-major: repeat/tile each column (no gathers)
    arr = {k: np.repeat(o[:, j], len(inner))
           for j, k in enumerate(("gpus", "tp", "pp", "v", "cp", "dp", "ep", "mb", "etp"))}
    arr.update(zero=np.tile(inner[:, 0], len(o)), rc=np.tile(inner[:, 1], len(o)), sp=np.tile(inner[:, 2], len(o)))
    arr["off"] = np.zeros_like(arr["zero"])
    keep = ~((arr["sp"] == 1) & (arr["tp"] == 1))  # SP shards over TP: meaningless with tp = 1
    keep &= ~((arr["etp"] > 0) & (arr["tp"] > 1) & (arr["sp"] == 0))  # Megatron-Core: MoE with TP needs SP
    arr = {k: v[keep] for k, v in arr.items()}
    return Space(arr, raw, int(keep.sum()), per_dim)


def _layout(arr: dict, idx=None, schedule: str = "1f1b") -> Layout:
    g = (lambda k: arr[k]) if idx is None else (lambda k: int(arr[k][idx]))
    etp = arr.get("etp")
    if etp is not None and idx is None:
        etp = etp if np.any(etp) else None  # all "= tp": the default layout
    elif etp is not None:
        etp = int(etp[idx]) or None
    return Layout(tp=g("tp"), pp=g("pp"), dp=g("dp"), ep=g("ep"), cp=g("cp"), sp=g("sp").astype(bool)
                  if idx is None else bool(g("sp")), zero=g("zero"), interleave=g("v"), etp=etp, schedule=schedule)


def layout_label(m: Model, row: dict) -> str:
    """'TP8 SP PP16[7,8×14,7] v2 DP128 mb1 ZeRO-1 sel' (CP/EP only when > 1)."""
    lay = Layout(tp=row["tp"], pp=row["pp"], interleave=row["v"])
    pp = f"PP{row['pp']}" + (f"[{describe_stages(m.n_layers, lay)}]" if row["pp"] > 1 and
                             m.n_layers % row["pp"] else "")
    parts = [f"TP{row['tp']}" + (" SP" if row["sp"] else ""), pp + (f" v{row['v']}" if row["v"] > 1 else "")]
    if row["cp"] > 1:
        parts.append(f"CP{row['cp']}")
    if row["ep"] > 1:
        parts.append(f"EP{row['ep']}")
    if row.get("etp"):
        parts.append(f"ETP{row['etp']}")
    rc = RC_LABELS.get(row["rc"]) or f"rc-first{row.get('rk', 0)}"
    parts += [f"DP{row['dp']}", f"mb{row['mb']}", f"ZeRO-{row['zero']}", rc]
    if row.get("off"):
        parts.append("offload")
    return " ".join(parts)


def evaluate(m: Model, hw: Hardware, arr: dict, *, global_batch: int, seq: int, optimizer: str = DEFAULT_OPTIMIZER,
             dtype: str = "bf16", compute_efficiency: float | None = None, efficiency=None,
             attention: str = "flash", tp_comm_overlap: bool = False,
             reserve: float | None = None, first_k: bool = True, offload: bool | str = True, schedule: str = "1f1b",
             recompute_norm_up: bool = False, fp8_activations: bool = False, prune: tuple[str, int] | None = None,
             with_count: bool = False):
    """Memory for every candidate (one vectorised call), then step for those that fit (a second one). Fitting
    means the same as for `llmcalc memory`: the need within the memory less the reserve. With ``offload`` (and a
    host link in the hardware entry), candidates that do not fit get an optimizer-offloaded twin where that fits;
    ``offload="only"``: every candidate with ZeRO 1-3 offloaded, nothing else (a pinned --offload-optimizer).
    ``prune`` = (objective, top): time only the candidates that can appear in a plan's output (:func:`_prune`);
    ``with_count``: return (rows, how many candidates fit and have a valid step) instead of the rows."""
    arr = dict(arr, rk=np.zeros_like(arr["tp"]))
    arr.setdefault("etp", np.zeros_like(arr["tp"]))
    arr.setdefault("off", np.zeros_like(arr["tp"]))
    recipe = dict(recompute_norm_up=recompute_norm_up, fp8_activations=fp8_activations)
    lay = _layout(arr, schedule=schedule)
    mem = training_memory(m, hw, lay, micro_batch=arr["mb"], seq=seq, recompute=arr["rc"], optimizer=optimizer,
                          global_batch=global_batch, reserve=reserve, **recipe)
    need = np.broadcast_to(np.asarray(mem.data["total_bytes"], float), arr["tp"].shape)
    valid = np.broadcast_to(np.asarray(mem.data["valid"]), need.shape)
    fits = valid & (need <= mem.data["usable_bytes"])
    out = {k: v[fits] for k, v in arr.items()}
    out["memory_bytes"] = need[fits]
    common = dict(optimizer=optimizer, reserve=reserve, schedule=schedule, **recipe)
    partial = None if not first_k else _first_k(m, hw, arr, mem, fits & (arr["rc"] == 2), global_batch=global_batch,
                                                 seq=seq, **common)
    offl = None
    if offload and getattr(hw, "host_link_bw_bytes_per_s", None) is not None:
        only = offload == "only"
        offl = _offloaded(m, hw, arr, mem, valid & (arr["zero"] >= 1) & (True if only else ~fits),
                          global_batch=global_batch, seq=seq, **common)
        if only:
            out, partial = {k: v[:0] for k, v in out.items()}, None
    timing = dict(compute_efficiency=compute_efficiency, dtype=dtype, efficiency=efficiency, attention=attention,
                  tp_comm_overlap=tp_comm_overlap, schedule=schedule, **recipe)
    if offl is not None:  # timed with the rest (each step call has a fixed cost)
        out = {k: np.concatenate([out[k], offl[k]]) for k in out}
    sets = [out] + ([partial] if partial is not None else [])  # rc-firstK rows need recompute_layers: their own call
    n_timed = None
    if prune is not None and sum(len(x["tp"]) for x in sets) >= PRUNE_FROM:
        sets, n_timed = _prune(m, hw, sets, objective=prune[0], top=prune[1], global_batch=global_batch, seq=seq,
                               **timing)
    timed = [_timed(m, hw, x, global_batch=global_batch, seq=seq, **timing) for x in sets]
    out = timed[0] if len(timed) == 1 else {k: np.concatenate([t[k] for t in timed]) for k in timed[0]}
    return out if not with_count else (out, len(out["tp"]) if n_timed is None else n_timed)


# Below this many fitting candidates every one is timed: the bound's own call and the seed call cost more than
# they save (issue #13: measured on the README's plan one-liners).
PRUNE_FROM = 20_000
SEEDS = 4096  # candidates with the highest bounds timed first: more seeds, tighter thresholds
PRUNE_SLACK = 1e-9  # relative: the bound and the score are compared with room for rounding


def _prune(m: Model, hw: Hardware, sets: list[dict], *, objective: str, top: int, global_batch: int, seq: int,
           schedule: str = "1f1b", **timing) -> tuple[list[dict], int]:
    """Exact pruning of the step evaluation (issue #13): a candidate is dropped only when it provably can appear in
    none of the rows a plan shows (the top ``top``, the best per ZeRO stage, per TP degree and per GPU count).

    Every candidate's score has an upper bound from step >= compute·(1 + bubble) (``training_step(...,
    lower_bound_only=True)``, no communication ledger). The candidates with the highest bounds (the top ``top``
    and the best of each group) are timed first; their real scores give a k-th best score and a best score per
    group that the full result can only match or beat. A candidate whose bound is below all of its thresholds
    cannot be shown; ties are kept, so the stable ranking and first-of-equal choices are unchanged. Returns the
    kept rows of each set (in order) and how many candidates have a valid, finite, positive bound (the count of
    candidates that fit and are timed without pruning, where every step with a finite bound is finite)."""
    ub, ok = [], []
    for x in sets:
        n = len(x["tp"])
        first_k = bool(np.any(x["rc"] == 3))
        off = x["off"].astype(bool) if np.any(x["off"]) else False
        st = training_step(m, hw, _layout(x, schedule=schedule), global_batch=global_batch, micro_batch=x["mb"],
                           seq=seq, gpus=x["gpus"], recompute=np.where(x["rc"] == 3, 2, x["rc"]),
                           recompute_layers=x["rk"] if first_k else None, check_memory=False,
                           offload_optimizer=off, lower_bound_only=True, **timing)
        t = np.broadcast_to(np.asarray(st.data["step_time_s"], float), (n,))
        good = np.broadcast_to(np.asarray(st.data["valid"]), (n,)) & np.isfinite(t) & (t > 0)
        bound = {k: np.broadcast_to(np.asarray(st.data[k], float), (n,)) for k in ("tokens_per_s", "mfu")}
        ub.append(_score(dict(bound, gpus=x["gpus"]), objective) * (1 + PRUNE_SLACK))
        ok.append(good)
    n_ok = int(sum(int(g.sum()) for g in ok))
    # seeds: the highest bounds overall and in each group, timed exactly
    allub = np.concatenate([np.where(g, u, -np.inf) for u, g in zip(ub, ok, strict=True)])
    cat = {k: np.concatenate([x[k] for x in sets]) for k in ("zero", "tp", "gpus")}
    seed = set(np.argsort(-allub, kind="stable")[:max(top, SEEDS)].tolist())
    for key in ("zero", "tp", "gpus"):
        for val in np.unique(cat[key]):
            idx = np.flatnonzero(cat[key] == val)
            seed.update(idx[np.argsort(-allub[idx], kind="stable")[:SEEDS // 4]].tolist())
    seed_idx = np.array(sorted(seed), dtype=np.int64)
    starts = np.cumsum([0] + [len(x["tp"]) for x in sets])
    scores, groups = [], {k: [] for k in ("zero", "tp", "gpus")}
    for j, x in enumerate(sets):
        sel = seed_idx[(seed_idx >= starts[j]) & (seed_idx < starts[j + 1])] - starts[j]
        if len(sel) == 0:
            continue
        tx = _timed(m, hw, {k: v[sel] for k, v in x.items()}, global_batch=global_batch, seq=seq, schedule=schedule,
                    **timing)
        scores.append(_score(tx, objective))
        for k in groups:
            groups[k].append(tx[k])
    sc = np.concatenate(scores) if scores else np.zeros(0)
    kth = np.sort(sc)[::-1][top - 1] if len(sc) >= top else -np.inf
    best: dict[str, dict[int, float]] = {}
    for key, parts in groups.items():
        g = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        best[key] = {int(v): float(sc[g == v].max()) for v in np.unique(g)}
    kept = []
    for x, u, g in zip(sets, ub, ok, strict=True):
        keep = ~(u < kth)  # a NaN bound never prunes
        for key in ("zero", "tp", "gpus"):
            keep |= ~(u < _lookup(best[key], x[key]))
        kept.append({k: v[keep & g] for k, v in x.items()})
    return kept, n_ok


def _lookup(table: dict[int, float], keys: np.ndarray) -> np.ndarray:
    """table[k] for every element of ``keys``, -inf where absent."""
    out = np.full(len(keys), -np.inf)
    for k, v in table.items():
        out[keys == k] = v
    return out


TIMED = ("step_time_s", "tokens_per_s", "mfu", "bubble_s", "exposed_comm_s", "compute_s")


def _timed(m: Model, hw: Hardware, out: dict, *, global_batch: int, seq: int, schedule: str = "1f1b",
           **timing) -> dict:
    """Step time etc. for candidates that fit (one vectorised call); rows rc = 3 recompute their first rk layers."""
    n = len(out["tp"])
    if n == 0:
        return out | {k: np.zeros(0) for k in TIMED}
    first_k = bool(np.any(out["rc"] == 3))
    off = out["off"].astype(bool) if np.any(out["off"]) else False
    st = training_step(m, hw, _layout(out, schedule=schedule), global_batch=global_batch, micro_batch=out["mb"],
                       seq=seq,
                       gpus=out["gpus"], recompute=np.where(out["rc"] == 3, 2, out["rc"]),
                       recompute_layers=out["rk"] if first_k else None, check_memory=False, offload_optimizer=off,
                       **timing)
    out = dict(out)  # memory was checked by the caller, for every candidate at once
    for k in TIMED:
        out[k] = np.broadcast_to(np.asarray(st.data[k], float), (n,)).copy()
    ok = np.broadcast_to(np.asarray(st.data["valid"]), (n,)) & np.isfinite(out["step_time_s"]) & (
        out["step_time_s"] > 0)
    return {k: v[ok] for k, v in out.items()}


def _first_k(m: Model, hw: Hardware, arr: dict, mem: Result, full_fits: np.ndarray, *, global_batch: int, seq: int,
             optimizer: str, reserve, schedule: str = "1f1b", **recipe) -> dict | None:
    """For every candidate whose full-recompute version fits: the fewest layers k per stage (per virtual chunk)
    that, recomputed in full, make it fit (Megatron-Core --recompute-method block --recompute-num-layers k). Each
    stage's memory is linear in k up to its chunk size c = Ls/v, so k comes in closed form from the full-recompute
    totals and one more evaluation at k = 1. Rows with k < the largest chunk are new candidates (rc = 3)."""
    from .layout import stage_layers

    idx = np.flatnonzero(full_fits)
    if len(idx) == 0:
        return None
    sub = {k: v[idx] for k, v in arr.items()}
    lay = _layout(sub, schedule=schedule)
    one = training_memory(m, hw, lay, micro_batch=sub["mb"], seq=seq, recompute=2, optimizer=optimizer,
                          global_batch=global_batch, reserve=reserve, recompute_layers=1, **recipe)
    usable = one.data["usable_bytes"]
    sl = stage_layers(m.n_layers, lay)
    k_need = np.ones(len(idx))
    for stage in ("first", "middle", "last"):
        full_t = np.broadcast_to(np.asarray(mem[f"{stage}_stage/total"].value, float), full_fits.shape)[idx]
        one_t = np.broadcast_to(np.asarray(one[f"{stage}_stage/total"].value, float), idx.shape)
        c = np.broadcast_to(np.asarray(sl[stage], float), idx.shape) / sub["v"]
        slope = np.where(c > 1, (one_t - full_t) / np.maximum(c - 1, 1), 0.0)  # bytes saved per extra layer
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.where(one_t <= usable, 1, 1 + np.ceil((one_t - usable) / np.where(slope > 0, slope, np.inf)))
        k_need = np.maximum(k_need, np.where(np.isfinite(k), k, np.inf))
    c_max = np.broadcast_to(np.asarray(sl["max"], float), idx.shape) / sub["v"]
    keep = np.isfinite(k_need) & (k_need < c_max)  # k = c_max is plain full recompute, already a candidate
    one_layer = keep & (k_need == 1)
    if one_layer.any():  # k = 1 only where recomputing nothing would not fit (else "none" dominates it)
        j = np.flatnonzero(one_layer)
        s1 = {k: v[j] for k, v in sub.items()}
        none = training_memory(m, hw, _layout(s1, schedule=schedule), micro_batch=s1["mb"], seq=seq, recompute=0,
                               optimizer=optimizer, global_batch=global_batch, reserve=reserve, **recipe)
        keep[j] &= np.broadcast_to(np.asarray(none.data["total_bytes"], float), j.shape) > none.data["usable_bytes"]
    if not keep.any():
        return None
    sub = {k: v[keep] for k, v in sub.items()}
    sub["rc"] = np.full_like(sub["rc"], 3)
    sub["rk"] = k_need[keep].astype(np.int64)
    chk = training_memory(m, hw, _layout(sub, schedule=schedule), micro_batch=sub["mb"], seq=seq, recompute=2,
                          optimizer=optimizer, global_batch=global_batch, reserve=reserve, recompute_layers=sub["rk"],
                          **recipe)
    need = np.broadcast_to(np.asarray(chk.data["total_bytes"], float), sub["tp"].shape)
    ok = need <= chk.data["usable_bytes"]  # the closed form, checked by the memory model itself
    sub = {k: v[ok] for k, v in sub.items()}
    sub["memory_bytes"] = need[ok]
    return sub if len(sub["tp"]) else None


def _offloaded(m: Model, hw: Hardware, arr: dict, mem: Result, cand: np.ndarray, *, global_batch: int, seq: int,
               optimizer: str, reserve, schedule: str = "1f1b", **recipe) -> dict | None:
    """Optimizer-offloaded twins (ZeRO-Offload) of the candidates in ``cand`` (valid, ZeRO 1-3, not fitting): offload
    removes each stage's optimizer states and the part of its gradients above 16 bits from the GPU (the memory
    model's own rows, so the need comes in closed form); those that then fit are checked by the memory model itself
    and kept with off = 1. Offload never helps a layout that already fits (it only adds host traffic and the CPU
    step), so it is not enumerated there."""
    from .memory import optimizer_bytes

    idx = np.flatnonzero(cand)
    if len(idx) == 0:
        return None
    o = optimizer_bytes(optimizer)
    keep_g = min(o.grads, 2) / o.grads if o.grads else 1.0
    need = np.zeros(len(idx))
    for stage in ("first", "middle", "last"):
        d = mem.data[f"{stage}_stage"]
        tot, opt, gr = (np.broadcast_to(np.asarray(d[k], float), cand.shape)[idx]
                        for k in ("total_bytes", "optimizer_bytes", "grads_bytes"))
        has = 1.0 if stage != "middle" else np.broadcast_to(arr["pp"] > 2, cand.shape)[idx]
        need = np.maximum(need, tot - has * (opt + gr * (1 - keep_g)))
    ok = need <= mem.data["usable_bytes"]
    if not ok.any():
        return None
    sub = {k: v[idx[ok]] for k, v in arr.items()}
    sub["off"] = np.ones_like(sub["off"])
    chk = training_memory(m, hw, _layout(sub, schedule=schedule), micro_batch=sub["mb"], seq=seq, recompute=sub["rc"],
                          optimizer=optimizer, global_batch=global_batch, reserve=reserve,
                          offload_optimizer=np.ones(len(sub["tp"]), bool), **recipe)
    need = np.broadcast_to(np.asarray(chk.data["total_bytes"], float), sub["tp"].shape)
    good = np.broadcast_to(np.asarray(chk.data["valid"]), need.shape) & (need <= chk.data["usable_bytes"])
    sub = {k: v[good] for k, v in sub.items()}
    sub["memory_bytes"] = need[good]
    return sub if len(sub["tp"]) else None


def _score(ev: dict, objective: str) -> np.ndarray:
    if objective == "time":
        return ev["tokens_per_s"]
    if objective == "cost":
        return ev["tokens_per_s"] / ev["gpus"]
    return ev["mfu"]


def _row(m: Model, ev: dict, i: int, tokens: float, price: float | None) -> dict:
    r = {k: (int(ev[k][i]) if k in DIMS else float(ev[k][i])) for k in ev}
    r["layout"] = layout_label(m, r)
    r["days"] = tokens / r["tokens_per_s"] / DAY_S
    r["gpu_hours"] = r["days"] * 24 * r["gpus"]
    r["cost_usd"] = None if price is None else r["gpu_hours"] * price
    return r


def find(ev: dict, **dims) -> int | None:
    """Index of the candidate with these exact dimension values, or None if it was pruned or never enumerated."""
    mask = np.ones(len(ev["tp"]), bool)
    for k, v in dims.items():
        mask &= ev[k] == v
    idx = np.flatnonzero(mask)
    return int(idx[0]) if len(idx) else None


def plan_training(m: Model, hw: Hardware, *, gpus, global_batch: int, seq: int, objective: str = "time",
                  top: int = 10, pins: dict | None = None, tokens: float | None = None,
                  price_usd_per_hour: float | None = None, optimizer: str = DEFAULT_OPTIMIZER, dtype: str = "bf16",
                  compute_efficiency: float | None = None, max_cp: int = 16, keep_evaluated: bool = False,
                  efficiency=None, attention: str = "flash", tp_comm_overlap: bool = False,
                  reserve: float | None = None, offload: bool = True, schedule: str = "1f1b",
                  recompute_norm_up: bool = False, fp8_activations: bool = False) -> Result:
    """Rank every layout of ``m`` on ``gpus`` (an int or a list) × ``hw`` for one step of ``global_batch``
    sequences of ``seq`` tokens. The result's data holds the ranked rows, the best per ZeRO stage and per TP
    degree, the best per GPU count with its Pareto flag (days vs dollars), and the pruning counts."""
    if objective not in OBJECTIVES:
        raise LlmcalcError(f"--objective expects one of {', '.join(OBJECTIVES)}, got {objective!r}")
    gpus_list = sorted({int(g) for g in np.atleast_1d(gpus)})
    for opt, val in (("--gpus", min(gpus_list, default=0)), ("--global-batch", global_batch), ("--seq", seq),
                     ("--top", top)):
        if not isinstance(val, (int, np.integer)) or val < 1:
            raise LlmcalcError(f"{opt} must be a positive integer, got {val!r}")
    if tokens is not None and not (np.isfinite(tokens) and tokens > 0):
        raise LlmcalcError(f"--tokens must be a positive count, got {tokens!r}")
    if price_usd_per_hour is not None and not (np.isfinite(price_usd_per_hour) and price_usd_per_hour >= 0):
        raise LlmcalcError(f"--price must be a non-negative USD per GPU-hour, got {price_usd_per_hour!r}")
    dom = hw.scale_up.domain_size
    if hw.scale_out is None and max(gpus_list) > dom:
        raise LlmcalcError(f"{hw.display_name} records no scale-out link, so a job cannot span more than its "
                           f"{dom}-device scale-up domain; asked for {', '.join(map(str, gpus_list))} (plan at most "
                           f"{dom}, or give the hardware YAML a scale_out link)")
    space = enumerate_space(m, gpus_list, global_batch=global_batch, seq=seq, pins=pins, max_cp=max_cp,
                            max_etp=dom)
    ev = evaluate(m, hw, space.arrays, global_batch=global_batch, seq=seq, optimizer=optimizer, dtype=dtype,
                  compute_efficiency=compute_efficiency, efficiency=efficiency, attention=attention,
                  tp_comm_overlap=tp_comm_overlap, reserve=reserve, schedule=schedule,
                  recompute_norm_up=recompute_norm_up, fp8_activations=fp8_activations,
                  first_k=(pins or {}).get("rc") is None,  # a pinned recompute mode is searched as given
                  offload=("only" if (pins or {}).get("off") in (1, True) else  # pinned: every layout offloaded
                           offload and (pins or {}).get("off") is None),
                  prune=None if keep_evaluated else (objective, top), with_count=True)
    ev, n_fit = ev
    budget = 1e12 if tokens is None else float(tokens)
    price = price_usd_per_hour if price_usd_per_hour is not None else hw.price_usd_per_hour
    notes = [f"searched {space.raw:,} raw combinations ({', '.join(f'{k} {v}' for k, v in space.per_dimension.items())}"
             f"); {space.divisible:,} divide; {n_fit:,} fit in {hw.display_name} memory and were timed",
             f"objective: {objective} = {OBJECTIVES[objective]}",
             "days and cost for " + (f"{budget:.3g} tokens" if tokens is not None else
                                     "1T tokens (pass --tokens for your budget)")
             + ("" if price is not None else "; no price in the hardware entry: pass --price"),
             "same memory and step models as `llmcalc memory` / `llmcalc step` (optimizer "
             f"{optimizer}; memory excludes framework workspace and fragmentation)",
             "recompute: none, selective, full, and full on only the fewest first layers per stage that fit "
             "(rc-firstK, Megatron-Core --recompute-method block)",
             "optimizer offload (ZeRO-Offload: states on the host, CPU Adam exposed) only where a layout does not "
             "fit without it" + ("" if getattr(hw, "host_link_bw_bytes_per_s", None) else
                                 f" (not searched: {hw.display_name} records no host link)"),
             *([f"expert TP: = TP, or a divisor of the expert FFN width up to the {dom}-GPU scale-up domain (ETP, "
                "Megatron-Core's expert grid); EP within DP (no parallel folding)"] if m.moe else []),
             "pipeline schedule as given: "
             + ("DualPipe for every candidate (DeepSeek-V3 §3.2.1)" if schedule == "dualpipe" else
                "1F1B, interleaved where v > 1 (--schedule dualpipe for DualPipe)")
             + ("; DeepSeek-V3 memory recipe: " + ", ".join(x for x, on in (
                 ("norm/MLA-up recompute", recompute_norm_up), ("FP8 activation caching", fp8_activations)) if on)
                if recompute_norm_up or fp8_activations else ""),
             "efficiency: " + training_efficiency(hw, flat=compute_efficiency, profile=efficiency).describe()
             + f"; attention {attention}" + ("; TP collectives overlapped" if tp_comm_overlap else "")]
    data: dict = {"model": m.name, "hardware": hw.name, "gpus": gpus_list, "global_batch": global_batch, "seq": seq,
                  "objective": objective, "raw_combinations": space.raw, "divisible": space.divisible,
                  "fit": n_fit, "per_dimension": space.per_dimension, "tokens": budget, "price_usd_per_hour": price}
    if n_fit == 0:
        data.update(ranked=[], best=None, best_per_zero={}, best_per_tp={}, per_gpus=[])
        return Result(f"Plan: {m.display_name} on {', '.join(map(str, gpus_list))} × {hw.display_name} — "
                      "no layout fits", (), tuple(notes + ["nothing fits: more GPUs, a smaller global batch or "
                                                           "shorter sequences"]), data)
    score = _score(ev, objective)
    order = np.argsort(-score, kind="stable")
    ranked = [_row(m, ev, int(i), budget, price) for i in order[:top]]

    def best_by(key: str) -> dict:
        out = {}
        for val in np.unique(ev[key]):
            idx = np.flatnonzero(ev[key] == val)
            out[int(val)] = _row(m, ev, int(idx[np.argmax(score[idx])]), budget, price)
        return out

    per_gpus = list(best_by("gpus").values())
    for r in per_gpus:  # Pareto: no other count is both faster (fewer days) and cheaper
        r["pareto"] = not any(o is not r and o["days"] <= r["days"] and (o["gpu_hours"] <= r["gpu_hours"])
                              and (o["days"] < r["days"] or o["gpu_hours"] < r["gpu_hours"]) for o in per_gpus)
    data.update(ranked=ranked, best=ranked[0], best_per_zero=best_by("zero"), best_per_tp=best_by("tp"),
                per_gpus=per_gpus)
    if keep_evaluated:  # every timed candidate (arrays) and its rank: for reports and the dashboard, not JSON
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(1, len(order) + 1)
        data["evaluated"] = dict(ev, rank=rank, score=score)
    b = ranked[0]
    if b["mfu"] > MFU_BEYOND_PUBLISHED:  # the same rule as `step`: the ranking stands, the absolute speed is a bound
        notes.insert(0, f"the best layout's MFU {b['mfu']:.0%} is above {MFU_BEYOND_PUBLISHED:.0%}: an "
                        f"extrapolation — {SRC_BEST_MFU}; read its step time as an upper bound on speed")
    figs = (derive("plan/best_step_time", "t", "s", "llmcalc.training.step on the best layout",
                   label=f"best: {b['layout']} — step time", t=b["step_time_s"]),
            derive("plan/best_mfu", "x", "%", "llmcalc.training.step", label="best: MFU", x=b["mfu"]),
            derive("plan/best_days", "tokens/tps/day", "days", SRC_DAYS, label="best: days for the token budget",
                   tokens=budget, tps=b["tokens_per_s"], day=DAY_S))
    return Result(f"Plan: {m.display_name} on {', '.join(map(str, gpus_list))} × {hw.display_name}, global batch "
                  f"{global_batch} × {seq} tokens", figs, tuple(notes), data)


def best_breakdown(m: Model, hw: Hardware, row: dict, *, global_batch: int, seq: int,
                   optimizer: str = DEFAULT_OPTIMIZER, dtype: str = "bf16", compute_efficiency: float | None = None,
                   efficiency=None, attention: str = "flash", tp_comm_overlap: bool = False,
                   reserve: float | None = None, schedule: str = "1f1b", recompute_norm_up: bool = False,
                   fp8_activations: bool = False) -> tuple[Result, Result]:
    """The scalar step and memory Results of one planned layout (its full derivation)."""
    lay = Layout(tp=row["tp"], pp=row["pp"], dp=row["dp"], ep=row["ep"], cp=row["cp"], sp=bool(row["sp"]),
                 zero=row["zero"], interleave=row["v"], etp=row.get("etp") or None, schedule=schedule)
    recipe = dict(recompute_norm_up=recompute_norm_up, fp8_activations=fp8_activations)
    rc = RECOMPUTE_NAMES[min(row["rc"], 2)]
    k = row.get("rk") if row["rc"] == 3 else None
    off = bool(row.get("off"))
    st = training_step(m, hw, lay, global_batch=global_batch, micro_batch=row["mb"], seq=seq, gpus=row["gpus"],
                       recompute=rc, compute_efficiency=compute_efficiency, dtype=dtype, efficiency=efficiency,
                       attention=attention, tp_comm_overlap=tp_comm_overlap, optimizer=optimizer, reserve=reserve,
                       recompute_layers=k, offload_optimizer=off, **recipe)
    mem = training_memory(m, hw, lay, micro_batch=row["mb"], seq=seq, recompute=rc, optimizer=optimizer,
                          global_batch=global_batch, reserve=reserve, recompute_layers=k, offload_optimizer=off,
                          **recipe)
    return st, mem
