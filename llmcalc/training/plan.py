"""The training planner: every parallel layout of one job, evaluated as numpy arrays, ranked.

Space (each dimension enumerated only where it divides what it must):
- TP: divisors of the attention heads (and of the KV heads, Megatron shards whole KV groups) that divide
  the GPU count; sequence parallelism on or off when TP > 1 (Korthikanti et al. 2022 §4.2.2);
- PP: 1..L dividing GPUs/TP, uneven stages allowed (lighter first/last stage: Llama 3 §3.3.2);
- virtual stages v: every chunking of the stage's layers that :func:`check_layout` accepts (Narayanan 2021 §2.2);
- CP: powers of two up to ``max_cp`` where 2·cp splits the sequence (Megatron-Core load balancing);
- DP: the rest; EP (MoE only): divisors of the experts that divide DP (expert-TP = TP in our engine);
- micro-batch: divisors of global_batch/DP (every DP rank runs whole micro-batches);
- ZeRO 0-3 over DP×CP (stage 1 = Megatron's distributed optimizer), recompute none/selective/full.

Every candidate goes through the same :func:`training_memory` and :func:`training_step` the
``memory`` and ``step`` commands use, as ONE vectorised call each: memory first on everything that
divides, step only on what fits (memory pruning). Not searched: optimizer offload, first-k-layer
recompute, expert-TP different from TP, DualPipe (the step model times 1F1B/interleaved schedules).
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
from .step import training_step

DIMS = ("gpus", "tp", "pp", "v", "cp", "dp", "ep", "mb", "zero", "rc", "sp")
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
                    max_cp: int = 16, max_tp: int | None = None) -> Space:
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
    mb_all = allowed("mb", _divisors(global_batch))
    zero_all = allowed("zero", [0, 1, 2, 3])
    rc_all = allowed("rc", [0, 1, 2])
    sp_all = allowed("sp", [0, 1])
    v_all = allowed("v", list(range(1, L + 1)))
    per_dim = {"gpus": len(gpus_list), "tp": len(tp_all), "pp": len(pp_all), "v": len(v_all), "cp": len(cp_all),
               "ep": len(ep_all), "mb": len(mb_all), "zero": len(zero_all), "rc": len(rc_all), "sp": len(sp_all)}
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
                        for mb in mb_all:
                            if (global_batch // d) % mb:
                                continue
                            outer += [(n, t, p, v, c, d, e, mb) for v in vs]
    if not outer:
        return Space({k: np.zeros(0, int) for k in DIMS}, raw, 0, per_dim)
    o = np.array(outer, dtype=np.int64)
    inner = np.array([(z, r, s) for z in zero_all for r in rc_all for s in sp_all], dtype=np.int64)
    if len(inner) == 0:
        return Space({k: np.zeros(0, int) for k in DIMS}, raw, 0, per_dim)
    # every outer row with every inner (zero, rc, sp), outer-major: repeat/tile each column (no gathers)
    arr = {k: np.repeat(o[:, j], len(inner)) for j, k in enumerate(("gpus", "tp", "pp", "v", "cp", "dp", "ep", "mb"))}
    arr.update(zero=np.tile(inner[:, 0], len(o)), rc=np.tile(inner[:, 1], len(o)), sp=np.tile(inner[:, 2], len(o)))
    keep = ~((arr["sp"] == 1) & (arr["tp"] == 1))  # SP shards over TP: meaningless with tp = 1
    arr = {k: v[keep] for k, v in arr.items()}
    return Space(arr, raw, int(keep.sum()), per_dim)


def _layout(arr: dict, idx=None) -> Layout:
    g = (lambda k: arr[k]) if idx is None else (lambda k: int(arr[k][idx]))
    return Layout(tp=g("tp"), pp=g("pp"), dp=g("dp"), ep=g("ep"), cp=g("cp"), sp=g("sp").astype(bool)
                  if idx is None else bool(g("sp")), zero=g("zero"), interleave=g("v"))


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
    parts += [f"DP{row['dp']}", f"mb{row['mb']}", f"ZeRO-{row['zero']}", {0: "no-rc", 1: "sel-rc", 2: "full-rc"}
              [row["rc"]]]
    return " ".join(parts)


def evaluate(m: Model, hw: Hardware, arr: dict, *, global_batch: int, seq: int, optimizer: str = DEFAULT_OPTIMIZER,
             dtype: str = "bf16", compute_efficiency: float | None = None, efficiency=None,
             attention: str = "flash", tp_comm_overlap: bool = False) -> dict[str, np.ndarray]:
    """Memory for every candidate (one vectorised call), then step for those that fit (a second one). Fitting
    means the same as for `llmcalc memory`: the need within the memory less the reserve."""
    lay = _layout(arr)
    mem = training_memory(m, hw, lay, micro_batch=arr["mb"], seq=seq, recompute=arr["rc"], optimizer=optimizer,
                          global_batch=global_batch)
    need = np.broadcast_to(np.asarray(mem.data["total_bytes"], float), arr["tp"].shape)
    fits = np.broadcast_to(np.asarray(mem.data["valid"]), need.shape) & (need <= mem.data["usable_bytes"])
    out = {k: v[fits] for k, v in arr.items()}
    out["memory_bytes"] = need[fits]
    if not fits.any():
        return out | {k: np.zeros(0) for k in ("step_time_s", "tokens_per_s", "mfu", "bubble_s", "exposed_comm_s",
                                               "compute_s")}
    st = training_step(m, hw, _layout(out), global_batch=global_batch, micro_batch=out["mb"], seq=seq,
                       gpus=out["gpus"], recompute=out["rc"], compute_efficiency=compute_efficiency, dtype=dtype,
                       efficiency=efficiency, attention=attention, tp_comm_overlap=tp_comm_overlap,
                       check_memory=False)  # memory was checked above, for every candidate at once
    n = len(out["tp"])
    for k in ("step_time_s", "tokens_per_s", "mfu", "bubble_s", "exposed_comm_s", "compute_s"):
        out[k] = np.broadcast_to(np.asarray(st.data[k], float), (n,)).copy()
    ok = np.broadcast_to(np.asarray(st.data["valid"]), (n,)) & np.isfinite(out["step_time_s"]) & (
        out["step_time_s"] > 0)
    return {k: v[ok] for k, v in out.items()}


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
                  efficiency=None, attention: str = "flash", tp_comm_overlap: bool = False) -> Result:
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
    space = enumerate_space(m, gpus_list, global_batch=global_batch, seq=seq, pins=pins, max_cp=max_cp)
    ev = evaluate(m, hw, space.arrays, global_batch=global_batch, seq=seq, optimizer=optimizer, dtype=dtype,
                  compute_efficiency=compute_efficiency, efficiency=efficiency, attention=attention,
                  tp_comm_overlap=tp_comm_overlap)
    n_fit = len(ev["tp"])
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
             "not searched: optimizer offload, first-k-layer recompute, expert-TP ≠ TP, DualPipe",
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
    figs = (derive("plan/best_step_time", "t", "s", "llmcalc.training.step on the best layout",
                   label=f"best: {b['layout']} — step time", t=b["step_time_s"]),
            derive("plan/best_mfu", "x", "%", "llmcalc.training.step", label="best: MFU", x=b["mfu"]),
            derive("plan/best_days", "tokens/tps/day", "days", SRC_DAYS, label="best: days for the token budget",
                   tokens=budget, tps=b["tokens_per_s"], day=DAY_S))
    return Result(f"Plan: {m.display_name} on {', '.join(map(str, gpus_list))} × {hw.display_name}, global batch "
                  f"{global_batch} × {seq} tokens", figs, tuple(notes), data)


def best_breakdown(m: Model, hw: Hardware, row: dict, *, global_batch: int, seq: int,
                   optimizer: str = DEFAULT_OPTIMIZER, dtype: str = "bf16", compute_efficiency: float | None = None,
                   efficiency=None, attention: str = "flash", tp_comm_overlap: bool = False) -> tuple[Result, Result]:
    """The scalar step and memory Results of one planned layout (its full derivation)."""
    lay = Layout(tp=row["tp"], pp=row["pp"], dp=row["dp"], ep=row["ep"], cp=row["cp"], sp=bool(row["sp"]),
                 zero=row["zero"], interleave=row["v"])
    rc = RECOMPUTE_NAMES[row["rc"]]
    st = training_step(m, hw, lay, global_batch=global_batch, micro_batch=row["mb"], seq=seq, gpus=row["gpus"],
                       recompute=rc, compute_efficiency=compute_efficiency, dtype=dtype, efficiency=efficiency,
                       attention=attention, tp_comm_overlap=tp_comm_overlap, optimizer=optimizer)
    mem = training_memory(m, hw, lay, micro_batch=row["mb"], seq=seq, recompute=rc, optimizer=optimizer,
                          global_batch=global_batch)
    return st, mem
