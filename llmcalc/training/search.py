"""The planner's evaluation: memory and step time of every candidate layout, as a grid of broadcast numpy arrays.

A candidate is an outer row (GPUs, TP, PP, v, CP, DP, EP, micro-batch, expert TP: the dimensions that must divide
each other) times an inner cell (ZeRO stage × recompute × SP: every combination, whatever the row). The grid holds
the inner dimensions as arrays of shape (Z, 1, 1, 1), (1, R, 1, 1) and (1, 1, S, 1) and the outer ones as
(1, 1, 1, n) (the long axis last, where numpy's inner loops run), and goes through :func:`training_memory` and
:func:`training_step` (the functions the ``memory`` and ``step`` commands call) as it is: numpy broadcasting
evaluates each term of their formulas at the shape of the dimensions it reads, so a term of the outer dimensions
alone (stage layers, parameters per GPU, the pipeline bubble, most of the layout checks) runs once per row, not
once per cell. Each element goes through exactly the operations a flat array of the same candidates goes through,
so every figure is the same float (tests/test_plan_search.py checks it against flat and scalar calls). Cells are
read back outer row first, then ZeRO, recompute, SP: the order of the flat enumeration
(``llmcalc.training.plan.enumerate_space``), which the ranking's ties depend on.

Then the step is timed only where a candidate can still appear in the plan's output (:func:`_pruned`, exact).
Issue #13: GPT-3 175B on 1024, 2048 and 4096 A100s, 674,376 divisible layouts, 0.87 s -> 0.10 s CPU in-process
(a repeated call; the first call of a process 0.16 s, most of the difference the collectives' first timings and
fresh pages).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..core.pointmemo import distinct
from ..core.results import derive
from ..core.specs import Hardware, Model
from .layout import Layout
from .memory import STAGE_TOTAL, WORST_STAGE, optimizer_bytes, training_memory
from .step import training_step

OUTER = ("gpus", "tp", "pp", "v", "cp", "dp", "ep", "mb", "etp")
INNER = ("zero", "rc", "sp")
# every candidate's fields, in the order of the planner's rows (and of its JSON)
FIELDS = (*OUTER, "zero", "rc", "sp", "off", "rk")
TIMED = ("step_time_s", "tokens_per_s", "mfu", "bubble_s", "exposed_comm_s", "compute_s")


@dataclass(frozen=True)
class Grid:
    """Outer rows (each field an int64 array of n) × the inner values (ZeRO, recompute, SP: 1-D int64 arrays)."""

    outer: dict[str, np.ndarray]
    zero: np.ndarray
    rc: np.ndarray
    sp: np.ndarray

    @property
    def n(self) -> int:
        return len(self.outer["tp"])

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(ZeRO, recompute, SP, outer rows): cell (z, r, s, i) is row i's candidate with those inner values."""
        return (len(self.zero), len(self.rc), len(self.sp), self.n)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every dimension as an array that broadcasts to :attr:`shape`."""
        out = {k: v.reshape(1, 1, 1, -1) for k, v in self.outer.items()}
        out.update(zero=self.zero.reshape(-1, 1, 1, 1), rc=self.rc.reshape(1, -1, 1, 1),
                   sp=self.sp.reshape(1, 1, -1, 1))
        return out

    def take(self, rows: np.ndarray) -> Grid:
        return replace(self, outer={k: v[rows] for k, v in self.outer.items()})

    def searched(self) -> np.ndarray:
        """The cells the planner searches: SP only with TP > 1 (it shards over TP), and an explicit expert TP with
        TP > 1 only with SP (Megatron-Core refuses MoE training with TP but no SP)."""
        a = self.arrays()
        bad = ((a["sp"] == 1) & (a["tp"] == 1)) | ((a["etp"] > 0) & (a["tp"] > 1) & (a["sp"] == 0))
        return np.broadcast_to(~bad, self.shape)

    def layout(self, schedule: str) -> Layout:
        a = self.arrays()
        etp = a["etp"] if np.any(a["etp"]) else None  # all "= tp": the default layout
        return Layout(tp=a["tp"], pp=a["pp"], dp=a["dp"], ep=a["ep"], cp=a["cp"], sp=a["sp"].astype(bool),
                      zero=a["zero"], interleave=a["v"], etp=etp, schedule=schedule)


def _full(x, shape) -> np.ndarray:
    return np.broadcast_to(np.asarray(x), shape)


def _rows(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """x[..., rows]: the outer rows ``rows`` of a grid-shaped array (np.take along the last axis: the same elements,
    ~4x faster than numpy's fancy indexing of a trailing axis)."""
    return np.take(x, rows, axis=-1)


@dataclass
class _Part:
    """Candidates of one kind on a grid: ``mask`` selects them; ``rk``/``off`` are how they are timed."""

    grid: Grid
    mask: np.ndarray
    memory: np.ndarray  # bytes per GPU, grid shaped
    rc_code: int | None = None  # the recompute code the rows show (3: rc-firstK, timed as full), None: the grid's
    rk: np.ndarray | None = None  # layers recomputed per stage (rc-firstK), grid shaped
    off: np.ndarray | None = None  # optimizer offloaded, per outer row (None: nowhere)

    def take(self, rows: np.ndarray) -> _Part:
        shape = self.mask.shape
        return _Part(self.grid.take(rows), _rows(self.mask, rows), _rows(_full(self.memory, shape), rows), self.rc_code,
                     None if self.rk is None else _rows(_full(self.rk, shape), rows),
                     None if self.off is None else self.off[rows])

    def checked(self) -> np.ndarray:
        """The outer rows that hold a candidate, shaped (1, 1, 1, n): the step calls' ``checked``. Every candidate
        passed check_layout in the memory call that found it (the GPU count the step's check adds is tp·pp·dp·cp by
        the grid's construction); the other cells of these rows are computed too and never read (the mask)."""
        return self.mask.any(axis=(0, 1, 2)).reshape(1, 1, 1, -1)

    def compact(self) -> _Part:
        """Only the outer rows that hold a candidate (a step call costs per cell, masked or not)."""
        rows = np.flatnonzero(self.mask.any(axis=(0, 1, 2)))
        return self if len(rows) == self.grid.n else self.take(rows)

    def then(self, other: _Part) -> _Part:
        """This part's rows followed by another's over the same inner values (plain and offloaded candidates)."""
        off = [np.zeros(p.grid.n, bool) if p.off is None else p.off for p in (self, other)]
        shape = lambda p: p.mask.shape  # noqa: E731
        return _Part(replace(self.grid, outer={k: np.concatenate([self.grid.outer[k], other.grid.outer[k]])
                                               for k in OUTER}),
                     np.concatenate([self.mask, other.mask], axis=3),
                     np.concatenate([_full(self.memory, shape(self)), _full(other.memory, shape(other))], axis=3),
                     off=np.concatenate(off))


def _memory(m: Model, hw: Hardware, g: Grid, *, seq: int, schedule: str, recompute=None, **kw):
    """training_memory over the grid: (need, valid, usable, each stage's rows of its data: {"first": {"total_bytes":
    ..., "weights_bytes": ...}, ...}; the Result itself is let go, and with it the figures the search does not
    read, such as the grid-sized headroom)."""
    a = g.arrays()
    mem = training_memory(m, hw, g.layout(schedule), micro_batch=a["mb"], seq=seq,
                          recompute=a["rc"] if recompute is None else recompute, **kw)
    need = _full(np.asarray(mem.data["total_bytes"], float), g.shape)
    return (need, _full(mem.data["valid"], g.shape), mem.data["usable_bytes"],
            {st: mem.data[f"{st}_stage"] for st in ("first", "middle", "last")})


# Pruning the step evaluation (issue #13): from this many fitting candidates on, only the outer rows that hold a
# candidate which can appear in the plan's output are timed; below it every candidate is (the bound's call and the
# seeds' cost more than they save).
PRUNE_FROM = 20_000
SEED_ROWS = 512  # outer rows with the highest bounds timed first, and SEED_ROWS // 8 per group value
# rounds of seeds on the tighter bound, each among the rows the previous thresholds leave. 0: the rows it leaves
# open are timed at once (plan gpt-3 x3 counts: 2,604 rows in two step calls, where one round timed 833 seeds and
# then 1,204 rows in four; a step call's fixed cost, most of all a process's first ledgers, outweighs the rows)
SEED_ROUNDS = 0
PRUNE_SLACK = 1e-9  # relative: the bound and the score are compared with room for rounding


def evaluate_grid(m: Model, hw: Hardware, g: Grid, *, global_batch: int, seq: int, optimizer: str,
                  dtype: str = "bf16", compute_efficiency: float | None = None, efficiency=None,
                  attention: str = "flash", tp_comm_overlap: bool = False, reserve: float | None = None,
                  first_k: bool = True, offload: bool | str = True, schedule: str = "1f1b",
                  recompute_norm_up: bool = False, fp8_activations: bool = False,
                  prune: tuple[str, int] | None = None) -> tuple[dict, int]:
    """Memory for every searched cell (one call), then the step for those that fit (one call per kind: plain and
    optimizer-offloaded twins, rc-firstK). Fitting means the same as for `llmcalc memory`: the need within the
    memory less the reserve. With ``offload`` (and a host link in the hardware entry), cells that do not fit get an
    optimizer-offloaded twin where that fits; ``offload="only"``: every ZeRO 1-3 cell offloaded, nothing else.
    ``prune`` = (objective, top): time only the outer rows whose candidates can appear in a plan's output
    (:func:`_pruned`).

    Returns the timed candidates as flat arrays (plain, then offloaded, then rc-firstK rows; each in grid order)
    with a valid, finite, positive step time, and the count of candidates that fit and have a valid step: those
    rows, or, when pruned, the candidates whose step lower bound compute·(1 + bubble) is valid, finite and
    positive (a finite bound goes with a finite step)."""
    recipe = dict(recompute_norm_up=recompute_norm_up, fp8_activations=fp8_activations)
    common = dict(seq=seq, schedule=schedule, optimizer=optimizer, global_batch=global_batch, reserve=reserve, **recipe)
    need, valid, usable, stages = _memory(m, hw, g, **common)
    valid = valid & g.searched()
    fits = valid & (need <= usable)
    main = _Part(g, fits, need)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # cells outside a mask may be inf or NaN
        partial = _first_k(m, hw, g, stages, need, fits, usable, **common) if first_k else None
        offl = None
        if offload and getattr(hw, "host_link_bw_bytes_per_s", None) is not None:
            only = offload == "only"
            offl = _offloaded(g, stages, valid & (g.arrays()["zero"] >= 1) & (True if only else ~fits), usable,
                              m=m, hw=hw, **common)
            if only:
                main, partial = None, None
    main = main.compact() if main is not None and main.mask.any() else None
    # the grid-sized memory figures are read: free them before the step calls reuse their pages (a process's first
    # plan faults in every page above its high-water mark: ~2 µs a page on the development VM, issue #13)
    del stages, need, valid, fits
    if offl is not None:  # timed with the plain candidates, after them (each step call has a fixed cost)
        main = offl if main is None else main.then(offl)
    parts = [p for p in (main, partial) if p is not None]
    timing = dict(compute_efficiency=compute_efficiency, dtype=dtype, efficiency=efficiency, attention=attention,
                  tp_comm_overlap=tp_comm_overlap, schedule=schedule, global_batch=global_batch, seq=seq, **recipe)
    n_fit = None
    if prune is not None and sum(int(p.mask.sum()) for p in parts) >= PRUNE_FROM:
        rows, n_fit = _pruned(m, hw, parts, objective=prune[0], top=prune[1], **timing)
    else:
        rows = [_timed(m, hw, p, **timing) for p in parts]
    ev = {k: np.concatenate([r[k] for r in rows]) if rows else np.zeros(0, np.int64 if k in FIELDS else float)
          for k in (*FIELDS, "memory_bytes", *TIMED)}  # (nothing timed: no layout fits)
    return ev, len(ev["tp"]) if n_fit is None else n_fit


def _timed(m: Model, hw: Hardware, p: _Part, *, global_batch: int, seq: int, schedule: str = "1f1b",
           **timing) -> dict:
    """Step time etc. of the part's candidates (one vectorised call over its grid) as flat arrays, in grid order,
    those with a valid, finite, positive step only; ``row`` holds each one's outer row."""
    g, shape = p.grid, p.mask.shape
    a = g.arrays()
    rc = a["rc"] if p.rc_code is None else np.full((1, 1, 1, 1), 2, np.int64)
    off = p.off.reshape(1, 1, 1, -1) if p.off is not None and p.off.any() else False
    st = training_step(m, hw, g.layout(schedule), global_batch=global_batch, micro_batch=a["mb"], seq=seq,
                       gpus=a["gpus"], recompute=rc, recompute_layers=p.rk, check_memory=False,
                       offload_optimizer=off, checked=p.checked(), **timing)
    d = st.data
    step = _full(np.asarray(d["step_time_s"], float), shape)
    mask = p.mask & _full(d["valid"], shape) & np.isfinite(step) & (step > 0)
    rows, z, r, s = np.nonzero(np.moveaxis(mask, 3, 0))  # in the order of the flat enumeration: row first
    idx = (z, r, s, rows)
    flat = {k: g.outer[k][rows] for k in OUTER}
    n = len(rows)
    flat.update(zero=g.zero[z], rc=g.rc[r] if p.rc_code is None else np.full(n, p.rc_code, np.int64),
                sp=g.sp[s], off=np.zeros(n, np.int64) if p.off is None else p.off[rows].astype(np.int64),
                rk=np.zeros(n, np.int64) if p.rk is None else _full(p.rk, shape)[idx].astype(np.int64))
    flat["memory_bytes"] = _full(p.memory, shape)[idx]
    flat.update({k: _full(np.asarray(d[k], float), shape)[idx] for k in TIMED})
    flat["row"] = rows
    return flat


def objective_score(ev: dict, objective: str) -> np.ndarray:
    """What the objective ranks by: tokens/s (time), tokens/s per GPU (cost) or MFU."""
    if objective == "time":
        return ev["tokens_per_s"]
    if objective == "cost":
        return ev["tokens_per_s"] / ev["gpus"]
    return ev["mfu"]


def _pruned(m: Model, hw: Hardware, parts: list[_Part], *, objective: str, top: int, **timing):
    """Exact pruning of the step evaluation (issue #13): an outer row is timed unless none of its candidates can
    appear in the rows a plan shows (the top ``top``, the best per ZeRO stage, per TP degree and per GPU count).

    Every candidate's score has an upper bound from step >= compute·(1 + bubble) (``training_step(...,
    lower_bound_only=True)``, no communication ledger) and a tighter one from step >= (compute + exposed
    TP/EP/PP/CP communication)·(1 + bubble) + exposed optimizer offload (``lower_bound_only="pipeline"``: the
    ledger without its DP/ZeRO rows), computed only for the rows the first cannot rule out. Rows with the highest
    bounds (overall, in each ZeRO column, and for each TP degree and GPU count) are timed first: one round on the
    compute-only bound, then :data:`SEED_ROUNDS` on the tighter one, each among the rows the previous ones left;
    the real scores give a k-th best score and a best score per group that
    the full result can only match or beat. A candidate whose bound is below all of its thresholds cannot be shown
    (ties are kept); a row with no other candidate is not timed. Every candidate of a timed row is kept, in grid
    order, so the ranking and its first-of-equal choices are those of the full search.
    Returns the timed rows of each part and how many candidates have a valid, finite, positive bound
    compute·(1 + bubble)."""
    def bounds(p: _Part, mode) -> tuple[np.ndarray, np.ndarray]:
        """A row's best bound on the score in each ZeRO column (its cells differ there only by recompute and SP),
        -inf where it has no candidate with a valid, finite, positive bound; and the compute-only bound's cells."""
        a = p.grid.arrays()
        rc = a["rc"] if p.rc_code is None else np.full((1, 1, 1, 1), 2, np.int64)
        off = p.off.reshape(1, 1, 1, -1) if p.off is not None and p.off.any() else False
        d = training_step(m, hw, p.grid.layout(timing["schedule"]), micro_batch=a["mb"], gpus=a["gpus"], recompute=rc,
                          recompute_layers=p.rk, check_memory=False, lower_bound_only=mode, offload_optimizer=off,
                          checked=p.checked(), **{k: v for k, v in timing.items() if k != "schedule"}).data
        t, valid = np.asarray(d["step_time_s"], float), np.asarray(d["valid"])
        good = valid & np.isfinite(t) & (t > 0)
        score = objective_score({"tokens_per_s": np.asarray(d["tokens_per_s"], float), "gpus": a["gpus"],
                        "mfu": np.asarray(d["mfu"], float)}, objective)
        u = np.where(good, score * (1 + PRUNE_SLACK), -np.inf)  # the shape of the dimensions it depends on
        u = u.reshape((1,) * (4 - u.ndim) + u.shape)
        shared = tuple(i for i in (1, 2) if u.shape[i] == 1 and p.mask.shape[i] > 1)  # cells with one bound
        mask = p.mask.any(axis=shared, keepdims=True) if shared else p.mask
        return np.where(mask, u, -np.inf).max(axis=(1, 2)).T, good

    # first the compute-only bound compute·(1 + bubble) everywhere (cheap), its count of candidates, one round of
    # seeds on it; then the tighter bound only for the rows the compute-only one cannot rule out, SEED_ROUNDS
    # rounds of seeds on it, and the rows still open
    ub, n_ok = [], 0
    for p in parts:
        u, good = bounds(p, True)
        ub.append(u)
        n_ok += int((p.mask & good).sum())
    keys = {k: np.concatenate([p.grid.outer[k] for p in parts]) for k in ("tp", "gpus")}
    starts = np.cumsum([0] + [p.grid.n for p in parts])
    done = [np.zeros(p.grid.n, bool) for p in parts]
    timed: list[list] = [[] for _ in parts]  # per part: (rows, their timed candidates)
    sc, grp = np.zeros(0), {k: np.zeros(0, np.int64) for k in ("zero", "tp", "gpus")}

    known: dict = {}  # the thresholds of the scores timed so far: (count of scores, k-th best, best per group)

    def open_bounds(j: int) -> np.ndarray:
        """Part j's rows × ZeRO columns: the best bound of the candidates not timed yet that reach a threshold (a
        column's best reaches one exactly where one of its candidates does), -inf where none."""
        p = parts[j]
        if known.get("n") != len(sc):  # once per round, not per part
            known.update(n=len(sc), kth=np.sort(sc)[::-1][top - 1] if len(sc) >= top else -np.inf,
                         best={k: _group_best(sc, grp[k]) for k in grp}, thr={})
        thr = known["thr"].get(j)
        if thr is None:  # once per round and part (the bounds and the rows timed change, the thresholds not)
            best = known["best"]
            # the threshold of a candidate is the lowest of the k-th best and its groups' bests (a min is exact,
            # so the per-column and per-row parts are taken apart and then together)
            col = np.minimum(known["kth"], _lookup(best["zero"], p.grid.zero[None, :]))
            row = np.minimum(_lookup(best["tp"], p.grid.outer["tp"][:, None]),
                             _lookup(best["gpus"], p.grid.outer["gpus"][:, None]))
            thr = known["thr"][j] = np.minimum(col, row)
        return np.where(~(ub[j] < thr) & (ub[j] > -np.inf) & ~done[j][:, None], ub[j], -np.inf)

    n_open = None
    for rnd in range(2 + SEED_ROUNDS):
        if rnd == 1:  # the tighter bound, (compute + exposed TP/EP/PP/CP)·(1 + bubble) + offload, where needed
            for j, p in enumerate(parts):
                rows = np.flatnonzero(np.isfinite(_row_max(open_bounds(j))))
                u = np.full(ub[j].shape, -np.inf)  # the rest cannot be shown (the pipeline bound is the lower)
                if len(rows):
                    u[rows] = bounds(p.take(rows), "pipeline")[0]
                ub[j] = u
        if rnd == 1 + SEED_ROUNDS:
            break  # the rows the tighter bound leaves open are timed below
        by_zero = np.concatenate([open_bounds(j) for j in range(len(parts))])
        best = _row_max(by_zero)
        n = int(np.isfinite(best).sum())
        if n <= 2 * SEED_ROWS or (rnd > 1 and n_open - n < max(4 * SEED_ROWS, n_open // 4)):
            break  # few rows left, or the last round's thresholds ruled out few: time them all
        n_open = n
        live = np.flatnonzero(np.isfinite(best))  # seeds among the open rows only
        best, by_zero = best[live], by_zero[live]
        pick = [_top(best, max(top, SEED_ROWS))]  # the rows with the highest bounds, overall
        pick += [_top(by_zero[:, z], SEED_ROWS // 8) for z in range(by_zero.shape[1])]  # in each ZeRO column
        for key in ("tp", "gpus"):  # in each group, and in each group's ZeRO columns (a bound leaves out the
            k_live = keys[key][live]  # DP/ZeRO rows: the best bounds of a group may all be ZeRO-3)
            for val in distinct(k_live):
                idx = np.flatnonzero(k_live == val)
                pick.append(idx[_top(best[idx], SEED_ROWS // 8)])
                group = by_zero[idx]  # its rows once, then each column
                pick += [idx[_top(group[:, z], SEED_ROWS // 32)] for z in range(by_zero.shape[1])]
        seed = np.zeros(starts[-1], bool)  # the picked rows, each once, in order
        seed[live[np.concatenate(pick)]] = True
        for j, p in enumerate(parts):
            rows = np.flatnonzero(seed[starts[j]:starts[j + 1]])
            if len(rows):
                t = _timed(m, hw, p.take(rows), **timing)
                done[j][rows] = True
                timed[j].append((rows, t))
                sc = np.concatenate([sc, objective_score(t, objective)])
                grp = {k: np.concatenate([grp[k], t[k]]) for k in grp}
    out = []
    for j, p in enumerate(parts):
        rows = np.flatnonzero(np.isfinite(_row_max(open_bounds(j))))
        if len(rows):
            timed[j].append((rows, _timed(m, hw, p.take(rows), **timing)))
        if not timed[j]:
            continue
        # back in grid order: the rows of each call are disjoint, each call's candidates in grid order
        orig = np.concatenate([rows[t["row"]] for rows, t in timed[j]])
        order = np.argsort(orig, kind="stable")
        out.append({k: np.concatenate([t[k] for _, t in timed[j]])[order] for k in timed[j][0][1]})
    return out, n_ok


def _row_max(a: np.ndarray) -> np.ndarray:
    """a.max(axis=1) of a (rows, ZeRO columns) array, column by column: numpy reduces a short last axis ~15x slower
    than it takes the maximum of whole columns (the same values: a maximum does not round)."""
    out = a[:, 0].copy()
    for z in range(1, a.shape[1]):
        np.maximum(out, a[:, z], out=out)
    return out


def _top(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest finite elements of x."""
    idx = np.flatnonzero(np.isfinite(x))
    if len(idx) > k:
        idx = idx[np.argpartition(-x[idx], k - 1)[:k]]
    return idx


def _group_best(scores: np.ndarray, groups: np.ndarray) -> dict:
    """The best of ``scores`` in each group (each distinct value of ``groups``)."""
    return {v: scores[groups == v].max() for v in distinct(groups)}


def _lookup(best: dict, keys: np.ndarray) -> np.ndarray:
    """The best score of the group each element of ``keys`` names (:func:`_group_best`), -inf where none was
    timed."""
    out = np.full(keys.shape, -np.inf)
    for v, b in best.items():
        out[keys == v] = b
    return out


def _first_k(m: Model, hw: Hardware, g: Grid, stages: dict, need, fits, usable, *, seq: int, schedule: str,
             **kw) -> _Part | None:
    """For every cell whose full-recompute version fits: the fewest layers k per stage (per virtual chunk) that,
    recomputed in full, make it fit (Megatron-Core --recompute-method block --recompute-num-layers k). Each
    stage's memory is linear in k up to its chunk size c = Ls/v, so k comes in closed form from the full-recompute
    totals and one more evaluation at k = 1. Cells with k < the largest chunk are new candidates (rc = 3)."""
    from .activations import stage_activation_bytes
    from .layout import microbatches, recompute_code, stage_layers

    if 2 not in g.rc:
        return None
    ri = int(np.flatnonzero(g.rc == 2)[0])
    full_fits = fits[:, ri:ri + 1]
    # k >= 1 layers of a chunk of c: only rows whose largest chunk has more than one layer can recompute fewer
    chunk = np.asarray(stage_layers(m.n_layers, Layout(pp=g.outer["pp"]))["max"], float) / g.outer["v"]
    live = full_fits.any(axis=(0, 1, 2)) & (chunk > 1)
    if not live.any():
        return None
    # k at k = 1 on every row (most rows are candidates: evaluating the others costs less than copying the
    # candidates' rows of every input), masked to the candidates
    sub = replace(g, rc=np.array([2], np.int64))
    shape = sub.shape
    cand = full_fits & live
    lay = sub.layout(schedule)
    a = sub.arrays()
    v = a["v"]
    sl = stage_layers(m.n_layers, lay)
    # each stage's total at k = 1, as training_memory(recompute="full", recompute_layers=1) sums it, bit for bit
    # (its STAGE_TOTAL, evaluated here too). Only the activations depend on the
    # recompute, so the rest is the grid's own, and only the activations are evaluated again.
    acts = stage_activation_bytes(m, lay, a["mb"], seq, recompute=recompute_code(2),
                                  microbatches=microbatches(lay, a["mb"], kw["global_batch"]), recompute_layers=1,
                                  recompute_norm_up=kw["recompute_norm_up"], fp8_activations=kw["fp8_activations"])
    has_middle = np.where(a["pp"] > 2, 1, 0).astype(float)  # a middle stage only for pp > 2 (training_memory)

    def full_rc(x):  # the full-recompute column's values (a view), at the dimensions they depend on
        x = np.asarray(x, float)
        x = x.reshape((1,) * (4 - x.ndim) + x.shape)
        return x[:, ri:ri + 1] if x.shape[1] > 1 else x

    k_need = np.ones(shape)
    parts = {}  # each stage's STAGE_TOTAL inputs but its activations
    for stage in ("first", "middle", "last"):
        d = stages[stage]
        full_t = full_rc(d["total_bytes"])
        parts[stage] = {"has": has_middle if stage == "middle" else 1, "weights": full_rc(d["weights_bytes"]),
                        "grads": full_rc(d["grads_bytes"]), "optimizer": full_rc(d["optimizer_bytes"]),
                        "gathered": full_rc(d["zero3_gathered_bytes"])}
        one_t = _full(derive("first_k/stage_total", STAGE_TOTAL, "B", activations=acts[stage].value,
                             **parts[stage]).value, shape)
        c = np.asarray(sl[stage], float) / v
        # k = 1 where one_t fits, else 1 + ceil((one_t - usable)/slope) with slope = (one_t - full_t)/max(c - 1, 1)
        # the bytes saved per extra layer (none where c <= 1 or slope <= 0: k infinite), evaluated in two
        # grid-sized buffers written in place (the same operations on each element as the expression written out)
        slope = np.subtract(one_t, full_t, out=np.empty(shape))
        slope /= np.maximum(c - 1, 1)
        np.copyto(slope, np.inf, where=~((c > 1) & (slope > 0)))
        k = np.subtract(one_t, usable, out=np.empty(shape))
        k /= slope
        del slope
        np.ceil(k, out=k)
        k += 1
        np.copyto(k, 1.0, where=one_t <= usable)
        np.copyto(k, np.inf, where=~np.isfinite(k))
        np.maximum(k_need, k, out=k_need)
        del k
    c_max = np.asarray(sl["max"], float) / v
    keep = cand & np.isfinite(k_need) & (k_need < c_max)  # k = c_max is plain full recompute, already a candidate
    one_layer = keep & (k_need == 1)
    if one_layer.any():  # k = 1 only where recomputing nothing would not fit (else "none" dominates it)
        if 0 in g.rc:  # the memory without recompute: the grid's own
            r0 = int(np.flatnonzero(g.rc == 0)[0])
            none = need[:, r0:r0 + 1]
        else:
            none, _, _, _ = _memory(m, hw, sub, seq=seq, schedule=schedule, recompute=0, **kw)
        keep &= ~one_layer | (none > usable)
    rows = np.flatnonzero(keep.any(axis=(0, 1, 2)))
    if len(rows) == 0:
        return None
    sub, keep, k_need = sub.take(rows), _rows(keep, rows), _rows(k_need, rows)
    rk = np.where(keep, k_need, 1).astype(np.int64)
    # the need at k = rk, as training_memory(recompute="full", recompute_layers=rk) gives it, bit for bit: each
    # stage's activations at rk (the memory model's own) on the stage's other rows above, the fullest stage
    lay = sub.layout(schedule)
    a = sub.arrays()
    acts = stage_activation_bytes(m, lay, a["mb"], seq, recompute=recompute_code(2),
                                  microbatches=microbatches(lay, a["mb"], kw["global_batch"]), recompute_layers=rk,
                                  recompute_norm_up=kw["recompute_norm_up"], fp8_activations=kw["fp8_activations"])
    tot = {st: derive("first_k/stage_total", STAGE_TOTAL, "B", activations=acts[st].value,
                      **{k: _rows(x, rows) if np.ndim(x) == 4 and np.shape(x)[3] > 1 else x
                         for k, x in p.items()}).value
           for st, p in parts.items()}
    chk = _full(derive("first_k/total", WORST_STAGE, "B", **tot).value, keep.shape)  # memory's "memory/total"
    ok = keep & (chk <= usable)  # the closed form, checked by the memory model's need at rk
    return _Part(sub, ok, chk, rc_code=3, rk=rk) if ok.any() else None


def _offloaded(g: Grid, stages: dict, cand: np.ndarray, usable, *, m: Model, hw: Hardware, seq: int, schedule: str,
               optimizer: str, **kw) -> _Part | None:
    """Optimizer-offloaded twins (ZeRO-Offload) of the cells in ``cand`` (valid, ZeRO 1-3, not fitting): offload
    removes each stage's optimizer states and the part of its gradients above 16 bits from the GPU (the memory
    model's own rows, so the need comes in closed form); those that then fit are checked by the memory model itself
    and kept with off = 1. Offload never helps a layout that already fits (it only adds host traffic and the CPU
    step), so it is not enumerated there."""
    if not cand.any():
        return None
    o = optimizer_bytes(optimizer)
    keep_g = min(o.grads, 2) / o.grads if o.grads else 1.0
    need, off = np.zeros(g.shape), np.empty(g.shape)  # written in place: two grid-sized arrays, not seven
    pp = g.arrays()["pp"]
    for stage in ("first", "middle", "last"):
        d = stages[stage]
        tot, opt, gr = (np.asarray(d[k], float) for k in ("total_bytes", "optimizer_bytes", "grads_bytes"))
        has = 1.0 if stage != "middle" else pp > 2
        np.subtract(tot, has * (opt + gr * (1 - keep_g)), out=off)
        np.maximum(need, off, out=need)
    ok = cand & (need <= usable)
    del need, off  # before the memory call below (its pages can reuse theirs)
    if not ok.any():
        return None
    rows = np.flatnonzero(ok.any(axis=(0, 1, 2)))
    sub, ok = g.take(rows), _rows(ok, rows)
    chk, valid, _, _ = _memory(m, hw, sub, seq=seq, schedule=schedule, optimizer=optimizer,
                               offload_optimizer=np.ones((1, 1, 1, 1), bool), **kw)
    good = ok & valid & (chk <= usable)
    return _Part(sub, good, chk, off=np.ones(sub.n, bool)) if good.any() else None
