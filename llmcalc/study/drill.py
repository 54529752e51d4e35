"""The daily drill: questions generated from the calculators, graded answers, a history and Leitner boxes.

A question is a calculator's Figure asked for with randomised but realistic inputs (catalogue models and
accelerators, layouts that divide and fit); its answer is that Figure's value and its derivation is the
Figure's own formula, substituted values and source (and those of the figures it was built from).

Grading (:func:`grade`): the answer is read with its unit (``3.2 GB``, ``40ms``, ``1.2e12``, ``1.4T``) by
core/units.py; within 10% of the calculator is *right*, within a factor 2 *close*, else *wrong*; an answer
of the wrong dimension (seconds for bytes) is *wrong*. Bare numbers are accepted for counts and FLOPs only.

History is one JSON line per graded answer (:func:`history_path`: ``--history FILE``, else
``$LLMCALC_DATA_DIR``, else ``$XDG_DATA_HOME/llmcalc`` or ``~/.local/share/llmcalc``). Each topic sits in a
Leitner box (Leitner 1972): a right answer moves it up one box (at most 5), a wrong one back to box 1, a
close one leaves it; a drill without topics asks the lowest boxes first, least recently seen first.
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import LlmcalcError
from ..core.results import Figure

RIGHT, CLOSE = 0.10, 2.0  # within 10% is right; within a factor 2 is close
MAX_BOX = 5
HARDWARE = ("h100-sxm", "h200-sxm", "a100-sxm-80gb", "b200", "mi300x")


@dataclass(frozen=True)
class Question:
    topic: str
    text: str
    answer: Figure  # what is asked: value + unit
    derivation: tuple[Figure, ...] = ()  # the figures it was built from (the answer last)
    inputs: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"topic": self.topic, "question": self.text, "expected": _plain(self.answer.value),
                "unit": self.answer.unit, "expected_text": self.answer.text(), "inputs": self.inputs,
                "derivation": [f.as_dict() for f in self.derivation]}


def _plain(v):
    return v.item() if hasattr(v, "item") else v


# ---------------------------------------------------------------- question generators


def _models(rng: random.Random, pred=lambda m: True):
    from ..core.catalogue import all_models

    ms = [m for m in all_models() if pred(m)]
    return rng.choice(ms)


def _hw(rng: random.Random):
    from ..core.catalogue import load_hardware

    return load_hardware(rng.choice(HARDWARE))


def q_chinchilla(rng):
    from ..model.scaling import chinchilla

    m = _models(rng)
    r = chinchilla(m)
    kind = f" (an MoE: use the {r.value('params_active') / 1e9:.3g}B active parameters)" if m.moe else ""
    return Question("chinchilla", f"Chinchilla-optimal training tokens (20 per parameter) for {m.display_name}{kind}?",
                    r["size/rule20/tokens"], (r["params_active"], r["size/rule20/tokens"]), {"model": m.name})


def q_params(rng):
    from ..model.params import param_breakdown

    m = _models(rng)
    r = param_breakdown(m)
    moe = f", E={m.moe.n_experts} experts of F={m.moe.d_ff_expert}, top-{m.moe.top_k}" if m.moe else ""
    return Question("params", f"Total parameters of {m.display_name} (D={m.d_model}, {m.n_layers} layers, "
                    f"V={m.vocab_size}, F={m.mlp.d_ff}{moe})?", r["total"],
                    tuple(f for f in r.figures if f.key != "active"), {"model": m.name})


def q_flops(rng):
    from ..model.flops import forward_flops

    m = _models(rng, lambda m: not m.moe)
    b, L = rng.choice([1, 2, 4, 8]), rng.choice([2048, 4096, 8192])
    r = forward_flops(m, b, L)
    return Question("flops", f"Training-step FLOPs (forward + backward, exact matmul count) of {m.display_name} "
                    f"at batch {b} × seq {L}?", r["train_step"],
                    (r["n_active"], r["six_nd"], r["forward"], r["backward"], r["train_step"]),
                    {"model": m.name, "batch": b, "seq": L})


def q_kv(rng):
    from ..inference.kv import kv_cache

    m = _models(rng)
    r = kv_cache(m, 4096)
    return Question("kv", f"KV cache per token, all layers, bf16, for {m.display_name} (no window cap)?",
                    r["bytes_per_token_uncapped"], (r["bytes_per_token_per_layer"], r["bytes_per_token_uncapped"]),
                    {"model": m.name})


def q_tp_bytes(rng):
    from ..core.catalogue import load_hardware
    from ..training.comms import comm_ledger
    from ..training.layout import Layout

    def ok(m):
        return not m.attention.mla and m.attention.n_kv_heads % 2 == 0
    m = _models(rng, ok)
    t = rng.choice([t for t in (2, 4, 8) if m.attention.n_kv_heads % t == 0 and m.attention.n_heads % t == 0])
    L = rng.choice([2048, 4096, 8192])
    sp = rng.random() < 0.5
    r = comm_ledger(m, load_hardware("h100-sxm"), Layout(tp=t, sp=sp), seq=L)
    coll = "all-gather" if sp else "all-reduce"
    key = f"comm/tp/{coll}/activations"
    row = next(x for x in r.data["rows"] if x["parallelism"] == "tp" and x["collective"] == coll)
    per = Figure(key + "/bytes", row["bytes_per_rank"], "B", formula=f"{'(n-1)/n' if sp else '2*(n-1)/n'}·S",
                 substituted=f"S = B·L·D·2 = {int(row['message_bytes']):,} B, n = {t}",
                 source="NVIDIA nccl-tests doc/PERFORMANCE.md (ring factors); llmcalc comms",
                 label=f"TP {coll} bytes per rank per call")
    what = "the TP all-gather under sequence parallelism" if sp else "the TP all-reduce"
    return Question("tp-bytes", f"Bytes per rank of one call of {what} for {m.display_name}, TP {t}, micro-batch 1, "
                    f"seq {L}, bf16?", per, (r[key], per), {"model": m.name, "tp": t, "seq": L, "sp": sp})


def q_zero(rng):
    from ..model.params import param_breakdown
    from ..training.memory import model_state_bytes

    m = _models(rng)
    dp, z = rng.choice([8, 16, 32, 64]), rng.choice([1, 2, 3])
    n = param_breakdown(m).data["total"]
    r = model_state_bytes(n, dp=dp, zero=z)
    return Question("zero", f"ZeRO-{z} model-state memory per GPU (bf16 weights and grads, fp32 Adam states) for "
                    f"{m.display_name} at DP {dp}?", r["memory/model_states"], tuple(r.figures),
                    {"model": m.name, "dp": dp, "zero": z})


def _fitting(rng, tp1: bool = True):
    """A (model, hardware, tp) whose bf16 weights fit in 90% of memory, at tp 1 when possible."""
    from ..inference.latency import Deployment

    for _ in range(50):
        m, hw = _models(rng), _hw(rng)
        for t in (1, 2, 4, 8) if not tp1 else (1,):
            if m.attention.n_heads % t or (not m.attention.mla and m.attention.n_kv_heads % t):
                continue
            dep = Deployment(m, hw, t)
            if dep.weight_bytes_per_gpu <= 0.9 * hw.memory_bytes:
                return m, hw, dep
    raise LlmcalcError("no catalogue model fits the drill's hardware")  # pragma: no cover


def q_decode(rng):
    from ..inference.latency import latency

    m, hw, dep = _fitting(rng)
    b = rng.choice([1, 1, 8, 32])
    p, o = rng.choice([512, 1000, 2000]), rng.choice([128, 256, 500])
    r = latency(dep, batch=b, prompt=p, output=o, knee=False)  # figures only: no knee search
    return Question("decode", f"Mean decode time per output token (TPOT) for {m.display_name} on one "
                    f"{hw.display_name} at batch {b}, prompt {p}, output {o}, bf16?", r["tpot_mean_s"],
                    tuple(f for f in r.figures if f.key.startswith("tpot_start") or f.key == "tpot_mean_s"),
                    {"model": m.name, "hardware": hw.name, "batch": b, "prompt": p, "output": o})


def q_prefill(rng):
    from ..inference.latency import latency

    m, hw, dep = _fitting(rng)
    p = rng.choice([1000, 2000, 4000, 8000])
    r = latency(dep, batch=1, prompt=p, output=2, knee=False)
    return Question("prefill", f"Time to first token (prefill) for {m.display_name} on one {hw.display_name}, "
                    f"batch 1, prompt {p}, bf16?", r["ttft_s"],
                    tuple(f for f in r.figures if f.key.startswith(("prefill", "ttft"))),
                    {"model": m.name, "hardware": hw.name, "prompt": p})


def q_train_days(rng):
    from ..training.cost import training_cost

    m, hw = _models(rng), _hw(rng)
    gpus = rng.choice([512, 1024, 2048, 4096])
    tokens = rng.choice([1e12, 2e12, 15e12])
    mfu = rng.choice([0.35, 0.4, 0.5])
    r = training_cost(m, tokens, hw, gpus, mfu=mfu)
    return Question("train-days", f"Days to train {m.display_name} on {tokens / 1e12:g}T tokens with {gpus} × "
                    f"{hw.display_name} at MFU {mfu:g} (6·N·D)?", r["days"],
                    tuple(r[k] for k in ("model_flops", "days") if k in r.keys()),
                    {"model": m.name, "hardware": hw.name, "gpus": gpus, "tokens": tokens, "mfu": mfu})


GENERATORS = {"params": q_params, "chinchilla": q_chinchilla, "flops": q_flops, "kv": q_kv, "tp-bytes": q_tp_bytes,
              "zero": q_zero, "decode": q_decode, "prefill": q_prefill, "train-days": q_train_days}
TOPICS = tuple(GENERATORS)


# ---------------------------------------------------------------- grading


@dataclass(frozen=True)
class Grade:
    verdict: str  # right | close | wrong | skipped | unreadable (neither graded nor recorded)
    given: float | None = None  # the answer in SI units
    ratio: float | None = None  # given / expected
    message: str = ""


def parse_answer(text: str, unit: str) -> float:
    """An answer in the expected unit's dimension, in SI; LlmcalcError (naming the problem) otherwise."""
    import re

    from ..core import units

    # the question's own denominator ("KV cache per token?"): "320 KiB per token" or "320 KiB/token" was graded WRONG
    # for an unknown unit 'KiB per token', a right answer recorded as a miss in the Leitner history
    text = re.sub(r"\s*(?:/|\bper\b)\s*(?:tokens?|requests?|sequences?|seqs?|GPUs?|ranks?|steps?)\s*$", "",
                  text.strip(), flags=re.IGNORECASE)
    if unit in ("token", "param", "GPU"):
        return units.parse_count(re.sub(r"\s*(parameters|GPUs?)$", "", text))
    if unit == "FLOP":
        try:
            return units.parse_count(text)  # 1.2e12, 3.4T
        except LlmcalcError:
            return units.parse(text, units.FLOP)  # 3.4 TFLOP
    if unit == "days":  # the question asks for days: a bare number is days, a time with a unit is converted
        return units.parse_count(text) if _bare(text) else units.parse(text, units.SECONDS) / 86400
    if _bare(text):
        raise LlmcalcError(f"{text!r} has no unit; answer with one, e.g. "
                           f"{ {'B': '3.2 GB', 'B/s': '1.2 TB/s'}.get(unit, '40 ms')}")
    return units.parse(text, {"B": units.BYTES, "s": units.SECONDS, "B/s": units.BYTES_PER_S}[unit])


