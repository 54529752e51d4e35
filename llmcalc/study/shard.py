"""Sharding exercises: a 2-layer ReLU MLP and an attention block, unsharded and sharded, tensor by tensor.

For each form, every matmul of the forward and backward pass is an einsum in shape-suffix notation with the
shapes ONE rank holds (a sharded letter is written ``F/tp``), its FLOPs per rank, and every collective:
where it happens, the tensor and its shape, the buffer S, the bytes each rank moves and its time on the
chosen accelerator (the one collective cost model, llmcalc/network/collectives.py).

Forms of the MLP ``Y = relu(X·W1)·W2`` (X: BLD, W1: DF, W2: FD), after Shoeybi et al. 2019 (Megatron-LM) §3:

- ``single``: one sequence (LD), ``batched``: B sequences (BLD), nothing sharded;
- ``row``: W1 and W2 split by rows (the input dimension): partial sums, so an all-reduce before the ReLU (a
  nonlinearity needs the full sum) and one after the second matmul;
- ``column``: W1 and W2 split by columns (the output dimension): the hidden and the output are gathered;
- ``megatron``: W1 by columns, W2 by rows: ReLU stays local, one all-reduce forward (g) and one backward (f);
- ``data``: the batch is split, weights replicated; the weight gradients are all-reduced.

Backward of ``C = A·B``: dA = dC·Bᵀ and dB = Aᵀ·dC, each costing what the forward matmul costs, so a
layer's backward is twice its forward (Kaplan et al. 2020 §2.1; Narayanan et al. 2021 §5.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.errors import LlmcalcError
from ..core.results import Figure, derive
from ..core.specs import Hardware

SRC_MEGATRON = "Shoeybi et al. 2019 (Megatron-LM) §3, Figure 3 (f and g operators)"
SRC_MM = "2 FLOPs per multiply-add: 2 × the product of the einsum's letters (per rank)"
SRC_BWD = "backward of C = A·B: dA = dC·Bᵀ, dB = Aᵀ·dC (same cost as the forward matmul each)"
MLP_FORMS = ("single", "batched", "row", "column", "megatron", "data")


@dataclass(frozen=True)
class Op:
    """One step of a form: a matmul (einsum + FLOPs), an elementwise op, or a collective."""

    phase: str  # forward | backward
    what: str  # e.g. "H = X·W1"
    einsum: str = ""  # per-rank letters, sharded letters as F/tp
    shape: str = ""  # the same with numbers
    flops: Figure | None = None
    collective: str = ""
    group: int = 1
    bytes_per_rank: Figure | None = None
    time: Figure | None = None

    def as_dict(self) -> dict:
        return {"phase": self.phase, "what": self.what, "einsum": self.einsum, "shape": self.shape,
                "flops": None if self.flops is None else self.flops.value, "collective": self.collective,
                "group": self.group, "bytes_per_rank": None if self.bytes_per_rank is None else
                self.bytes_per_rank.value, "time_s": None if self.time is None else self.time.value}


@dataclass(frozen=True)
class Form:
    name: str
    title: str
    ops: tuple[Op, ...]
    notes: tuple[str, ...] = ()

    def figures(self) -> list[Figure]:
        return [f for o in self.ops for f in (o.flops, o.bytes_per_rank, o.time) if f is not None]


class _Ctx:
    """Dimension values, TP/DP degrees, element size and the link a group uses."""

    def __init__(self, dims: dict, tp: int, dp: int, hw: Hardware, elem_bytes: int):
        self.dims, self.tp, self.dp, self.hw, self.e = dims, tp, dp, hw, elem_bytes

    def _tok(self, t: str) -> tuple[str, str, int]:
        """'F/tp' -> ('F', 'tp', 4096/tp)."""
        letter, _, div = t.partition("/")
        n = self.dims[letter]
        d = {"": 1, "tp": self.tp, "dp": self.dp}[div]
        return letter, div, n // d

    def tensor(self, spec: str) -> tuple[str, str]:
        toks = spec.split()
        letters = "".join(t if "/" not in t else f"({t})" for t in toks)
        return letters, "(" + ",".join(str(self._tok(t)[2]) for t in toks) + ")"

    def elements(self, spec: str) -> int:
        n = 1
        for t in spec.split():
            n *= self._tok(t)[2]
        return n

    def matmul(self, phase: str, what: str, spec: str, key: str) -> Op:
        ins, out = spec.split("->")
        parts = [p.strip() for p in ins.split(",")]
        letters = [self.tensor(p) for p in parts] + [self.tensor(out.strip())]
        einsum = ",".join(x[0] for x in letters[:-1]) + "->" + letters[-1][0]
        shape = ",".join(x[1] for x in letters[:-1]) + "->" + letters[-1][1]
        toks = []  # each distinct letter once (contracted and free), with its divisor
        for p in [*parts, out.strip()]:
            for t in p.split():
                if t.split("/")[0] not in [x.split("/")[0] for x in toks]:
                    toks.append(t)
        formula = "2*" + "*".join(toks)
        values = {t.split("/")[0]: self.dims[t.split("/")[0]] for t in toks}
        values |= {d: getattr(self, d) for d in ("tp", "dp") if any(t.endswith("/" + d) for t in toks)}
        flops = derive(key, formula, "FLOP", SRC_MM if phase == "forward" else SRC_BWD,
                       label=f"{what} ({phase}), per rank", shape=einsum, **values)
        return Op(phase, what, einsum, shape, flops=flops)

    def collective(self, phase: str, what: str, collective: str, spec: str, n: int, key: str) -> Op:
        from ..network.collectives import (
            ALPHA_OUT_S,
            ALPHA_UP_S,
            FACTORS,
            SRC_NCCL,
            link_efficiency_default,
            network_needed,
            ring_time_formula,
            scale_out_bw,
        )

        letters, shape = self.tensor(spec)
        S = self.elements(spec) * self.e
        factor, _ = FACTORS[collective]
        per = derive(key + "/bytes", f"({factor})*S", "B", SRC_NCCL, label=f"{collective} of {what}: bytes per rank",
                     shape=letters, n=n, S=S)
        up = self.hw.scale_up
        if n <= up.domain_size:
            bw, alpha = up.ring_bw_per_direction(n), ALPHA_UP_S
        elif scale_out_bw(self.hw) is None:
            raise network_needed(self.hw, f"a group of {n}")
        else:
            bw, alpha = scale_out_bw(self.hw), ALPHA_OUT_S
        t = derive(key + "/time", ring_time_formula(collective), "s", SRC_NCCL + "; α per ring step (assumption)",
                   label=f"{collective} of {what}: time", alpha=alpha, n=n, S=S, bw=bw, eff=link_efficiency_default())
        return Op(phase, what, letters, shape, collective=collective, group=n, bytes_per_rank=per, time=t)


def _mlp_form(c: _Ctx, form: str) -> Form:
    f, b = "forward", "backward"
    mm, co = c.matmul, c.collective
    X = "L D" if form == "single" else "B/dp L D" if form == "data" else "B L D"
    R = X.rsplit(" ", 1)[0]  # the row letters: L, B L or B/dp L
    k = form
    if form in ("single", "batched", "data"):
        ops = [mm(f, "H = X·W1", f"{X}, D F -> {R} F", f"{k}/fwd/h"), Op(f, "H = relu(H), elementwise"),
               mm(f, "Y = H·W2", f"{R} F, F D -> {R} D", f"{k}/fwd/y"),
               mm(b, "dW2 = Hᵀ·dY", f"{R} F, {R} D -> F D", f"{k}/bwd/dw2"),
               mm(b, "dH = dY·W2ᵀ", f"{R} D, F D -> {R} F", f"{k}/bwd/dh"), Op(b, "dH = dH·relu'(H), elementwise"),
               mm(b, "dW1 = Xᵀ·dH", f"{X}, {R} F -> D F", f"{k}/bwd/dw1"),
               mm(b, "dX = dH·W1ᵀ", f"{R} F, D F -> {X}", f"{k}/bwd/dx")]
        if form == "data":
            ops += [co(b, "dW1", "all-reduce", "D F", c.dp, f"{k}/bwd/ar_dw1"),
                    co(b, "dW2", "all-reduce", "F D", c.dp, f"{k}/bwd/ar_dw2")]
        title = {"single": "One sequence, unsharded", "batched": "Batched, unsharded",
                 "data": f"Data-parallel over dp {c.dp}: batch split, weights replicated"}[form]
        return Form(form, title, tuple(ops))
    t = c.tp
    if form == "row":
        ops = [mm(f, "H = X·W1 (partial sums)", "B L D/tp, D/tp F -> B L F", f"{k}/fwd/h"),
               co(f, "H before the ReLU", "all-reduce", "B L F", t, f"{k}/fwd/ar_h"),
               Op(f, "H = relu(H); keep this rank's F/tp columns (local slice)"),
               mm(f, "Y = H·W2 (partial sums)", "B L F/tp, F/tp D -> B L D", f"{k}/fwd/y"),
               co(f, "Y", "all-reduce", "B L D", t, f"{k}/fwd/ar_y"),
               mm(b, "dW2 = Hᵀ·dY", "B L F/tp, B L D -> F/tp D", f"{k}/bwd/dw2"),
               mm(b, "dH = dY·W2ᵀ", "B L D, F/tp D -> B L F/tp", f"{k}/bwd/dh"),
               co(b, "dH (W1's rows need every F)", "all-gather", "B L F", t, f"{k}/bwd/ag_dh"),
               Op(b, "dH = dH·relu'(H), elementwise"),
               mm(b, "dW1 = Xᵀ·dH", "B L D/tp, B L F -> D/tp F", f"{k}/bwd/dw1"),
               mm(b, "dX = dH·W1ᵀ", "B L F, D/tp F -> B L D/tp", f"{k}/bwd/dx")]
        return Form(form, f"Row-sharded over tp {t}: W1 (D/tp)×F, W2 (F/tp)×D, X split along D", tuple(ops),
                    ("a row split leaves partial sums; the ReLU is nonlinear, so H is all-reduced before it",))
    if form == "column":
        ops = [mm(f, "H = X·W1", "B L D, D F/tp -> B L F/tp", f"{k}/fwd/h"), Op(f, "H = relu(H), local"),
               co(f, "H (W2's columns need every F)", "all-gather", "B L F", t, f"{k}/fwd/ag_h"),
               mm(f, "Y = H·W2", "B L F, F D/tp -> B L D/tp", f"{k}/fwd/y"),
               co(f, "Y (replicate the output)", "all-gather", "B L D", t, f"{k}/fwd/ag_y"),
               mm(b, "dW2 = Hᵀ·dY (dY sliced to D/tp)", "B L F, B L D/tp -> F D/tp", f"{k}/bwd/dw2"),
               mm(b, "dH = dY·W2ᵀ (partial sums)", "B L D/tp, F D/tp -> B L F", f"{k}/bwd/dh"),
               co(b, "dH to this rank's F/tp", "reduce-scatter", "B L F", t, f"{k}/bwd/rs_dh"),
               Op(b, "dH = dH·relu'(H), local"),
               mm(b, "dW1 = Xᵀ·dH", "B L D, B L F/tp -> D F/tp", f"{k}/bwd/dw1"),
               mm(b, "dX = dH·W1ᵀ (partial sums)", "B L F/tp, D F/tp -> B L D", f"{k}/bwd/dx"),
               co(b, "dX", "all-reduce", "B L D", t, f"{k}/bwd/ar_dx")]
        return Form(form, f"Column-sharded over tp {t}: W1 D×(F/tp), W2 F×(D/tp)", tuple(ops))
    ops = [mm(f, "H = X·W1", "B L D, D F/tp -> B L F/tp", f"{k}/fwd/h"), Op(f, "H = relu(H), local"),
           mm(f, "Y = H·W2 (partial sums)", "B L F/tp, F/tp D -> B L D", f"{k}/fwd/y"),
           co(f, "Y (g)", "all-reduce", "B L D", t, f"{k}/fwd/ar_y"),
           mm(b, "dW2 = Hᵀ·dY", "B L F/tp, B L D -> F/tp D", f"{k}/bwd/dw2"),
           mm(b, "dH = dY·W2ᵀ", "B L D, F/tp D -> B L F/tp", f"{k}/bwd/dh"), Op(b, "dH = dH·relu'(H), local"),
           mm(b, "dW1 = Xᵀ·dH", "B L D, B L F/tp -> D F/tp", f"{k}/bwd/dw1"),
           mm(b, "dX = dH·W1ᵀ (partial sums)", "B L F/tp, D F/tp -> B L D", f"{k}/bwd/dx"),
           co(b, "dX (f)", "all-reduce", "B L D", t, f"{k}/bwd/ar_dx")]
    return Form(form, f"Column→row (Megatron) over tp {t}: W1 D×(F/tp), W2 (F/tp)×D", tuple(ops),
                (SRC_MEGATRON + ": one all-reduce forward, one backward",))


def _check(values: dict, tp: int, dp: int, divisible: dict) -> None:
    for name, v in (*values.items(), ("--tp", tp), ("--dp", dp)):
        if not isinstance(v, int) or v < 1:
            raise LlmcalcError(f"{name} must be a positive integer, got {v!r}")
    for opt, (n, by, what) in divisible.items():
        if n % by:
            raise LlmcalcError(f"{opt} {n} is not divisible by {what} {by}")


def shard_mlp(d: int, f: int, batch: int, seq: int, tp: int, hw: Hardware, dp: int = 2,
              elem_bytes: int = 2) -> list[Form]:
    """Every form of the 2-layer ReLU MLP, with per-rank einsums, FLOPs and collectives."""
    _check({"--d": d, "--f": f, "--batch": batch, "--seq": seq}, tp, dp,
           {"--d": (d, tp, "--tp"), "--f": (f, tp, "--tp"), "--batch": (batch, dp, "--dp")})
    c = _Ctx({"B": batch, "L": seq, "D": d, "F": f}, tp, dp, hw, elem_bytes)
    return [_mlp_form(c, k) for k in MLP_FORMS]


def shard_attention(d: int, heads: int, kv_heads: int, batch: int, seq: int, tp: int, hw: Hardware, dp: int = 1,
                    elem_bytes: int = 2) -> list[Form]:
    """Self-attention (M = L) unsharded and with heads split over tp (Megatron §3), forward and backward."""
    _check({"--d": d, "--heads": heads, "--kv-heads": kv_heads, "--batch": batch, "--seq": seq}, tp, dp,
           {"--d": (d, heads, "--heads"), "--heads": (heads, tp, "--tp"), "--kv-heads": (kv_heads, tp, "--tp"),
            "--heads ": (heads, kv_heads, "--kv-heads"), "--batch": (batch, dp, "--dp")})
    c = _Ctx({"B": batch, "L": seq, "M": seq, "D": d, "H": heads, "G": kv_heads, "K": d // heads}, tp, dp, hw,
             elem_bytes)
    forms = []
    for name, s in (("unsharded", ""), ("tp", "/tp")):
        h, g = "H" + s, "G" + s
        fw, bw, mm, k = "forward", "backward", c.matmul, f"attn-{name}"
        ops = [mm(fw, "Q = X·Wq", f"B L D, D {h} K -> B L {h} K", f"{k}/q"),
               mm(fw, "K = X·Wk", f"B M D, D {g} K -> B M {g} K", f"{k}/k"),
               mm(fw, "V = X·Wv", f"B M D, D {g} K -> B M {g} K", f"{k}/v"),
               Op(fw, "RoPE on Q and K; repeat each K,V head for its H/G query heads (GQA), elementwise"),
               mm(fw, "S = Q·Kᵀ", f"B L {h} K, B M {h} K -> B {h} L M", f"{k}/s"),
               Op(fw, "P = softmax(S / √K) over M, elementwise"),
               mm(fw, "A = P·V", f"B {h} L M, B M {h} K -> B L {h} K", f"{k}/a"),
               mm(fw, "Y = A·Wo" + (" (partial sums)" if s else ""), f"B L {h} K, {h} K D -> B L D", f"{k}/o")]
        if s:
            ops.append(c.collective(fw, "Y (g)", "all-reduce", "B L D", tp, f"{k}/ar_y"))
        ops += [mm(bw, "dWo = Aᵀ·dY", f"B L {h} K, B L D -> {h} K D", f"{k}/dwo"),
                mm(bw, "dA = dY·Woᵀ", f"B L D, {h} K D -> B L {h} K", f"{k}/da"),
                mm(bw, "dP = dA·Vᵀ", f"B L {h} K, B M {h} K -> B {h} L M", f"{k}/dp"),
                mm(bw, "dV = Pᵀ·dA (then summed over each group)", f"B {h} L M, B L {h} K -> B M {h} K", f"{k}/dv"),
                Op(bw, "dS = softmax backward of dP, elementwise"),
                mm(bw, "dQ = dS·K", f"B {h} L M, B M {h} K -> B L {h} K", f"{k}/dq"),
                mm(bw, "dK = dSᵀ·Q", f"B {h} L M, B L {h} K -> B M {h} K", f"{k}/dk"),
                mm(bw, "dWq = Xᵀ·dQ", f"B L D, B L {h} K -> D {h} K", f"{k}/dwq"),
                mm(bw, "dWk, dWv = Xᵀ·dK, Xᵀ·dV (each)", f"B M D, B M {g} K -> D {g} K", f"{k}/dwkv"),
                mm(bw, "dX = dQ·Wqᵀ" + (" (partial sums)" if s else ""), f"B L {h} K, D {h} K -> B L D",
                   f"{k}/dxq"),
                mm(bw, "dX += dK·Wkᵀ + dV·Wvᵀ (each)", f"B M {g} K, D {g} K -> B M D", f"{k}/dxkv")]
        if s:
            ops.append(c.collective(bw, "dX (f)", "all-reduce", "B L D", tp, f"{k}/ar_dx"))
        title = "Attention, unsharded" if not s else f"Attention with heads split over tp {tp} (Megatron)"
        forms.append(Form(name, title, tuple(ops), ("self-attention: M = L; the full L×M rectangle is counted "
                                                    "(the causal mask is a mask), as llmcalc flops does",)))
    return forms


def totals(form: Form) -> dict:
    """FLOPs per rank (forward, backward) and bytes and time of the collectives, summed over the form."""
    out = {"forward_flops": 0, "backward_flops": 0, "bytes_per_rank": 0, "time_s": 0.0}
    for o in form.ops:
        if o.flops is not None:
            out[f"{o.phase}_flops"] += o.flops.value * (2 if "(each)" in o.what else 1)
        if o.bytes_per_rank is not None:
            out["bytes_per_rank"] += o.bytes_per_rank.value
            out["time_s"] += o.time.value
    return out


def letters_in(einsum: str) -> set[str]:
    return set(re.findall(r"[A-Z]", einsum))
