"""Staleness-bounded asynchronous RL as an event simulation (AReaL, Fu et al. 2025 §4-5).

A rollout pool (``llmcalc.rl.rollout.Generator``) and a trainer run side by side on split GPU pools:

- admission (AReaL §5.1, the staleness bound): with N_r rollouts started so far, trainer version i and batch
  size B, a new rollout may start only while ⌊(N_r − 1)/B⌋ ≤ i + η, i.e. while N_r ≤ B·(i + η + 1); and
  only into a free slot;
- the trainer takes the first B completed rollouts (completion order, AReaL's buffer), trains for
  ``t_train`` seconds, then the weights are synced for ``t_sync`` seconds, during which both the trainer and
  the engines are busy (the update pauses generation);
- interruptible rollouts (``partial=True``, AReaL §4.1; verl ``partial_rollout``): at a sync, running
  sequences are paused, their KV is recomputed under the new weights (a re-prefill of prompt + tokens so far)
  and they continue; without it, the sync waits until every running sequence has finished (the pool drains).

Staleness (version lag) of a consumed rollout = trainer version when it is consumed − version when it started.
What the rule bounds, exactly: with i·B rollouts consumed at version i (B more while step i trains), at most
B·(i + η + 1) started, so at most (η + 1)·B rollouts are ever started but not yet trained (``outstanding_max``,
in batches, ≤ η + 1). Rollout n (1-based) starts at a version v ≥ ⌊(n − 1)/B⌋ − η, so if batches are taken in
admission order (batch i = rollouts iB + 1 … (i + 1)B) every sample is trained at version i ≤ v + η: lag ≤ η,
not η + 1 (the step in flight trains batch i at version i). The trainer here takes the first B *completed*
rollouts (AReaL's buffer), and then no finite bound follows from the rule: with B = 1, η = 1 one rollout that
never ends is overtaken by a stream of short ones, each trained, while its lag grows by one per step. So the
maximum lag reported can exceed η when lengths have a tail (it equals the admission-order bound when all
lengths are equal), and it is reported as measured, beside η. η = 0 gives
the synchronous disaggregated loop exactly (generate B, train, sync, repeat). The period, and the staleness (mean and
maximum over the samples those steps train), are measured over the second half of ``steps`` simulated trainer steps
(the first half is warm-up: the pool starts empty, so early samples lag less; measured over every step, η = 8 read a
mean lag of 5.3 where the steady state trains every sample 8 versions old).

The trainer has its own clock: a step starts at max(the last sync's end, the time the B-th buffered rollout
completed), not at the pool's clock, which runs on through the prefills the pool does meanwhile (admissions after
a sync, the re-prefill of interrupted rollouts): those are the rollout GPUs' work, not the trainer's.
"""

from __future__ import annotations

import heapq
import math
from collections import deque

import numpy as np

from .rollout import SEGMENT_STEPS, Pool, interleave

EPS = 1e-9


