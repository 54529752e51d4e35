"""Efficiency factors: the fraction of a datasheet peak that real kernels reach.

A roofline says what the hardware could do; an efficiency factor says how much of it a real
kernel gets. We keep the two apart so that every latency figure can say which bound produced it
and which factor scaled it (formulas.md: "Report the bound and the efficiency factor separately").

Defaults and where they come from (judgements are marked as such):

- ``flops = 0.80``: measured. Stas Bekman's Maximum Achievable Matmul FLOPS table
  (stas00/ml-engineering, compute/accelerator/README.md, "Maximum Achievable Matmul FLOPS
  comparison table"): H100 SXM 792.1 of 989 TFLOP/s bf16 = 80.1 %, A100 SXM 267.9 of 312 = 85.9 %,
  GH200 83.0 %. This is the best large-GEMM ceiling; small or skinny GEMMs get less, so it is an
  optimistic default.
- ``memory_bw = 0.85``: a JUDGEMENT, not a measurement we could cite. Streaming copy kernels on
  HBM GPUs are commonly reported at ~85-92 % of the datasheet bandwidth; decode kernels with
  paged/irregular KV reads get less. We picked 0.85 and say so wherever it is used.
- ``link = 0.80``: measured. NCCL maintainers report ~370 GB/s ring all-reduce bus bandwidth on
  H100 NVLink 4 (450 GB/s per direction) = 82 %; Stas Bekman measured 235 GB/s busbw on A100
  NVLink 3 (300 GB/s per direction) = 78 % (stas00/ml-engineering network/README.md).

``ROOFLINE = Efficiency(1, 1, 1)`` is the pure-roofline mode (``--roofline``).

:func:`check_number` is the range check every inference and serving input passes through at the
calculator edge (finite, in range, message naming the option and the plain value).

Training steps use :class:`TrainingEfficiency` (one set per accelerator generation, in the hardware YAML's
``efficiency:`` block, or :data:`GENERATION_DEFAULTS` where an accelerator has no published measurement). The
compute time of a training step splits into two kinds of kernels:

- the dense matmuls (and the elementwise kernels around them) at ``matmul × w/(w + GEMM_HALF_WIDTH)`` of the
  dense peak, with w = d_model/tp, the narrow side of each tensor-parallel GEMM. A matmul's tiles and waves
  quantise (NVIDIA, "Matrix Multiplication Background User's Guide": tile and wave quantization) and its
  fixed costs weigh more when it is thin, so high TP and small widths reach less of the peak
  (Megatron-LM README, weak scaling: "larger GEMMs have higher arithmetic intensity and are consequently more
  efficient"); the saturating form and GEMM_HALF_WIDTH are a FITTED curve (calibrated, see below);
- the attention core (QKᵀ and AV, forward, backward and any re-run) at ``attention_flash`` of the peak for
  FlashAttention, which also skips the masked half of causal attention (Dao 2023, FlashAttention-2 §3.1.1:
  blocks above the diagonal are not computed), or at ``attention_unfused`` for the unfused kernels of
  Megatron-LM 2021-2022 (the full L×L rectangle, scores materialised, softmax memory-bound).

Calibration and test sets are kept apart (benchmarks/report_training.py prints both; --refit re-runs the fit):
- A100 ``matmul``, ``attention_unfused`` and the shared GEMM_HALF_WIDTH: fitted by least squares
  (llmcalc.validation.calibrate) on Korthikanti et al. 2022 Table 5's 175B and 22B selective-recompute rows and
  Narayanan et al. 2021 Table 1's 3.6B row (unfused attention); then A100 ``attention_flash`` on MosaicML
  llm-foundry's A100 MPT-7B and MPT-1B rows at 32K tokens; TESTED on Korthikanti's full-recompute, 530B and 1T
  rows, Narayanan Table 1's other rows and MosaicML's other A100 rows;
- H100 ``matmul`` and ``attention_flash``: fitted JOINTLY (least squares, GEMM half width fixed from A100) on every
  second row, in the printed order, of the Megatron-Core r0.8.0 H100 weak-scaling table (README image
  images/model_table.png: 1.7B, 16B, 70B, 177B, 462B) and of MosaicML llm-foundry's H100 table (its 1st, 3rd, ...
  rows); TESTED on the other rows of both tables (7.1B, one of the issue's acceptance rows, is held out);
- ``attention_flash``: A100's 0.263 and H100's 0.164 are fitted on published end-to-end runs, well below
  FlashAttention kernel microbenchmarks (FlashAttention-2: 50-73% of the A100 peak forward, Dao 2023; H100
  ~290-430 TFLOP/s forward, pytorch/benchmark PR #2296): the effective rate of a whole training step's attention;
- TPU v4 ``matmul``: PaLM's 57.8% HFU (Chowdhery et al. 2022 §4.1) divided by the width factor at PaLM's
  d_model/model-parallel = 18432/12 = 1536; derived from one run, no held-out TPU case;
- MoE layers: ``moe`` multiplies the dense matmul efficiency; default from DeepSeek-V3 (H800, FP8 training):
  180K GPU-hours per trillion tokens = 6·37e9·1e12/(180e3·3600) = 343 TFLOP/s = 34.7% of the 989 TFLOP/s bf16
  dense peak, against ~47% for a dense run on the same GPUs (Megatron-Core table): 0.74. A ratio of two runs,
  not a measurement of one kernel: a judgement, said where it is used.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import MIN_FRACTION
from .errors import LlmcalcError

SOURCE_FLOPS = "Bekman, ml-engineering, Maximum Achievable Matmul FLOPS table (H100 SXM 792.1/989 TFLOP/s = 80%)"
SOURCE_MEMORY = "judgement: copy kernels reach ~85-92% of datasheet HBM bandwidth; decode kernels less"
SOURCE_LINK = "NCCL maintainers: ~370 GB/s busbw on 450 GB/s H100 NVLink; Bekman: 235/300 GB/s on A100"


@dataclass(frozen=True)
class Efficiency:
    """Fractions (0 < x <= 1) of peak FLOP/s, HBM bandwidth and scale-up link bandwidth."""

    flops: float = 0.80
    memory_bw: float = 0.85
    link: float = 0.80

    def __post_init__(self):
        for name in ("flops", "memory_bw", "link"):
            v = getattr(self, name)
            if not MIN_FRACTION <= v <= 1:  # core.checks' one rule for fractions (a denormal overflows times)
                raise LlmcalcError(f"efficiency {name} must lie in [{MIN_FRACTION:g}, 1], got {v!r}")

    @property
    def is_roofline(self) -> bool:
        return self.flops == self.memory_bw == self.link == 1

    def describe(self) -> str:
        if self.is_roofline:
            return "pure roofline (efficiency 1 for FLOP/s, HBM and links)"
        return (f"efficiency: {self.flops:g} of peak FLOP/s, {self.memory_bw:g} of HBM bandwidth, "
                f"{self.link:g} of link bandwidth")


DEFAULT_EFFICIENCY = Efficiency()
ROOFLINE = Efficiency(1.0, 1.0, 1.0)


def parse_efficiency(flops: float | None = None, memory_bw: float | None = None, link: float | None = None,
                     roofline: bool = False) -> Efficiency:
    """Efficiency from CLI overrides (``--eff-flops 0.6 --eff-mem 0.8 --eff-link 0.8``, ``--roofline``)."""
    if roofline:
        if any(v is not None for v in (flops, memory_bw, link)):
            raise LlmcalcError("--roofline sets every efficiency to 1; drop --eff-flops/--eff-mem/--eff-link "
                               "or drop --roofline")
        return ROOFLINE
    d = DEFAULT_EFFICIENCY
    from .checks import check_fraction

    for opt, v in (("--eff-flops", flops), ("--eff-mem", memory_bw), ("--eff-link", link)):
        check_fraction(v, opt)
    return Efficiency(d.flops if flops is None else flops, d.memory_bw if memory_bw is None else memory_bw,
                      d.link if link is None else link)


# ---------------------------------------------------------------- training: per generation and per kernel

# w/(w + GEMM_HALF_WIDTH) with w = d_model/tp: a fitted curve (see the module docstring for the calibration set).
GEMM_HALF_WIDTH = 168.0
SOURCE_HALF_WIDTH = ("fitted (llmcalc.validation.calibrate) on Korthikanti et al. 2022 Table 5 175B/22B and "
                     "Narayanan et al. 2021 Table 1 3.6B (167.8, shipped 168); the mechanism: NVIDIA Matrix "
                     "Multiplication Background guide (tile/wave quantization), Megatron-LM README weak scaling "
                     "('larger GEMMs ... more efficient')")
SOURCE_MOE = ("judgement from two runs: DeepSeek-V3 (6·37e9 FLOPs/token at 180K H800-hours per 1e12 tokens = 343 "
              "TFLOP/s = 34.7% of the bf16 peak) vs ~47% for dense Megatron-Core runs on H100: 0.74")
MOE_DEFAULT = 0.74


@dataclass(frozen=True)
class TrainingEfficiency:
    """Fractions of the dense peak that a training step's kernels reach, and where they came from.

    ``matmul``: dense matmuls + their elementwise kernels at an infinitely wide GEMM (scaled by
    :meth:`width_factor`); ``attention_flash`` / ``attention_unfused``: the attention core (QKᵀ, AV) as
    FlashAttention or the unfused kernels execute it; ``moe``: multiplier on ``matmul`` for MoE layers.
    ``flat`` (``--compute-efficiency``) replaces all of them with one fraction, no width term.
    """

    matmul: float
    attention_flash: float
    attention_unfused: float
    moe: float = MOE_DEFAULT
    half_width: float = GEMM_HALF_WIDTH
    origin: str = ""
    source: str = ""
    flat: float | None = None

    def __post_init__(self):
        for name in ("matmul", "attention_flash", "attention_unfused", "moe"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and MIN_FRACTION <= v <= 1):
                raise LlmcalcError(f"training efficiency {name} must be a fraction in [{MIN_FRACTION:g}, 1], got {v!r} "
                                   f"({self.origin or 'efficiency'})")
        if not (self.half_width >= 0 and self.half_width < float("inf")):
            raise LlmcalcError(f"GEMM half width must be a finite number >= 0, got {self.half_width!r}")

    def width_factor(self, width):
        """w/(w + half_width): thin GEMMs (small d_model/tp) reach less of the peak. Arrays welcome."""
        if self.flat is not None:
            return 1.0
        return width / (width + self.half_width)

    def matmul_at(self, width, moe_share=0.0):
        """Dense-matmul efficiency at GEMM width ``width``; ``moe_share`` of the work in MoE layers."""
        if self.flat is not None:
            return self.flat
        dense = self.matmul * self.width_factor(width)
        # time-weighted: a share s of the work at efficiency moe·e, the rest at e
        return dense / (1 - moe_share + moe_share / self.moe)

    def attention(self, kernel: str):
        if self.flat is not None:
            return self.flat
        return self.attention_flash if kernel == "flash" else self.attention_unfused

    def describe(self) -> str:
        if self.flat is not None:
            return f"one flat compute efficiency {self.flat:g} of the dense peak ({self.origin})"
        return (f"matmul {self.matmul:g} × w/(w + {self.half_width:g}), attention {self.attention_flash:g} "
                f"(FlashAttention) / {self.attention_unfused:g} (unfused), MoE × {self.moe:g} — {self.origin}")

    def as_dict(self) -> dict:
        return {"matmul": self.matmul, "attention_flash": self.attention_flash,
                "attention_unfused": self.attention_unfused, "moe": self.moe, "half_width": self.half_width,
                "origin": self.origin, "source": self.source, "flat": self.flat}


# Accelerators without a published training measurement take their family's measured set, and say so.
GENERATION_DEFAULT_FROM = {"Google": "tpu-v4"}
GENERATION_DEFAULT_FALLBACK = "h100-sxm"


def training_efficiency(hw, *, flat: float | None = None, profile: TrainingEfficiency | None = None
                        ) -> TrainingEfficiency:
    """The training efficiency set for ``hw``: a ``flat`` override, a calibrated ``profile``, the hardware
    catalogue's ``efficiency:`` block, or the stated generation default (in that order)."""
    from .checks import check_fraction

    if flat is not None:
        check_fraction(flat, "--compute-efficiency (fraction of the dense peak)")
        return TrainingEfficiency(flat, flat, flat, 1.0, 0.0, origin="--compute-efficiency (given)",
                                  source="given on the command line", flat=float(flat))
    if profile is not None:
        return profile
    block = getattr(hw, "efficiency", None)
    if block is not None:
        return _from_block(block, f"{hw.name} hardware catalogue entry", hw.sources.get("efficiency", ""))
    from .catalogue import load_hardware

    fam = GENERATION_DEFAULT_FROM.get(hw.vendor, GENERATION_DEFAULT_FALLBACK)
    ref = load_hardware(fam)
    return _from_block(ref.efficiency, f"generation default: no published training measurement for "
                                       f"{hw.display_name}, using {ref.display_name}'s",
                       ref.sources.get("efficiency", ""))


