"""The dashboard's state lives in the URL, so a copied link reproduces the view.

Every input is a :class:`Field` in :data:`FIELDS`. :func:`decode` turns ``st.query_params`` into typed
values (falling back to the default, with a note, for a value it cannot read) and :func:`encode` writes
back only what differs from the defaults, which keeps links short. Both are pure, so they are tested
without Streamlit. The widget helpers below keep one canonical store in ``st.session_state`` because
Streamlit forgets the state of widgets that a run did not draw (another page's inputs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .pages import PAGES as _PAGES

PAGES = {p.key: p.title for p in _PAGES}  # the registry lives in pages.py
DTYPES = ["bf16", "fp16", "fp32", "fp8", "int8", "int4"]


@dataclass(frozen=True)
class Field:
    name: str
    default: Any
    lo: float | None = None  # inclusive bounds for numbers
    hi: float | None = None
    choices: tuple | None = None  # allowed strings, when the set is fixed

    def parse(self, text: str):
        """The typed value of a query-param string; ValueError when it does not fit this field."""
        kind = type(self.default)
        if kind is bool:
            if text.lower() not in ("1", "0", "true", "false"):
                raise ValueError("expected 1 or 0")
            return text.lower() in ("1", "true")
        if kind in (int, float):
            try:
                x = float(text)
                if not math.isfinite(x):  # nan passes every bound check below (comparisons are False)
                    raise ValueError
                value = int(x) if kind is int and x.is_integer() else kind(text)
            except (ValueError, OverflowError):
                raise ValueError(f"expected {'a whole number' if kind is int else 'a finite number'}") from None
            if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
                raise ValueError(f"expected a number in [{self.lo}, {self.hi}]")
            return value
        if self.choices and text not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}")
        return text

    def show(self, value) -> str:
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)


def _fields(*fs: Field) -> dict[str, Field]:
    return {f.name: f for f in fs}


# Inputs shared by every page come first; scenario B of the A vs B page has its own "_b" copies.
FIELDS = _fields(
    Field("page", "model", choices=tuple(PAGES)),
    Field("model", "llama-3.1-8b"),
    Field("hw", "h100-sxm"),
    Field("dtype", "bf16", choices=tuple(DTYPES)),
    # parallel layout and training workload
    Field("tp", 1, 1, 4096), Field("pp", 1, 1, 4096), Field("dp", 8, 1, 1 << 20), Field("ep", 1, 1, 4096),
    Field("cp", 1, 1, 4096), Field("sp", False),
    Field("causal", False),
    Field("seq", 4096, 1, 1 << 24), Field("mbs", 1, 1, 1 << 16), Field("gbs", 512, 1, 1 << 24),
    Field("zero", 2, 0, 3), Field("recompute", "selective", choices=("none", "selective", "full")),
    Field("tokens", "15T"),
    # fine-tuning with LoRA adapters (llmcalc.training.memory.LoRA): rank 0 = full training
    Field("lora_rank", 0, 0, 4096), Field("lora_targets", "q,k,v,o"), Field("base_bits", 16, 4, 16),
    # inference and serving
    Field("batch", 1, 1, 1 << 16), Field("prompt", 1024, 1, 1 << 24), Field("gen", 256, 1, 1 << 24),
    Field("kv_dtype", "bf16", choices=tuple(DTYPES)), Field("roofline", False),
    Field("max_batch", 256, 2, 4096), Field("rate", 10.0, 0.001, 1e7),
    Field("ttft_slo", 2.0, 0.001, 1e4), Field("tpot_slo", 0.05, 1e-5, 100.0),
    Field("price", 0.0, 0.0, 1e6),  # USD per device-hour; 0 = the catalogue's price
    Field("weight_only", False),  # fp8/int8 weights with 16-bit compute (weight-only quantisation)
    # RL post-training page (llmcalc.rl.step.rl_step)
    Field("rl_gpus", 64, 2, 1 << 20), Field("rl_prompts", 512, 1, 1 << 20), Field("rl_samples", 16, 1, 4096),
    Field("rl_prompt", 512, 1, 1 << 24), Field("rl_mean", 3000, 1, 1 << 24), Field("rl_cv", 1.0, 0.0, 10.0),
    Field("rl_cap", 8192, 1, 1 << 24), Field("rl_eta", "2", choices=("0", "1", "2", "4", "8", "inf")),
    Field("rl_algo", "grpo", choices=("grpo", "ppo")), Field("rl_rtp", 1, 1, 4096), Field("rl_split", 0, 0, 1 << 20),
    Field("rl_partial", True),
    # plan page (llmcalc.training.plan)
    Field("plan_gpus", "64,128,256"), Field("objective", "time", choices=("time", "cost", "mfu")),
    Field("plan_chart", "step s", choices=("step s", "cost USD", "days")), Field("plan_pick", 1, 1, 50),
    # A vs B: the second scenario
    Field("model_b", "llama-3.1-8b"), Field("hw_b", "a100-sxm-80gb"), Field("dtype_b", "bf16", choices=tuple(DTYPES)),
    Field("tp_b", 1, 1, 4096), Field("pp_b", 1, 1, 4096), Field("dp_b", 8, 1, 1 << 20),
    # B's own workload (A's comes from the shared fields above)
    Field("seq_b", 4096, 1, 1 << 24), Field("mbs_b", 1, 1, 1 << 16), Field("gbs_b", 512, 1, 1 << 24),
    Field("batch_b", 1, 1, 1 << 16), Field("prompt_b", 1024, 1, 1 << 24), Field("gen_b", 256, 1, 1 << 24),
    Field("kv_dtype_b", "bf16", choices=tuple(DTYPES)), Field("price_b", 0.0, 0.0, 1e6),
)


def precision_words(s: dict[str, Any]) -> str | None:
    """What an 8-bit precision means on the inference pages, in the CLI's terms (None for 16/32-bit and int4,
    which mean the same in both): `llmcalc infer --weights fp8` keeps bf16 compute (weight-only) unless
    --activations fp8 is given; the dashboard computes in fp8 (W8A8) unless “weight-only” is on."""
    w = s["dtype"]
    if w not in ("fp8", "int8"):
        return None
    if s.get("weight_only"):
        return f"precision: {w} weights, bf16 compute (weight-only) — as `llmcalc infer --weights {w}`"
    return (f"precision: {w} weights and {w} compute (W8A8) — `llmcalc infer --weights {w} --activations {w}`; "
            f"turn on “weight-only” in the sidebar for the CLI's default (`--weights {w}`: bf16 compute)")


def activations(s: dict[str, Any]) -> str:
    """Compute precision of a scenario: fp8/int8 weights compute at that precision unless weight-only is set
    (then 16 bit, like int4); every other format computes at 16 bit (fp32 at fp32, see llmcalc.inference.latency)."""
    return s["dtype"] if s["dtype"] in ("fp8", "int8") and not s.get("weight_only") else "bf16"


def device_word(hardware) -> str:
    """'chip' for TPUs (Google's own word), 'GPU' otherwise: labels must not call a TPU a GPU."""
    tpu = hardware.vendor.lower() == "google" or hardware.name.lower().startswith("tpu")
    return "chip" if tpu else "GPU"


def decode(params: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Typed state from query params, plus one note per value that was ignored (never an exception)."""
    state = {name: f.default for name, f in FIELDS.items()}
    notes = []
    for name, text in params.items():
        f = FIELDS.get(name)
        if f is None:
            continue  # links from a newer version may carry more; ignoring them keeps old links working
        try:
            state[name] = f.parse(str(text))
        except ValueError as e:
            shown = str(text) if len(str(text)) <= 40 else str(text)[:40] + "…"
            notes.append(f"URL parameter {name}={shown!r} ignored: {e}; using {f.show(f.default)}")
    return state, notes


def encode(state: dict[str, Any]) -> dict[str, str]:
    """Query params for ``state``: only values that differ from the defaults, in FIELDS order."""
    out = {}
    for name, f in FIELDS.items():
        if name in state and state[name] != f.default:
            out[name] = f.show(state[name])
    return out


def scenario(state: dict[str, Any], suffix: str = "") -> dict[str, Any]:
    """The shared inputs of one scenario; ``suffix='_b'`` picks scenario B's own copies where it has them."""
    return {k: state.get(k + suffix, state[k]) for k in FIELDS if not k.endswith("_b") and k != "page"}


# ---------------------------------------------------------------- Streamlit bindings

_STORE = "_llmcalc_state"


def store() -> dict[str, Any]:
    """The canonical state of this session, read from the URL on the first run."""
    import streamlit as st

    if _STORE not in st.session_state:
        state, notes = decode(st.query_params.to_dict())
        st.session_state[_STORE] = state
        st.session_state["_llmcalc_notes"] = notes
    return st.session_state[_STORE]


def url_notes() -> list[str]:
    import streamlit as st

    return st.session_state.get("_llmcalc_notes", [])


def widget(name: str, draw, **kwargs):
    """Draw a widget bound to state ``name``: ``draw(label, key=..., **kwargs)``, e.g. st.number_input.

    The widget's key is ``w_<name>``, so tests and the browser address it by the state's name.
    """
    import streamlit as st

    s, key = store(), f"w_{name}"
    if key not in st.session_state:
        value = _fit(s[name], kwargs.get("options"), FIELDS[name].default)
        if value != s[name]:
            st.session_state.setdefault("_llmcalc_notes", []).append(
                f"URL parameter {name}={FIELDS[name].show(s[name])!r} is not one of the choices; using {value!r}")
        st.session_state[key] = value
    value = draw(key=key, **kwargs)
    s[name] = value
    return value


def _fit(value, options, default):
    """A stored value that is not among the options (a model removed since the link was made) -> the default."""
    if options is not None and value not in options:
        return default if default in options else list(options)[0]
    return value


def sync_url() -> None:
    """Write the state back into the address bar (only what differs from the defaults)."""
    import streamlit as st

    wanted = encode(store())
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)