def _readable(text: str) -> bool:
    """Does ``text`` read as a quantity of any dimension, or as a plain number?"""
    from ..core import units

    for read in (units.parse, units.parse_count):
        try:
            read(text.strip())
            return True
        except LlmcalcError:
            pass
    return False


def _bare(text: str) -> bool:
    try:
        float(text.replace(",", "").replace("_", ""))
        return True
    except ValueError:
        return False


def grade(answer: str | None, expected: float, unit: str) -> Grade:
    if answer is None or not answer.strip():
        return Grade("skipped")
    try:
        given = parse_answer(answer, unit)
    except LlmcalcError as e:
        # a quantity of another dimension, or bytes with no unit, is a wrong answer; text that reads as no quantity
        # at all ('128 kiB', '3.2 gigs') is a typo, shown and not recorded as a miss (user test, 30 Nov 2026)
        return Grade("wrong" if _readable(answer) else "unreadable", message=f"unit: {e}")
    if expected == 0 or not math.isfinite(given):
        return Grade("wrong", given, None, "not comparable")
    ratio = given / expected
    if abs(ratio - 1) <= RIGHT:
        verdict = "right"
    elif 1 / CLOSE <= ratio <= CLOSE:
        verdict = "close"
    else:
        verdict = "wrong"
    return Grade(verdict, given, ratio)


