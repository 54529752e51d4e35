"""Collectives: the one cost model of every collective, and the link a group of ranks crosses.

Ring bytes per rank for a buffer of S bytes on n ranks (NVIDIA nccl-tests doc/PERFORMANCE.md, bus
bandwidth factors): all-reduce 2(n−1)/n·S; all-gather and reduce-scatter (n−1)/n·S with S the FULL
gathered array; all-to-all (n−1)/n·S; send/recv S. Time = α·ring steps + bytes / (per-direction link
bandwidth × link efficiency). Training's ledger (training/comms.py) and inference's TP all-reduce
(inference/latency.py) both time their collectives here.
"""

from __future__ import annotations

from ..core.errors import LlmcalcError
from ..core.specs import Hardware

SRC_NCCL = "NVIDIA nccl-tests doc/PERFORMANCE.md (ring bus-bandwidth factors)"
ALPHA_UP_S = 5e-6  # assumption: per-ring-step latency on NVLink, order of nccl-tests small-message times
ALPHA_OUT_S = 10e-6  # assumption: per-ring-step latency across InfiniBand
# collective -> (bytes per rank as a fraction of S, ring steps)
FACTORS = {"all-reduce": ("2*(n - 1)/n", "2*(n - 1)"), "all-gather": ("(n - 1)/n", "(n - 1)"),
           "reduce-scatter": ("(n - 1)/n", "(n - 1)"), "all-to-all": ("(n - 1)/n", "(n - 1)"),
           "send/recv": ("1", "1")}


def ring_time_formula(collective: str) -> str:
    """Time of one ring collective over n ranks on a buffer of S bytes: α per ring step plus the bytes each
    rank moves at bw·eff. One formula for training and inference alike."""
    factor, steps = FACTORS[collective]
    return f"alpha*{steps} + {factor}*S/(bw*eff)"


def link_efficiency_default() -> float:
    """The sourced default shared by training and inference (core/efficiency.py: NCCL ~370/450 GB/s on H100)."""
    from ..core.efficiency import DEFAULT_EFFICIENCY

    return DEFAULT_EFFICIENCY.link


def scale_out_bw(hw: Hardware) -> float | None:
    """Per-direction network bandwidth per device, or None where the catalogue records none."""
    return None if hw.scale_out is None else hw.scale_out.per_direction_bytes_per_s


def network_needed(hw: Hardware, what: str) -> LlmcalcError:
    return LlmcalcError(f"{what} spans more than the {hw.scale_up.domain_size}-device scale-up domain of "
                        f"{hw.display_name}, whose catalogue entry records no scale_out bandwidth (unverified); "
                        "keep that group inside one domain, or give the hardware YAML a scale_out link")


def topology_note(hw: Hardware) -> list[str]:
    """Say how a group shares a scale-up link that is not a switch (the aggregate is not what a pair gets)."""
    up = hw.scale_up
    if up.topology == "full_mesh":
        agg, peer = up.per_direction_bytes_per_s / 1e9, up.per_peer_bytes_per_s / 1e9
        return [f"{hw.display_name} scale-up is a full mesh: a group of n gets min({agg:g}, (n−1)·{peer:g}) GB/s "
                "per direction"]
    if up.topology == "torus":
        return [f"{hw.display_name} scale-up is a torus: a ring gets {up.per_link_bytes_per_s / 1e9:g} GB/s per link, "
                f"2 links per {up.axis_size}-chip axis spanned (1 below a full axis), at most "
                f"{up.per_direction_bytes_per_s / 1e9:g} GB/s"]
    return []
