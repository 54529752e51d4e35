"""The readable reference of llmcalc.rl.loop.simulate_async: the same staleness-bounded event loop written over
``Generator``'s methods (admit, advance, reprefill) and the engine's ``span`` merging. The engine runs the written-out
form (issue #13: ~10⁴ method calls per simulation); tests/test_rl_async_fast.py checks both agree to the bit."""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from llmcalc.rl.loop import EPS, _summary, default_steps
from llmcalc.rl.rollout import Generator, Pool, interleave


def simulate_async_events(pool: Pool, lengths, counts, t_train: float, t_sync: float, eta: float | None,
                          partial: bool = True, steps: int | None = None) -> dict:
    """Steady state of the staleness-bounded loop: period, pool idle, staleness (mean, max).

    The readable reference: the loop over ``Generator``'s methods. :func:`simulate_async` is the same loop with
    those methods written out (the same float operations in the same order, so the same results to the bit;
    tests/test_rl_async_fast.py checks it over generated inputs)."""
    batch = float(np.sum(counts))
    template = interleave(lengths, counts)
    if steps is None:
        steps = default_steps(pool, lengths, counts, eta)
    gen = Generator(pool)
    cap = gen._capacity  # gen.free = cap - gen.active, read inline below (the loop runs 10⁴ times; issue #13)
    heap = gen._heap  # gen.running = bool(heap)
    t = 0.0
    started = 0.0  # N_r (weighted)
    version = 0
    buffer: deque = deque()  # completed, in completion order: [weight, version at start]
    buffered = 0.0  # Σ weight in the buffer
    item, item_left = 0, template[0][0]
    trainer_end = None  # time the running train step ends
    sync_end = None  # time the running weight sync ends
    sync_pending = False  # train step done, waiting for the pool to drain (no partial rollouts)
    ends: list[float] = []
    stale_w, stale_sum, stale_max = 0.0, 0.0, 0
    consumed, outstanding_max = 0.0, 0.0  # rollouts taken by the trainer; max of (started − consumed)/B
    ready_at = fill_at = 0.0  # the trainer's clock: its last sync's end; when the buffer last reached B
    half = steps // 2  # staleness is measured over the second half, as the period (_summary)
    gen_busy_at: list[float] = []  # generator busy time at each trainer step end
    train_busy = 0.0
    spans: list[tuple[str, str, float, float]] = []  # (row, phase, start, end) for the timeline
    last: dict[str, int] = {}

    def span(row, phase, a, b):
        if b - a <= 0:
            return
        i = last.get(row)
        if i is not None and spans[i][1] == phase and abs(spans[i][3] - a) < 1e-9:
            spans[i] = (row, phase, spans[i][2], b)  # extend the row's last bar
        else:
            last[row] = len(spans)
            spans.append((row, phase, a, b))
    safety = 0
    while len(ends) < steps:
        safety += 1
        if safety > 2_000_000:
            raise RuntimeError("async RL simulation did not converge")  # a bug, not a user error
        # 1) admissions (not while a sync runs or one waits for the pool to drain)
        if sync_end is None and not sync_pending:
            limit = math.inf if eta is None else batch * (version + eta + 1) - started
            while cap - gen.active > EPS and limit > EPS:
                take = min(item_left, cap - gen.active, limit)
                dtp = gen.admit(take, template[item][1], version)
                span("rollout pool", "generate", t, t + dtp)
                t += dtp
                started += take
                outstanding_max = max(outstanding_max, (started - consumed) / batch)
                limit -= take
                item_left -= take
                if item_left <= EPS:
                    item = (item + 1) % len(template)
                    item_left = template[item][0]
        # 2) the trainer starts a step when idle and B rollouts are buffered
        if trainer_end is None and sync_end is None and not sync_pending and buffered >= batch - EPS:
            need = batch
            measured = len(ends) >= half
            while need > EPS:
                w, v = buffer[0]
                take = min(w, need)
                if measured:
                    stale_w += take
                    stale_sum += take * (version - v)
                    stale_max = max(stale_max, version - v)
                need -= take
                consumed += take
                buffered -= take
                if take >= w - EPS:
                    buffer.popleft()
                else:
                    buffer[0][0] = w - take
            start = max(ready_at, fill_at)  # the trainer's clock, not the pool's t
            fill_at = start
            trainer_end = start + t_train
            train_busy += t_train
            span("trainer", "train", start, trainer_end)
        # 3) advance to the next event
        horizon = min(math.inf if trainer_end is None else trainer_end, math.inf if sync_end is None else sync_end)
        if sync_pending and not heap:  # the pool has drained: sync now
            sync_pending = False
            sync_end = ready_at = t + t_sync
            span("rollout pool", "sync", t, sync_end)
            span("trainer", "sync", t, sync_end)
            continue
        if sync_end is not None or not heap:
            if horizon == math.inf:
                raise RuntimeError("async RL simulation stalled")  # a bug: nothing can happen
            t = max(t, horizon)  # prefills may already have carried the clock past the next event
        elif horizon > t:
            dt, done = gen.advance(horizon - t)
            span("rollout pool", "generate", t, t + dt)
            t += dt
            if done:
                buffer.extend([w, tag] for w, tag in done)
                got = sum(w for w, _ in done)
                if buffered < batch - EPS <= buffered + got:
                    fill_at = t  # the B-th rollout completed at the end of this stretch
                buffered += got
        # 4) events at time t
        if sync_end is not None and t >= sync_end - EPS:
            sync_end = None
            if partial:
                dtp = gen.reprefill()
                span("rollout pool", "generate", t, t + dtp)
                t += dtp
        if trainer_end is not None and t >= trainer_end - EPS:
            trainer_end = None
            version += 1
            ends.append(t)
            gen_busy_at.append(gen.busy_s)
            train_busy += t_sync
            if partial or not heap:
                sync_end = ready_at = t + t_sync
                span("rollout pool", "sync", t, sync_end)
                span("trainer", "sync", t, sync_end)
            else:
                sync_pending = True
    return _summary(steps, ends, gen_busy_at, t_train, t_sync, stale_sum, stale_w, stale_max, outstanding_max, spans)