# ---------------------------------------------------------------- history and Leitner boxes


def history_path(override: str | None = None) -> Path:
    """The drill history: ``--history`` as given, in a folder that must exist (a typo is not a new folder tree;
    user test, 30 Nov 2026), else the data folder ($LLMCALC_DATA_DIR, $XDG_DATA_HOME/llmcalc), made on first use
    as the XDG base-directory spec allows."""
    if override:
        p = Path(override)
        if p.is_dir():
            raise LlmcalcError(f"--history {override} is a folder; give a file, e.g. {p / 'drill.jsonl'}")
        folder = p.parent
        if not folder.is_dir():
            raise LlmcalcError(f"--history {override}: the folder {folder} does not exist (drill creates no folders "
                               "for a path you give; create it first, or drop --history for the default data folder)")
        return p
    if os.environ.get("LLMCALC_DATA_DIR"):
        return Path(os.environ["LLMCALC_DATA_DIR"]) / "drill.jsonl"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "llmcalc" / "drill.jsonl"


def load_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise LlmcalcError(f"{path}: cannot read the drill history ({e.strerror})") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise LlmcalcError(f"{path}:{i}: not a JSON line; fix or remove it") from None
        if isinstance(rec, dict) and rec.get("topic") in GENERATORS and rec.get("verdict") in ("right", "close",
                                                                                                  "wrong"):
            out.append(rec)
    return out


