"""The communication ledger against its sources.

- Ring bytes per rank: NVIDIA nccl-tests doc/PERFORMANCE.md (all-reduce 2(n−1)/n; all-gather and
  reduce-scatter (n−1)/n of the FULL array; all-to-all (n−1)/n; n = 8: 1.75 and 0.875).
- Volumes: ZeRO paper §7.1-7.2 (DP and ZeRO-1/2 move 2Ψ, ZeRO-3 3Ψ = 1.5×) and §8 (TP with activation
  checkpointing: 6 all-reduces per block); Korthikanti et al. 2022 §4.2.2 (TP: 4 all-reduces per
  layer; with SP 4 all-gathers + 4 reduce-scatters, same bandwidth).
"""

import json

import pytest
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.training.comms import comm_ledger
from llmcalc.training.layout import Layout

H100 = load_hardware("h100-sxm")
LLAMA70 = load_model("llama-3.1-70b")


def rows(r, par=None, coll=None):
    return [x for x in r.data["rows"] if (par is None or x["parallelism"] == par)
            and (coll is None or x["collective"] == coll)]


def volume(r, par):
    return sum(x["count"] * x["bytes_per_rank"] for x in rows(r, par))


def test_nccl_bus_bandwidth_factors():
    r = comm_ledger(LLAMA70, H100, Layout(tp=8, dp=8, zero=0), seq=4096, global_batch=8)
    (ar,) = rows(r, "dp", "all-reduce")
    assert ar["bytes_per_rank"] / ar["message_bytes"] == pytest.approx(1.75, rel=1e-12)  # 2(n-1)/n, n = 8
    r = comm_ledger(LLAMA70, H100, Layout(tp=8, dp=8, zero=1), seq=4096, global_batch=8)
    for x in rows(r, "dp"):  # reduce-scatter and all-gather: (n-1)/n of the full array
        assert x["bytes_per_rank"] / x["message_bytes"] == pytest.approx(0.875, rel=1e-12)
    r = comm_ledger(load_model("mixtral-8x7b"), H100, Layout(dp=8, ep=8), seq=4096, global_batch=8)
    (a2a,) = rows(r, "ep", "all-to-all")
    assert a2a["bytes_per_rank"] / a2a["message_bytes"] == pytest.approx(7 / 8, rel=1e-12)


@pytest.mark.parametrize("zero, ratio", [(1, 1.0), (2, 1.0), (3, 1.5)])
def test_zero_volumes_relative_to_dp(zero, ratio):
    # ZeRO §7.2.1: P_os+g moves 2Ψ "exactly the same as the baseline DP"; §7.2.2: P_os+g+p 3Ψ, 1.5× the baseline.
    # One micro-batch per step (global batch = dp), as the paper's per-step accounting assumes.
    kw = dict(seq=4096, global_batch=16)
    base = volume(comm_ledger(LLAMA70, H100, Layout(tp=8, dp=16, zero=0), **kw), "dp")
    got = volume(comm_ledger(LLAMA70, H100, Layout(tp=8, dp=16, zero=zero), **kw), "dp")
    assert got / base == pytest.approx(ratio, rel=1e-12)


def test_tp_all_reduce_vs_sequence_parallel():
    # Korthikanti §4.2.2: 4 all-reduces per layer per micro-batch (fwd+bwd) vs 4 all-gathers + 4 reduce-scatters,
    # the same bytes on the wire.
    kw = dict(seq=4096, global_batch=4)  # dp 1 -> 4 micro-batches
    plain = comm_ledger(LLAMA70, H100, Layout(tp=8, pp=2), **kw)
    sp = comm_ledger(LLAMA70, H100, Layout(tp=8, pp=2, sp=True), **kw)
    (ar,) = rows(plain, "tp")
    assert ar["collective"] == "all-reduce" and ar["count"] == 4 * 40 * 4  # 80 layers / pp 2 = 40 per stage
    assert ar["message_bytes"] == 2 * 4096 * 8192  # BLD in bf16
    assert sorted(x["collective"] for x in rows(sp, "tp")) == ["all-gather", "reduce-scatter"]
    assert all(x["count"] == 4 * 40 * 4 for x in rows(sp, "tp"))
    assert volume(sp, "tp") == pytest.approx(volume(plain, "tp"), rel=1e-12)


def test_full_recompute_adds_two_all_reduces_per_block():
    # ZeRO §8: with activation checkpointing each block performs 2 + 2 + 2 all-reduces (fwd, recompute, bwd)
    r = comm_ledger(LLAMA70, H100, Layout(tp=8), seq=2048, global_batch=1, recompute="full")
    (ar,) = rows(r, "tp")
    assert ar["count"] == 6 * 80