def _from_block(block, origin: str, source: str) -> TrainingEfficiency:
    return TrainingEfficiency(block.matmul, block.attention_flash, block.attention_unfused or block.attention_flash,
                              block.moe or MOE_DEFAULT, GEMM_HALF_WIDTH, origin=origin, source=source)


def load_profile(path: str, hw=None) -> TrainingEfficiency:
    """A calibration profile written by ``llmcalc calibrate`` (``--profile FILE``)."""
    doc, e = _profile_block(path, hw, "efficiency", "has no training 'efficiency:' block (matmul, "
                            "attention_flash, ...); `llmcalc calibrate` writes one")
    known = {"matmul", "attention_flash", "attention_unfused", "moe", "half_width"}
    unknown = sorted(set(e) - known)
    if unknown or "matmul" not in e:
        raise LlmcalcError(f"--profile {path}: efficiency needs matmul (and may set {', '.join(sorted(known))}); "
                           f"unknown: {', '.join(unknown) or 'none'}")
    base = training_efficiency(hw) if hw is not None else None

    def num(k, default):
        v = e.get(k, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise LlmcalcError(f"--profile {path}: efficiency.{k} must be a number, got {v!r}")
        return float(v)

    fit = doc.get("fit") or {}
    return TrainingEfficiency(
        num("matmul", None), num("attention_flash", base.attention_flash if base else e.get("matmul")),
        num("attention_unfused", base.attention_unfused if base else e.get("matmul")),
        num("moe", base.moe if base else MOE_DEFAULT), num("half_width", GEMM_HALF_WIDTH),
        origin=f"profile {path}", source=f"calibrated on {len(fit.get('measurements', []))} measurement(s) "
                                         f"(rms log residual {fit.get('rms_log_residual', '?')})")


PROFILE_BLOCKS = ("efficiency", "inference")


def _check_profile_doc(doc, path: str, hw) -> None:
    if not isinstance(doc, dict) or not any(isinstance(doc.get(b), dict) for b in PROFILE_BLOCKS):
        raise LlmcalcError(f"--profile {path}: expected a mapping with an 'efficiency:' block (training kernels, the "
                           "file llmcalc calibrate writes) and/or an 'inference:' block (flops, memory_bw, link)")
    unknown = sorted(set(doc) - {"hardware", "fit", *PROFILE_BLOCKS})
    if unknown:
        raise LlmcalcError(f"--profile {path}: unknown key(s) {', '.join(map(str, unknown))}; allowed: hardware, "
                           "efficiency, inference, fit")
    if hw is not None and doc.get("hardware") not in (None, hw.name):
        raise LlmcalcError(f"--profile {path} was fitted on {doc.get('hardware')}, not {hw.name}; pass "
                           f"--hardware {doc.get('hardware')} or calibrate for {hw.name}")


def _profile_block(path: str, hw, key: str, missing: str) -> tuple[dict, dict]:
    """The profile YAML at ``path`` (read safely, checked against ``hw``) and its ``key:`` mapping, or one line."""
    from .catalogue import load_user_yaml

    doc = load_user_yaml(path, "--profile")
    _check_profile_doc(doc, path, hw)
    block = doc.get(key)
    if not isinstance(block, dict):
        raise LlmcalcError(f"--profile {path}: {missing}")
    return doc, block


def load_inference_profile(path: str, hw=None, *, flops: float | None = None, memory_bw: float | None = None,
                           link: float | None = None) -> Efficiency:
    """The ``inference:`` block of a profile (fractions of peak FLOP/s, HBM bandwidth and link bandwidth reached,
    e.g. measured with benchmarks/ on your machine) as the :class:`Efficiency` of every inference, serving and
    communication command. A key the block omits keeps its default; ``--eff-*`` flags given beside it win."""
    _, block = _profile_block(path, hw, "inference", "has no 'inference:' block (flops, memory_bw, link "
                              "fractions), which inference, serving and comms commands use; `llmcalc calibrate` "
                              "fits training kernels only")
    unknown = sorted(set(block) - {"flops", "memory_bw", "link"})
    if unknown:
        raise LlmcalcError(f"--profile {path}: inference.{unknown[0]} is not a setting; allowed: flops, memory_bw, "
                           "link")
    d = DEFAULT_EFFICIENCY
    vals = {}
    for k, given in (("flops", flops), ("memory_bw", memory_bw), ("link", link)):
        v = block.get(k, getattr(d, k))
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not MIN_FRACTION <= v <= 1:
            raise LlmcalcError(f"--profile {path}: inference.{k} must be a fraction in [{MIN_FRACTION:g}, 1], got "
                               f"{v!r}")
        vals[k] = float(v) if given is None else given
    return Efficiency(**vals)
