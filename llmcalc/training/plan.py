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
``memory`` and ``step`` commands use, as vectorised calls over a broadcast grid (llmcalc.training.search): memory
first on everything that divides, step only on what fits (memory pruning) and can still appear in the output
(exact pruning on step lower bounds). Not searched: DualPipe (the step model times 1F1B/interleaved schedules).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.checks import check_positive_int, check_price
from ..core.efficiency import training_efficiency
from ..core.errors import LayoutError, LlmcalcError
from ..core.pointmemo import distinct
from ..core.results import Result, derive
from ..core.specs import Hardware, Model
from .layout import RECOMPUTE_CODES, RECOMPUTE_NAMES, Layout, check_layout, describe_stages, stage_layers
from .memory import DEFAULT_OPTIMIZER, training_memory
from .search import OUTER, Grid, evaluate_grid, objective_score
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


def _head_divisor(m: Model) -> int:
    """What TP must divide: Megatron shards whole key/value groups (check_layout); MLA shards the heads."""
    a = m.attention
    return a.n_heads if a.mla else math.gcd(a.n_heads, a.n_kv_heads)


def _cp_values(seq: int, max_cp: int) -> list[int]:
    """Context-parallel degrees the search tries: powers of two up to ``max_cp`` with 2·cp dividing the sequence
    (Megatron-Core's load-balanced causal split, check_layout)."""
    return [c for c in (2**i for i in range(0, 12)) if c <= max_cp and (c == 1 or seq % (2 * c) == 0)]


def _interleavings(m: Model, pps: list[int], allowed=None, options=None) -> dict[int, list[int]]:
    """For each pipeline degree p, the virtual-stage counts v (in ``allowed``) that cut its stages into whole
    chunks, by one check_layout call over the (p, v) pairs. Only divisors of the fullest stage are tried (any other
    v leaves a part chunk, which check_layout refuses), so a model of 10⁴ layers checks a few hundred pairs, not L²
    (a user test, 30 Nov 2026: 16,384 layers took 80 s and 4.7 GB). v > 1 needs p > 1."""
    fullest = np.atleast_1d(stage_layers(m.n_layers, Layout(pp=np.array(pps, np.int64)))["max"]) if pps else []
    pairs = np.array([(p, v) for p, x in zip(pps, fullest, strict=True) for v in _divisors(int(x))
                      if (allowed is None or v in allowed) and (v == 1 or p > 1)], np.int64).reshape(-1, 2)
    ok = np.broadcast_to(check_layout(m, Layout(pp=pairs[:, 0], interleave=pairs[:, 1]), options=options),
                         (len(pairs),)) if len(pairs) else np.zeros(0, bool)
    out: dict[int, list[int]] = {p: [] for p in pps}
    for (p, v), good in zip(pairs.tolist(), ok.tolist(), strict=True):
        if good:
            out[p].append(v)
    return out


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


def _listed(values) -> str:
    """1, 2, 4, 8; runs of three or more consecutive values as 1-27."""
    vals, out, i = sorted(values), [], 0
    while i < len(vals):
        j = i
        while j + 1 < len(vals) and vals[j + 1] == vals[j] + 1:
            j += 1
        out += [f"{vals[i]}-{vals[j]}"] if j - i >= 2 else [str(x) for x in vals[i:j + 1]]
        i = j + 1
    return ", ".join(out)


# the layout options of `plan` (check_layout's names; plan has no --pp-layers: its messages say "lower --pp")
PLAN_OPTIONS = {"pp_layers": None}
PIN_OPTIONS = {"tp": "--tp", "pp": "--pp", "dp": "--dp", "cp": "--cp", "ep": "--ep", "mb": "--micro-batch",
               "zero": "--zero", "v": "--interleave"}


