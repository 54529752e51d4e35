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

Training steps use their own compute default, ``TRAINING_COMPUTE_EFFICIENCY = 0.62``: whole transformer
layers (matmuls plus elementwise kernels, FlashAttention, optimizer) reach less than the best large
GEMM. 0.62 of the A100 peak reproduces Korthikanti et al. 2022 Table 5's 175B iteration time (13.75 s)
to 0.1% under llmcalc's step model (slowest pipeline stage, 1F1B bubble, exposed communication). Out of
sample (``benchmarks/report_training.py``): the 175B full-recompute row +0.7%, Narayanan et al. 2021's
1T row +6.7%, Korthikanti's 22B −17.6%, 530B +16.4% and 1T +17.1% (micro-batch and interleaving of the
last two unpublished; assumed 1 and none). A calibration on published measurements, not a datasheet figure.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import LlmcalcError

SOURCE_FLOPS = "Bekman, ml-engineering, Maximum Achievable Matmul FLOPS table (H100 SXM 792.1/989 TFLOP/s = 80%)"
SOURCE_MEMORY = "judgement: copy kernels reach ~85-92% of datasheet HBM bandwidth; decode kernels less"
SOURCE_TRAINING_COMPUTE = ("calibrated: 0.62 of peak reproduces Korthikanti et al. 2022 Table 5 (175B, 64 A100) "
                           "to 0.1% under this step model; see benchmarks/report_training.py")
TRAINING_COMPUTE_EFFICIENCY = 0.62
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
            if not 0 < v <= 1:
                raise LlmcalcError(f"efficiency {name} must lie in (0, 1], got {v!r}")

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
    for opt, v in (("--eff-flops", flops), ("--eff-mem", memory_bw), ("--eff-link", link)):
        if v is not None and not 0 < v <= 1:
            raise LlmcalcError(f"{opt} expects a fraction in (0, 1], got {v!r}")
    return Efficiency(d.flops if flops is None else flops, d.memory_bw if memory_bw is None else memory_bw,
                      d.link if link is None else link)
