"""Inference latency: the cost of one forward step of a serving engine: FLOPs, bytes moved, and the roofline time.

A step processes ``batch`` sequences of ``new_tokens`` each against a cache of ``context``
positions (prefill: new_tokens = prompt; decode: new_tokens = 1). Its time is the roofline
``max(FLOPs / (peak·eff.flops), bytes / (HBM·eff.memory_bw))`` (Williams et al. 2009, "Roofline")
plus the tensor-parallel all-reduces, which we do not overlap (Megatron: 2 all-reduces per layer in
the forward pass, Shoeybi et al. 2019 §3). Each is a ring all-reduce: 2(n−1) steps of latency α plus
2(n−1)/n of the message over the link (nccl-tests PERFORMANCE.md), on the scale-up link while the
TP group fits its domain and on the per-device scale-out link beyond it, with the α constants of
the training ledger (llmcalc.training.comms). Bytes are the weights read once per step for the
whole batch, plus the KV cache read and written; activations are left out (small at decode).
MoE layers read only the experts the step's tokens touch: with T tokens routed to k of E experts
uniformly, the expected number of distinct experts is ``E·(1 − (1 − k/E)^T)``.

Precision: weight-only formats (int4, int8, fp8 weights) compute at the 16-bit peak; fp8/int8
activations use that peak; fp32 weights compute at the plain fp32 (non-tensor-core) peak, PyTorch's
default for fp32 matmuls (``torch.backends.cuda.matmul.allow_tf32`` is False since 1.12), and
all-reduce 4-byte activations.

All workload arguments broadcast as numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..core.checks import check_count, check_number, check_scalar
from ..core.efficiency import DEFAULT_EFFICIENCY, Efficiency
from ..core.errors import LayoutError, LlmcalcError
from ..core.held import HeldCache
from ..core.pointmemo import PointTable, distinct, tableable
from ..core.results import Result, derive, errstate_key
from ..core.specs import Hardware, Model
from .kv import check_tp, kv_bytes_per_request_per_gpu, kv_heads_per_gpu, per_token_per_layer

SRC_ROOFLINE = "roofline: Williams et al. 2009; time = max(compute, memory)"
SRC_AR = ("2 all-reduces of B·L·D per layer (Shoeybi et al. 2019 §3), each timed by llmcalc.network.collectives "
          "(NCCL v2.30.7 tuning.cc model: ring/tree/NVLS × LL/LL128/Simple, fastest chosen)")
SRC_MOE_READ = "distinct experts touched by T tokens routed to k of E uniformly: E·(1-(1-k/E)^T)"
ACT_BYTES = 2  # activations all-reduced in 16 bit (Megatron, TensorRT-LLM); 4 with fp32 weights
# Per-decode-step fixed overhead: kernel launches. A Llama-style layer launches ~10 kernels at decode besides
# its all-reduces (fused add+RMSNorm, QKV GEMM, rotary, KV-cache write, attention, O GEMM, add+RMSNorm,
# gate/up GEMM, SiLU·mul, down GEMM: vLLM's LlamaDecoderLayer); count is a judgement for other blocks.
# The engine default is ONE formula, Deployment.decode_overhead_s = layers x KERNELS_PER_LAYER x per-kernel cost;
# llmcalc.rl adds its own fitted scheduler/sampling overhead (RLSettings.decode_step_overhead_s) on top of it.
KERNELS_PER_LAYER = 10
# Bare eager launch, one kernel: ~4-6 µs of CPU work per cudaLaunchKernel (susun-blog.com "pegainfer (3): From
# Launch Overhead to CUDA Graph", measured 4-6 µs; learnaivisually.com CUDA-graphs module: ~5 µs on A100) -> 5 µs.
# Used where one kernel is timed alone (the custom all-reduce below; the vLLM no-CUDA-graph all-reduce cases).
KERNEL_LAUNCH_EAGER_S = 5e-6
# Eager decode step: CALIBRATED effective fixed cost per kernel of a decode step, 8 µs. Fitted on ONE row:
# TensorRT-LLM v0.5 GPT-J 6B FP16 on A100 SXM 80GB, batch 1, input 128: 111 tok/s = 9.01 ms/token
# (docs/source/blogs/H100vsA100.md), whose
# memory-bound step (weights + KV / (2.039 TB/s x 0.85)) is 6.80 ms: (9.01 - 6.80) ms / (28 layers x 10 kernels)
# = 7.9 µs. Those rows ran eagerly: gptSessionBenchmark's --enable_cuda_graph is opt-in (NVIDIA/TensorRT-LLM
# benchmarks/cpp/gptSessionBenchmark.cpp, 2023). HELD OUT: the same table's H100 SXM FP8 row (185 tok/s = 5.41
# ms/token): we give 4.40 ms, -19% (tests/test_inference.py, validation case inference-trtllm-gptj-h100-bs1-eager).
# It lies above the bare launch cost (KERNEL_LAUNCH_EAGER_S) because it also carries the GPU-side ramp and tail of
# each small kernel and the per-step sampling, spread per kernel.
KERNEL_OVERHEAD_EAGER_S = 8e-6
# CUDA graph replay launches the step once; what remains per dependent kernel is the GPU-side gap, ~1 µs
# (judgement, not a measurement we could cite; no published graph-mode batch-1 row to calibrate on).
KERNEL_OVERHEAD_GRAPH_S = 1e-6
SRC_OVERHEAD = ("kernel launches: layers × 10 kernels × 8 µs eager (calibrated on TensorRT-LLM v0.5 GPT-J A100 "
                "batch 1, held out on H100 FP8: -19%) or × 1 µs with CUDA graphs (judgement)")
SRC_CUSTOM_AR = ("one-shot custom all-reduce (vLLM custom_all_reduce, TensorRT-LLM oneshot): every rank reads the "
                 "n−1 peers' buffers over NVLink, (n−1)·S at link bw·eff, two flag barriers (2 NVLink hops, "
                 "tuning.cc ring Simple hop latency) and one kernel launch; two-shot (reduce-scatter + all-gather "
                 "of 2(n−1)/n·S, 4 barriers) when cheaper; NCCL when cheaper still")


def custom_allreduce(dep, nbytes, nccl):
    """Serving engines' custom all-reduce on a full-NVLink group (vLLM ``custom_all_reduce``, TensorRT-LLM's
    one-shot/two-shot kernels), or NCCL where it is faster or the link is not NVLink. Returns (time_s, how)."""
    up = dep.hw.scale_up
    S = np.asarray(nbytes, dtype=float)
    if up.fabric_kind() != "nvlink" or dep.tp > up.domain_size:
        return nccl
    n = dep.tp
    bw = up.ring_bw_per_direction(n) * dep.eff.link
    hop = up.hop_latency_s("ring", "simple") * dep.latency_scale
    launch = (KERNEL_OVERHEAD_GRAPH_S if dep.cuda_graphs else KERNEL_LAUNCH_EAGER_S) * dep.latency_scale
    one = launch + 2 * hop + (n - 1) * S / bw
    two = launch + 4 * hop + 2 * (n - 1) / n * S / bw
    t = np.minimum(np.minimum(one, two), nccl.time_s)
    from dataclasses import replace

    how = np.where(t == one, "one-shot", np.where(t == two, "two-shot", nccl.algorithm))
    return replace(nccl, time_s=t if np.ndim(t) else float(t), algorithm=how if np.ndim(how) else str(how),
                   protocol="custom" if np.ndim(t) == 0 and str(how) in ("one-shot", "two-shot") else nccl.protocol,
                   latency_s=np.where(t == one, launch + 2 * hop, np.where(t == two, launch + 4 * hop, nccl.latency_s))
                   if np.ndim(t) else float(launch + 2 * hop if t == one else launch + 4 * hop if t == two
                                        else nccl.latency_s))


@dataclass(frozen=True)
class Deployment:
    """One model on one accelerator type: precision, TP degree and efficiency, with derived byte counts."""

    model: Model
    hw: Hardware
    tp: int = 1
    weights: str | float = "bf16"
    group_size: int | None = None
    kv_dtype: str = "bf16"
    activations: str = "bf16"
    eff: Efficiency = DEFAULT_EFFICIENCY
    latency_scale: float = 1.0  # multiplies every latency term (collective hops, launch overheads); 0 = roofline
    allreduce: str = "nccl"  # "nccl" (NCCL's tuning model) or "custom" (vLLM / TensorRT-LLM one-shot kernel)
    tp_overlap: bool = False  # TP all-reduce hidden behind compute (e.g. TensorRT-LLM/SGLang overlap options)
    cuda_graphs: bool = True  # decode steps replayed as a CUDA graph (vLLM, SGLang, TensorRT-LLM default)
    step_overhead_s: float | None = None  # override the fixed per-decode-step overhead

    def __post_init__(self):
        check_scalar("--tp", self.tp, "one degree per deployment")
        check_tp(self.model, self.tp)
        check_number(self.latency_scale, "--latency-scale", low=0, low_ok=True)
        if self.eff.is_roofline:  # --roofline: every efficiency 1 AND every latency term 0
            object.__setattr__(self, "latency_scale", 0.0)
        if self.step_overhead_s is not None:
            check_number(self.step_overhead_s, "--step-overhead (seconds)", low=0, low_ok=True)
        if self.allreduce not in ("nccl", "custom"):
            raise LlmcalcError(f"--allreduce expects nccl or custom, got {self.allreduce!r}")
        self.tp_link()  # a TP group beyond the scale-up domain needs a scale-out link: say so now
        if self.activations not in ("bf16", "fp16", "fp8", "int8"):
            raise LlmcalcError(f"--activations expects bf16, fp8 or int8, got {self.activations!r}")
        if self.activations in ("fp8", "int8") and self.weights_name != self.activations:
            raise LlmcalcError(f"--activations {self.activations} needs --weights {self.activations}: the "
                               f"{self.activations} tensor-core peak applies only when both GEMM inputs are "
                               f"{self.activations} (weight-only quantisation computes at 16 bit)")

    # ---- precision
    @property
    def weights_name(self) -> str:
        from ..model.quant import parse_weights

        return parse_weights(self.weights)[0]

    @property
    def compute_dtype(self) -> str:
        if self.activations in ("fp8", "int8"):
            return self.activations
        return "fp32" if self.weights_name == "fp32" else "bf16"

    @property
    def act_bytes(self) -> int:
        return 4 if self.compute_dtype == "fp32" else ACT_BYTES

    def tp_link(self) -> tuple[float, float, str]:
        """(per-direction B/s, per-hop latency, link name) the TP all-reduce crosses: the scale-up link while the
        group fits its domain, else the per-device scale-out link (llmcalc.network.collectives, as training)."""
        up, hw = self.hw.scale_up, self.hw
        if self.tp <= up.domain_size:
            return up.ring_bw_per_direction(self.tp), up.hop_latency_s("ring", "simple"), _short(up.name, "scale-up")
        if hw.scale_out is None:
            raise LayoutError(f"--tp {self.tp} spans more than the {up.domain_size}-device scale-up domain of "
                              f"{hw.display_name}, whose catalogue entry records no scale_out bandwidth; keep "
                              f"--tp <= {up.domain_size} or give the hardware YAML a scale_out link")
        return (hw.scale_out.per_direction_bytes_per_s,
                hw.scale_out.hop_latency_s("ring", "simple", default_fabric="infiniband"),
                _short(hw.scale_out.name, "scale-out"))

    def tp_allreduce(self, nbytes):
        """One TP all-reduce of ``nbytes`` (numpy-broadcast): NCCL's model (llmcalc.network.collectives), or the
        one-shot custom kernel serving engines use for small messages (``allreduce='custom'``)."""
        from ..network.collectives import collective_time

        ct = collective_time(self.hw, "all-reduce", nbytes, self.tp, link_efficiency=self.eff.link,
                             latency_scale=self.latency_scale)
        if self.allreduce == "nccl":
            return ct
        return custom_allreduce(self, nbytes, ct)

    def decode_overhead_s(self) -> float:
        """Fixed per-decode-step cost: kernel launches (KERNELS_PER_LAYER per layer, each at the per-kernel
        overhead with or without CUDA graphs), or the ``step_overhead_s`` given."""
        if self.step_overhead_s is not None:
            return self.step_overhead_s
        per = KERNEL_OVERHEAD_GRAPH_S if self.cuda_graphs else KERNEL_OVERHEAD_EAGER_S
        return self.model.n_layers * KERNELS_PER_LAYER * per * self.latency_scale

    @property
    def peak_flops_per_s(self) -> float:
        return self.hw.peak(self.compute_dtype)

    # ---- bytes (whole model, before TP sharding)
    def _weights(self):
        from ..model.quant import weight_bytes

        return weight_bytes(self.model, self.weights, self.group_size).data

    @property
    def weight_bytes(self) -> float:
        return self._weights()["weight_bytes"]

    @cached_property  # computed once per deployment: every step reads it (frozen dataclass: kept in __dict__)
    def replicated_bytes_per_gpu(self) -> float:
        """Bytes each rank holds (and reads every step) beyond its 1/tp share: norms, MoE router, MLA down-
        projections, K/V projections when tp > G (llmcalc.inference.kv.tp_replicated_params; vLLM's sharding)."""
        from .kv import tp_replicated_params

        return sum(tp_replicated_params(self.model, self.tp).values()) * self._weights()["bits_per_weight"] / 8

    @property
    def weight_bytes_per_gpu(self) -> float:
        # TP shards the matrices (vocabulary-parallel embeddings included); the replicated weights are whole
        return self.weight_bytes / self.tp + self.replicated_bytes_per_gpu

    def _read_parts(self) -> tuple[float, float]:
        """(bytes read every step, bytes of ONE routed expert of one layer)."""
        return self._parts

    @cached_property  # once per deployment (frozen): every step of a serving plan reads it
    def _parts(self) -> tuple[float, float]:
        from ..model.params import param_breakdown

        w = self._weights()
        bpw = w["bits_per_weight"]
        emb_bits = 16 if w["embedding_params"] else bpw
        parts = param_breakdown(self.model).data["breakdown"]
        gathered = parts.get("position_embedding", 0) + (0 if self.model.tie_embeddings else parts["embedding"])
        experts = parts.get("moe/experts", 0)
        always = w["weight_bytes"] - gathered * emb_bits / 8 - experts * bpw / 8
        per_expert = 0.0
        if self.model.moe:
            per_expert = experts / (self.model.n_moe_layers * self.model.moe.n_experts) * bpw / 8
        return always, per_expert

    def experts_touched(self, tokens):
        m = self.model.moe
        if not m:
            return 0.0
        return m.n_experts * (1 - (1 - m.top_k / m.n_experts) ** np.asarray(tokens, dtype=float))

    def weights_read_per_gpu(self, tokens):
        """Weight bytes one GPU reads in a step over ``tokens`` tokens (embedding rows are gathered, not read)."""
        always, per_expert = self._read_parts()
        moe = self.model.n_moe_layers * self.experts_touched(tokens) * per_expert
        return (always + moe) / self.tp + self.replicated_bytes_per_gpu

    def kv_per_token_per_gpu(self) -> float:
        a = self.model.attention
        shard = 1.0 if a.mla else kv_heads_per_gpu(self.model, self.tp) / a.n_kv_heads
        return per_token_per_layer(self.model, self.kv_dtype).value * self.model.n_layers * shard


def _short(link_name: str, kind: str) -> str:
    """'NVLink 4 (18 links) via ...' -> 'NVLink 4, scale-up'."""
    head = link_name.split(" (")[0].split(",")[0].strip()
    return f"{head}, {kind}" if head else f"the {kind} link"


def forward_flops(model: Model, batch, seq, kv_len, causal: bool):
    """Forward FLOPs of one step, from llmcalc.flops. Prefill uses the causal-halved convention (what
    FlashAttention executes) and computes logits for the last position only (serving engines gather the
    last hidden state before the LM head); MLA decode uses the absorbed form DeepSeek-V3 serves with."""
    if (np.ndim(seq) == 0 and np.ndim(kv_len) == 0 and np.size(batch) >= _TABLE_MIN and tableable(batch)
            and all(float(x) == x for x in (seq, kv_len))):  # (no NaN, no int that float64 rounds)
        # a batch grid at one (L, M): each distinct batch size computed once per process (core.pointmemo: the
        # FLOP table is elementwise in B, so the numbers are those of a direct call). L and M are keyed by value,
        # not type: with B an array every formula holding B runs in float64, and the only B-free one (a sliding
        # layer's attended length) is exact in int or float for counts <= 2**53 (_count's limit), so 1, 1.0 and
        # np.float64(1) give the same bits (checked over every catalogue model: tests/test_pointmemo.py)
        key = (causal, float(seq), float(kv_len), errstate_key())
        table = _FLOPS_TABLES.get((model,), key)
        if table is None:
            table = _FLOPS_TABLES.put((model,), key, PointTable())
        return table(lambda b: _forward_flops_direct(model, b, seq, kv_len, causal), batch)
    args = [np.asarray(x) for x in (batch, seq, kv_len)]
    key = None
    if sum(a.size for a in args) <= 65536:  # a serving planner times the same decode batches twice per replica
        key = (causal, *((a.dtype.str, a.shape, a.tobytes()) for a in args), errstate_key())
        hit = _FLOPS_SEEN.get((model,), key)
        if hit is not None:
            return hit
    out = _forward_flops_direct(model, batch, seq, kv_len, causal)
    if key is not None:
        if isinstance(out, np.ndarray):
            out.flags.writeable = False  # shared by every caller with these inputs: never changed in place
        _FLOPS_SEEN.put((model,), key, out)
    return out


def _forward_flops_direct(model: Model, batch, seq, kv_len, causal: bool):
    from ..model.flops import forward_flops as ff

    absorbed = bool(model.attention.mla) and not causal
    d = ff(model, batch, seq, kv_len=kv_len, causal=causal, mla_absorbed=absorbed, brief=True).data
    seq = np.asarray(seq, dtype=float)
    return d["forward_flops"] - d["lm_head_flops"] * (seq - 1) / seq


# forward_flops results by model, phase and exact inputs
_FLOPS_SEEN = HeldCache(256)
# batch grids (>= _TABLE_MIN points) at one (L, M): a PointTable per model, phase, L and M
_TABLE_MIN = 16
_FLOPS_TABLES = HeldCache(32)


def kv_and_allreduce(dep: Deployment, batch, new_tokens, context, *, prefill: bool) -> dict:
    """The parts of :func:`step` that do not depend on which weights a step reads: KV cache bytes read and written
    per GPU, and the TP all-reduce time (per layer and per step). An expert-parallel step (the serving planner's
    ep+dp-attention replica) reads its own weights and takes these from here."""
    b = np.asarray(batch, dtype=float)
    lq = np.asarray(new_tokens, dtype=float)
    ctx = np.asarray(context, dtype=float)
    kv_write = b * lq * dep.kv_per_token_per_gpu()
    kv_read = 0.0 * b if prefill else b * kv_bytes_per_request_per_gpu(dep.model, ctx, dep.kv_dtype, dep.tp)
    if dep.tp > 1:
        msg = b * lq * dep.model.d_model * dep.act_bytes
        per_layer = 2 * np.asarray(dep.tp_allreduce(msg).time_s) + 0.0 * b  # points kept per process
    else:
        per_layer = 0.0 * b
    return {"kv_read_bytes": kv_read, "kv_write_bytes": kv_write, "comm_per_layer_s": per_layer,
            "comm_s": dep.model.n_layers * per_layer}


def step(dep: Deployment, batch, new_tokens, context, *, prefill: bool) -> dict:
    """Roofline time of one step; every entry broadcasts over batch/new_tokens/context arrays.

    ``context`` is the cache length attended to (prefill: = new_tokens). Decode reads the cache of
    ``context`` positions and writes ``new_tokens``; prefill writes its tokens and reads no cache
    (FlashAttention keeps the tiles on chip).
    """
    b = np.asarray(batch, dtype=float)
    lq = np.asarray(new_tokens, dtype=float)
    ctx = np.asarray(context, dtype=float)
    flops = forward_flops(dep.model, b, lq, ctx, causal=prefill) / dep.tp
    w_read = dep.weights_read_per_gpu(b * lq)
    kc = kv_and_allreduce(dep, b, lq, ctx, prefill=prefill)
    kv_read, kv_write, per_layer, t_comm = kc["kv_read_bytes"], kc["kv_write_bytes"], kc["comm_per_layer_s"], \
        kc["comm_s"]
    bytes_ = w_read + kv_read + kv_write
    peak, bw = dep.peak_flops_per_s * dep.eff.flops, dep.hw.memory_bw_bytes_per_s * dep.eff.memory_bw
    t_c, t_m = flops / peak, bytes_ / bw
    # TP all-reduce overlapped with compute (an engine option): only what exceeds the roofline time stays exposed
    t_roof = np.maximum(t_c, t_m)
    exposed = np.maximum(t_comm - t_roof, 0.0) if dep.tp_overlap else t_comm
    overhead = 0.0 if prefill else dep.decode_overhead_s()
    step_s = t_roof + exposed + overhead
    return {"flops_per_gpu": flops, "bytes_per_gpu": bytes_, "weights_read_bytes": w_read, "kv_read_bytes": kv_read,
            "kv_write_bytes": kv_write, "compute_s": t_c, "memory_s": t_m, "comm_per_layer_s": per_layer,
            "comm_s": t_comm, "comm_exposed_s": exposed, "comm_hidden_s": t_comm - exposed,
            "overhead_s": overhead + 0.0 * b, "step_s": step_s, "compute_bound": t_c > t_m,
            # roofline coordinates (Williams et al. 2009): FLOP per byte moved, and the FLOP/s this step attains
            "intensity_flop_per_byte": flops / bytes_, "attained_flops_per_s": flops / step_s}


# ---------------------------------------------------------------- latency of one request batch

SRC_TTFT = "TTFT = prefill step time (whole prompt batch in one step); " + SRC_ROOFLINE
SRC_TPOT = "TPOT = decode step time at that context (one token per sequence per step); " + SRC_ROOFLINE
N_SAMPLES = 33  # contexts sampled for the mean TPOT (trapezoid; exact on each linear piece)


def _bound(flag) -> str:
    f = np.asarray(flag)
    return "compute" if f.all() else "memory" if not f.any() else "mixed"


def _time_figures(key: str, label: str, s: dict, dep: Deployment, source: str) -> list:
    """compute, memory, comm and total time of one step, each saying its bound and efficiency."""
    e = dep.eff
    peak, bw = dep.peak_flops_per_s, dep.hw.memory_bw_bytes_per_s
    figs = [derive(f"{key}/compute_s", "flops/(peak*eff_flops)", "s", SRC_ROOFLINE,
                   label=f"{label}: compute time ({dep.compute_dtype} peak x {e.flops:g})",
                   flops=s["flops_per_gpu"], peak=peak, eff_flops=e.flops),
            derive(f"{key}/memory_s", "(weights + kv_read + kv_write)/(hbm*eff_mem)", "s", SRC_ROOFLINE,
                   label=f"{label}: memory time (HBM x {e.memory_bw:g})", weights=s["weights_read_bytes"],
                   kv_read=s["kv_read_bytes"], kv_write=s["kv_write_bytes"], hbm=bw, eff_mem=e.memory_bw)]
    parts, terms = ["max(compute, memory)"], {"compute": figs[0].value, "memory": figs[1].value}
    if dep.tp > 1:
        # float64: an int64 batch x tokens x D x bytes wraps silently past 2**63 (issue #13)
        S = np.asarray(s["batch"], dtype=float) * np.asarray(s["new_tokens"], dtype=float) * dep.model.d_model \
            * dep.act_bytes
        ct = dep.tp_allreduce(S)
        how = ct.describe() if np.ndim(ct.time_s) == 0 else "NCCL-style choice per point of the sweep"
        src = SRC_AR + ("; " + SRC_CUSTOM_AR if dep.allreduce == "custom" else "")
        figs.append(derive(f"{key}/comm_per_layer_s", "2*t_allreduce", "s", src,
                           label=f"{label}: TP all-reduce time per layer (2 all-reduces of S = B·L·D·"
                                 f"{dep.act_bytes} B; {how})", shape="BLD", t_allreduce=ct.time_s))
        figs.append(derive(f"{key}/comm_s", "layers*per_layer", "s", SRC_AR,
                           label=f"{label}: TP all-reduce time per step", layers=dep.model.n_layers,
                           per_layer=figs[-1].value))
        if dep.tp_overlap:
            figs.append(derive(f"{key}/comm_exposed_s", "max(comm - max(compute, memory), 0)", "s",
                               "TP all-reduce overlapped with compute (engine overlap option): only the excess shows",
                               label=f"{label}: exposed TP all-reduce (overlapped)", comm=figs[-1].value,
                               compute=figs[0].value, memory=figs[1].value))
        else:
            figs.append(derive(f"{key}/comm_exposed_s", "comm", "s", "not overlapped (Shoeybi et al. 2019 §3: the "
                               "all-reduce sits between the row-parallel GEMM and the next layer)",
                               label=f"{label}: exposed TP all-reduce (not overlapped)", comm=figs[-1].value))
        parts.append("comm_exposed")
        terms["comm_exposed"] = figs[-1].value
    if key.startswith("tpot") or key.startswith("decode"):
        figs.append(derive(f"{key}/overhead_s", "overhead", "s", SRC_OVERHEAD if dep.step_overhead_s is None else
                           "given (--step-overhead)", label=f"{label}: fixed per-step overhead (kernel launches, "
                           f"{'CUDA graphs' if dep.cuda_graphs else 'eager'})", overhead=dep.decode_overhead_s()))
        parts.append("overhead")
        terms["overhead"] = figs[-1].value
    figs.append(derive(key, " + ".join(parts), "s", source, label=f"{label} ({_bound(s['compute_bound'])}-bound)",
                       **terms))
    return figs


def _step(dep: Deployment, batch, new_tokens, context, prefill: bool) -> dict:
    s = step(dep, batch, new_tokens, context, prefill=prefill)
    return {**s, "batch": batch, "new_tokens": new_tokens}


def decode_contexts(prompt, output):
    """Cache lengths sampled over the decode steps: prompt + 1 … prompt + output − 1."""
    start = np.asarray(prompt, dtype=float) + 1
    end = np.maximum(np.asarray(prompt, dtype=float) + np.asarray(output, dtype=float) - 1, start)
    return np.linspace(start, end, N_SAMPLES)


def decode_step_times(dep: Deployment, batch, prompt, output):
    """Decode step time at each of the N_SAMPLES contexts of :func:`decode_contexts` (first axis).

    One vectorised step over a (N_SAMPLES, *workload) grid of contexts, not N_SAMPLES calls (each call
    re-derives the FLOP table: 33 of them were most of a one-liner's 0.4 s; issue #13). Same numbers."""
    shape = np.broadcast(np.asarray(batch), np.asarray(prompt), np.asarray(output)).shape
    c = decode_contexts(prompt, output)  # (N_SAMPLES, *shape of prompt/output)
    c = np.broadcast_to(c.reshape((N_SAMPLES,) + (1,) * (len(shape) - (c.ndim - 1)) + c.shape[1:]),
                        (N_SAMPLES, *shape))
    t = step(dep, batch, 1, c, prefill=False)["step_s"]
    return np.broadcast_to(t, (N_SAMPLES, *shape))


def _decode_step_times_loop(dep: Deployment, batch, prompt, output):
    """The per-context loop the vectorised form replaced (kept for the test that they agree)."""
    return np.asarray([step(dep, batch, 1, c, prefill=False)["step_s"] for c in decode_contexts(prompt, output)])


def mean_decode_step_s(dep: Deployment, batch, prompt, output):
    """Mean decode step time over the output (trapezoid over N_SAMPLES contexts)."""
    t = decode_step_times(dep, batch, prompt, output)
    return (t[1:] + t[:-1]).sum(axis=0) / (2 * (len(t) - 1))


def first_true(pred, lo: int, hi: int, points: int = 64):
    """Smallest integer x in lo … hi with ``pred(x)``, or None; ``pred`` maps an int array to a bool array and
    is monotone (False … False True … True). Each round evaluates ``points`` candidates in ONE vectorised call
    and narrows the interval ~``points``-fold: a range of 65,536 takes 3 calls, 2**53 at most 9."""
    if not bool(pred(np.asarray([hi], dtype=np.int64))[0]):
        return None
    a, b = lo - 1, hi  # invariant: pred is False at a (or a is below the range) and True at b
    while b - a > 1:
        pts = distinct(np.linspace(a, b, points + 2)[1:-1].round().astype(np.int64))
        pts = pts[(pts > a) & (pts < b)]
        if pts.size == 0:
            break
        ok = np.asarray(pred(pts), dtype=bool)
        if not ok.any():
            a = int(pts[-1])
            continue
        i = int(np.argmax(ok))
        b, a = int(pts[i]), (int(pts[i - 1]) if i > 0 else a)
    return b


def compute_bound_batch(dep: Deployment, context, max_batch: int = 1 << 16):
    """Smallest batch at which a decode step at ``context`` turns compute-bound (None if none up to max_batch).

    A search, not a scan of every batch: compute time is linear in the batch and the bytes read are affine
    (dense) or concave (MoE: distinct experts touched saturate), so compute − memory time is convex and
    negative at batch 0: once compute-bound, every larger batch is too (:func:`first_true`).
    """
    return first_true(lambda b: step(dep, b.astype(float), 1, context, prefill=False)["compute_bound"], 1, max_batch)


def latency(dep: Deployment, batch=1, prompt=128, output=128, reserve: float = 0.1, *, knee: bool = True) -> Result:
    """TTFT, TPOT (start, mid, end, mean), end-to-end latency and tokens/s for ``batch`` requests.

    The batch is served together (static batch): one prefill step, then output − 1 decode steps.
    ``data`` keys: ttft_s, tpot_start_s, tpot_mid_s, tpot_end_s, tpot_mean_s, e2e_s,
    tokens_per_s_per_request, tokens_per_s_per_gpu, decode_bound, arithmetic_intensity_flop_per_byte,
    ridge_flop_per_byte, compute_bound_batch, weight_bytes_per_gpu, kv_bytes_per_gpu, fits.

    ``knee=False`` skips the search for ``compute_bound_batch`` (None then; no figure depends on it): for callers
    that read only the figures (summary, sheets, drills; issue #13: the search is 4 vectorised steps).
    """
    for name, v in (("--batch", batch), ("--prompt", prompt), ("--output", output)):
        check_count(v, name)
    check_number(reserve, "--reserve", low=0, low_ok=True, high=1, high_ok=False)
    m, e = dep.model, dep.eff
    figs = []
    pre = _step(dep, batch, prompt, prompt, prefill=True)
    figs.append(derive("prefill/flops", "flops", "FLOP", "llmcalc.model.flops forward_flops, causal-halved attention "
                       "(what FlashAttention executes), logits for the last position only, / tp",
                       label="prefill FLOPs per GPU",
                       flops=pre["flops_per_gpu"]))
    figs += _time_figures("ttft_s", "TTFT (prefill)", pre, dep, SRC_TTFT)
    ttft = figs[-1].value
    # decode steps run at contexts prompt+1 … prompt+output-1; at output 1 (no step) all three show what one would
    # cost at prompt+1 (the mid point was prompt+0, below the start: a user test)
    start = np.asarray(prompt) + 1
    end = np.maximum(np.asarray(prompt) + np.asarray(output) - 1, start)
    ctxs = {"start": start, "mid": np.minimum(np.maximum(np.asarray(prompt) + np.asarray(output) // 2, start), end),
            "end": end}
    tpots = {}
    for where, c in ctxs.items():
        s = _step(dep, batch, 1, c, prefill=False)
        figs += _time_figures(f"tpot_{where}_s", f"TPOT at {where} of output (context {_show(c)})", s, dep,
                              SRC_TPOT)
        tpots[where] = (figs[-1].value, s)
    t = decode_step_times(dep, batch, prompt, output)
    figs.append(derive("tpot_mean_s", "(t_first/2 + t_inner + t_last/2)/(samples - 1)", "s",
                       f"trapezoid mean of the decode step time over contexts prompt+1 … prompt+output-1, sampled at "
                       f"{N_SAMPLES} evenly spaced contexts (t_inner: sum of the {N_SAMPLES - 2} inner samples); "
                       + SRC_TPOT, label=f"TPOT, mean over the output ({e.describe()})",
                       t_first=t[0], t_inner=t[1:-1].sum(axis=0), t_last=t[-1], samples=N_SAMPLES))
    mean = figs[-1].value
    figs.append(derive("e2e_s", "ttft + (output - 1)*tpot_mean", "s", "prefill, then one decode step per token",
                       label="end-to-end latency", ttft=ttft, output=output, tpot_mean=mean))
    e2e = figs[-1].value
    figs.append(derive("tokens_per_s_per_request", "output/e2e", "token/s", "definition",
                       label="output tokens/s per request (whole request)", output=output, e2e=e2e))
    figs.append(derive("tokens_per_s_per_gpu", "B*output/(e2e*tp)", "token/s", "definition",
                       label="output tokens/s per GPU", B=batch, output=output, e2e=e2e, tp=dep.tp))
    s0 = tpots["start"][1]
    figs.append(derive("arithmetic_intensity", "flops/bytes", "FLOP/B", "Williams et al. 2009 (roofline)",
                       label="decode arithmetic intensity (start of output)", flops=s0["flops_per_gpu"],
                       bytes=s0["bytes_per_gpu"]))
    figs.append(derive("ridge", "peak/hbm", "FLOP/B", "roofline ridge point: peak FLOP/s / HBM B/s",
                       label=f"ridge point ({dep.compute_dtype}, datasheet peaks)", peak=dep.peak_flops_per_s,
                       hbm=dep.hw.memory_bw_bytes_per_s))
    from ..model.quant import parse_weights

    bpw = parse_weights(dep.weights)[1]
    figs.append(derive("compute_bound_batch_weights_only", "(peak*eff_flops)/(hbm*eff_mem)*(bpw/8)/2", "seq",
                       "2 FLOP per weight per token vs bpw/8 bytes per weight read once per step (KV reads "
                       "ignored): B* = ridge x bytes per weight / 2",
                       label="batch where decode turns compute-bound (weights only, KV ignored"
                             + ("; dense estimate, an MoE reads more bytes per FLOP)" if m.moe else ")"),
                       peak=dep.peak_flops_per_s, eff_flops=e.flops, hbm=dep.hw.memory_bw_bytes_per_s,
                       eff_mem=e.memory_bw, bpw=bpw))
    knee_weights_only = figs[-1].value
    knee_batch = compute_bound_batch(dep, int(np.max(ctxs["mid"]))) if knee and np.ndim(batch) == 0 else None
    if m.moe:
        figs.append(derive("experts_touched", "E*(1 - (1 - k/E)**T)", "expert", SRC_MOE_READ,
                           label="experts read per MoE layer per decode step", E=m.moe.n_experts,
                           k=m.moe.top_k, T=batch))
    if dep.tp > 1:
        from .kv import SRC_REPLICATED, tp_replicated_params

        rep = tp_replicated_params(m, dep.tp)
        figs.append(derive("replicated_weight_bytes_per_gpu", "(" + " + ".join(_ident(k) for k in rep) + ")*bpw/8",
                           "B", SRC_REPLICATED + "; extra params = whole x (1 - 1/tp), K/V x (1/G - 1/tp)",
                           label="weights every TP rank holds beyond its 1/tp share (read each step)",
                           bpw=dep._weights()["bits_per_weight"], **{_ident(k): v for k, v in rep.items()}))
    w_gpu = dep.weight_bytes_per_gpu
    final_ctx = np.asarray(prompt) + np.asarray(output)
    kv = np.asarray(batch) * kv_bytes_per_request_per_gpu(m, final_ctx, dep.kv_dtype, dep.tp)
    fits = w_gpu + kv <= dep.hw.memory_bytes * (1 - reserve)  # the same reserve as fit, sweep and serve
    notes = [e.describe(), f"weights {dep.weights_name}, KV {dep.kv_dtype}, compute at the {dep.compute_dtype} "
             "peak" + (" (weight-only quantisation saves bytes, not FLOPs)" if dep.compute_dtype == "bf16" and
                       dep.weights_name != "bf16" else ""),
             "static batch: all requests prefill together, then decode in lock-step",
             f"fits: weights + KV at prompt + output <= memory x (1 - {reserve:g} reserve), as fit/sweep/serve",
             "activation traffic is ignored; decode steps carry a fixed kernel-launch overhead ("
             + ("CUDA graphs" if dep.cuda_graphs else "eager launches") + ")",
             "TP all-reduce: " + ("vLLM/TensorRT-LLM-style custom one-shot/two-shot kernel where faster than NCCL"
                                  if dep.allreduce == "custom" else "NCCL's tuning model (serving engines use "
                                  "custom one-shot kernels for small messages on NVLink: --allreduce custom)")
             + ("; overlapped with compute" if dep.tp_overlap else "; exposed (not overlapped)")]
    if dep.latency_scale != 1:
        notes.append(f"latency terms × {dep.latency_scale:g}"
                     + (" (roofline: efficiency 1 and latency 0)" if dep.latency_scale == 0 else ""))
    if m.attention.mla:
        notes.append("MLA decode counted in the absorbed form (DeepSeek-V2 §2.1.3)")
    if np.any(np.asarray(output) == 1):
        notes.append("output 1: no decode step follows the prefill (its one token comes with it); the TPOT lines "
                     "show what a first decode step would cost")
    warn = m.past_positions(final_ctx, "prompt + output")
    if warn:
        notes.append(warn)
    if not np.all(fits):
        notes.append(f"WARNING: weights + KV exceed the accelerator's memory less the {reserve:.0%} reserve at "
                     "this batch and context")
    data = {"model": m.name, "hardware": dep.hw.name, "tp": dep.tp, "batch": batch, "prompt": prompt,
            "output": output, "reserve": reserve, "weights": dep.weights_name, "kv_dtype": dep.kv_dtype,
            "compute_dtype": dep.compute_dtype, "efficiency": {"flops": e.flops, "memory_bw": e.memory_bw,
                                                              "link": e.link},
            "ttft_s": ttft, "ttft_bound": _bound(pre["compute_bound"]),
            **{f"tpot_{k}_s": v[0] for k, v in tpots.items()}, "tpot_mean_s": mean,
            "decode_bound": _bound(s0["compute_bound"]), "e2e_s": e2e,
            "tokens_per_s_per_request": figs[[f.key for f in figs].index("tokens_per_s_per_request")].value,
            "tokens_per_s_per_gpu": figs[[f.key for f in figs].index("tokens_per_s_per_gpu")].value,
            "arithmetic_intensity_flop_per_byte": s0["flops_per_gpu"] / s0["bytes_per_gpu"],
            "ridge_flop_per_byte": dep.peak_flops_per_s / dep.hw.memory_bw_bytes_per_s,
            "compute_bound_batch": knee_batch, "compute_bound_batch_weights_only": knee_weights_only,
            "weight_bytes_per_gpu": w_gpu, "kv_bytes_per_gpu": kv, "fits": fits}
    title = (f"Latency of {m.display_name} on {dep.tp} x {dep.hw.display_name}: batch {_show(batch)}, "
             f"prompt {_show(prompt)}, output {_show(output)}")
    if np.ndim(fits) == 0 and not fits:  # the verdict first, as step and memory do: never a plain latency
        from ..core.units import fmt

        title = (f"DOES NOT FIT: weights + KV need {fmt(float(w_gpu + kv), 'B')} per GPU of "
                 f"{fmt(dep.hw.memory_bytes * (1 - reserve), 'B')} usable ({reserve:.0%} reserved) — {title} "
                 "(latencies below are hypothetical)")
    return Result(title, tuple(figs), tuple(notes), data)


def _ident(part: str) -> str:
    """'moe/router' -> 'moe_router' (a name a derive formula can use)."""
    return part.replace("/", "_")


def _show(v) -> str:
    return f"{int(v):,}" if np.ndim(v) == 0 else "sweep"