def check_pins(m: Model, gpus_list, *, global_batch: int, seq: int, pins: dict | None, max_cp: int = 16) -> None:
    """Each pinned degree on its own, before the search: a value that no layout of ``m`` on ``gpus_list`` can hold
    (a TP that does not divide the heads, a ZeRO stage 4, an EP on a dense model, a DP that does not divide the
    global batch...) raises one LayoutError with the real reason (:func:`check_layout`'s words, as ``step``, the
    dashboard and ``rl`` say it) and the values of that option that work. The search would otherwise find nothing
    and blame memory (user test, 30 Nov 2026). Pins that work alone but not together are left to the search."""
    pin = _pins(pins)
    if not pin:
        return
    L, name = m.n_layers, m.display_name
    counts = ", ".join(map(str, gpus_list))

    def on_gpus(x: int) -> bool:
        return any(n % x == 0 for n in gpus_list)

    def layout_says(**kw) -> str | None:
        extra = {k: kw.pop(k) for k in ("micro_batch", "global_batch", "seq") if k in kw}
        try:
            check_layout(m, Layout(**kw), options=PLAN_OPTIONS, **extra)
        except LlmcalcError as e:
            return str(e)
        return None

    pp_range = np.arange(1, L + 1)
    pp_ok = np.broadcast_to(check_layout(m, Layout(pp=pp_range), options=PLAN_OPTIONS), pp_range.shape)
    cps = _cp_values(seq, max_cp)
    dps = [d for d in _divisors(global_batch) if on_gpus(d)]
    works = {"tp": [t for t in _divisors(_head_divisor(m)) if on_gpus(t)],
             "pp": [int(p) for p, ok in zip(pp_range, pp_ok, strict=True) if ok and on_gpus(int(p))],
             "cp": [c for c in cps if on_gpus(c)], "dp": dps,
             "ep": [e for e in (_divisors(m.moe.n_experts) if m.moe else [1]) if any(d % e == 0 for d in dps)],
             "mb": _divisors(global_batch), "zero": [0, 1, 2, 3]}
    if "v" in pin:  # virtual stages: whole chunks of some pipeline's stages, as the search pairs them
        works["v"] = sorted({1}.union(*_interleavings(m, [p for p in works["pp"] if p > 1],
                                                      options=PLAN_OPTIONS).values()))

    def reason(k: str, x: int) -> str:
        opt = PIN_OPTIONS[k]
        said = {"tp": lambda: layout_says(tp=x), "pp": lambda: layout_says(pp=x), "ep": lambda: layout_says(ep=x, dp=x),
                "cp": lambda: layout_says(cp=x, seq=seq), "zero": lambda: layout_says(zero=x),
                "mb": lambda: layout_says(micro_batch=x, global_batch=global_batch),
                "dp": lambda: layout_says(dp=x, global_batch=global_batch), "v": lambda: None}[k]()
        if said:
            return said if said.startswith(opt) else f"{opt} {x}: {said}"
        if k == "cp" and x not in cps:
            return (f"--cp {x}: the search tries context-parallel degrees that are powers of two up to --max-cp "
                    f"{max_cp} with 2·cp dividing --seq {seq}")
        if k == "v":
            return (f"--interleave {x} cuts no pipeline of {name} (--pp of at least 2 dividing --gpus {counts}) into "
                    f"whole chunks of its {L} layers")
        if k == "ep":
            return (f"--ep {x} must divide the data-parallel degree (expert parallelism is carved out of it), and no "
                    f"data-parallel degree dividing --global-batch {global_batch} and --gpus {counts} is a multiple "
                    f"of {x}")
        if not on_gpus(x):
            return f"{opt} {x} does not divide --gpus {counts} (tp·pp·cp·dp = the GPU count)"
        return f"{opt} {x} fits no layout of {name} on --gpus {counts}"

    for k, opt in PIN_OPTIONS.items():
        if k not in pin or k not in works or pin[k] & set(works[k]):
            continue
        x = min(pin[k])
        ok = works[k]
        said = reason(k, x)
        if k == "zero" or "is dense" in said:  # the message already says what works
            raise LayoutError(said)
        raise LayoutError(said + (f"; values that work: {_listed(ok)}" if ok else f"; no {opt} works here"))
    single = {k: next(iter(pin[k])) for k in ("tp", "pp", "cp", "dp") if len(pin.get(k, ())) == 1}
    if len(single) > 1 and not on_gpus(math.prod(single.values())):  # each divides, their product does not
        raise LayoutError(" × ".join(f"{PIN_OPTIONS[k]} {v}" for k, v in single.items())
                          + f" = {math.prod(single.values()):,} does not divide --gpus {counts} (tp·pp·cp·dp = the "
                          "GPU count)")


