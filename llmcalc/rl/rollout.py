"""Rollout generation on a pool of inference engines: continuous batching with its drain.

The pool is ``engines`` copies of one :class:`~llmcalc.inference.latency.Deployment` (tp GPUs each). The
router spreads sequences evenly (a fluid assumption), so an engine runs ``ceil(active / engines)``
sequences per decode step. One decode step costs the roofline step of ``llmcalc.inference.latency.step``
at that batch and at the mean cache length of the running sequences (KV reads are linear in the cache
length, so the mean gives the exact total for full attention), plus the engine's host time per step that the
roofline leaves out: t₀ + t_seq·b (scheduler, input preparation, sampling; ``RLSettings.decode_step_overhead_s``
and ``decode_overhead_per_seq_s``). The fixed kernel-launch cost per step (layers × kernels × launch time) is
the inference wing's (``inference.latency.step`` ``overhead_s``) and is taken from there, not repeated here.
Each admitted sequence first costs its prompt's prefill (a compute-bound forward), shared by the G samples
of a prompt when ``prefix_shared`` (vLLM/SGLang prefix caching of GRPO groups).

Continuous batching (Orca, Yu et al. 2022 §3): every running sequence advances one token per step, a
finished sequence frees its slot at once and a waiting one takes it. We simulate it event by event in
*token steps* over weighted cohorts (``llmcalc.rl.lengths``): between two events the batch is constant and
the mean context grows by one per step; wall time integrates the step time over those steps (midpoint
rule over sub-segments of at most ``SEGMENT_STEPS`` steps). The drain of a synchronous batch falls out:
as sequences finish the batch thins to the single longest, which then decodes alone at batch 1.

Slots: an engine runs at most ``min(max_num_seqs, KV tokens / (prompt + mean response))`` sequences —
paged KV is allocated as sequences grow (vLLM), so the mean footprint sets the steady concurrency.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import LlmcalcError
from ..inference.latency import Deployment, step

SEGMENT_STEPS = 256  # longest stretch of decode steps timed at one (midpoint) context
SRC_CB = "continuous batching (Yu et al. 2022, Orca §3): a finished sequence's slot is refilled at once"


@dataclass
class DecodeCost:
    """Per-engine decode step t(b, ctx) = max(compute(b) + c'(b)·ctx, memory(b) + m'(b)·ctx) + comm(b) + t₀ + t_seq·b,
    exact for the affine roofline terms of ``inference.latency.step``, tabulated for b = 1..slots."""

    dep: Deployment
    slots: int
    overhead_s: float
    prompt: float
    per_seq_s: float = 0.0  # host time per sequence per step
    c0: np.ndarray = field(init=False)
    c1: np.ndarray = field(init=False)
    m0: np.ndarray = field(init=False)
    m1: np.ndarray = field(init=False)
    comm: np.ndarray = field(init=False)
    prefill_s: float = field(init=False)
    reprefill_s: float = field(init=False)

    def __post_init__(self):
        b = np.arange(1, self.slots + 1, dtype=float)
        lo, hi = 1024.0, 1024.0 + 8192.0
        s_lo = step(self.dep, b, 1, lo, prefill=False)
        s_hi = step(self.dep, b, 1, hi, prefill=False)
        self.c1 = (s_hi["compute_s"] - s_lo["compute_s"]) / (hi - lo)
        self.m1 = (s_hi["memory_s"] - s_lo["memory_s"]) / (hi - lo)
        self.c0 = s_lo["compute_s"] - self.c1 * lo
        self.m0 = s_lo["memory_s"] - self.m1 * lo
        # exposed TP communication + the engine's fixed per-step launch overhead (inference.latency.step, #12)
        self.comm = np.asarray(s_lo["comm_exposed_s"] + s_lo["overhead_s"], dtype=float) * np.ones_like(b)
        p = max(int(self.prompt), 1)
        pre = step(self.dep, 1, p, p, prefill=True)
        self.prefill_s = float(pre["step_s"])
        # A re-prefill (reprefill) recomputes the KV of every running sequence in large batched forwards, which are
        # compute-bound: it scales this prompt's prefill by context / prompt with the roofline term taken as its
        # compute part. A lone short prompt is memory-bound (its time is the weight read), and scaling that read by
        # the context made a 1-token prompt's re-prefill ~250x too slow (7B on H100: async 2.5x slower than sync).
        # Where the prompt is compute-bound this is prefill_s to the bit (step_s = max(compute, memory) + rest).
        self.reprefill_s = float(pre["compute_s"] + pre["comm_exposed_s"] + pre["overhead_s"])
        # the same tables as Python floats: step_s runs 10⁴ times per simulation and numpy scalar arithmetic is
        # several times slower (the same float64 operations, so the same results)
        self._rows = tuple(a.tolist() for a in (self.c0, self.c1, self.m0, self.m1, self.comm))

    def step_s(self, batch_per_engine: int, ctx: float) -> float:
        i = min(max(int(batch_per_engine), 1), self.slots) - 1
        c0, c1, m0, m1, comm = self._rows
        # roofline + exposed TP comm + launches (inference wing) + host time t₀ + t_seq·b (RLSettings)
        return max(c0[i] + c1[i] * ctx, m0[i] + m1[i] * ctx) + comm[i] + self.overhead_s + self.per_seq_s * (i + 1)


@dataclass
class Pool:
    """``engines`` inference engines of ``slots`` sequences each."""

    cost: DecodeCost
    engines: int
    group: int = 1  # samples sharing one prompt prefill

    @property
    def capacity(self) -> float:
        return float(self.engines * self.cost.slots)

    def prefill_time(self, sequences: float) -> float:
        """Prompt prefills of ``sequences`` new sequences spread over the engines (one per prompt when shared)."""
        return sequences / self.group * self.cost.prefill_s / self.engines


class Generator:
    """Event-driven continuous batching over weighted items; time in seconds, progress in token steps."""

    def __init__(self, pool: Pool):
        self.pool = pool
        self.active = 0.0  # Σ weight of running sequences
        self.sum_start = 0.0  # Σ weight·(token step at which it started)
        self.busy_s = 0.0  # time with at least one sequence running
        self.tokens = 0.0  # tokens generated (weighted)
        self._heap: list = []  # (end step, serial, weight, start step, tag)
        self._k = 0.0  # token-step clock
        self._n = 0
        # the pool's constants, read once: free/admit/advance run 10⁴ times per simulation (issue #13)
        self._capacity = pool.capacity
        self._prompt = pool.cost.prompt
        self._step_s = pool.cost.step_s

    @property
    def free(self) -> float:
        return self._capacity - self.active

    @property
    def running(self) -> bool:
        return bool(self._heap)

    def admit(self, weight: float, length: float, tag=None) -> float:
        """Start ``weight`` sequences of ``length`` tokens; returns the prefill time it costs."""
        heapq.heappush(self._heap, (self._k + length, self._n, weight, self._k, tag))
        self._n += 1
        self.active += weight
        self.sum_start += weight * self._k
        dt = self.pool.prefill_time(weight)
        self.busy_s += dt
        return dt

    def mean_context(self) -> float:
        return self._prompt + (self._k * self.active - self.sum_start) / self.active if self.active else 0.0

    def reprefill(self) -> float:
        """Recompute the KV of every running sequence (prompt + tokens so far) after a weight update: prefill
        time scaled by context / prompt (linear part of the prefill FLOPs; ``DecodeCost.reprefill_s``). Returns the
        seconds it takes."""
        if not self.active:
            return 0.0
        dt = self.active * self.pool.cost.reprefill_s * self.mean_context() / self.pool.cost.prompt \
            / self.pool.engines
        self.busy_s += dt
        return dt

    def advance(self, dt_limit: float = math.inf) -> tuple[float, list]:
        """Run decode steps until the next sequence finishes or ``dt_limit`` seconds pass.
        Returns (seconds elapsed, finished items [(weight, tag), …])."""
        heap = self._heap
        if not heap:
            return 0.0, []
        k, active = self._k, self.active
        dk = min(heap[0][0] - k, SEGMENT_STEPS)
        b_e = math.ceil(active / self.pool.engines - 1e-9)
        # mean_context() written out (the same expression): this runs 10⁴ times per simulation
        ctx = self._prompt + (k * active - self.sum_start) / active if active else 0.0
        t = self._step_s(b_e, ctx + dk / 2)
        dt = dk * t
        if dt > dt_limit:
            dk, dt = dt_limit / t, dt_limit
        self._k = k = k + dk
        self.busy_s += dt
        self.tokens += dk * active
        done = []
        sum_start = self.sum_start
        while heap and heap[0][0] <= k + 1e-9:
            _, _, w, k0, tag = heapq.heappop(heap)
            active -= w
            sum_start -= w * k0
            done.append((w, tag))
        if not heap:
            active, sum_start = 0.0, 0.0
        self.active, self.sum_start = active, sum_start
        return dt, done


def interleave(lengths, counts) -> list:
    """Admission order within a batch: cohorts spread evenly through it (a deterministic stand-in for random
    order): cohort j goes to position frac(j·φ), φ the golden ratio (a low-discrepancy sequence)."""
    phi = (math.sqrt(5) - 1) / 2
    order = sorted(range(len(lengths)), key=lambda j: (j * phi) % 1.0)
    return [(float(counts[j]), float(lengths[j])) for j in order]


def drain_time(pool: Pool, lengths: np.ndarray, counts: np.ndarray) -> dict:
    """Time to generate one batch (cohort lengths × counts) from empty to the last token: prefills, the
    saturated phase while more sequences wait than there are slots, and the drain down to the longest."""
    gen = Generator(pool)
    queue = interleave(lengths, counts)
    t = prefill = 0.0
    qi = 0
    while True:
        while qi < len(queue) and gen.free > 1e-9:
            w, length = queue[qi]
            take = min(w, gen.free)
            dtp = gen.admit(take, length)
            prefill += dtp
            t += dtp
            if take < w:
                queue[qi] = (w - take, length)
                break
            qi += 1
        if not gen.running:
            break
        dt, _ = gen.advance()
        t += dt
    return {"time_s": t, "prefill_s": prefill, "decode_s": t - prefill, "tokens": float(np.dot(lengths, counts))}


def slots_per_engine(dep: Deployment, prompt: float, mean_response: float, max_num_seqs: int,
                     reserve: float) -> int:
    from ..inference.kv import fit

    f = fit(dep.model, dep.hw, dep.weights, dep.group_size, dep.kv_dtype, dep.tp, reserve=reserve,
            context=int(min(max(prompt + mean_response, 1), dep.model.max_seq_len)))
    if not f.data["fits"]:
        raise LlmcalcError(f"the rollout engine does not fit: {dep.model.display_name} weights need more than "
                           f"{dep.tp} x {dep.hw.display_name} hold; raise --rollout-tp")
    cap = int(f.data["kv_tokens_capacity"] // max(prompt + mean_response, 1))
    if cap < 1:
        raise LlmcalcError(f"no KV room for one sequence of {prompt + mean_response:,.0f} tokens on a rollout engine "
                           f"of {dep.tp} x {dep.hw.display_name}; raise --rollout-tp")
    return int(min(cap, max_num_seqs))
