"""One-page study sheets: for a topic, a model and an accelerator, the numbers an interview asks about.

Nothing is computed here that a calculator already computes: every number on a sheet is a
:class:`~llmcalc.core.results.Figure` taken from the engine (flops, kv, comms ledger, memory, latency,
serving, scaling) with its formula, substituted values and source, or a spec value of the model or the
accelerator. A sheet is data (:class:`Sheet`); llmcalc/study/render.py turns it into text, Markdown or a
printable HTML page.

Concerns (the colour of a block): ``compute`` (FLOPs, time on the ALUs), ``memory`` (bytes held or read),
``comm`` (bytes on links, collectives), ``info`` (notation, settings).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..core.errors import LlmcalcError
from ..core.results import Figure, Result, derive
from ..core.specs import Hardware, Model

TOPICS = ("notation", "flops", "attention", "parallelism", "bytes", "memory", "inference", "serving", "scaling")


@dataclass(frozen=True)
class Block:
    """A titled group on a sheet: figures (with derivations), an optional table, short notes."""

    title: str
    concern: str  # compute | memory | comm | info
    figures: tuple[Figure, ...] = ()
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sheet:
    topic: str
    title: str
    setting: str  # model, hardware and workload in one line
    blocks: tuple[Block, ...]
    notes: tuple[str, ...] = ()
    data: dict = field(default_factory=dict)

    def figures(self) -> list[Figure]:
        return [f for b in self.blocks for f in b.figures]


@dataclass(frozen=True)
class Inputs:
    """The workload a sheet is computed at (defaults are a typical interview setting)."""

    seq: int = 4096
    micro_batch: int = 1
    prompt: int = 1000
    output: int = 300
    users: float = 10_000
    gpus: int = 1024
    mfu: float = 0.4


def _pick(r: Result, keys, prefix: str = "") -> tuple[Figure, ...]:
    out = []
    for k in keys:
        if k in r.keys():
            f = r[k]
            out.append(replace(f, label=prefix + f.name) if prefix else f)
    return tuple(out)


def spec_figure(key: str, value, unit: str, label: str, source: str) -> Figure:
    """A number read from a spec (no formula): the model's or accelerator's own field."""
    return Figure(key=key, value=value, unit=unit, formula="", source=source, label=label)


def _tp_degrees(m: Model, hw: Hardware) -> list[int]:
    """TP degrees (powers of two within the scale-up domain) that split heads and KV heads whole."""
    a = m.attention
    out, t = [], 1
    while t <= min(8, hw.scale_up.domain_size):
        if a.n_heads % t == 0 and (a.mla or a.n_kv_heads % t == 0):
            out.append(t)
        t *= 2
    return out


def largest_divisor(n: int, options=(8, 4, 2)) -> int:
    return next((o for o in options if n % o == 0), 1)


# ---------------------------------------------------------------- topics


def _notation(m: Model, hw: Hardware, x: Inputs) -> list[Block]:
    from ..core.notation import LETTERS
    from ..model.flops import forward_flops

    a = m.attention
    src = f"{m.display_name} spec (models/{m.name}.yaml)"
    values = {"D": m.d_model, "V": m.vocab_size, "F": m.mlp.d_ff, "H": a.n_heads, "K": a.qk_dim, "G": a.n_kv_heads}
    if m.moe:
        values["E"] = m.moe.n_experts
    if a.mla:
        values |= {"C": a.mla.kv_lora_rank, "R": a.mla.qk_rope_head_dim}
    legend = tuple((k, v, f"{values[k]:,}" if k in values else "") for k, v in LETTERS.items())
    figs = (spec_figure("layers", m.n_layers, "layer", "layers", src),
            spec_figure("seq", x.seq, "token", "L used on these sheets", "sheet setting (--seq)"))
    r = forward_flops(m, x.micro_batch, x.seq)
    first = next(iter(r.data["per_layer"]))
    ein = tuple(f for f in r.figures if f.key.startswith(first + "/") and f.shape)[:8]
    return [Block("The letters, with this model's numbers", "info", figs, ("letter", "meaning", "value"), legend,
                  ("Scalars that are not shapes are spelled out: layers, tp, pp, dp, ep, cp, microbatches.",)),
            Block(f"Einsums of one {first} layer (B={x.micro_batch}, L={x.seq}): FLOPs = 2 × product of the "
                  "letters", "compute", ein)]


def _flops(m: Model, hw: Hardware, x: Inputs) -> list[Block]:
    import numpy as np

    from ..model.flops import forward_flops

    r = forward_flops(m, x.micro_batch, x.seq)
    blocks = []
    for name, b in r.data["per_layer"].items():
        figs = tuple(f for f in r.figures if f.key.startswith(name + "/") and f.shape)
        figs += _pick(r, [f"{name}/per_layer"])
        figs = tuple(replace(f, label=f.name.removeprefix(f"{name}: ")) for f in figs)
        blocks.append(Block(f"{name} layer (x {b['layers']}), forward, B={x.micro_batch}, L={x.seq}", "compute",
                            figs))
    blocks.append(Block("Forward, backward, step", "compute",
                        _pick(r, ["lm_head", "forward", "backward", "train_step", "six_nd", "exact_over_six_nd"])))
    lengths = np.array([1024, 4096, 16384, 65536])
    sweep = forward_flops(m, 1, lengths)
    core = sum(b["layers"] * sum(mm["flops"] for mm in b["matmuls"] if mm["key"].endswith(("/scores", "/values")))
               for b in sweep.data["per_layer"].values())
    share = derive("attention_share", "attention/forward", "%", "score + value matmuls over the forward FLOPs "
                   "(llmcalc.model.flops, full L×M rectangle)", label="attention share of forward FLOPs at L = "
                   + ", ".join(f"{n // 1024}k" for n in lengths), attention=np.asarray(core, dtype=float),
                   forward=np.asarray(sweep.data["forward_flops"], dtype=float))
    blocks.append(Block("Attention's share grows with L", "compute", (share,)))
    return blocks


def _with_kv_heads(m: Model, g: int) -> Model:
    a = m.attention
    return m.model_copy(update={"attention": a.model_copy(update={"n_kv_heads": g})})


def _attention(m: Model, hw: Hardware, x: Inputs) -> list[Block]:
    from ..inference.kv import kv_cache, per_token_per_layer
    from ..model.flops import forward_flops

    a = m.attention
    r = forward_flops(m, x.micro_batch, x.seq)
    first = next(iter(r.data["per_layer"]))
    attn = tuple(f for f in r.figures if f.key.startswith(first + "/") and f.shape and "mlp" not in f.key
                 and "expert" not in f.key and "router" not in f.key)
    kv = kv_cache(m, x.seq)
    kv_figs = _pick(kv, ["bytes_per_token_per_layer", "bytes_per_token_uncapped", "bytes_per_request"])
    variants = []
    if not a.mla:
        for label, g in (("MHA", a.n_heads), ("GQA-8", 8), ("MQA", 1)):
            if a.n_heads % g or g == a.n_kv_heads:
                continue
            f = per_token_per_layer(_with_kv_heads(m, g))
            variants.append(derive(f"variant/{label}", "layers*per_layer", "B", f.source,
                                   label=f"KV per token if {label} (G={g})", layers=m.n_layers, per_layer=f.value))
    else:
        mha = m.model_copy(update={"attention": a.model_copy(update={
            "mla": None, "n_kv_heads": a.n_heads, "head_dim": a.qk_dim, "v_head_dim": a.v_dim})})
        f = per_token_per_layer(mha)
        variants.append(derive("variant/MHA", "layers*per_layer", "B", f.source,
                               label=f"KV per token if plain MHA (G=H={a.n_heads}, K={a.qk_dim}, Kv={a.v_dim})",
                               layers=m.n_layers, per_layer=f.value))
    blocks = [Block(f"Attention einsums, one layer, B={x.micro_batch}, L=M={x.seq}", "compute", attn),
              Block("KV cache (bf16)", "memory", kv_figs + tuple(variants))]
    if m.position == "rope":
        src = "Su et al. 2021 (RoFormer) §3.4.2 eq. 34: x·cos + rotate(x)·sin, 3 FLOPs per element; elementwise, " \
              "so not in the matmul counts"
        rope = (derive("rope/flops", "3*B*L*(H + 1)*R", "FLOP", src, label="RoPE FLOPs per layer (q heads + the "
                       "shared rope key)", B=x.micro_batch, L=x.seq, H=a.n_heads, R=a.mla.qk_rope_head_dim)
                if a.mla else
                derive("rope/flops", "3*B*L*(H + G)*K", "FLOP", src, label="RoPE FLOPs per layer (rotates q and k)",
                       B=x.micro_batch, L=x.seq, H=a.n_heads, G=a.n_kv_heads, K=a.head_dim))
        share = derive("rope/ppm", "rope/layer*million", "ppm", "RoPE FLOPs / the layer's matmul FLOPs",
                       label="RoPE FLOPs per million matmul FLOPs of the layer", rope=rope.value,
                       layer=r[f"{first}/per_layer"].value, million=1_000_000)
        blocks.append(Block("RoPE and its cost", "compute", (rope, share)))
    return blocks


def strategy_layouts(m: Model, hw: Hardware, seq: int):
    """(name, Layout, ledger tags) for each parallelism on this model: DP, ZeRO-1/2/3, TP, TP+SP, PP, EP, CP."""
    from ..training.layout import Layout

    tps = _tp_degrees(m, hw)
    t = tps[-1]
    p = largest_divisor(m.n_layers)
    out = [("DP", Layout(dp=8), ("dp", "edp")), ("ZeRO-1", Layout(dp=8, zero=1), ("dp", "edp")),
           ("ZeRO-2", Layout(dp=8, zero=2), ("dp", "edp")), ("ZeRO-3/FSDP", Layout(dp=8, zero=3), ("dp", "edp"))]
    if t > 1:
        out += [(f"TP {t}", Layout(tp=t), ("tp",)), (f"TP {t} + SP", Layout(tp=t, sp=True), ("tp",))]
    if p > 1:
        out.append((f"PP {p}", Layout(pp=p), ("pp",)))
    if m.moe:
        e = largest_divisor(m.moe.n_experts)
        out.append((f"EP {e}", Layout(dp=e, ep=e), ("ep",)))
    if seq % 4 == 0:
        out.append(("CP 2", Layout(cp=2), ("cp",)))
    return out


def numeric_shape(shape: str, dims: dict) -> str:
    """'BLD' -> 'BLD = 1×4096×8192': the letters with this model's numbers (unchanged if a letter is unknown)."""
    import re

    out, prev_factor = "", False
    for tok in re.findall(r"Kv|[A-Za-z]|[^A-Za-z]+", shape):
        if tok[0].isalpha():
            if tok not in dims:
                return shape
            out += ("×" if prev_factor else "") + f"{dims[tok]:,}"
            prev_factor = True
        else:
            out += ("×" if prev_factor and tok.startswith("(") else "") + tok
            prev_factor = tok.endswith(")")
    return f"{shape} = {out}"