def nothing_divides(m: Model, gpus_list, *, global_batch: int, seq: int, pins: dict | None, max_cp: int = 16) -> str:
    """Why no layout at all divides (the search had nothing to time, so memory is not the reason): tp·pp·cp·dp
    must equal a GPU count within the limits each degree has, and the largest count those limits reach."""
    a, L = m.attention, m.n_layers
    tp, cp = _head_divisor(m), max(_cp_values(seq, max_cp))
    most = tp * L * cp * global_batch
    flags = {"sp": ("--no-sp", "--sp"), "off": ("--no-offload-optimizer", "--offload-optimizer")}
    names = {**PIN_OPTIONS, "rc": "--recompute", "etp": "--etp"}
    pinned = [flags[k][int(v)] if k in flags else f"{names.get(k, '--' + k)} {v}"
              for k, v in (pins or {}).items() if v is not None and not isinstance(v, (list, tuple, set))]
    text = (f"no parallel layout of {m.display_name} splits {', '.join(f'{g:,}' for g in gpus_list)} GPUs at global "
            f"batch {global_batch} × {seq} tokens: tp·pp·cp·dp must equal the GPU count, with tp dividing the "
            f"{a.n_kv_heads if not a.mla else a.n_heads} {'key/value ' if not a.mla else ''}heads (at most {tp}), "
            f"pp at most the {L} layers, cp a power of two up to --max-cp {max_cp} with 2·cp dividing --seq {seq} "
            f"(at most {cp}) and dp dividing --global-batch {global_batch}")
    if min(gpus_list) > most:
        return text + f", so at most {tp}·{L}·{cp}·{global_batch} = {most:,} GPUs"
    return text + (f" (and {', '.join(pinned)})" if pinned else "")


@dataclass(frozen=True)
class Space:
    """Flat candidate arrays (one element per layout) and the counts at each stage of pruning."""

    arrays: dict[str, np.ndarray]
    raw: int  # the Cartesian product of every dimension's own values, before any cross-dimension check
    divisible: int  # what is left after divisibility (layout, batch and sequence splits)
    per_dimension: dict[str, int]


