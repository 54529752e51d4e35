"""Validated, frozen specs: a model's architecture and an accelerator's datasheet.

Quantities are written with units in YAML ("80 GiB", "450 GB/s") and stored as floats in SI base
units; field names carry the unit (``memory_bytes``, ``memory_bw_bytes_per_s``). Unknown fields are
rejected. Validation happens once, here; calculators trust these objects.
"""

from __future__ import annotations

from typing import Annotated, Literal

from . import units
from .record import Before, Field, Record, field_validator, model_validator

TINY_SI = 1e-12  # below this a positive quantity is a typo, and dividing by it overflows (1e-320 TB/s: fuzz)


def quantity_value(v, yaml: bool, dim: units.Dim, per_si: float = 1.0) -> float:
    """A quantity field's value in SI units (``per_si`` rescales to the field's unit: 3600 for per-hour prices).
    From YAML a bare number is ambiguous ("80" GB or GiB?); from Python it means the field's unit. Finite
    (:func:`units.parse` refuses inf, NaN and an int past float's range) and, when positive, at least TINY_SI."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if yaml:
            raise ValueError(f"{v!r} has no unit; write it with one, as a {units.DIM_NAMES[dim]}")
        si = units.parse(v)
    else:
        si = units.parse(v, dim) * per_si
    if 0 < si < TINY_SI:
        raise ValueError(f"{v!r} is below {TINY_SI:g} in SI units: too small to be real, and it would overflow the "
                         "calculators")
    return si


def _quantity(dim: units.Dim, per_si: float = 1.0) -> Before:
    return Before(lambda v, context: quantity_value(v, bool(context.get("yaml")), dim, per_si))


Bytes = Annotated[float, _quantity(units.BYTES), Field(gt=0)]
BytesPerS = Annotated[float, _quantity(units.BYTES_PER_S), Field(gt=0)]
FlopPerS = Annotated[float, _quantity(units.FLOP_PER_S), Field(gt=0)]
Watts = Annotated[float, _quantity(units.WATTS), Field(gt=0)]
Seconds = Annotated[float, _quantity(units.SECONDS), Field(ge=0)]
UsdPerHour = Annotated[float, _quantity(units.USD_PER_HOUR, per_si=3600.0), Field(gt=0)]  # USD per hour


class Spec(Record):
    """Frozen; unknown fields rejected; strict: `n_layers: true` is not 1 layer, 4096.0 or "4096" is not a count,
    `num_key_value_heads: true` is not MQA (issue #13); quantities parse their own strings (llmcalc.core.record)."""


# ============================================================== hardware

DType = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4"]


# NCCL's per-hop hardware latencies in µs (NVIDIA/nccl v2.30.7 src/graph/tuning.cc, hwLatencies), per fabric and
# algorithm_protocol: the default for a link whose YAML records its fabric but no hop_latency of its own.
NCCL_HOP_LATENCY_US = {
    "nvlink": {"ring_ll": 0.6, "ring_ll128": 1.9, "ring_simple": 3.4, "tree_ll": 0.6, "tree_ll128": 1.25,
               "tree_simple": 4.0, "nvls_simple": 25.0},
    "pcie": {"ring_ll": 1.0, "ring_ll128": 2.5, "ring_simple": 5.7, "tree_ll": 1.0, "tree_ll128": 1.9,
             "tree_simple": 4.0},
    "net": {"ring_ll": 2.7, "ring_ll128": 4.0, "ring_simple": 14.0, "tree_ll": 5.0, "tree_ll128": 8.5,
            "tree_simple": 14.0, "nvls_simple": 18.0, "nvls_tree_simple": 20.9}}
_NCCL_FABRIC = {"nvlink": "nvlink", "pcie": "pcie", "infiniband": "net", "roce": "net", "ethernet": "net"}


class Link(Spec):
    """A link's bandwidth, per device, always with its direction stated, and how a group of n devices shares it.

    ``topology`` says what a ring collective over n devices of the domain can use
    (:meth:`ring_bw_per_direction`):

    - ``switch`` (NVLink via NVSwitch): every device reaches the switch at the full per-direction figure,
      whatever the group size (scaling book gpus.md: 450 GB/s per GPU each way on H100);
    - ``full_mesh`` (AMD xGMI, no switch): one direct link per peer, so a group of n gets
      min(aggregate, (n − 1)·per_peer) (AMD MI300X: 7 links × 64 GB/s; stas00 measured busbw 47.7 GB/s with
      2 GPUs vs 312.9 with 8);
    - ``torus`` (TPU ICI): ``per_link`` one-way per port; a bidirectional ring along one axis with wraparound
      uses that axis's 2 links; the group fills one axis (``axis_size`` chips) before spanning the next, and
      a group shorter than an axis is a line without wraparound, 1 link (scaling book tpus.md: per-link
      one-way figures; wraparound only on full axes; meshes roughly halve collective bandwidth).
    """

    name: str = Field("", description="e.g. 'NVLink 4', 'ICI', 'InfiniBand NDR'")
    bw_bytes_per_s: BytesPerS = Field(description="bandwidth as quoted, e.g. '900 GB/s' (aggregate over all links)")
    direction: Literal["per_direction", "bidirectional"] = Field(
        description="per_direction: each way at once; bidirectional: both ways summed (vendors' usual figure)")
    domain_size: int = Field(1, ge=1, description="devices reachable at this bandwidth (NVLink domain, TPU slice)")
    topology: Literal["switch", "full_mesh", "torus"] = Field(
        "switch", description="switch: full bandwidth to any group; full_mesh: per-peer links; torus: per-axis links")
    per_peer_bytes_per_s: BytesPerS | None = Field(
        None, description="full_mesh: one direction of the link to ONE peer, e.g. '64 GB/s'")
    per_link_bytes_per_s: BytesPerS | None = Field(
        None, description="torus: one direction of ONE link (port), e.g. '45 GB/s'")
    axis_size: int | None = Field(None, ge=2, description="torus: devices along one axis with wraparound (16)")
    fabric: Literal["nvlink", "pcie", "xgmi", "infiniband", "roce", "ethernet", "ici", "dcn"] | None = Field(
        None, description="what the link is, for the collective model's per-hop latencies (llmcalc.network)")
    hop_latency: dict[Literal["ring_ll", "ring_ll128", "ring_simple", "tree_ll", "tree_ll128", "tree_simple",
                              "nvls_simple", "nvls_tree_simple"], Seconds] = Field(
        default_factory=dict, description="per-hop latency per algorithm_protocol, e.g. ring_simple: '3.4 us' "
                                          "(NCCL tuning.cc hwLatencies for this fabric)")
    nvls: bool = Field(False, description="NVLink SHARP: the switch reduces (NCCL's NVLS algorithm)")
    nccl_arch: Literal["volta", "ampere", "hopper", "blackwell"] | None = Field(
        None, description="GPU generation row of NCCL's tuning tables (LL bandwidth caps, NVLS efficiency)")

    @model_validator(mode="after")
    def _topology_needs_its_numbers(self):
        if self.topology == "full_mesh" and self.per_peer_bytes_per_s is None:
            raise ValueError("topology full_mesh needs per_peer_bytes_per_s (one direction, one peer)")
        if self.topology == "torus" and (self.per_link_bytes_per_s is None or self.axis_size is None):
            raise ValueError("topology torus needs per_link_bytes_per_s (one-way, one link) and axis_size")
        return self

    def fabric_kind(self) -> str | None:
        """The fabric, as recorded, or read from the link's name (NVLink, PCIe, InfiniBand/RoCE/Ethernet)."""
        if self.fabric:
            return self.fabric
        n = self.name.lower()
        for word, kind in (("nvlink", "nvlink"), ("pcie", "pcie"), ("infiniband", "infiniband"), ("roce", "roce"),
                           ("ethernet", "ethernet"), ("xgmi", "xgmi"), ("ici", "ici"), ("dcn", "dcn")):
            if word in n:
                return kind
        return None

    def hop_latency_s(self, algorithm: str, protocol: str, default_fabric: str | None = None) -> float:
        """Per-hop latency (s) for an algorithm (ring, tree, nvls, nvls_tree) and protocol (ll, ll128, simple):
        the YAML's ``hop_latency`` entry; else, for an NCCL fabric (NVLink, PCIe, a network), NCCL's own
        hwLatencies for it (NVIDIA/nccl v2.30.7 src/graph/tuning.cc); a link that records only ring_simple uses
        it for every pair. ``default_fabric`` names the fabric to assume when the link does not say (a scale-out
        link is a network: NCCL prices every inter-node hop with its NET row). Otherwise an unknown fabric with
        no recorded latency is an error."""
        key = f"{algorithm}_{protocol}"
        if key in self.hop_latency:
            return self.hop_latency[key]
        table = NCCL_HOP_LATENCY_US.get(_NCCL_FABRIC.get(self.fabric_kind() or default_fabric or "", ""), {})
        if not self.hop_latency and key in table:
            return table[key] * 1e-6
        if "ring_simple" in self.hop_latency:
            return self.hop_latency["ring_simple"]
        if key in table or "ring_simple" in table:
            return table.get(key, table["ring_simple"]) * 1e-6
        from .errors import LlmcalcError

        raise LlmcalcError(f"the {self.name or 'link'} block records no hop_latency and no known fabric; add e.g. "
                           "'fabric: nvlink' or 'hop_latency: {ring_simple: 3.4 us}' with its source to the "
                           "hardware YAML")

    @property
    def per_direction_bytes_per_s(self) -> float:
        """The aggregate per direction: what a device can send at once over all its links."""
        return self.bw_bytes_per_s / (2 if self.direction == "bidirectional" else 1)

    def ring_bw_per_direction(self, n):
        """Per-direction bandwidth a ring collective (or all-to-all) over ``n`` devices of the domain can use.
        ``n`` may be a numpy array; scalars give a float."""
        import numpy as np

        agg = self.per_direction_bytes_per_s
        n_arr = np.asarray(n, dtype=float)
        if self.topology == "full_mesh":
            bw = np.minimum(agg, np.maximum(n_arr - 1, 1) * self.per_peer_bytes_per_s)
        elif self.topology == "torus":
            a, n_axes = self.axis_size, max(1, round(agg / self.per_link_bytes_per_s) // 2)  # ports / 2
            spanned = 1 + sum((n_arr > a**k).astype(float) for k in range(1, n_axes))  # fill one axis, then the next
            links = np.where(n_arr < a, 1, 2 * spanned)  # shorter than an axis: a line, no wraparound
            bw = np.minimum(agg, links * self.per_link_bytes_per_s)
        else:
            bw = np.full_like(n_arr, agg)
        return float(bw) if bw.ndim == 0 else bw


Fraction = Annotated[float, Field(gt=0, le=1)]


class HardwareEfficiency(Spec):
    """Fractions of the DENSE peak that training kernels reach on this accelerator (llmcalc.core.efficiency).
    Each block needs a matching ``sources: efficiency:`` citation saying which runs calibrate it."""

    matmul: Fraction = Field(description="dense matmuls + elementwise at a wide GEMM (before the width term)")
    attention_flash: Fraction = Field(description="FlashAttention forward+backward, masked blocks skipped")
    attention_unfused: Fraction | None = Field(None, description="unfused attention core (scores materialised)")
    moe: Fraction | None = Field(None, description="multiplier on matmul for MoE layers (None: the default)")


class Hardware(Spec):
    name: str = Field(description="catalogue key, lower-case, e.g. 'h100-sxm'")
    display_name: str
    vendor: str
    peak_flops_per_s: dict[DType, FlopPerS] = Field(
        description="DENSE peak per data type (no 2:4 sparsity); int8/int4 in OP/s")
    efficiency: HardwareEfficiency | None = Field(
        None, description="measured training efficiencies (fractions of the dense peak); None: generation default")
    memory_bytes: Bytes = Field(description="capacity as the device reports it (nvidia-smi memory.total)")
    memory_marketed: str = Field("", description="the vendor's label, e.g. '80 GB HBM3' (informative)")
    memory_bw_bytes_per_s: BytesPerS
    scale_up: Link = Field(description="NVLink / ICI / xGMI link of one device, and its domain size")
    scale_out: Link | None = Field(None, description="network bandwidth per device (InfiniBand, DCN)")
    host_link_bw_bytes_per_s: BytesPerS | None = Field(
        None, description="device-host link (PCIe) bandwidth PER DIRECTION; used by optimizer offload")
    tdp_watts: Watts | None = None
    price_usd_per_hour: UsdPerHour | None = Field(None, description="indicative on-demand price; volatile")
    price_date: str | None = Field(None, pattern=r"^\d{4}-\d{2}(-\d{2})?$",
                                   description="when price_usd_per_hour was listed (YYYY-MM or YYYY-MM-DD)")
    notes: str = ""
    sources: dict[str, str] = Field(description="field name -> citation, one for every number above")

    @model_validator(mode="after")
    def _efficiency_cited(self):
        if self.efficiency is not None and not self.sources.get("efficiency"):
            raise ValueError("an efficiency block needs a 'sources: efficiency:' citation (which runs calibrate it)")
        return self

    @field_validator("price_date", mode="before")
    @classmethod
    def _date_text(cls, v):
        return v.isoformat() if hasattr(v, "isoformat") else v  # a datetime.date from Python

    @field_validator("price_date")
    @classmethod
    def _real_date(cls, v: str | None) -> str | None:
        import datetime

        if v is not None:
            try:
                datetime.date.fromisoformat(v if len(v) > 7 else v + "-01")
            except ValueError:
                raise ValueError(f"{v!r} is not a calendar date") from None
        return v

    @field_validator("peak_flops_per_s")
    @classmethod
    def _needs_16bit(cls, v: dict) -> dict:
        if not any(k in v for k in ("bf16", "fp16")):
            raise ValueError("needs a 16-bit peak (bf16 or fp16): every calculator defaults to it")
        return v

    @property
    def span_limit(self) -> int | None:
        """The most devices one job or one replica may span: its scale-up domain when the entry records no
        scale-out link (nothing to join two domains over), else None (no limit). The one statement of that rule:
        `plan` refuses a bigger job, `train` says it cannot be timed, `plan-serve` keeps replicas inside."""
        return self.scale_up.domain_size if self.scale_out is None else None

    def peak(self, dtype: str = "bf16") -> float:
        """Dense peak FLOP/s for ``dtype``; bf16 and fp16 stand in for each other."""
        table = self.peak_flops_per_s
        alias = {"bf16": "fp16", "fp16": "bf16"}
        if dtype in table:
            return table[dtype]
        if dtype in alias and alias[dtype] in table:
            return table[alias[dtype]]
        from .errors import LlmcalcError

        raise LlmcalcError(f"{self.display_name} has no {dtype} peak; it has {', '.join(table)}")


# ============================================================== model


class MLA(Spec):
    """Multi-head latent attention (DeepSeek-V2 §2.1, DeepSeek-V3 §2.1.1)."""

    q_lora_rank: int | None = Field(None, ge=1, description="query down-projection rank; None = plain W_q")
    kv_lora_rank: int = Field(ge=1, description="C: compressed key/value latent width")
    qk_nope_head_dim: int = Field(ge=1)
    qk_rope_head_dim: int = Field(ge=1, description="R: decoupled rotary key width, shared by all heads")
    v_head_dim: int = Field(ge=1)


class Attention(Spec):
    n_heads: int = Field(ge=1, description="H")
    n_kv_heads: int = Field(ge=1, description="G: key/value heads (= H for MHA, 1 for MQA)")
    head_dim: int = Field(ge=1, description="K: may differ from d_model/H (Gemma-2)")
    v_head_dim: int | None = Field(None, ge=1, description="value head size when it differs from K")
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = Field(False, description="RMSNorm over each head's q and k (Qwen3)")
    sliding_window: int | None = Field(None, ge=1, description="tokens a sliding-window layer attends to")
    sliding_layers: Literal["all", "alternate"] | list[int] = Field(
        "all", description="which layers slide: all, alternate (0, 2, 4, … local; Gemma-2), or a list")
    mla: MLA | None = None

    @model_validator(mode="after")
    def _kv_divides(self):
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_kv_heads ({self.n_kv_heads}) must divide n_heads ({self.n_heads})")
        return self

    @property
    def v_dim(self) -> int:
        if self.mla:
            return self.mla.v_head_dim
        return self.v_head_dim or self.head_dim

    @property
    def qk_dim(self) -> int:
        if self.mla:
            return self.mla.qk_nope_head_dim + self.mla.qk_rope_head_dim
        return self.head_dim


class MLP(Spec):
    d_ff: int = Field(ge=1, description="F: intermediate width (per gate for gated MLPs)")
    gated: bool = Field(description="True: SwiGLU/GeGLU with gate, up, down (3 matrices); False: up, down")
    activation: str = "silu"
    bias: bool = False


class MoE(Spec):
    n_experts: int = Field(ge=1, description="E: routed experts per MoE layer")
    top_k: int = Field(ge=1, description="routed experts per token")
    d_ff_expert: int = Field(ge=1, description="each routed expert's intermediate width")
    n_shared_experts: int = Field(0, ge=0)
    d_ff_shared: int | None = Field(None, ge=1, description="shared experts' total width; default n_shared·d_ff_expert")
    dense_layers: list[int] = Field(default_factory=list,
                                    description="layers with a dense MLP instead (0-based)")
    router_bias: bool = False

    @model_validator(mode="after")
    def _k_le_e(self):
        if self.top_k > self.n_experts:
            raise ValueError(f"top_k ({self.top_k}) exceeds n_experts ({self.n_experts})")
        return self

    @property
    def shared_width(self) -> int:
        return self.d_ff_shared or self.n_shared_experts * self.d_ff_expert


class Norm(Spec):
    kind: Literal["rmsnorm", "layernorm"]
    per_layer: int = Field(2, ge=0, description="norms per block (2 pre-norm; 4 for Gemma-2's pre+post)")
    final: bool = True

    @property
    def params_each_per_width(self) -> int:
        return 2 if self.kind == "layernorm" else 1  # LayerNorm has a bias


class Model(Spec):
    name: str
    display_name: str
    hf_model_type: str = Field("", description="config.json model_type this maps to, if any")
    d_model: int = Field(ge=1, description="D")
    n_layers: int = Field(ge=1, le=1 << 16, description="calculators loop over layers; the deepest published model "
                          "has < 200")
    vocab_size: int = Field(ge=1, description="V: rows of the embedding matrix (padded vocabulary)")
    max_seq_len: int = Field(ge=1)
    tie_embeddings: bool
    position: Literal["rope", "learned"] = "rope"
    attention: Attention
    mlp: MLP = Field(description="the dense MLP (all layers, or the dense layers of an MoE)")
    moe: MoE | None = None
    norm: Norm
    notes: str = ""
    sources: dict[str, str] = Field(description="field -> citation (config.json, paper table)")

    @model_validator(mode="after")
    def _size_in_range(self):
        # Counts are exact Python ints until numpy meets them; past 2**62 numpy turns them into object arrays or
        # wraps. No real model is within a factor 10^6 of this bound (issue #13: arithmetic must not overflow).
        a, moe = self.attention, self.moe
        mlp = 3 * self.mlp.d_ff
        if moe:
            mlp = max(mlp, 3 * moe.d_ff_expert * (moe.n_experts + moe.n_shared_experts) + 3 * (moe.d_ff_shared or 0))
        per_layer = self.d_model * (mlp + 2 * (a.n_heads + a.n_kv_heads) * max(a.head_dim, a.v_head_dim or 1))
        approx = self.n_layers * per_layer + 2 * self.vocab_size * self.d_model
        if approx > 2**62:
            raise ValueError(f"about {approx:.3g} parameters: too large to count in 64-bit arithmetic")
        return self

    @model_validator(mode="after")
    def _layers_in_range(self):
        if self.moe and any(not 0 <= i < self.n_layers for i in self.moe.dense_layers):
            raise ValueError(f"moe.dense_layers must lie in 0..{self.n_layers - 1}")
        if isinstance(self.attention.sliding_layers, list) and any(
                not 0 <= i < self.n_layers for i in self.attention.sliding_layers):
            raise ValueError(f"attention.sliding_layers must lie in 0..{self.n_layers - 1}")
        return self

    # ---- layer structure, used by every calculator
    @property
    def n_moe_layers(self) -> int:
        return 0 if not self.moe else self.n_layers - len(set(self.moe.dense_layers))

    @property
    def n_dense_layers(self) -> int:
        return self.n_layers - self.n_moe_layers

    def is_sliding(self, layer: int) -> bool:
        a = self.attention
        if a.sliding_window is None:
            return False
        if a.sliding_layers == "all":
            return True
        if a.sliding_layers == "alternate":
            return layer % 2 == 0  # HF Gemma2: is_sliding = not bool(layer_idx % 2)
        return layer in a.sliding_layers

    def past_positions(self, length, what: str = "context") -> str | None:
        """The one warning for a ``length`` (scalar or sweep) beyond the positions the model was built for: the
        bytes and FLOPs are still computed (a what-if), the model cannot attend that far. None within them."""
        import numpy as np

        if np.any(np.asarray(length) > self.max_seq_len):
            return f"WARNING: {what} exceeds the model's {self.max_seq_len:,} positions"
        return None

    @property
    def n_sliding_layers(self) -> int:
        a = self.attention
        if a.sliding_window is None:
            return 0
        if a.sliding_layers == "all":
            return self.n_layers
        if a.sliding_layers == "alternate":
            return (self.n_layers + 1) // 2  # layers 0, 2, 4, ...
        return len(set(a.sliding_layers))
