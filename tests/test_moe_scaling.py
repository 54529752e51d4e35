"""The numeric MoE loss law (llmcalc.model.moe_scaling): Krajewski et al. 2024, "Scaling Laws for Fine-Grained
Mixture of Experts" (arXiv 2402.07871), eq. 9 with Table 1's constants, checked against the paper's own Table 2.

Table 2 lists compute-optimal MoE runs as "E × N_act" with their tokens D, granularity G and predicted loss; the
law takes the TOTAL non-embedding count N = N_act·(8E + 4)/12 (§6.1: N = d_model²·(8E + 4)·n_blocks, active
12·d_model²·n_blocks). Table 1 prints its constants to 2-3 significant digits, so the paper's loss is reproduced
"within its rounding": it must lie inside the range the law spans when each constant moves by half its last printed
digit (the law is monotone in each constant, so the corners of that box bound it), and our nominal value within 1%.
"""

import itertools
import json

import pytest
from conftest import one_line_error
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_model
from llmcalc.model.moe_scaling import KRAJEWSKI_MOE, compare_moe, total_from_active

# Table 2 rows: (N_act, D, G, loss), all at expansion rate E = 64
TABLE2 = [(100e6, 4.37e9, 8, 3.133), (1e9, 28.94e9, 16, 2.491), (3e9, 72.90e9, 16, 2.245),
          (7e9, 137.60e9, 32, 2.076), (70e9, 941.07e9, 32, 1.694)]
# Table 1 (MoE row) as printed, and half of each constant's last printed digit
PRINTED = dict(a=(18.1, 0.05), alpha=(0.115, 0.0005), b=(30.8, 0.05), beta=(0.147, 0.0005), g=(2.1, 0.05),
               gamma=(0.58, 0.005), c=(0.47, 0.005))


def _law(N, D, G, a, alpha, b, beta, g, gamma, c):
    return c + (g / G**gamma + a) / N**alpha + b / D**beta  # eq. 9, written out independently


def test_constants_are_table_1_as_printed():
    k = KRAJEWSKI_MOE
    assert (k.a, k.alpha, k.b, k.beta, k.g, k.gamma, k.c) == tuple(v for v, _ in PRINTED.values())


@pytest.mark.parametrize("active,tokens,g,published", TABLE2)
def test_table_2_losses_within_the_rounding_of_table_1(active, tokens, g, published):
    total = active * (8 * 64 + 4) / 12
    assert total_from_active(active) == pytest.approx(total, rel=1e-12)
    corners = [_law(total, tokens, g, *vals) for vals in itertools.product(
        *[(v - h, v + h) for v, h in PRINTED.values()])]
    assert min(corners) <= published <= max(corners)
    ours = compare_moe(active, total, tokens, g).data["loss"]
    assert ours == pytest.approx(published, rel=0.01)
    assert ours == pytest.approx(_law(total, tokens, g, *(v for v, _ in PRINTED.values())), rel=1e-12)


def test_cli_loss_with_total_is_the_moe_law_and_counts_active_flops():
    res = CliRunner().invoke(app, ["loss", "--params", "100M", "--total", "4.3B", "--granularity", "8",
                                   "--tokens", "4.37B", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["loss"] == pytest.approx(_law(4.3e9, 4.37e9, 8, *(v for v, _ in PRINTED.values())), rel=1e-12)
    assert d["flops"] == pytest.approx(6 * 100e6 * 4.37e9, rel=1e-12)  # C = 6·N_active·D
    assert d["expansion"] == pytest.approx(64, rel=1e-9)  # (12·4.3B/100M − 4)/8
    assert d["loss"] < d["dense_loss"]  # the paper's §6.3: MoE beats dense at equal active parameters


def test_moe_errors_are_one_line():
    one_line_error(["loss", "--params", "7B", "--total", "3B", "--tokens", "1T"], "--total", "active")
    one_line_error(["loss", "--params", "1B", "--total", "8B", "--granularity", "0.5", "--tokens", "1T"],
                   "--granularity")
    one_line_error(["loss", "--params", "1B,2B", "--total", "8B", "--tokens", "1T,2T"], "one run")


def test_chinchilla_moe_model_shows_the_moe_law_and_flags_extrapolation():
    res = CliRunner().invoke(app, ["chinchilla", "mixtral-8x7b", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert "moe_krajewski_loss" in d
    assert any("EXTRAPOLATION" in a and "E = 4" in a for a in d["assumptions"])  # 8 experts / top-2
    dense = json.loads(CliRunner().invoke(app, ["chinchilla", "llama-3.1-8b", "--json"]).output)
    assert "moe_krajewski_loss" not in dense
    assert load_model("mixtral-8x7b").moe.top_k == 2
