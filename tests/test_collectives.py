"""The collective cost model (llmcalc.network.collectives) against NCCL's own tuning model, nccl-tests' definitions
and hand-worked wiring. Expected values are derived here from the cited constants, not from our output.

NCCL v2.30.7 src/graph/tuning.cc constants used below (µs, GB/s): base latency ring LL/LL128/Simple 6.6/14/8.4,
tree 6.8/14/8.4, NVLS 0; NVLink hop ring 0.6/1.9/3.4, tree 0.6/1.25/4.0, NVLS 25; NET hop ring 2.7/4.0/14;
llMaxBw Hopper one node 141; LL128 ×0.92; tree ×0.92, LL /3.8, LL128 ×7/9 one node; nvlsEfficiency Hopper 0.85.
"""

import numpy as np
import pytest

from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.network.collectives import collective_time, placement
from llmcalc.training.comms import comm_ledger
from llmcalc.training.layout import Layout

H100 = load_hardware("h100-sxm")
A100 = load_hardware("a100-sxm-80gb")


def tuning_cc_choice_8xh100(S: float) -> str:
    """NCCL's own model for an 8-GPU H100 node, written out from tuning.cc with NCCL's graph search result for
    DGX H100 (ring: 12 channels x 30 GB/s = 360 GB/s; tree: 14 x 30 = 420; NVLS: 8 channels x 50 GB/s), times in
    µs = latency + S / (1000 x algorithm bandwidth)."""
    n = 8
    ring_bus = {"LL": min(141.0, 360 * 0.5), "LL128": min(360 * 0.92, 12 * 36.7), "Simple": 360.0}
    ring_lat = {"LL": 6.6 + 14 * 0.6, "LL128": 14 + 14 * 1.9, "Simple": 8.4 + 14 * 3.4}
    t = {f"ring/{p}": ring_lat[p] + S / (1000 * ring_bus[p] * n / (2 * (n - 1))) for p in ring_bus}
    tree_simple = min(420 * 0.92, 14 * 38.7)
    tree_bus = {"LL": min(tree_simple / 3.8, 141.0), "LL128": min(tree_simple * 7 / 9, 14 * 36.7),
                "Simple": tree_simple}
    tree_lat = {"LL": 6.8 + 2 * 7 * 0.6, "LL128": 14 + 2 * 7 * 1.25, "Simple": 8.4 + 2 * 7 * 4.0}
    corr = {"LL": (1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7, .7, .7, .6, .5, .4, .4, .5, .6, .7, .8, .9, 1.0, 1.0, 1.0, 1.0),
            "LL128": (1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .6, .6, .6, .8, .9, .9, .9, .9, 1.0,
                      1.0),
            "Simple": (.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .6, .7, .8, .7, .7, .8, .9, .9)}
    log_size = int(np.log2(S / 64))
    for p in tree_bus:
        c = corr[p][log_size] if log_size < 23 else 1.0
        t[f"tree/{p}"] = tree_lat[p] + S / (1000 * tree_bus[p] * 0.5 * c)
    nvls_bus = 8 * min(50 * 0.85 * 7 / 8 * 2, 50)  # intraBw capped by the graph's bwInter, 8 channels
    t["nvls/Simple"] = 25 + S / (1000 * nvls_bus * n / (2 * (n - 1)))
    return min(t, key=t.get)


@pytest.mark.parametrize("S", [1024, 2**20, 2**30])
def test_choice_on_8xh100_matches_ncclss_model(S):
    """Issue #12 acceptance: ring/tree/NVLS choice for 8 x H100 at 1 KiB, 1 MiB and 1 GiB as tuning.cc's model picks
    (1 KiB and 1 MiB: ring LL; 1 GiB: NVLS)."""
    want = tuning_cc_choice_8xh100(S)
    got = collective_time(H100, "all-reduce", S, 8)
    assert f"{got.algorithm}/{got.protocol}" == want
    assert want == {1024: "ring/LL", 2**20: "ring/LL", 2**30: "nvls/Simple"}[S]


