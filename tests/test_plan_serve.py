"""The serving planner: places models that need more than one node, meets its targets, names why families fail,
and reproduces `serve` on the family `serve` searches (TP within a node, one precision).

Hand-derived figures: Llama-3.1-405B has 405.85e9 parameters (Meta model card; our exact count), so bf16
weights on TP8 are 405.85e9·2/8 = 101.5 GB per GPU, more than 0.9 × 79.6 GiB = 77.0 GB usable on an
H100 (nvidia-smi 81,559 MiB). Llama-3.1-8B's KV cache is 2 (K, V) × 8 KV heads × 128 × 2 B × 32 layers
= 131,072 B per token (config.json: num_key_value_heads 8, head_dim 128, 32 layers).
"""

import json

import pytest
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.core.efficiency import DEFAULT_EFFICIENCY
from llmcalc.core.errors import LlmcalcError
from llmcalc.inference.plan_serve import Replica, evaluate, plan_serve
from llmcalc.inference.serving import serve

H100 = load_hardware("h100-sxm")


@pytest.mark.parametrize("name, weights, tpot", [("deepseek-v3", "fp8", 0.05), ("llama-3.1-405b", "bf16", 0.1)])
def test_places_big_models_across_nodes_on_h100(name, weights, tpot):
    r = plan_serve(load_model(name), H100, prompt=1000, output=300, ttft_s=2, tpot_s=tpot, users=10000,
                   weights=[weights])
    best = r.data["ranked"][0]
    assert best["ttft_s"] <= 2 and best["tpot_s"] <= tpot
    # neither fits one 8-GPU node (671 GB fp8 / 810 GB bf16 of weights > 8 × 77 GB): every replica or pool
    # spans nodes
    for row in r.data["ranked"]:
        sizes = [int(s.split(" GPUs")[0].split("(")[-1]) for s in row["config"].split(" + ")]
        assert min(sizes) > 8
    for row in r.data["ranked"]:
        assert row["ttft_p99_s"] >= row["ttft_s"] - 1e-12 and row["tpot_p99_s"] >= row["tpot_s"] - 1e-12


def test_rejected_family_names_the_failing_constraint():
    r = plan_serve(load_model("llama-3.1-405b"), H100, prompt=1000, output=300, ttft_s=2, tpot_s=0.1, qps=10,
                   weights=["bf16"], kv_dtypes=["bf16"])
    why = r.data["rejected"]["tp, weights bf16, KV bf16"]
    assert "TP8: weights 101.5 GB per GPU > 77.0 GB usable" in why


def test_reproduces_serve_on_its_family():
    m = load_model("llama-3.1-70b")
    s = serve(m, H100, prompt=1000, output=300, ttft_s=2, tpot_s=0.05, users=10000)
    p = plan_serve(m, H100, prompt=1000, output=300, ttft_s=2, tpot_s=0.05, users=10000, weights=["bf16"],
                   kv_dtypes=["bf16"], disaggregate=False)
    tp_only = next(x for x in p.data["ranked"] if x["family"].startswith("tp,"))
    assert tp_only["gpus"] == s.data["gpus"]
    assert tp_only["concurrency_per_replica"] == s.data["capacity"]["concurrency"]
    assert tp_only["tpot_s"] == pytest.approx(s.data["capacity"]["tpot_s"], rel=1e-12)


def test_disaggregation_moves_the_prompt_kv_over_the_network():
    m = load_model("llama-3.1-8b")
    r = plan_serve(m, H100, prompt=1000, output=300, ttft_s=2, tpot_s=0.05, qps=50, weights=["bf16"],
                   kv_dtypes=["bf16"])
    row = next(x for x in r.data["ranked"] if x["family"].startswith("disaggregated"))
    g_p = int(row["config"].split("(")[1].split(" GPUs")[0])
    bw = 400e9 / 8 * DEFAULT_EFFICIENCY.link  # NDR 400 Gb/s per GPU, per direction
    assert row["kv_transfer_s"] == pytest.approx(10e-6 + 1000 * 131072 / (g_p * bw), rel=1e-9)
    assert row["tpot_p99_s"] == row["tpot_s"]  # no prefill stalls in a decode-only pool


def test_decode_pool_has_no_prefill_share_and_pipeline_keeps_token_time():
    m = load_model("llama-3.1-8b")
    kw = dict(prompt=1000, output=300, ttft_s=2, tpot_s=0.05, ttft_p99_s=None, tpot_p99_s=None,
              eff=DEFAULT_EFFICIENCY, reserve=0.1)
    dec = evaluate(m, H100, Replica("tp", 1), **kw, role="decode")
    assert dec["ok"] and dec["prefill_share"] == 0
    both = evaluate(m, H100, Replica("tp", 1), **kw)
    assert both["qps"] < dec["qps"]  # prefills take engine time away from decoding


def test_input_checks():
    m = load_model("llama-3.1-8b")
    with pytest.raises(LlmcalcError, match="exactly one of"):
        plan_serve(m, H100, prompt=10, output=10, ttft_s=1, tpot_s=0.05)
    with pytest.raises(LlmcalcError, match="--tpot"):
        plan_serve(m, H100, prompt=10, output=10, ttft_s=1, tpot_s=-1, qps=1)


def test_cli_users_states_assumptions_first():
    res = CliRunner().invoke(app, ["plan-serve", "llama-3.1-70b", "-H", "h100-sxm", "--users", "10000",
                                   "--prompt", "1000", "--output", "300"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert "10000 users × 1 request per user per minute = 166.7 req/s" in lines[1]
    assert "targets" in lines[2]
    assert "cheapest deployments" in res.output
    res = CliRunner().invoke(app, ["plan-serve", "llama-3.1-8b", "--qps", "5", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["ranked"]
    for args, word in ((["--prompt", "abc", "--qps", "1"], "--prompt"), (["--qps", "1", "--mix", "0.5,0.6"], "--mix"),
                       ([], "exactly one"), (["--qps", "1", "--tpot", "fast"], "--tpot")):
        res = CliRunner().invoke(app, ["plan-serve", "llama-3.1-8b", *args])
        assert res.exit_code == 2 and word in res.output and "Traceback" not in res.output, res.output


def test_one_output_token_has_no_decode_pool_to_disaggregate():
    # With one output token the first (and only) token comes from the prefill: a separate decode pool has no work
    # (its Little's-law cycle time would be 0); the family is rejected with a reason, never divided by zero.
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.inference.plan_serve import plan_serve

    r = plan_serve(load_model("llama-3.1-8b"), load_hardware("h100-sxm"), prompt=64, output=1, ttft_s=2.0,
                   tpot_s=0.05, qps=1.0)
    assert r.data["ranked"] and all("decode" not in row["family"] or "disagg" not in row["family"]
                                    for row in r.data["ranked"])
