"""Quantised weight bytes: storage formats, group-wise scale/zero overhead, bits-per-weight averages."""

import pytest

from llmcalc.core.catalogue import load_model
from llmcalc.core.errors import LlmcalcError
from llmcalc.model.quant import bits_per_weight, parse_weights, weight_bytes

# Llama-3-8B exact counts (Llama 3 paper Table 3 + HF config; keras-hub llama3_8b_en): total 8,030,261,248,
# embedding + LM head 1,050,673,152.
LLAMA3_8B = 8_030_261_248
LLAMA3_8B_EMB = 1_050_673_152


def test_int4_group128_fp16_scale_and_packed_zero():
    # GPTQ (Frantar et al. 2023 §4) / AWQ (Lin et al. 2024 §3) checkpoints: per group of g weights one fp16 scale
    # ("scales") and one zero point packed at the weight width ("qzeros", 8 x 4-bit per int32): 4 + (16 + 4)/128.
    assert bits_per_weight("int4", 128).value == pytest.approx(4 + 20 / 128)
    assert bits_per_weight("int8", 64).value == pytest.approx(8 + 24 / 64)
    # an fp16 zero point (zero_bits=16) or a symmetric scheme (zero_bits=0) when asked
    assert bits_per_weight("int4", 128, zero_bits=16).value == pytest.approx(4 + 32 / 128)
    assert bits_per_weight("int4", 128, zero_bits=0).value == pytest.approx(4 + 16 / 128)


def test_fp32_stores_every_parameter_at_4_bytes():
    # only formats below 16 bits keep the embeddings at 16 bit: fp32 is 4 B for each of the 8,030,261,248 parameters
    r = weight_bytes(load_model("llama-3.1-8b"), "fp32")
    assert r.data["weight_bytes"] == 4 * LLAMA3_8B
    assert r.data["embedding_params"] == 0


@pytest.mark.parametrize("fmt,bits", [("bf16", 16), ("fp16", 16), ("fp8", 8), ("int8", 8), ("int4", 4)])
def test_named_formats(fmt, bits):
    assert parse_weights(fmt) == (fmt, bits)


def test_bf16_is_two_bytes_per_parameter():
    assert weight_bytes(load_model("llama-3.1-8b")).data["weight_bytes"] == 2 * LLAMA3_8B


def test_int4_keeps_embeddings_16bit_and_never_rounds_to_zero():
    r = weight_bytes(load_model("llama-3.1-8b"), "int4")
    assert r.data["embedding_params"] == LLAMA3_8B_EMB
    assert r.data["weight_bytes"] == (LLAMA3_8B - LLAMA3_8B_EMB) * 0.5 + LLAMA3_8B_EMB * 2


def test_gguf_bits_per_weight_average_applies_to_everything():
    # a file-average figure such as llama.cpp Q4_K_M's ~4.85 bits/weight covers every tensor
    r = weight_bytes(load_model("llama-3.1-8b"), "4.85")
    assert r.data["weight_bytes"] == pytest.approx(LLAMA3_8B * 4.85 / 8, rel=1e-12)
    assert weight_bytes(load_model("llama-3.1-8b"), 4.85).data["weight_bytes"] == r.data["weight_bytes"]


def test_quantize_embeddings_switch():
    r = weight_bytes(load_model("llama-3.1-8b"), "fp8", quantize_embeddings=True)
    assert r.data["weight_bytes"] == LLAMA3_8B


def test_errors_name_the_option():
    with pytest.raises(LlmcalcError, match="--weights"):
        parse_weights("int3x")
    with pytest.raises(LlmcalcError, match="--group-size"):
        bits_per_weight("bf16", 128)
    with pytest.raises(LlmcalcError, match="--group-size"):
        bits_per_weight("int4", 0)
    with pytest.raises(LlmcalcError, match="1..32"):
        parse_weights("0.5")
