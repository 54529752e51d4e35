"""What-if architectures (issue #14): ad-hoc model flags and --set overrides on every model-taking command,
validated like YAML with the same errors."""

from __future__ import annotations

import json

from conftest import one_line_error
from typer.testing import CliRunner

from llmcalc.cli import app

runner = CliRunner()
LLAMA8B = ["--d-model", "4096", "--layers", "32", "--heads", "32", "--kv-heads", "8", "--ffn", "14336",
           "--vocab", "128256"]


def total_params(args) -> int:
    r = runner.invoke(app, ["params", *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)["total"]


def test_adhoc_flags_reproduce_published_counts():
    # Llama-3.1-8B: 8,030,261,248 (keras-hub llama3_8b_en; published-cases.yaml params-llama3-8b)
    assert total_params(LLAMA8B) == 8_030_261_248
    # Mixtral-8x7B: 46,702,792,704 (keras-hub mixtral preset), from flags alone
    assert total_params(["--d-model", "4096", "--layers", "32", "--heads", "32", "--kv-heads", "8", "--ffn",
                         "14336", "--vocab", "32000", "--experts", "8", "--top-k", "2"]) == 46_702_792_704


def test_set_overrides_a_catalogue_model():
    r = runner.invoke(app, ["kv", "llama-3.1-8b", "--context", "1000", "--set", "num_kv_heads=1", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["bytes_per_token_per_layer"] == 2 * 1 * 128 * 2  # 2·G·K·bytes, G = 1
    # one fewer layer removes exactly one layer's parameters: 8,030,261,248 - 218,112,000 (hand: attention
    # 4096·(4096+2·1024) + 4096·4096 = 41,943,040; MLP 3·4096·14336 = 176,160,768; 2 norms 8,192)
    assert total_params(["llama-3.1-8b", "--layers", "31"]) == 8_030_261_248 - 218_112_000


def test_every_model_command_accepts_the_flags():
    for cmd in (["flops", "--seq", "128"], ["memory"], ["kv", "--context", "100"], ["chinchilla"],
                ["summary"], ["infer"], ["train", "--tokens", "1T"]):
        r = runner.invoke(app, [*cmd, *LLAMA8B])
        assert r.exit_code == 0, (cmd, r.output)
        assert "ad-hoc D4096 L32 H32/8 F14336" in r.output, cmd


def test_invalid_overrides_fail_like_yaml(tmp_path):
    import yaml

    from llmcalc.core.catalogue import load_model, model_to_yaml

    d = yaml.safe_load(model_to_yaml(load_model("llama-3.1-8b")))
    d["attention"]["n_kv_heads"] = 5
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(d))
    from_yaml = one_line_error(["params", str(bad)], "n_kv_heads (5) must divide n_heads (32)")
    from_set = one_line_error(["params", "llama-3.1-8b", "--set", "num_kv_heads=5"],
                              "n_kv_heads (5) must divide n_heads (32)", "--set num_kv_heads=5")
    assert from_yaml.split(": ", 2)[-1] == from_set.split(": ", 2)[-1]  # the same words after the origin
    one_line_error(["params", "llama-3.1-8b", "--set", "num_kv_head=1"], "did you mean")
    one_line_error(["params", "llama-3.1-8b", "--set", "layers"], "key=value")
    one_line_error(["params", "--d-model", "4096"], "missing: --layers")
    one_line_error(["params"], "missing MODEL")
    one_line_error(["params", *LLAMA8B, "--experts", "8"], "moe")  # MoE needs top_k: the validator says so