def append_history(path: Path, records: list[dict]) -> None:
    if not records:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
    except OSError as e:
        raise LlmcalcError(f"{path}: cannot write the drill history ({e.strerror})") from None


def boxes(history: list[dict]) -> dict[str, dict]:
    """Per topic: Leitner box (1..5), attempts, right/close/wrong counts, accuracy, last seen (record index)."""
    out = {t: {"box": 1, "attempts": 0, "right": 0, "close": 0, "wrong": 0, "last": -1} for t in GENERATORS}
    for i, r in enumerate(history):
        s = out[r["topic"]]
        s["attempts"] += 1
        s[r["verdict"]] += 1
        s["last"] = i
        s["box"] = min(MAX_BOX, s["box"] + 1) if r["verdict"] == "right" else 1 if r["verdict"] == "wrong" \
            else s["box"]
    for s in out.values():
        s["accuracy"] = s["right"] / s["attempts"] if s["attempts"] else None
    return out


def order(topics: list[str] | None, history: list[dict]) -> list[str]:
    """The topics to ask, weakest first: lowest Leitner box, then least recently seen, then catalogue order."""
    if topics:
        bad = [t for t in topics if t not in GENERATORS]
        if bad:
            from ..core.errors import unknown_name

            raise unknown_name("drill topic", bad[0], TOPICS)
        return list(topics)
    b = boxes(history)
    return sorted(TOPICS, key=lambda t: (b[t]["box"], b[t]["last"], TOPICS.index(t)))


def questions(topics: list[str] | None, count: int, seed: int, history: list[dict]) -> list[Question]:
    """``count`` questions cycling through the ordered topics; the same seed and history give the same set."""
    if count < 1:
        raise LlmcalcError(f"--count must be at least 1, got {count}")
    rng = random.Random(seed)
    todo = order(topics, history)
    return [GENERATORS[todo[i % len(todo)]](rng) for i in range(count)]
