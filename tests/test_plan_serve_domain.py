"""plan-serve on hardware whose catalogue entry records no scale_out link (a network between scale-up domains):
every replica stays inside one scale-up domain, as `plan` keeps a training job inside it, and the planner fails
with one line naming the domain only when nothing inside it can hold the model.

Hand-derived sizes: Llama-3.1-8B has 8.03e9 parameters (Meta model card), 16.1 GB in bf16 and 8.0 GB in fp8, so
one device of any catalogue accelerator (24 GB L4 and up) holds it: no replica ever needs to leave a node.
DeepSeek-V3 has 671e9 parameters (DeepSeek-V3 technical report, Table 1 / abstract): 1.342 TB in bf16, more than
a whole 8-device domain of L4s (8 × 24 GB = 192 GB) or L40Ss (8 × 48 GB = 384 GB) holds.
"""

import json
import re

import pytest
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_hardware, load_model, names
from llmcalc.inference.plan_serve import candidates, plan_serve
from llmcalc.report import summary

NO_NET = [n for n in names("hardware") if load_hardware(n).scale_out is None]
DSV3_BF16_BYTES = 671e9 * 2  # DeepSeek-V3 report: 671 B parameters, bf16 = 2 bytes each


def _replica_gpus(config: str) -> int:
    """GPUs of one replica from a row's config, e.g. 'TP2×PP2 (4 GPUs), weights bf16, KV fp8' -> 4."""
    found = re.findall(r"\((\d+) GPUs\)", config)
    assert len(found) == 1, config  # one replica shape per row (no disaggregated pools here)
    return int(found[0])


def test_the_catalogue_has_accelerators_without_a_network():
    # hardware/{l4,l40s,mi300x,mi325x}.yaml carry no scale_out block (PCIe servers / Infinity Fabric node only)
    assert {"l4", "l40s", "mi300x", "mi325x"} <= set(NO_NET)


@pytest.mark.parametrize("hw_name", NO_NET)
def test_a_model_that_fits_one_node_is_planned_within_its_domain(hw_name):
    hw = load_hardware(hw_name)
    dom = hw.scale_up.domain_size
    res = CliRunner().invoke(app, ["plan-serve", "llama-3.1-8b", "-H", hw_name, "--qps", "5", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["ranked"]
    for row in d["ranked"]:
        assert not row["family"].startswith("disaggregated"), row  # its KV would cross the (absent) network
        assert _replica_gpus(row["config"]) <= dom, row
        assert row["gpus"] == row["replicas"] * _replica_gpus(row["config"])  # whole replicas, each in one domain
    said = " ".join(d["assumptions_first"])
    assert f"no scale-out link, so a replica cannot span more than its {dom}-device scale-up domain" in said
    assert "disaggregation not searched" in said


@pytest.mark.parametrize("hw_name", NO_NET)
def test_the_search_reaches_the_domain_edge_and_not_past_it(hw_name):
    hw = load_hardware(hw_name)
    dom = hw.scale_up.domain_size
    m = load_model("deepseek-v3")  # MoE with 256 routed experts (DeepSeek-V3 report §2.1.2) and MLA, 128 heads
    reps = candidates(m, hw, ["bf16"], ["bf16"])
    assert reps and max(r.gpus for r in reps) <= dom
    # the whole domain is still searched, up to the planner's own limits: TP×PP to TP32 × PP8 = 256 GPUs (32 | 128
    # heads, 8 ≤ 61 layers), EP to 256 GPUs (one routed expert each); so replicas of exactly min(dom, 256) GPUs
    edge = min(dom, 256)
    assert any(r.kind == "tp×pp" and r.gpus == edge for r in reps)
    assert any(r.kind == "ep+dp-attention" and r.gpus == edge for r in reps)


def test_hardware_with_a_network_still_searches_across_nodes():
    # H100 SXM records a scale_out link: TP×PP up to 8 domains (8 × 8 = 64 GPUs) and EP up to DeepSeek-V3's 256
    # routed experts, one per GPU, as before this fix
    hw = load_hardware("h100-sxm")
    reps = candidates(load_model("deepseek-v3"), hw, ["bf16"], ["bf16"])
    assert max(r.gpus for r in reps if r.kind == "tp×pp") == 8 * hw.scale_up.domain_size
    assert max(r.gpus for r in reps if r.kind == "ep+dp-attention") == 256
    assert max(r.tp for r in reps if r.kind == "tp") == 2 * hw.scale_up.domain_size


TOO_SMALL = [n for n in NO_NET if load_hardware(n).scale_up.domain_size * load_hardware(n).memory_bytes
             < DSV3_BF16_BYTES]


def test_too_small_domains_include_l4_and_l40s():
    assert {"l4", "l40s"} <= set(TOO_SMALL)  # 192 GB and 384 GB < 1.342 TB


@pytest.mark.parametrize("hw_name", TOO_SMALL)
def test_a_model_no_domain_can_hold_fails_with_one_line_naming_the_domain(hw_name):
    hw = load_hardware(hw_name)
    res = CliRunner().invoke(app, ["plan-serve", "deepseek-v3", "-H", hw_name, "--qps", "5", "--weights", "bf16"])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.output, res.output
    assert f"within one {hw.scale_up.domain_size}-device scale-up domain of {hw.display_name}" in lines[0]
    assert "no scale-out link" in lines[0]


def test_targets_no_replica_in_the_domain_meets_say_so_in_one_line():
    # a 1 ms TPOT is below one decode step of Llama-3.1-8B even on 8 L4s (8 × 300 GB/s: 16 GB / 2.4 TB/s ≈ 7 ms)
    res = CliRunner().invoke(app, ["plan-serve", "llama-3.1-8b", "-H", "l4", "--qps", "5", "--tpot", "1ms"])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "meets the targets" in lines[0]
    assert "within one 8-device scale-up domain (no scale-out link recorded)" in lines[0]


def test_summary_on_hardware_without_a_network_falls_back_within_the_domain():
    # Llama-3.1-70B (70.6e9 parameters, Meta model card) in bf16 is 141 GB: on 8 L4s (192 GB) there is little room
    # for KV, and `serve`'s TP family at bf16 meets no target; plan-serve's wider search stays in the domain
    m, hw = load_model("llama-3.1-70b"), load_hardware("l4")
    r = summary(m, hw)
    note = next(a for a in r.assumptions if a.startswith("serving: "))
    assert "within one scale-up domain" in note and "across nodes" not in note, note
    want = plan_serve(m, hw, prompt=1000, output=300, ttft_s=2.0, tpot_s=0.05, users=10_000).data["ranked"][0]
    assert r.value("serve/gpus") == want["gpus"] and want["config"] in note
    assert _replica_gpus(want["config"]) <= hw.scale_up.domain_size
    # a model no L4 domain holds: the page still renders, its serving note names the domain
    r = summary(load_model("llama-3.1-405b"), hw)
    note = next(a for a in r.assumptions if a.startswith("serving: "))
    assert "not possible" in note and "8-device scale-up domain" in note, note
    assert "train/days" in r.keys()