def _cycle(ends, half: int) -> int:
    """Steps measured: the second half's steps − half, cut to a whole number of the shortest cycle c its step
    times repeat with: c ≤ half the window, every block of c consecutive steps (counted back from the last) lasting
    the same to 0.1%. A pool that admits (η + 1)·B at once makes the trainer's steps cycle (equal lengths, η = 1:
    23.2 s, 20.0 s, 23.1 s, 20.1 s, …, each pair ~43.2 s): averaged over 5 such steps the period read 4-8% off
    the long-run mean (tests/test_rl_reference.py). No such c: the whole window."""
    d = np.diff(np.asarray(ends[half - 1:], float))
    m = len(d)
    for c in range(1, m // 2 + 1):
        k = m // c
        blocks = d[m - k * c:].reshape(k, c).sum(axis=1)
        if blocks.max() - blocks.min() <= 1e-3 * blocks.mean():
            return k * c
    return m


def _summary(steps, ends, gen_busy_at, t_train, t_sync, stale_sum, stale_w, stale_max, outstanding_max, spans) -> dict:
    """A simulation's steady state: period and busy times over its second half (whole cycles, ``_cycle``),
    staleness, and the timeline."""
    half = steps // 2
    n = _cycle(ends, half)
    period = (ends[-1] - ends[-1 - n]) / n
    gen_busy = (gen_busy_at[-1] - gen_busy_at[-1 - n]) / n
    return {"period_s": period, "rollout_busy_s": gen_busy, "rollout_idle_s": max(period - gen_busy, 0.0),
            "trainer_busy_s": t_train + t_sync, "trainer_idle_s": max(period - t_train - t_sync, 0.0),
            "staleness_mean": stale_sum / stale_w if stale_w else 0.0, "staleness_max": int(stale_max),
            "outstanding_max": outstanding_max,
            "steps_simulated": steps, "end_times_s": ends,
            # the last two periods, shifted to start at 0 (for a timeline chart); bars cut at the window's edges (a
            # pool that never pauses, no partial rollouts, has one generate bar reaching back into the warm-up)
            "timeline": [(row, ph, max(a, ends[-3]) - ends[-3], min(b, ends[-1]) - ends[-3])
                         for row, ph, a, b in spans if b > ends[-3] and a < ends[-1]]}


MAX_STEPS = 120  # the most trainer steps a default run simulates
MIN_MEASURED = 12  # the fewest steps a default run measures (and warms up)


def default_steps(pool: Pool, lengths, counts, eta) -> int:
    """Trainer steps to simulate, 2·m: m warm-up steps, then m measured (``_summary``: the second half).

    Warm-up: the pool starts empty, and the first steady-state batch holds rollouts started up to one
    longest-rollout lifetime earlier: in trainer steps, W = (longest / mean length) × (sequences running / B),
    running = min(slots, (η + 1)·B) (the pool makes B·mean tokens a step at that many per decode step; the longest
    takes `longest` decode steps); m ≥ W + 2, and m ≥ half the former 3·(η + 1) + 4 (in [8, 40]); 2·m ≤
    MAX_STEPS. With that 3·(η + 1) + 4 alone (13 at η = 2), a 10× tail on a pool of twice the batch's slots read a
    period 12% short of the steady state's (tests/test_rl_reference.py). η = inf: 12 (the former default)."""
    if eta is None:
        return 12
    w = np.asarray(counts, float)
    x = np.asarray(lengths, float)
    batch = float(w.sum())
    warm = float(x.max()) / (float(np.dot(x, w)) / batch) * min(pool.capacity, (eta + 1) * batch) / batch
    m = max(math.ceil(min(40, max(8, 3 * (eta + 1) + 4)) / 2), math.ceil(warm) + 2, MIN_MEASURED)
    return 2 * min(m, MAX_STEPS // 2)


def simulate_async(pool: Pool, lengths, counts, t_train: float, t_sync: float, eta: float | None,
                   partial: bool = True, steps: int | None = None, stop_above: float | None = None) -> dict | None:
    """Steady state of the staleness-bounded loop: period, pool idle, staleness (mean, max).

    The loop over ``Generator.admit``/``advance``/``reprefill`` and ``DecodeCost.step_s`` (that readable form is
    tests/rl_async_reference.py, which the tests compare with this to the bit) with the timeline's bar merging
    written out over local variables: the same events and the same float operations
    in the same order (so the same results to the bit), without ~10⁴ method calls and attribute reads per
    simulation (issue #13: the split search simulates three candidates).

    ``stop_above``: return None as soon as the period is sure to exceed it (a split-search candidate that cannot
    beat the best so far): once half the steps have ended, every later step ends at least t_train + t_sync − 2·EPS
    after the one before (the trainer trains, then syncs), which bounds the last end from below."""
    batch = float(np.sum(counts))
    template = interleave(lengths, counts)
    if steps is None:
        steps = default_steps(pool, lengths, counts, eta)
    cost = pool.cost
    cap, engines, group = pool.capacity, pool.engines, pool.group
    prefill_s, reprefill_s, prompt = cost.prefill_s, cost.reprefill_s, cost.prompt
    c0, c1, m0, m1, comm = cost._rows
    overhead, per_seq, slots = cost.overhead_s, cost.per_seq_s, cost.slots
    seq_s = [per_seq * (i + 1) for i in range(slots)]  # t_seq·b of DecodeCost.step_s, the same product per b
    push, pop, ceil = heapq.heappush, heapq.heappop, math.ceil
    inf = math.inf
    heap: list = []  # Generator._heap: (end step, serial, weight, start step, version at start)
    active = sum_start = busy = kclk = 0.0  # Generator.active, .sum_start, .busy_s, ._k
    serial = 0
    t = 0.0
    started = 0.0  # N_r (weighted)
    version = 0
    buffer: deque = deque()  # completed, in completion order: [weight, version at start]
    buffered = 0.0  # Σ weight in the buffer
    item, item_left = 0, template[0][0]
    n_items = len(template)
    t_weight, t_len = [w for w, _ in template], [x for _, x in template]
    trainer_end = None  # time the running train step ends
    sync_end = None  # time the running weight sync ends
    sync_pending = False  # train step done, waiting for the pool to drain (no partial rollouts)
    ends: list[float] = []
    stale_w, stale_sum, stale_max = 0.0, 0.0, 0
    consumed, outstanding_max = 0.0, 0.0  # rollouts taken by the trainer; max of (started − consumed)/B
    ready_at = fill_at = 0.0  # the trainer's clock: its last sync's end; when the buffer last reached B
    gen_busy_at: list[float] = []  # generator busy time at each trainer step end
    train_busy = 0.0
    spans: list[tuple[str, str, float, float]] = []  # (row, phase, start, end) for the timeline
    last = {}  # row -> index of its last bar in spans
    pool_row = "rollout pool"
    # The pool's open "generate" bar (an admission's prefill, a decode stretch, a re-prefill): generate_bar below
    g_open, g_idx, g_a, g_b = False, -1, 0.0, 0.0

    def span(row, phase, a, b):
        if b - a <= 0:
            return
        i = last.get(row)
        if i is not None and spans[i][1] == phase and abs(spans[i][3] - a) < 1e-9:
            spans[i] = (row, phase, spans[i][2], b)  # extend the row's last bar
        else:
            last[row] = len(spans)
            spans.append((row, phase, a, b))

    def generate_bar(a, b):
        """span(pool_row, "generate", a, b) with the open bar kept in g_*: extend it when [a, b] starts within
        1e-9 of its end, else close it (spans[g_idx] written) and open a new one."""
        nonlocal g_open, g_idx, g_a, g_b
        if b - a > 0:
            if g_open and -1e-9 < g_b - a < 1e-9:
                g_b = b
            else:
                if g_open:
                    spans[g_idx] = (pool_row, "generate", g_a, g_b)
                g_open, g_idx, g_a, g_b = True, len(spans), a, b
                last[pool_row] = g_idx
                spans.append(None)

    n_ends = 0  # len(ends)
    half = steps // 2  # the period is measured over the steps after the first half (_summary)
    admit_to = inf if eta is None else batch * (version + eta + 1)  # N_r ≤ B·(i + η + 1): the admission bound
    seg = SEGMENT_STEPS
    for _ in range(max(2_000_000, 3 * int(batch))):  # ~1.5 rounds per sample (rl_step caps the batch)
        if n_ends >= steps:
            break
        # 1) admissions (not while a sync runs or one waits for the pool to drain)
        if sync_end is None and not sync_pending:
            limit = admit_to - started  # inf - started = inf when unbounded
            free = cap - active
            while free > EPS and limit > EPS:
                take = item_left  # min(item_left, free slots, limit), without the call
                if free < take:
                    take = free
                if limit < take:
                    take = limit
                # Generator.admit(take, length, version): its prefill spread over the engines (Pool.prefill_time)
                push(heap, (kclk + t_len[item], serial, take, kclk, version))
                serial += 1
                active += take
                sum_start += take * kclk
                dtp = take / group * prefill_s / engines
                busy += dtp
                b = t + dtp  # the bar (t, b)
                generate_bar(t, b)
                t = b
                started += take
                limit -= take
                item_left -= take
                if item_left <= EPS:
                    item += 1
                    if item == n_items:
                        item = 0
                    item_left = t_weight[item]
                free = cap - active
            # max of (started − consumed)/B over the admissions: started only grows between two trainer steps and
            # consumed only grows, so the block's last admission holds its largest (and with none, nothing new)
            out = (started - consumed) / batch
            if out > outstanding_max:
                outstanding_max = out
        # 2) the trainer starts a step when idle and B rollouts are buffered
        if trainer_end is None:
            if sync_end is None and not sync_pending and buffered >= batch - EPS:
                need = batch
                measured = n_ends >= half  # a step of the measured second half (_summary)
                while need > EPS:
                    w, v = buffer[0]
                    take = w if w <= need else need  # min(w, need)
                    if measured:
                        stale_w += take
                        stale_sum += take * (version - v)
                        if version - v > stale_max:
                            stale_max = version - v
                    need -= take
                    consumed += take
                    buffered -= take
                    if take >= w - EPS:
                        buffer.popleft()
                    else:
                        buffer[0][0] = w - take
                start = ready_at if ready_at > fill_at else fill_at  # the trainer's clock, not the pool's t
                fill_at = start  # the rest of the buffer is there now
                trainer_end = start + t_train
                train_busy += t_train
                span("trainer", "train", start, trainer_end)
                horizon = trainer_end if sync_end is None or trainer_end <= sync_end else sync_end
            else:
                horizon = inf if sync_end is None else sync_end
        # 3) advance to the next event; horizon: the next trainer or sync event (min of the two, inf for none)
        elif sync_end is None or trainer_end <= sync_end:
            horizon = trainer_end
        else:
            horizon = sync_end
        if sync_pending and not heap:  # the pool has drained: sync now
            sync_pending = False
            sync_end = ready_at = t + t_sync
            if g_open and sync_end - t > 0:  # the sync bar closes the open generate bar
                spans[g_idx] = (pool_row, "generate", g_a, g_b)
                g_open = False
            span(pool_row, "sync", t, sync_end)
            span("trainer", "sync", t, sync_end)
            continue
        if sync_end is not None or not heap:
            if horizon == inf:
                raise RuntimeError("async RL simulation stalled")  # a bug: nothing can happen
            if horizon > t:
                t = horizon  # t = max(t, horizon): prefills may already have carried the clock past the next event
        elif horizon > t:
            # Generator.advance(horizon - t): decode steps to the next finish, a segment's end or the horizon
            first = heap[0][0]
            dk = first - kclk  # min(first - k, SEGMENT_STEPS): the float on a tie, as min
            if seg < dk:
                dk = seg
            i = ceil(active / engines - 1e-9)  # DecodeCost.step_s(b_e, x): row min(max(b_e, 1), slots) - 1
            i = 0 if i < 1 else (i if i < slots else slots) - 1
            x = (prompt + (kclk * active - sum_start) / active if active else 0.0) + dk / 2  # mean context + dk/2
            ts = c0[i] + c1[i] * x  # max(compute, memory) + comm + t₀ + t_seq·b, as DecodeCost.step_s
            mem = m0[i] + m1[i] * x
            ts = (ts if ts >= mem else mem) + comm[i] + overhead + seq_s[i]
            dt = dk * ts
            if dt > horizon - t:
                dk, dt = (horizon - t) / ts, horizon - t
            kclk = k = kclk + dk
            busy += dt
            if first <= k + 1e-9:  # heap[0] has finished: pop it and every other that has
                got = 0
                done = k + 1e-9
                while True:
                    _, _, w, k0, tag = pop(heap)
                    active -= w
                    sum_start -= w * k0
                    buffer.append([w, tag])
                    got += w
                    if not heap or heap[0][0] > done:
                        break
                if not heap:
                    active, sum_start = 0.0, 0.0
                if buffered < batch - EPS <= buffered + got:
                    fill_at = t + dt  # the B-th rollout completed at the end of this stretch
                buffered += got
            b = t + dt  # the bar (t, b)
            generate_bar(t, b)
            t = b
        # 4) events at time t
        if sync_end is not None and t >= sync_end - EPS:
            sync_end = None
            if partial:
                # Generator.reprefill(): the KV of every running sequence recomputed under the new weights
                if active:
                    mean_ctx = prompt + (kclk * active - sum_start) / active if active else 0.0
                    dtp = active * reprefill_s * mean_ctx / prompt / engines
                    busy += dtp
                else:
                    dtp = 0.0
                b = t + dtp  # the bar (t, b)
                generate_bar(t, b)
                t = b
        if trainer_end is not None and t >= trainer_end - EPS:
            trainer_end = None
            version += 1
            admit_to = inf if eta is None else batch * (version + eta + 1)
            ends.append(t)
            n_ends += 1
            gen_busy_at.append(busy)
            train_busy += t_sync
            if partial or not heap:
                sync_end = ready_at = t + t_sync
                if g_open and sync_end - t > 0:  # the sync bar closes the open generate bar
                    spans[g_idx] = (pool_row, "generate", g_a, g_b)
                    g_open = False
                span(pool_row, "sync", t, sync_end)
                span("trainer", "sync", t, sync_end)
            else:
                sync_pending = True
            if stop_above is not None and half <= n_ends < steps:
                rest = steps - n_ends  # the period's lower bound, with slack for rounding (1e-9 relative, 1 µs)
                lower = (t - ends[half - 1] + rest * ((t_train + t_sync) * (1 - 1e-9) - 1e-6)) / (steps - half)
                if lower > stop_above:
                    return None
    else:  # 2,000,000 rounds and the last did not end the run
        if n_ends < steps:
            raise RuntimeError("async RL simulation did not converge")  # a bug, not a user error
    if g_open:
        spans[g_idx] = (pool_row, "generate", g_a, g_b)
    return _summary(steps, ends, gen_busy_at, t_train, t_sync, stale_sum, stale_w, stale_max, outstanding_max, spans)
