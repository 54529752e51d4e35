"""Weight bytes under quantisation: bf16, fp8, int8, int4, group-wise scales, or any bits/weight.

Group-wise quantisation (GPTQ, Frantar et al. 2023 §4 "grouping"; AWQ, Lin et al. 2024 §3) stores,
for every group of g weights, a scale and (asymmetric schemes) a zero point. The released checkpoint
formats (GPTQ's and AWQ's ``qweight``/``qzeros``/``scales`` tensors, as loaded by AutoGPTQ, AutoAWQ and
vLLM) keep an fp16 scale and a zero point PACKED at the weight width, so the cost is
``bits + (16 + bits)/g`` bits per weight: int4 at g = 128 is 4 + 20/128 = 4.156 bits. ``zero_bits``
overrides the zero-point width (16 for an fp16 zero, 0 for symmetric schemes).
A plain number (e.g. 4.85 for llama.cpp's Q4_K_M) is taken as the file's average bits per weight
and applied to every parameter, embeddings included, since that is how such averages are quoted.

Convention for named formats: quantisation recipes (GPTQ/AWQ, TensorRT-LLM FP8, vLLM FP8) quantise
the linear layers of the blocks and keep the token embedding and LM head in 16 bit; we do the
same for formats below 16 bits unless ``quantize_embeddings=True``. 16- and 32-bit formats store
every parameter, embeddings included, at that width (fp32 weights: 4 bytes per parameter).
"""

from __future__ import annotations

from ..core.checks import check_count, check_number
from ..core.errors import LlmcalcError
from ..core.results import Result, derive, memo_by_identity, total
from ..core.specs import Model

# bits per element of each storage format
DTYPE_BITS: dict[str, float] = {"fp32": 32, "bf16": 16, "fp16": 16, "fp8": 8, "int8": 8, "int4": 4, "fp4": 4}
SRC_GROUP = ("group-wise quantisation: Frantar et al. 2023 (GPTQ) §4; Lin et al. 2024 (AWQ) §3; fp16 scale and "
             "zero packed at the weight width per group (GPTQ/AWQ checkpoint qzeros/scales)")
EMBEDDING_KEYS = ("embedding", "position_embedding", "lm_head")


def bits_per_element(dtype: str) -> float:
    """Storage bits of a named format (bf16, fp8, int8, int4 ...)."""
    try:
        return DTYPE_BITS[dtype.lower()]
    except KeyError:
        raise LlmcalcError(f"unknown data type {dtype!r}; expected one of {', '.join(DTYPE_BITS)}") from None


def parse_weights(spec: str | float) -> tuple[str, float]:
    """``'int4'`` -> ('int4', 4); ``'4.85'`` or 4.85 -> ('4.85 bits', 4.85). Raises on nonsense."""
    if isinstance(spec, (int, float)):
        bits = float(spec)
        name = f"{bits:g} bits"
    else:
        s = str(spec).strip().lower()
        if s in DTYPE_BITS:
            return s, DTYPE_BITS[s]
        try:
            bits = float(s.removesuffix("bits").removesuffix("bpw").strip())
        except ValueError:
            raise LlmcalcError(f"--weights expects bf16, fp8, int8, int4 or a number of bits per weight "
                               f"(e.g. 4.85), got {spec!r}") from None
        name = f"{bits:g} bits"
    if not 1 <= bits <= 32:
        raise LlmcalcError(f"--weights: bits per weight must lie in 1..32, got {bits:g}")
    return name, bits


def bits_per_weight(weights: str | float = "bf16", group_size: int | None = None, scale_bits: int = 16,
                    zero_bits: float | None = None):
    """Bits stored per weight, scale and zero-point overhead included (a Figure).

    ``zero_bits`` defaults to the weight width (GPTQ/AWQ pack the zero points like the weights)."""
    name, bits = parse_weights(weights)
    if group_size is None:
        return derive("bits_per_weight", "bits", "bit", "definition of the storage format",
                      label=f"bits per weight ({name})", bits=bits)
    check_count(group_size, "--group-size")
    if name not in ("int8", "int4", "fp4") and not name.endswith("bits"):
        raise LlmcalcError(f"--group-size applies to integer formats (int8, int4); {name} has no group scales")
    zero_bits = bits if zero_bits is None else zero_bits
    check_number(zero_bits, "zero_bits", low=0, low_ok=True, high=32)
    return derive("bits_per_weight", "bits + (scale_bits + zero_bits)/g", "bit", SRC_GROUP,
                  label=f"bits per weight ({name}, group {group_size}: {scale_bits}-bit scale + "
                        f"{zero_bits:g}-bit zero per group)",
                  bits=bits, scale_bits=scale_bits, zero_bits=zero_bits, g=group_size)


def weight_bytes(model: Model, weights: str | float = "bf16", group_size: int | None = None,
                 quantize_embeddings: bool | None = None) -> Result:
    """Bytes of every weight of ``model`` at the chosen format.

    ``data``: ``bits_per_weight``, ``quantized_params``, ``embedding_params`` (16-bit unless
    quantised), ``weight_bytes`` (total), ``embedding_bytes`` (token embedding + LM head + positions).
    """
    return _weight_bytes(model, weights, group_size, quantize_embeddings)


@memo_by_identity  # a serving planner asks 10² times for the same model and format
def _weight_bytes(model: Model, weights, group_size, quantize_embeddings) -> Result:
    from .params import param_breakdown

    name, _ = parse_weights(weights)
    if quantize_embeddings is None:  # a bits/weight average already covers the embeddings
        quantize_embeddings = name.endswith("bits") or bits_per_element_or_none(name) >= 16
    bpw = bits_per_weight(weights, group_size)
    parts = param_breakdown(model).data["breakdown"]
    emb = sum(v for k, v in parts.items() if k in EMBEDDING_KEYS)
    body = sum(v for k, v in parts.items() if k not in EMBEDDING_KEYS)
    if quantize_embeddings:
        body, emb = body + emb, 0
    src = "bytes = parameters x bits / 8"
    figs = [bpw,
            derive("quantized_bytes", "params*bpw/8", "B", src, label=f"block weights at {bpw.value:g} bits",
                   params=body, bpw=bpw.value)]
    if emb:
        figs.append(derive("embedding_bytes", "params*16/8", "B", src + "; embeddings/LM head kept in 16 bit",
                           label="embedding + LM head (16 bit)", params=emb))
    figs.append(total("weight_bytes", figs[1:], label="weights"))
    notes = ["embeddings and LM head kept at 16 bit (GPTQ/AWQ/TensorRT-LLM practice)" if emb else
             "every parameter stored at the same bits per weight"]
    data = {"model": model.name, "weights": name, "bits_per_weight": bpw.value, "quantized_params": int(body),
            "embedding_params": int(emb), "weight_bytes": figs[-1].value,
            "embedding_bytes": figs[2].value if emb else 0.0}
    return Result(f"Weights of {model.display_name} at {name}", tuple(figs), tuple(notes), data)


def bits_per_element_or_none(dtype: str) -> float | None:
    return DTYPE_BITS.get(dtype.lower())