def test_pipeline_send_recv_per_microbatch():
    # Narayanan et al. 2021 §4.1: per micro-batch one activation send forward and one gradient send backward,
    # each 1/tp of BLD with the scatter/gather optimisation
    r = comm_ledger(LLAMA70, H100, Layout(tp=8, pp=4, dp=2), seq=4096, global_batch=32)
    (p2p,) = rows(r, "pp")
    assert p2p["count"] == 2 * 16 and p2p["message_bytes"] == 2 * 4096 * 8192 / 8
    assert p2p["bytes_per_rank"] == p2p["message_bytes"]  # send/recv: factor 1


def test_links_follow_the_rank_order():
    # TP innermost: TP 8 fills one 8-GPU NVLink domain, so DP crosses the network; TP 4 × DP 2 stays inside.
    r = comm_ledger(LLAMA70, H100, Layout(tp=8, dp=4), seq=4096, global_batch=4)
    assert rows(r, "tp")[0]["link"] == "scale-up" and rows(r, "dp")[0]["link"] == "scale-out"
    r = comm_ledger(LLAMA70, H100, Layout(tp=4, dp=2), seq=4096, global_batch=2)
    assert rows(r, "dp")[0]["link"] == "scale-up"


def test_row_time_is_nccls_fastest_algorithm():
    """NVIDIA/nccl v2.30.7 src/graph/tuning.cc, evaluated by hand for 8 x H100 on one node, S = 64 MiB:
    ring Simple: latency 8.4 (base) + 14 hops x 3.4 µs (NVLink ring Simple), algorithm bandwidth = bus x n/(2(n-1));
    NVLS: latency 25 µs (NVLink NVLS hop), algorithm bandwidth = bus x 0.85 (Hopper nvlsEfficiency) x 7/8
    (NVLS channels (c-1)/c, c = 8); bus = 450 GB/s x link efficiency 0.5. At 64 MiB NVLS is the faster."""
    r = comm_ledger(LLAMA70, H100, Layout(tp=8), seq=4096, global_batch=1, link_efficiency=0.5)
    (ar,) = rows(r, "tp")
    S = 2 * 4096 * 8192
    bus = 450e9 * 0.5
    ring = (8.4 + 14 * 3.4) * 1e-6 + S / (bus * 8 / 14)
    nvls = 25e-6 + S / (bus * 0.85 * 7 / 8)
    assert nvls < ring
    assert ar["algorithm"] == "nvls" and ar["protocol"] == "Simple"
    assert ar["time_s"] == pytest.approx(ar["count"] * nvls, rel=1e-9)


def test_expert_and_context_parallel_rows():
    mix = load_model("mixtral-8x7b")  # 32 MoE layers, top-2
    r = comm_ledger(mix, H100, Layout(dp=8, ep=8, cp=2), seq=8192, global_batch=8)
    (a2a,) = rows(r, "ep")
    assert a2a["count"] == 4 * 32  # dispatch + combine, fwd and bwd, per MoE layer, one micro-batch
    assert a2a["message_bytes"] == 2 * 2 * 4096 * 4096  # bf16 · top_k · (L/cp) · D
    (cp,) = rows(r, "cp")
    assert cp["count"] == 3 * (2 - 1) * 32  # (cp−1) K,V hops fwd; K,V and dK,dV in bwd
    assert cp["message_bytes"] == 2 * 4096 * 8 * 256  # K and V of the local chunk: G·(K + Kv) = 8·256
    assert {x["parallelism"] for x in rows(r)} >= {"dp", "edp", "ep", "cp"}