def test_small_message_time_is_nccls_ring_ll():
    # 16 KiB (Llama-70B decode, D 8192 x bf16): 6.6 + 14 x 0.6 µs + S / (min(141, 450 x 0.8 / 2) x 8/14 GB/s)
    S = 16384
    t = collective_time(H100, "all-reduce", S, 8)
    assert t.time_s == pytest.approx((6.6 + 14 * 0.6) * 1e-6 + S / (141e9 * 8 / 14), rel=1e-9)
    assert t.latency_s == pytest.approx(15.0e-6, rel=1e-9) and t.hops == 14


def test_vectorised_over_message_sizes():
    S = np.array([1024.0, 2**20, 2**30])
    t = collective_time(H100, "all-reduce", S, 8)
    assert list(t.algorithm) == ["ring", "ring", "nvls"]
    for i, s in enumerate(S):
        assert t.time_s[i] == pytest.approx(collective_time(H100, "all-reduce", s, 8).time_s, rel=1e-12)


@pytest.mark.parametrize("coll,factor", [("all-reduce", 2 * 7 / 8), ("all-gather", 7 / 8), ("reduce-scatter", 7 / 8),
                                         ("all-to-all", 7 / 8), ("broadcast", 1.0), ("send/recv", 1.0)])
def test_nccl_tests_bus_bandwidth_factors_exact(coll, factor):
    """nccl-tests doc/PERFORMANCE.md: busbw = algbw x factor; bytes per rank = factor x S (S the full array)."""
    S = 3 * 2**20
    t = collective_time(H100, coll, S, 8 if coll != "send/recv" else 2)
    f = factor if coll != "send/recv" else 1.0
    assert t.bytes_per_rank == pytest.approx(f * S, rel=1e-15)
    assert t.bus_bandwidth_bytes_per_s == pytest.approx(f * S / t.time_s, rel=1e-15)


def test_ring_and_nvls_busbw_against_the_maintainers_numbers():
    """NVIDIA/nccl#1455, nccl-tests#212: 8 x H100 ring busbw 365-370 GB/s, NVLS ~480 GB/s at 2-4 GiB (±10%)."""
    S = 4 * 2**30
    ring = collective_time(H100, "all-reduce", S, 8, algorithms=("ring",))
    nvls = collective_time(H100, "all-reduce", S, 8)
    assert nvls.algorithm == "nvls"
    assert ring.bus_bandwidth_bytes_per_s / 1e9 == pytest.approx(367.5, rel=0.10)
    assert nvls.bus_bandwidth_bytes_per_s / 1e9 == pytest.approx(480, rel=0.10)


def test_nic_aggregation_hand_worked():
    """k ranks on each of m nodes use k NICs: a ring's bus bandwidth is min(scale-up, k x NIC) per direction.
    A100 (no NVLS): DP 16 = 8 ranks x 2 nodes; NVLink 300 GB/s, 8 x 200 Gb/s HDR = 200 GB/s; efficiency 1, no
    latency: ring Simple all-reduce of 1 GiB = 2 x 15/16 x S / 200 GB/s. One rank per node (k = 1, e.g. DP over
    TP-8 groups) gets one NIC: 25 GB/s."""
    S = 2**30
    t = collective_time(A100, "all-reduce", S, 16, link_efficiency=1.0, latency_scale=0.0, algorithms=("ring",))
    assert (t.ranks_per_node, t.nodes) == (8, 2)
    assert t.time_s == pytest.approx(2 * 15 / 16 * S / 200e9, rel=1e-12)
    t1 = collective_time(A100, "all-reduce", S, 16, span=128, link_efficiency=1.0, latency_scale=0.0,
                         algorithms=("ring",))
    assert (t1.ranks_per_node, t1.nodes) == (1, 16)
    assert t1.time_s == pytest.approx(2 * 15 / 16 * S / 25e9, rel=1e-12)
    assert placement(A100, 16, 128) == (1, 16)