def _shape_shown(shape: str, dims: dict, tp: int, layers: int) -> str:
    """A ledger shape with this layout's numbers, '/tp' evaluated at the row's own TP degree, so the shape and
    the bytes beside it agree: at tp 1 the PP row's 'BLD/tp' is the full BLD and is shown as 'BLD'."""
    per_layer = "/layers" in shape
    base = shape.replace("/layers", "").replace("/tp", "")
    per_tp = "/tp" in shape and tp > 1
    symbol = base + ("/layers" if per_layer else "") + ("/tp" if per_tp else "")
    num = numeric_shape(base, dims)
    if " = " not in num:
        return symbol
    return f"{symbol} = {num.split(' = ', 1)[1]}" + (f"/{layers}" if per_layer else "") + (f"/{tp}" if per_tp else "")


def _parallelism(m: Model, hw: Hardware, x: Inputs) -> list[Block]:
    from ..core.units import fmt
    from ..training.comms import comm_ledger
    from ..training.memory import stage_params

    a = m.attention
    mb = 8
    rows, figs, ids = [], [], []
    for strategy, lay, tags in strategy_layouts(m, hw, x.seq):
        r = comm_ledger(m, hw, lay, micro_batch=x.micro_batch, seq=x.seq, global_batch=mb * lay.dp * x.micro_batch)
        params = stage_params(m, lay)
        dims = {"B": x.micro_batch, "L": x.seq // lay.cp, "D": m.d_model, "G": a.n_kv_heads, "K": a.qk_dim,
                "H": a.n_heads, "V": m.vocab_size, "k": m.moe.top_k if m.moe else 1, "Kv": a.v_dim}
        for row in r.data["rows"]:
            if row["parallelism"] not in tags:
                continue
            # P: the stage's dense parameters, or the expert parameters for the expert-data-parallel group
            dims["P"] = int(params["experts" if row["parallelism"] == "edp" else "first"].value)
            name = strategy + (" (experts)" if row["parallelism"] == "edp" else "")
            n_layers = m.n_moe_layers if row["parallelism"] == "edp" else m.n_layers  # expert weights: MoE layers
            shown = _shape_shown(row["shape"], dims, lay.tp, n_layers // lay.pp)
            rows.append((name, row["collective"], row["tensor"], shown, str(row["group_size"]),
                         fmt(row["bytes_per_rank"], "B").split(" (")[0], f"{row['count']:g}",
                         fmt(row["time_s"], "s"), row.get("link", "").replace("scale-", "")
                         + (", hidden" if row["overlappable"] else ", exposed")))
            key = f"comm/{row['parallelism']}/{row['collective']}/{row['tensor'].split(' ')[0]}"
            if key in r.keys() and row["collective"] not in ids:  # one worked derivation per kind of collective
                ids.append(row["collective"])
                f = r[key]
                figs.append(replace(f, key=f"{name}/{key}", label=f"{name}: {f.name}"))
    header = ("strategy", "collective", "tensor", "shape per call (this model)", "n", "bytes/rank", "calls/step",
              "time/step", "link, overlap")
    notes = (f"micro-batch {x.micro_batch}, L={x.seq}, {mb} micro-batches per step; DP/ZeRO at dp 8; "
             "ring algorithm, bytes per rank per call (nccl-tests factors)",
             "ZeRO-1/2/3 shard optimizer / + gradients / + weights over DP; FSDP full shard = ZeRO-3")
    if largest_divisor(m.n_layers) == 1:
        notes += (f"no PP row: {m.n_layers} layers do not split evenly into 2, 4 or 8 stages",)
    return [Block("Who sends what, per rank, on " + hw.display_name, "comm", (), header, tuple(rows), notes),
            Block("Time per step: one worked row per collective", "comm", tuple(figs))]


def _bytes(m: Model, hw: Hardware, x: Inputs) -> list[Block]:
    from ..network.collectives import (
        ALPHA_OUT_S,
        ALPHA_UP_S,
        FACTORS,
        SRC_NCCL,
        link_efficiency_default,
        ring_time_formula,
        scale_out_bw,
    )

    S = 2 * x.micro_batch * x.seq * m.d_model
    size = derive("S", "2*B*L*D", "B", "bf16 activations of one micro-batch (the TP all-reduce message)",
                  label="example message S = BLD in bf16", B=x.micro_batch, L=x.seq, D=m.d_model)
    n = min(8, hw.scale_up.domain_size)
    bw = hw.scale_up.ring_bw_per_direction(n)
    eff = link_efficiency_default()
    per, times = [], []
    for c, (factor, _steps) in FACTORS.items():
        per.append(derive(f"bytes/{c}", f"({factor})*S", "B", SRC_NCCL, label=f"{c}: bytes per rank, n={n}",
                          n=n, S=S))
        times.append(derive(f"time/{c}", ring_time_formula(c), "s", SRC_NCCL + "; α per ring step (assumption)",
                            label=f"{c}: time on {hw.scale_up.name or 'scale-up'}, n={n}", alpha=ALPHA_UP_S, n=n,
                            S=S, bw=bw, eff=eff))
    links = [spec_figure("link/up", hw.scale_up.per_direction_bytes_per_s, "B/s",
                         f"scale-up ({hw.scale_up.name or 'link'}) per direction, domain {hw.scale_up.domain_size}",
                         hw.sources.get("scale_up", "hardware spec"))]
    out_bw = scale_out_bw(hw)
    blocks = [Block("Ring factors (nccl-tests busbw): S is the full buffer", "comm", (size, *per)),
              Block("Time = α·steps + bytes/(bw·eff)", "comm", tuple(times))]
    if out_bw:
        links.append(spec_figure("link/out", out_bw, "B/s", f"scale-out ({hw.scale_out.name or 'network'}) per "
                                 "direction per device", hw.sources.get("scale_out", "hardware spec")))
        links.append(derive("time/all-reduce-out", ring_time_formula("all-reduce"), "s", SRC_NCCL,
                            label="all-reduce of S over 64 ranks across the network", alpha=ALPHA_OUT_S, n=64,
                            S=S, bw=out_bw, eff=eff))
    blocks.append(Block("Links of " + hw.display_name, "comm", tuple(links),
                        notes=("per direction: a ring sends and receives at once; vendors' 'bidirectional' "
                               "figures are twice this",)))
    return blocks


def _memory(m: Model, hw: Hardware, x: Inputs) -> list[Block]:
    from ..model.params import param_breakdown
    from ..training.layout import Layout
    from ..training.memory import DEFAULT_OPTIMIZER, model_state_bytes, training_memory

    n = param_breakdown(m).data["total"]
    states = model_state_bytes(n, optimizer=DEFAULT_OPTIMIZER)
    z = [replace(model_state_bytes(n, dp=8, zero=s, optimizer=DEFAULT_OPTIMIZER)["memory/model_states"],
                 key=f"zero{s}", label=f"model states per GPU, ZeRO-{s} over dp 8") for s in (1, 2, 3)]
    t = _tp_degrees(m, hw)[-1]
    p = largest_divisor(m.n_layers, (8, 4, 2, 1))
    lay = Layout(tp=t, pp=p, dp=8, zero=1)
    blocks = [Block(f"Model states, unsharded ({n / 1e9:.3g} B params, {DEFAULT_OPTIMIZER})", "memory",
                    tuple(states.figures) + tuple(z), notes=states.assumptions)]
    for rc in ("none", "full"):
        r = training_memory(m, hw, lay, micro_batch=x.micro_batch, seq=x.seq, recompute=rc)
        keys = ["first_stage/weights", "first_stage/grads", "first_stage/optimizer", "activations/layer",
                "activations/first_stage", "memory/total", "memory/headroom"]
        blocks.append(Block(f"Per GPU at tp {t}, pp {p}, dp 8, ZeRO-1, recompute {rc}: "
                            + ("fits" if r.data["fits"] else "does NOT fit"), "memory", _pick(r, keys)))
    return blocks


def _deployment(m: Model, hw: Hardware):
    from ..inference.latency import Deployment

    deps = [Deployment(m, hw, t) for t in _tp_degrees(m, hw)]
    fits = [d for d in deps if d.weight_bytes_per_gpu <= 0.9 * hw.memory_bytes]
    return (fits or deps)[0 if fits else -1], bool(fits)


def _inference(m: Model, hw: Hardware, x: Inputs) -> list[Block]:
    from ..inference.latency import latency
    from ..inference.spec_decode import speculative

    dep, fits = _deployment(m, hw)
    r = latency(dep, batch=1, prompt=x.prompt, output=x.output, knee=False)  # figures only: no knee search
    big = latency(dep, batch=64, prompt=x.prompt, output=x.output, knee=False)
    head = f"tp {dep.tp}" + ("" if fits else " (weights do NOT fit even at the largest TP: numbers for reference)")
    blocks = [Block(f"Prefill vs decode, batch 1, {head}", "compute",
                    _pick(r, ["prefill/flops", "ttft_s", "tpot_mean_s", "e2e_s"])),
              Block("Roofline", "memory", _pick(r, ["arithmetic_intensity", "ridge",
                                                    "compute_bound_batch_weights_only", "experts_touched"])),
              Block("Batch 64 (continuous batching raises the batch)", "compute",
                    tuple(replace(f, label=f"batch 64: {f.name}") for f in
                          _pick(big, ["ttft_s", "tpot_mean_s", "tokens_per_s_per_gpu"])))]
    s = speculative(0.8, 4, 0.05, target_step_s=r.value("tpot_mean_s"))
    blocks.append(Block("Speculative decoding (α 0.8, γ 4, draft cost c 0.05)", "compute", tuple(s.figures)))
    return blocks


def _serving(m: Model, hw: Hardware, x: Inputs) -> list[Block]:
    from ..inference.serving import serve

    try:
        r = serve(m, hw, prompt=x.prompt, output=x.output, users=x.users)
    except LlmcalcError as e:
        return [Block(f"{x.users:g} users on {hw.display_name}: no plan", "info", notes=(str(e),))]
    keys = ["qps", "tp", "capacity/concurrency", "capacity/ttft_s", "capacity/tpot_s", "qps_per_replica",
            "replicas", "gpus", "concurrency", "ttft_s", "tpot_s", "tokens_per_s", "usd_per_million_output_tokens"]
    return [Block(f"From load to GPUs: {x.users:g} users, 1 request/min, {x.prompt} in + {x.output} out", "compute",
                  _pick(r, keys[:6])),
              Block("Fleet and steady state", "memory", _pick(r, keys[6:]), notes=tuple(r.assumptions[-4:]))]


def _scaling(m: Model, hw: Hardware, x: Inputs) -> list[Block]:
    from ..model.scaling import chinchilla
    from ..training.cost import training_cost

    ch = chinchilla(m)
    tokens = ch.value("size/rule20/tokens")
    cost = training_cost(m, tokens, hw, x.gpus, mfu=x.mfu)
    return [Block("Chinchilla: compute-optimal data", "compute",
                  _pick(ch, ["params_active", "params_total", "size/rule20/tokens", "size/rule20/flops",
                             "size/approach3/tokens", "size/rule20/loss", "size/approach3/loss"])),
            Block(f"Training it on {x.gpus} × {hw.display_name} at MFU {x.mfu:g}", "compute",
                  _pick(cost, ["model_flops", "days", "gpu_hours", "cost"]))]


BUILDERS = {"notation": _notation, "flops": _flops, "attention": _attention, "parallelism": _parallelism,
            "bytes": _bytes, "memory": _memory, "inference": _inference, "serving": _serving, "scaling": _scaling}

TITLES = {"notation": "Notation", "flops": "FLOPs", "attention": "Attention", "parallelism": "Parallelism",
          "bytes": "Bytes on the wire", "memory": "Training memory", "inference": "Inference",
          "serving": "Serving", "scaling": "Scaling laws"}


def sheet(topic: str, model: Model, hw: Hardware, inputs: Inputs = Inputs()) -> Sheet:
    """The one-page sheet for ``topic`` (one of TOPICS) on ``model`` and ``hw``."""
    if topic not in BUILDERS:
        from ..core.errors import unknown_name

        raise unknown_name("topic", topic, TOPICS)
    blocks = BUILDERS[topic](model, hw, inputs)
    setting = (f"{model.display_name} on {hw.display_name}; micro-batch {inputs.micro_batch}, L {inputs.seq}, "
               f"prompt {inputs.prompt} + output {inputs.output}")
    notes = ("Every number is a calculator's output; formulas are the calculators' own (llmcalc --explain).",)
    warn = model.past_positions(inputs.prompt + inputs.output, f"prompt + output = {inputs.prompt + inputs.output:,}")
    if topic in ("inference", "serving") and warn:
        notes = (warn, *notes)
    return Sheet(topic, f"{TITLES[topic]}: {model.display_name}", setting, tuple(blocks), notes)
