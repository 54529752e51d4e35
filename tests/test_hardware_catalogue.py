"""The hardware catalogue (hardware/*.yaml) against the verified fact sheet.

Every expected number below is quoted from the fact sheet
``shared/reference/hardware-and-models.md`` (section A "Hardware master table", A2 "TPU interconnect
detail", the per-row source list and the "Traps" section); the comment on each line names the row
and the original source. None of them was produced by running the code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmcalc.core.catalogue import catalogue_dir, load_hardware, names

REQUIRED = {
    "h100-sxm", "h100-pcie", "h200-sxm", "a100-sxm-40gb", "a100-sxm-80gb", "b200", "gb200",
    "mi300x", "tpu-v5e", "tpu-v5p", "tpu-v6e", "l4", "l40s",
}
# Hardware fields that hold numbers; each one present needs a citation in `sources`.
NUMERIC_FIELDS = ("peak_flops_per_s", "memory_bytes", "memory_bw_bytes_per_s", "scale_up", "scale_out",
                  "tdp_watts", "price_usd_per_hour")

MiB, GiB = 2**20, 2**30
T, P, G = 1e12, 1e15, 1e9


def approx(x):
    return pytest.approx(x, rel=1e-9)


ALL = names("hardware")


def hw(name):
    return load_hardware(name)


# ---------------------------------------------------------------- structure


def test_required_accelerators_present():
    missing = REQUIRED - set(ALL)
    assert not missing, f"hardware/ lacks {sorted(missing)}"


@pytest.mark.parametrize("name", ALL)
def test_file_loads_and_name_matches(name):
    h = hw(name)
    assert h.name == name, f"hardware/{name}.yaml declares name {h.name!r}"
    assert h.name == h.name.lower()


@pytest.mark.parametrize("name", ALL)
def test_every_numeric_field_has_a_source(name):
    h = hw(name)
    present = [f for f in NUMERIC_FIELDS if getattr(h, f) is not None]
    missing = [f for f in present if not h.sources.get(f, "").strip()]
    assert not missing, f"{name}: no citation in `sources` for {missing}"
    stray = set(h.sources) - set(type(h).model_fields)
    assert not stray, f"{name}: `sources` cites fields that do not exist: {sorted(stray)}"


@pytest.mark.parametrize("name", ALL)
def test_raw_yaml_quantities_carry_units(name):
    """Every quantity is written with a unit in the file (the loader also rejects bare numbers)."""
    raw = yaml.safe_load((Path(catalogue_dir("hardware")) / f"{name}.yaml").read_text())
    quantities = list(raw["peak_flops_per_s"].values())
    quantities += [raw[k] for k in ("memory_bytes", "memory_bw_bytes_per_s", "tdp_watts", "price_usd_per_hour")
                   if k in raw]
    quantities += [raw[k][f] for k in ("scale_up", "scale_out") if k in raw
                   for f in ("bw_bytes_per_s", "per_peer_bytes_per_s", "per_link_bytes_per_s") if f in raw[k]]
    bare = [q for q in quantities if not isinstance(q, str)]
    assert not bare, f"{name}: quantities without a unit: {bare}"


@pytest.mark.parametrize("name", ALL)
def test_scale_up_is_given_per_direction(name):
    # Fact sheet Conventions + Trap 2: ring collectives use the per-direction value.
    assert hw(name).scale_up.direction == "per_direction"


@pytest.mark.parametrize("name", ALL)
def test_dtypes_exist_on_the_silicon(name):
    # Fact sheet, notes on Table A: "A100 has no FP8. Hopper has no INT4 tensor path.
    # FP4 exists only on Blackwell (B200/GB200) in this list."
    dtypes = set(hw(name).peak_flops_per_s)
    if name.startswith("a100"):
        assert "fp8" not in dtypes and "fp4" not in dtypes
    if name.startswith(("h100", "h200")):
        assert not dtypes & {"int4", "fp4"}
    if name not in ("b200", "gb200"):
        assert "fp4" not in dtypes


# ---------------------------------------------------------------- trap values (fact sheet)


def test_h100_sxm_dense_not_sparse():
    h = hw("h100-sxm")
    # fact sheet row H1 + Trap 1; NVIDIA H100 datasheet (HPC Tech reproduction) BF16 1,979* sparse / 2
    assert h.peak("bf16") == approx(989 * T)
    assert h.peak("bf16") != approx(1979 * T)
    # fact sheet row H1; FP8 3,958* sparse / 2
    assert h.peak("fp8") == approx(1979 * T)
    # fact sheet row H1; TF32 989* sparse / 2
    assert h.peak("tf32") == approx(494.5 * T)
    # fact sheet row H1; pytorch-lightning _CUDA_FLOPS h100-sxm fp32 67e12
    assert h.peak("fp32") == approx(67 * T)


def test_h100_sxm_nvlink_per_direction():
    # fact sheet row H1 + Trap 2: "900 GB/s" = 18 links x 50 GB/s bidir = 450 GB/s per direction
    # (scaling-book gpus.md NVLink table; stas00 network/README.md)
    su = hw("h100-sxm").scale_up
    assert su.per_direction_bytes_per_s == approx(450 * G)
    assert su.domain_size == 8  # fact sheet row H1: 8 GPUs per HGX/DGX
    # fact sheet row H1: 1x 400 Gb/s NDR IB (ConnectX-7) per GPU in DGX H100 = 50e9 B/s
    assert hw("h100-sxm").scale_out.per_direction_bytes_per_s == approx(400e9 / 8)


def test_h100_sxm_memory_is_what_nvidia_smi_reports():
    # fact sheet row H1 / N12: nvidia-smi memory.total "81559MiB" (79.6 GiB), not 80e9
    assert hw("h100-sxm").memory_bytes == 81559 * MiB
    # fact sheet row H1; NVIDIA H100 datasheet 3.35 TB/s (not the early whitepaper 3 TB/s, Trap 6)
    assert hw("h100-sxm").memory_bw_bytes_per_s == approx(3.35 * T)


def test_h100_pcie_is_not_sxm():
    h = hw("h100-pcie")
    # fact sheet row H2 + Trap 6; NVIDIA H100 table, PCIe column: BF16 1,513* sparse / 2 = 756
    assert h.peak("bf16") == approx(756 * T)
    # fact sheet row H2 + Trap 6; NVIDIA H100 table, PCIe column: 2,000 GB/s HBM2e
    assert h.memory_bw_bytes_per_s == approx(2.0 * T)
    # fact sheet row H2: NVLink 4 bridge (pairs only) 300 / 600 GB/s, domain 2
    assert h.scale_up.per_direction_bytes_per_s == approx(300 * G)
    assert h.scale_up.domain_size == 2


def test_h200():
    h = hw("h200-sxm")
    # fact sheet row H4 / N12: nvidia-smi "143771MiB"
    assert h.memory_bytes == 143771 * MiB
    # fact sheet row H4; 'Nvidia-GPU specs' note H200 SXM 4.8 TB/s
    assert h.memory_bw_bytes_per_s == approx(4.8 * T)
    # fact sheet row H4: NVLink 4, 18 links 450 / 900 GB/s
    assert h.scale_up.per_direction_bytes_per_s == approx(450 * G)
    # fact sheet row H4: bf16 989 dense
    assert h.peak("bf16") == approx(989 * T)


@pytest.mark.parametrize("name", ["a100-sxm-40gb", "a100-sxm-80gb"])
def test_a100_nvlink_and_compute(name):
    h = hw(name)
    # fact sheet rows H5/H6 + Trap 2: A100's "600 GB/s" is 300 per direction (NVLink 3, 12 links)
    assert h.scale_up.per_direction_bytes_per_s == approx(300 * G)
    # fact sheet rows H5/H6; pytorch-lightning _CUDA_FLOPS a100 bf16 312e12
    assert h.peak("bf16") == approx(312 * T)
    # fact sheet notes on Table A: "A100 has no FP8"
    assert "fp8" not in h.peak_flops_per_s


def test_a100_memory_is_binary():
    # fact sheet row H6 / N12 + Trap 5: A100-SXM4-80GB reports exactly 81920 MiB = 80 GiB
    assert hw("a100-sxm-80gb").memory_bytes == 80 * GiB
    # fact sheet row H5 / N12: A100-SXM4-40GB reports 40960 MiB
    assert hw("a100-sxm-40gb").memory_bytes == 40960 * MiB
    # fact sheet rows H5/H6: 1.555 and 2.039 TB/s
    assert hw("a100-sxm-40gb").memory_bw_bytes_per_s == approx(1.555 * T)
    assert hw("a100-sxm-80gb").memory_bw_bytes_per_s == approx(2.039 * T)


def test_b200():
    h = hw("b200")
    # fact sheet row H8 + Trap 1: FP4 9,000 dense (18 PF sparse / 2); scaling-book gpus.md fp4 9.0e15
    assert h.peak("fp4") == approx(9 * P)
    # fact sheet row H8: BF16 2,250 (4.5 PF sparse / 2)
    assert h.peak("bf16") == approx(2250 * T)
    # fact sheet row H8 + Trap 2: NVLink 5 "1.8 TB/s" is 900 GB/s per direction
    assert h.scale_up.per_direction_bytes_per_s == approx(900 * G)
    # fact sheet row H8 / N12: nvidia-smi "183359MiB"
    assert h.memory_bytes == 183359 * MiB


def test_gb200():
    h = hw("gb200")
    # fact sheet row H9: NVL72, 72 GPUs in one NVLink domain
    assert h.scale_up.domain_size == 72
    # fact sheet row H9: NVLink 5, 900 / 1,800 GB/s
    assert h.scale_up.per_direction_bytes_per_s == approx(900 * G)
    # fact sheet row H9 + Trap 1: FP4 10,000 dense (20 PF sparse / 2), BF16 2,500
    assert h.peak("fp4") == approx(10 * P)
    assert h.peak("bf16") == approx(2500 * T)


def test_l40s():
    h = hw("l40s")
    # fact sheet row H10 / N12 + Trap 5: "48 GB" GDDR6 reports 46068 MiB with ECC on
    assert h.memory_bytes == 46068 * MiB
    # fact sheet row H10: no NVLink; PCIe Gen4 x16 ~31 / 64 GB/s; the GPUs of one PCIe server (8, e.g. AWS
    # g6e.48xlarge) reach each other over it, so TP over PCIe is priced (issue #12)
    assert h.scale_up.domain_size == 8 and h.scale_up.fabric == "pcie"
    assert h.scale_up.per_direction_bytes_per_s == approx(31 * G)
    # fact sheet row H10; L40S datasheet (mullet.se reproduction) FP8 733 | 1,466* -> 733 dense
    assert h.peak("fp8") == approx(733 * T)


def test_l4():
    h = hw("l4")
    # fact sheet row H11 + Trap 1: L4 FP8 485 is sparse; dense 242.5
    assert h.peak("fp8") == approx(242.5 * T)
    # fact sheet row H11 / N12: nvidia-smi "23034MiB"
    assert h.memory_bytes == 23034 * MiB
    # fact sheet row H11: no NVLink; PCIe Gen4 x16 between the 8 GPUs of a PCIe server (AWS g6.48xlarge)
    assert h.scale_up.domain_size == 8 and h.scale_up.fabric == "pcie"


@pytest.mark.parametrize("name, gib, tbs", [("mi300x", 192, 5.3), ("mi325x", 256, 6.0)])
def test_amd(name, gib, tbs):
    if name not in ALL:
        pytest.skip(f"{name} is optional")
    h = hw(name)
    # fact sheet rows H12/H13; ROCm gpu-arch-specs.rst "VRAM (GiB)" 192 / 256
    assert h.memory_bytes == gib * GiB
    # fact sheet rows H12/H13: 5.3 / 6.0 TB/s
    assert h.memory_bw_bytes_per_s == approx(tbs * T)
    # fact sheet rows H12/H13; ROCm mi300.md dense FP16/BF16 1,307.4
    assert h.peak("bf16") == approx(1307.4 * T)
    # fact sheet row H12 + Trap 3: 448 GB/s per direction all-to-all, domain 8 (full mesh)...
    assert h.scale_up.per_direction_bytes_per_s == approx(448 * G)
    assert h.scale_up.domain_size == 8
    # ...but only 64 GB/s per direction to any one peer: the notes must warn about it
    assert "64 GB/s" in h.notes


# TPUs: fact sheet A2, scaling-book per-link one-way figure x ports, as the per-chip per-direction figure.
@pytest.mark.parametrize("name, ports, link_one_way, domain", [
    ("tpu-v5e", 4, 45 * G, 256),    # A2 row v5e: 4 ports / 2D, 45 GB/s per link one-way, pod 256 (16x16)
    ("tpu-v5p", 6, 90 * G, 6144),   # A2 row v5p: 6 ports / 3D, 90 GB/s; max slice 6,144 (Trap 9)
    ("tpu-v6e", 4, 90 * G, 256),    # A2 row v6e: 4 ports / 2D, 90 GB/s, pod 256
    ("tpu-v4", 6, 45 * G, 4096),    # A2 row v4: 6 ports / 3D, 45 GB/s, pod 4,096 (optional entry)
])
def test_tpu_ici(name, ports, link_one_way, domain):
    if name not in ALL:
        pytest.skip(f"{name} is optional")
    su = hw(name).scale_up
    assert su.per_direction_bytes_per_s == approx(ports * link_one_way)
    assert su.domain_size == domain
    # scaling book tpus.md: per-link one-way figures; a bidirectional ring along one axis with wraparound
    # (a full 16-chip axis) uses that axis's 2 links; shorter groups are lines (1 link); never above all ports
    assert su.topology == "torus" and su.per_link_bytes_per_s == approx(link_one_way)
    assert su.ring_bw_per_direction(16) == approx(2 * link_one_way)
    assert su.ring_bw_per_direction(4) == approx(link_one_way)
    assert su.ring_bw_per_direction(domain) == approx(ports * link_one_way)


@pytest.mark.parametrize("name", ["mi300x", "mi325x"])
def test_amd_full_mesh_group_bandwidth(name):
    """Fact sheet trap 3: xGMI reaches 448 GB/s per direction only when all 8 GPUs talk; one peer pair gets
    64 GB/s. A full mesh gives a group of n (n−1)·64 GB/s: 8 GPUs / 2 GPUs = 448/64 = 7x (stas00 measured
    busbw 312.9 vs 47.7 GB/s = 6.6x; ±10%)."""
    if name not in ALL:
        pytest.skip(f"{name} is optional")
    su = hw(name).scale_up
    assert su.topology == "full_mesh" and su.per_peer_bytes_per_s == approx(64 * G)
    assert su.ring_bw_per_direction(2) == approx(64 * G)
    assert su.ring_bw_per_direction(8) == approx(448 * G)
    assert su.ring_bw_per_direction(8) / su.ring_bw_per_direction(2) == pytest.approx(312.9 / 47.7, rel=0.10)


def test_switched_nvlink_gives_every_group_the_full_figure():
    # scaling book gpus.md: NVSwitch gives each H100 450 GB/s per direction to any peer set in the node
    su = hw("h100-sxm").scale_up
    assert su.topology == "switch"
    for n in range(2, 9):
        assert su.ring_bw_per_direction(n) == approx(450 * G)


def test_tpu_compute_and_memory():
    # fact sheet row H15; Google TPU v5e docs: 197 TF bf16, 819 GBps, "16 GB"
    assert hw("tpu-v5e").peak("bf16") == approx(197 * T)
    assert hw("tpu-v5e").memory_bw_bytes_per_s == approx(819 * G)
    assert hw("tpu-v5e").memory_bytes == approx(16e9)  # recorded as written by Google (see its notes)
    # fact sheet row H16; Google TPU v5p docs: 459 TF bf16, "95 GiB", 2,765 GBps
    assert hw("tpu-v5p").peak("bf16") == approx(459 * T)
    assert hw("tpu-v5p").memory_bytes == 95 * GiB
    assert hw("tpu-v5p").memory_bw_bytes_per_s == approx(2765 * G)
    # fact sheet row H17; Google TPU v6e docs: 918 TF bf16, 1,836 TOPS int8, "32 GB", 1,638 GBps
    assert hw("tpu-v6e").peak("bf16") == approx(918 * T)
    assert hw("tpu-v6e").peak("int8") == approx(1836 * T)
    assert hw("tpu-v6e").memory_bytes == approx(32e9)
    # fact sheet "Unverified": TPU v6e FP8 peak (only stas00 lists 918) must not be hard-coded
    assert "fp8" not in hw("tpu-v6e").peak_flops_per_s


def test_prices_only_where_the_sheet_verifies_them():
    # fact sheet table A3 / P1 (scaling-book applied-inference.md, GCP list Feb 2025):
    # H100 $10.8, v5p $4.2, v5e $1.2 per device-hour. All other prices are "unverified" (open items).
    per_hour = {n: hw(n).price_usd_per_hour for n in ALL if hw(n).price_usd_per_hour is not None}
    assert per_hour == {"h100-sxm": approx(10.8), "tpu-v5p": approx(4.2), "tpu-v5e": approx(1.2)}


def test_span_limit_is_the_domain_exactly_where_no_network_is_recorded():
    """Hardware.span_limit states the rule `plan`, `train`, `plan-serve` and the dashboard apply: without a
    scale_out link a job (or replica) stays in one scale-up domain; with one there is no such limit."""
    from llmcalc.core.catalogue import load_hardware, names

    seen = set()
    for name in names("hardware"):
        hw = load_hardware(name)
        seen.add(hw.scale_out is None)
        assert hw.span_limit == (hw.scale_up.domain_size if hw.scale_out is None else None), name
    assert seen == {True, False}  # the catalogue has both kinds (L4, MI300X, TPU v4 without; H100 with)