def test_comms_dp16_is_dp8_times_the_ring_factor_not_10x():
    """Issue #12 acceptance: `comms llama-3.1-8b -H h100-sxm --dp 16 --seq 4096 --global-batch 64` within 20% of
    --dp 8 x the extra ring factor (15/16)/(7/8), instead of one NIC's bandwidth (~10x)."""
    m = load_model("llama-3.1-8b")
    t8 = comm_ledger(m, H100, Layout(dp=8), seq=4096, global_batch=64).data["total_time_s"]
    t16 = comm_ledger(m, H100, Layout(dp=16), seq=4096, global_batch=64).data["total_time_s"]
    assert t16 == pytest.approx(t8 * (15 / 16) / (7 / 8), rel=0.20)


def test_all_to_all_splits_links_and_pays_one_latency():
    """DeepEP (deepseek-ai/DeepEP docs/legacy.md, low-latency kernels, H800 + CX7 400G): EP256 dispatch of 128 tokens
    x 7168 hidden x top-8 in FP8 takes 194 µs. Ours on H100 (8 x 400G NICs per node): (n-k)/n of the send buffer
    over the rank's NIC, one latency, not 255 serial ones: within 1.5x of 194 µs."""
    S = 128 * 8 * 7168 * (1 + 4 / 128)  # FP8 payload + one fp32 scale per 128 values
    t = collective_time(H100, "all-to-all", S, 256)
    assert (t.ranks_per_node, t.nodes) == (8, 32)
    assert t.hops == 1
    inter = (256 - 8) / 256 * S / (50e9 * 0.8)
    assert t.time_s == pytest.approx((8.4 + 14) * 1e-6 + inter, rel=1e-9)
    assert 194e-6 / 1.5 < t.time_s < 194e-6 * 1.5


def test_tpu_torus_axes_set_bandwidth_and_hops():
    """TPU v5p: 90 GB/s per ICI link one way; a ring along a full 16-chip axis uses its 2 links (180 GB/s); 64
    chips span 2 axes (4 links, 360 GB/s). Hops: one axis at a time, Σ(axis − 1) per pass (scaling-book)."""
    v5p = load_hardware("tpu-v5p")
    S = 2**30
    t16 = collective_time(v5p, "all-gather", S, 16, link_efficiency=1.0, latency_scale=0.0)
    assert t16.time_s == pytest.approx(15 / 16 * S / 180e9, rel=1e-12)
    t64 = collective_time(v5p, "all-reduce", S, 64, link_efficiency=1.0)
    assert t64.hops == pytest.approx(2 * (15 + 3))
    assert t64.time_s - t64.latency_s == pytest.approx(2 * 63 / 64 * S / 360e9, rel=1e-12)


def test_pcie_is_a_scale_up_link_on_l4():
    """L4: PCIe Gen4 x16, 31 GB/s per direction, 8 per server; NCCL's PCI hop latencies (ring Simple 5.7 µs)."""
    l4 = load_hardware("l4")
    t = collective_time(l4, "all-reduce", 2**28, 4, link_efficiency=1.0, algorithms=("ring",))
    assert t.nodes == 1 and t.protocol == "Simple"
    assert t.latency_s == pytest.approx((8.4 + 6 * 5.7) * 1e-6, rel=1e-9)
    assert t.time_s - t.latency_s == pytest.approx(2 * 3 / 4 * 2**28 / 31e9, rel=1e-9)


def test_latency_scale_and_bad_inputs():
    from llmcalc.core.errors import LlmcalcError

    base = collective_time(H100, "all-reduce", 1024, 8)
    half = collective_time(H100, "all-reduce", 1024, 8, latency_scale=0.5)
    assert half.latency_s == pytest.approx(base.latency_s / 2)
    with pytest.raises(LlmcalcError, match="latency-scale"):
        collective_time(H100, "all-reduce", 1024, 8, latency_scale=-1)
    with pytest.raises(LlmcalcError, match="unknown collective"):
        collective_time(H100, "allreduce", 1024, 8)
    assert collective_time(H100, "all-reduce", 1024, 1).time_s == 0.0
    mi = load_hardware("mi300x")
    with pytest.raises(LlmcalcError, match="scale_out"):
        collective_time(mi, "all-reduce", 1024, 16)