def _grid(m: Model, gpus_list, *, global_batch: int, seq: int, pins: dict | None = None, max_cp: int = 16,
          max_tp: int | None = None, max_etp: int | None = None) -> tuple[Grid, int, dict[str, int]]:
    """Every divisible layout for each GPU count in ``gpus_list`` as a grid (outer rows × ZeRO × recompute × SP),
    the raw combination count and each dimension's own count."""
    pin = _pins(pins)
    L = m.n_layers

    def allowed(name, values):
        return [x for x in values if name not in pin or x in pin[name]]

    tp_all = allowed("tp", [t for t in _divisors(_head_divisor(m)) if max_tp is None or t <= max_tp])
    pp_all = allowed("pp", list(range(1, L + 1)))
    cp_all = allowed("cp", _cp_values(seq, max_cp))
    ep_all = allowed("ep", _divisors(m.moe.n_experts) if m.moe else [1])
    fe_div = _divisors(m.moe.d_ff_expert) if m.moe else []
    if max_etp is not None:
        fe_div = [x for x in fe_div if x <= max_etp]

    def etps(t: int, c: int, d: int, e: int) -> list[int]:  # 0 = expert TP = tp; else Megatron-Core's expert grid
        vals = [0] + [x for x in fe_div if x != t and (t * c * d) % (x * e) == 0]
        # a pinned 0 (not a CLI value: --etp must be positive) keeps only "= tp", the one layout llmcalc.rl times
        return vals if "etp" not in pin else [x for x in vals if (x or t) in pin["etp"] or x in pin["etp"]]
    mb_all = allowed("mb", _divisors(global_batch))
    zero_all = allowed("zero", [0, 1, 2, 3])
    rc_all = allowed("rc", [0, 1, 2])
    sp_all = allowed("sp", [0, 1])
    v_all = allowed("v", list(range(1, L + 1)))
    per_dim = {"gpus": len(gpus_list), "tp": len(tp_all), "pp": len(pp_all), "v": len(v_all), "cp": len(cp_all),
               "ep": len(ep_all), "mb": len(mb_all), "zero": len(zero_all), "rc": len(rc_all), "sp": len(sp_all),
               "etp": 1 + len(fe_div)}
    raw = int(np.prod([n for n in per_dim.values()], dtype=float))

    # virtual stages that cut p stages into whole chunks (the same for every tp), for p up to the largest GPU count
    pp_fit = [p for p in pp_all if p <= max(gpus_list, default=0)]
    v_by_pp = _interleavings(m, pp_fit, allowed=set(v_all))

    def chunkings(p: int) -> list[int]:
        return v_by_pp[p]

    # one block per (gpus, tp, pp, cp, ep): its rows are micro-batch × expert TP × v, in that nesting order; the
    # blocks' (gpus, tp, pp, cp, dp, ep) repeated over their rows, and each block's (v, mb, etp) rows, built once
    # per distinct (v list, micro-batch list, etp list) and gathered in one concatenation
    heads: list[tuple] = []
    tails: list[np.ndarray] = []
    patterns: dict[tuple, np.ndarray] = {}
    mbs_by_dp: dict[int, tuple] = {}
    for n in gpus_list:
        for t in tp_all:
            if n % t:
                continue
            for p in pp_fit:
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
                    mbs = mbs_by_dp.get(d)
                    if mbs is None:  # per DP degree (a few), not per block (hundreds)
                        mbs = mbs_by_dp[d] = tuple(mb for mb in mb_all if (global_batch // d) % mb == 0)
                    for e in ep_all:
                        if d % e:
                            continue
                        ets = tuple(etps(t, c, d, e))
                        key = (p, mbs, ets)
                        pat = patterns.get(key)
                        if pat is None:
                            k = len(mbs) * len(ets) * len(vs)
                            pat = np.empty((k, 3), np.int64)
                            pat[:, 0] = np.tile(vs, len(mbs) * len(ets))
                            pat[:, 1] = np.repeat(mbs, len(ets) * len(vs))
                            pat[:, 2] = np.tile(np.repeat(ets, len(vs)), len(mbs))
                            patterns[key] = pat
                        if len(pat) == 0:
                            continue
                        heads.append((n, t, p, c, d, e))
                        tails.append(pat)
    if heads:
        o = np.empty((sum(len(x) for x in tails), 9), np.int64)
        o[:, [0, 1, 2, 4, 5, 6]] = np.repeat(np.array(heads, np.int64), [len(x) for x in tails], axis=0)
        o[:, [3, 7, 8]] = np.concatenate(tails)
    else:
        o = np.zeros((0, 9), np.int64)
    grid = Grid({k: np.ascontiguousarray(o[:, j]) for j, k in enumerate(OUTER)}, *(
        np.array(x, dtype=np.int64) for x in (zero_all, rc_all, sp_all)))
    return grid, raw, per_dim


def enumerate_space(m: Model, gpus_list, *, global_batch: int, seq: int, pins: dict | None = None,
                    max_cp: int = 16, max_tp: int | None = None, max_etp: int | None = None) -> Space:
    """Every divisible layout for each GPU count in ``gpus_list`` as flat numpy arrays (the grid's searched cells in
    its order: outer row, then ZeRO, recompute, SP)."""
    grid, raw, per_dim = _grid(m, gpus_list, global_batch=global_batch, seq=seq, pins=pins, max_cp=max_cp,
                               max_tp=max_tp, max_etp=max_etp)
    rows, z, r, s = np.nonzero(np.moveaxis(grid.searched(), 3, 0))  # row first, then ZeRO, recompute, SP
    arr = {k: grid.outer[k][rows] for k in OUTER}
    arr.update(zero=grid.zero[z], rc=grid.rc[r], sp=grid.sp[s])
    arr["off"] = np.zeros_like(arr["zero"])
    return Space(arr, raw, len(rows), per_dim)


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


def _row(m: Model, ev: dict, i: int, tokens: float, price: float | None) -> dict:
    r = {k: (int(ev[k][i]) if k in DIMS else float(ev[k][i])) for k in ev}
    r["layout"] = layout_label(m, r)
    r["days"] = tokens / r["tokens_per_s"] / DAY_S
    r["gpu_hours"] = r["days"] * 24 * r["gpus"]
    r["cost_usd"] = None if price is None else r["gpu_hours"] * price
    return r


def _ranking(score: np.ndarray, top: int | None) -> np.ndarray:
    """Indices by descending score, equal scores in their order (a stable sort): all of them, or (``top``) a prefix
    that holds the first ``top``: the candidates scoring at least the top-th best, sorted alone (their order is
    the same as in the full sort; a planner ranks 10⁴-10⁵ timed candidates to show ten)."""
    kth = None if top is None or len(score) <= top else -np.partition(-score, top - 1)[top - 1]
    if kth is None or np.isnan(kth):  # (NaN: fewer than top numbers, the sort places NaN last)
        return np.argsort(-score, kind="stable")
    head = np.flatnonzero(score >= kth)
    return head[np.argsort(-score[head], kind="stable")]


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
                  recompute_norm_up: bool = False, fp8_activations: bool = False, brief: bool = False) -> Result:
    """Rank every layout of ``m`` on ``gpus`` (an int or a list) × ``hw`` for one step of ``global_batch``
    sequences of ``seq`` tokens. The result's data holds the ranked rows, the best per ZeRO stage and per TP
    degree, the best per GPU count with its Pareto flag (days vs dollars), and the pruning counts.
    ``brief``: the ranked rows and the best only, for a caller that needs the layout alone (llmcalc.rl's trainer;
    the per-stage/TP/count bests and figures are ~10 ms of a one-liner, issue #13)."""
    if objective not in OBJECTIVES:
        raise LlmcalcError(f"--objective expects one of {', '.join(OBJECTIVES)}, got {objective!r}")
    gpus_list = sorted({int(g) for g in np.atleast_1d(gpus)})
    for opt, val in (("--gpus", min(gpus_list, default=0)), ("--global-batch", global_batch), ("--seq", seq),
                     ("--top", top)):
        check_positive_int(val, opt)
    if tokens is not None and not (np.isfinite(tokens) and tokens > 0):
        raise LlmcalcError(f"--tokens must be a positive count, got {tokens!r}")
    check_price(price_usd_per_hour)
    dom = hw.scale_up.domain_size
    if hw.span_limit is not None and max(gpus_list) > hw.span_limit:
        raise LlmcalcError(f"{hw.display_name} records no scale-out link, so a job cannot span more than its "
                           f"{dom}-device scale-up domain; asked for {', '.join(map(str, gpus_list))} (plan at most "
                           f"{dom}, or give the hardware YAML a scale_out link)")
    check_pins(m, gpus_list, global_batch=global_batch, seq=seq, pins=pins, max_cp=max_cp)
    grid, raw, per_dim = _grid(m, gpus_list, global_batch=global_batch, seq=seq, pins=pins, max_cp=max_cp,
                               max_etp=dom)
    searched = grid.searched()
    space = Space({}, raw, int(searched.sum()), per_dim)
    ev, n_fit = evaluate_grid(
        m, hw, grid, global_batch=global_batch, seq=seq, optimizer=optimizer, dtype=dtype,
        compute_efficiency=compute_efficiency, efficiency=efficiency, attention=attention,
        tp_comm_overlap=tp_comm_overlap, reserve=reserve, schedule=schedule, recompute_norm_up=recompute_norm_up,
        fp8_activations=fp8_activations,
        first_k=(pins or {}).get("rc") is None,  # a pinned recompute mode is searched as given
        offload=("only" if (pins or {}).get("off") in (1, True) else  # pinned: every layout offloaded
                 offload and (pins or {}).get("off") is None),
        prune=None if keep_evaluated else (objective, top))
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
    score = objective_score(ev, objective)
    order = _ranking(score, None if keep_evaluated else top)
    ranked = [_row(m, ev, int(i), budget, price) for i in order[:top]]
    if brief:
        data.update(ranked=ranked, best=ranked[0])
        return Result(f"Plan: {m.display_name} on {', '.join(map(str, gpus_list))} × {hw.display_name}", (),
                      tuple(notes), data)

    def best_by(key: str) -> dict:
        out = {}
        for val in distinct(ev[key]):
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