def test_cli_comms_table_and_json():
    args = ["comms", "llama-3.1-70b", "--tp", "8", "--pp", "4", "--dp", "4", "--zero", "1", "--sp",
            "--seq", "8192", "--global-batch", "64"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "reduce-scatter" in r.output and "send/recv" in r.output and "scale-out" in r.output
    r = CliRunner().invoke(app, [*args, "--json"])
    d = json.loads(r.output)
    keys = {"parallelism", "collective", "tensor", "shape", "group_size", "message_bytes", "bytes_per_rank",
            "count", "link", "time_s", "overlappable"}
    assert d["rows"] and all(keys <= set(x) for x in d["rows"])


def test_crossing_the_network_without_a_recorded_scale_out_is_an_error():
    # MI300X: the fact sheet marks per-GPU scale-out "platform-dependent, unverified", so the catalogue has none;
    # a DP group across two 8-GPU nodes must say so rather than invent a bandwidth.
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.core.errors import LlmcalcError
    from llmcalc.training.comms import comm_ledger
    from llmcalc.training.layout import Layout

    m, hw = load_model("llama-3.1-8b"), load_hardware("mi300x")
    comm_ledger(m, hw, Layout(tp=8), global_batch=8)  # inside one node: fine
    with pytest.raises(LlmcalcError, match="no scale_out bandwidth"):
        comm_ledger(m, hw, Layout(tp=8, dp=2), global_batch=16)


def test_zero3_collectives_are_per_layer():
    """ZeRO-3/FSDP (Zhao et al. 2023 §3.2-3.3): one all-gather before each layer's forward, one before its
    backward and one gradient reduce-scatter after it, per micro-batch: 3 × layers × m calls of P/layers bytes.
    The bytes per step stay ZeRO §7.2.2's 3Ψ; the latency is α·(n−1) per call. Llama-3.1-70B: 80 layers."""
    m_batches = 2
    r = comm_ledger(LLAMA70, H100, Layout(tp=8, dp=16, zero=3), seq=4096, global_batch=16 * m_batches)
    (fwd,) = [x for x in rows(r, "dp", "all-gather") if "forward" in x["tensor"]]
    (rs,) = rows(r, "dp", "reduce-scatter")
    for x in (fwd, rs):
        assert x["count"] == 80 * m_batches
    from llmcalc.training.memory import stage_params

    per_gpu = stage_params(LLAMA70, Layout(tp=8, dp=16))["first"].value  # parameters per TP rank, one stage
    assert fwd["message_bytes"] == pytest.approx(2 * per_gpu / 80, rel=1e-12)
    assert fwd["bytes_per_rank"] * fwd["count"] == pytest.approx(15 / 16 * 2 * per_gpu * m_batches, rel=1e-12)


def test_rows_that_move_nothing_are_not_listed():
    r = comm_ledger(LLAMA70, H100, Layout(tp=8), seq=4096, global_batch=1)  # dp = 1: no gradient sync
    assert not rows(r, "dp") and not rows(r, "cp")


def test_context_parallel_mla_passes_up_projected_keys_and_values():
    """Ring attention (Megatron-Core / TransformerEngine CP) exchanges the K and V that attention uses; for MLA
    these are up-projected per head, not the cached latent. DeepSeek-V3 config: 128 heads, qk_nope 128,
    qk_rope 64, v_head 128 -> 128·((128 + 64) + 128) = 40,960 elements per token (vs 576 for the latent)."""
    v3 = load_model("deepseek-v3")
    r = comm_ledger(v3, H100, Layout(cp=2), seq=4096, global_batch=1)
    (cp,) = rows(r, "cp")
    assert cp["message_bytes"] == 2 * (4096 // 2) * 128 * ((128 + 64) + 128)  # bf16 · local tokens · width
    r8 = comm_ledger(v3, H100, Layout(tp=4, cp=2), seq=4096, global_batch=1)
    assert rows(r8, "cp")[0]["message_bytes"] == cp["message_bytes"] / 4  # each TP rank holds H/t heads


def test_mi300x_tp_groups_get_their_peer_links_not_the_aggregate():
    """Fact sheet trap 3: an MI300X pair talks at 64 GB/s per direction, all 8 at 448. The TP all-reduce
    bandwidth term (ring Simple: 2(n-1)/n x S / (bw x eff), latency set to 0) is 7x longer for TP=2 than it would
    be at the aggregate."""
    mi = load_hardware("mi300x")
    m = load_model("llama-3.1-8b")
    kw = dict(seq=4096, global_batch=1, link_efficiency=1.0, latency_scale=0.0)
    S = 2 * 4096 * 4096
    for tp, bw in ((2, 64e9), (4, 3 * 64e9), (8, 448e9)):
        (ar,) = rows(comm_ledger(m, mi, Layout(tp=tp), **kw), "tp")
        assert ar["algorithm"] == "ring" and ar["protocol"] == "Simple"
        assert ar["time_s"] == pytest.approx(ar["count"] * 2 * (tp - 1) / tp * S / bw, rel=1e-12)
    # H100 (NVSwitch): 450 GB/s for any group inside the node (a pair: ring; NVLS with (2-1)/2 channels loses)
    (ar,) = rows(comm_ledger(m, H100, Layout(tp=2), **kw), "tp")
    assert ar["time_s"] == pytest.approx(ar["count"] * 2 * 1 / 2 * S / 450e9, rel=1e-12)
