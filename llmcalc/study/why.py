"""Trade-offs in numbers: ``llmcalc why zero3|gqa|mla|pp|tp-within-node|speculative MODEL -H HW``.

Each explainer runs the calculators for this model and accelerator under the alternatives being compared
and writes a few sentences around their figures. Every number in the text is one of the returned
figures (formatted by core/units.fmt), so ``--explain`` shows where each came from; the sentences hold
no numbers of their own beyond the configuration the user chose.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..core.errors import LlmcalcError
from ..core.results import Figure, derive
from ..core.specs import Hardware, Model
from ..core.units import fmt

TOPICS = ("zero3", "gqa", "mla", "pp", "tp-within-node", "speculative")


@dataclass(frozen=True)
class Why:
    topic: str
    title: str
    lines: tuple[str, ...]
    figures: tuple[Figure, ...]
    notes: tuple[str, ...] = ()


def _tag(f: Figure, key: str, label: str) -> Figure:
    return replace(f, key=key, label=label)


def _t(f: Figure) -> str:
    return fmt(f.value, f.unit)


def _ratio(key: str, label: str, a: Figure, b: Figure) -> Figure:
    return derive(key, "a/b", "ratio", "ratio of the two rows above", label=label, a=a.value, b=b.value)


# ---------------------------------------------------------------- zero3


RECOMPUTE_ORDER = ("none", "selective", "full")  # least extra compute first: the smallest change that saves memory


def _moved(st) -> float:
    return sum(r["count"] * r["bytes_per_rank"] for r in st.data["comm_rows"])


def _fastest_fitting(m: Model, hw: Hardware, candidates, gb: int, seq: int, gpus: int):
    """The fastest (layout, recompute) of ``candidates`` whose memory fits; when none fits, the most memory-frugal
    one, with fits=False. Returns (layout, rc, memory result, step result)."""
    from ..training.memory import training_memory
    from ..training.step import training_step

    mems = [(lay, rc, training_memory(m, hw, lay, seq=seq, global_batch=gb, recompute=rc)) for lay, rc in candidates]
    fit = [x for x in mems if x[2].data["fits"]]
    pool = fit or [min(mems, key=lambda x: x[2]["memory/total"].value)]
    done = [(lay, rc, mem, training_step(m, hw, lay, global_batch=gb, seq=seq, gpus=gpus, recompute=rc,
                                         check_memory=False)) for lay, rc, mem in pool]
    return min(done, key=lambda x: x[3]["time/step"].value)


def _zero3(m: Model, hw: Hardware, gpus: int, seq: int, global_batch: int | None) -> Why:
    from ..training.layout import Layout
    from ..training.step import training_step

    if gpus < 2:  # one rank: ZeRO shards over nothing and moves nothing, so its bytes ratio is 0/0 (user test)
        raise LlmcalcError(f"why zero3 needs at least 2 data-parallel GPUs (--gpus {gpus} leaves dp {gpus}: ZeRO "
                           "shards states across data-parallel ranks, and one rank has nothing to shard or gather)")
    gb = global_batch or gpus
    t = 8 if hw.scale_up.domain_size >= 8 and m.attention.n_heads % 8 == 0 and (
        m.attention.mla or m.attention.n_kv_heads % 8 == 0) else 1
    strategies = {"ZeRO-1": [(Layout(dp=gpus, zero=1), rc) for rc in RECOMPUTE_ORDER],
                  "ZeRO-3": [(Layout(dp=gpus, zero=3), rc) for rc in RECOMPUTE_ORDER]}
    mp = [(Layout(tp=t, pp=p, dp=gpus // (t * p), zero=1), rc) for p in (1, 2, 4, 8, 16) for rc in RECOMPUTE_ORDER
          if t * p > 1 and m.n_layers % p == 0 and gpus % (t * p) == 0 and gb % (gpus // (t * p)) == 0]
    if mp:  # the model-parallel alternative, when this model and GPU count allow one: fewest stages that fit
        strategies["TP + PP + ZeRO-1"] = mp
    for name in ("ZeRO-1", "ZeRO-3"):
        lay = strategies[name][0][0]
        if gpus % (lay.tp * lay.pp) or gb % lay.dp:
            raise LlmcalcError(f"--gpus {gpus} and --global-batch {gb} do not split over {name} "
                               f"(dp {lay.dp}); pick multiples of 8")
    # The bytes each ZeRO stage moves, at the same settings (no recompute): ZeRO §7.2's 2Ψ vs 3Ψ.
    base = {k: training_step(m, hw, strategies[k][0][0], global_batch=gb, seq=seq, gpus=gpus, check_memory=False)
            for k in ("ZeRO-1", "ZeRO-3")}
    b1 = derive("ZeRO-1/bytes", "sum_count_x_bytes", "B", "llmcalc comms: Σ count·bytes per rank",
                label="ZeRO-1: bytes moved per rank per step (no recompute)", sum_count_x_bytes=_moved(base["ZeRO-1"]))
    b3 = derive("ZeRO-3/bytes", "sum_count_x_bytes", "B", "llmcalc comms: Σ count·bytes per rank",
                label="ZeRO-3: bytes moved per rank per step (no recompute)", sum_count_x_bytes=_moved(base["ZeRO-3"]))
    ratio = _ratio("zero3/bytes_ratio", "ZeRO-3 / ZeRO-1 bytes per rank", b3, b1)
    cap = Figure("memory/capacity", hw.memory_bytes, "B", source=f"{hw.display_name} memory_bytes (hardware spec)",
                 label=f"{hw.display_name} memory")
    figs, res = [b1, b3, ratio, cap], {}
    for name, cands in strategies.items():
        lay, rc, mem, st = _fastest_fitting(m, hw, cands, gb, seq, gpus)
        fits = bool(mem.data["fits"])
        what = f"{name} ({_layout_name(lay)}, recompute {rc})"
        hyp = "" if fits else " (hypothetical: does not fit)"
        res[name] = {"what": what, "fits": fits, "rc": rc,
                     "exposed": _tag(st["time/grad_sync_exposed"], f"{name}/exposed", f"{what}: exposed DP/ZeRO time"),
                     "step": _tag(st["time/step"], f"{name}/step", f"{what}: step time{hyp}"),
                     "mfu": _tag(st["mfu"], f"{name}/mfu", f"{what}: MFU{hyp}"),
                     "memory": _tag(mem["memory/total"], f"{name}/memory", f"{what}: peak memory per GPU"),
                     "usable": mem["memory/usable"]}
        figs += [res[name][k] for k in ("exposed", "step", "mfu", "memory")]
    usable = res["ZeRO-1"]["usable"]
    figs.append(usable)
    lines = [f"On {gpus} × {hw.display_name}, global batch {gb} × {seq} tokens, no recompute: ZeRO-3 moves {_t(b3)} "
             f"per rank per step against {_t(b1)} for ZeRO-1 ({_t(ratio)}×): it gathers every layer's weights before "
             "its forward and again before its backward, for every micro-batch, and reduce-scatters gradients layer "
             "by layer.",
             f"Each strategy below at its fastest variant that fits in {_t(usable)} usable per GPU (recompute none, "
             "selective or full; for TP + PP, 1 to 16 stages); one that fits nowhere is shown at its most frugal, its "
             "times marked hypothetical:"]
    for r in res.values():
        verdict = "fits" if r["fits"] else "does NOT fit even so"
        mark = "" if r["fits"] else " (hypothetical)"
        lines.append(f"  {r['what']}: memory {_t(r['memory'])} per GPU ({verdict}); step {_t(r['step'])}{mark}, MFU "
                     f"{_t(r['mfu'])}{mark}; exposed DP/ZeRO time {_t(r['exposed'])}")
    fitting = {k: r for k, r in res.items() if r["fits"]}
    z3 = res["ZeRO-3"]
    if not fitting:
        title = f"Nothing here fits: ZeRO-1, ZeRO-3 and TP/PP on {gpus} × {hw.display_name} for {m.display_name}"
        lines.append("None of these layouts fits, even with full recompute: more GPUs, a shorter sequence or "
                     "`llmcalc plan` (which also searches CP and micro-batches) is the next step.")
    else:
        best = min(fitting, key=lambda k: fitting[k]["step"].value)
        if best == "ZeRO-3":
            others = [k for k in fitting if k != "ZeRO-3"]
            title = f"When ZeRO-3 is the answer: {m.display_name} on {hw.display_name}"
            why_ = (f"its gathers and reduce-scatters run layer by layer behind the compute (exposed "
                    f"{_t(z3['exposed'])}), and sharding everything over DP leaves {_t(z3['memory'])} per GPU")
            if others:
                o = min(others, key=lambda k: fitting[k]["step"].value)
                lines.append(f"ZeRO-3 is the fastest layout that fits here ({_t(z3['step'])} vs "
                             f"{_t(fitting[o]['step'])} for {fitting[o]['what']}): {why_}; at this scale and on this "
                             f"interconnect the extra {_t(ratio)}× traffic is hidden.")
            else:
                lines.append(f"ZeRO-3 is the only one of these that fits: {why_}.")
        else:
            title = f"Why ZeRO-3 is rarely the answer: {m.display_name} on {hw.display_name}"
            if z3["fits"]:
                lines.append(f"{fitting[best]['what']} is faster than ZeRO-3 ({_t(fitting[best]['step'])} vs "
                             f"{_t(z3['step'])}): ZeRO-3's {_t(ratio)}× traffic and per-layer gathers cost more than "
                             "sharding the weights saves here.")
            else:
                lines.append(f"ZeRO-3 does not fit even with full recompute, while {fitting[best]['what']} fits and "
                             f"steps in {_t(fitting[best]['step'])}.")
    return Why("zero3", title, tuple(lines), tuple(figs),
               ("step times from llmcalc step (compute, bubble, exposed communication); memory from llmcalc memory "
                "with its reserve",))


def _layout_name(lay) -> str:
    parts = [f"TP {lay.tp}"] if lay.tp > 1 else []
    parts += [f"PP {lay.pp}"] if lay.pp > 1 else []
    return " + ".join(parts + [f"DP {lay.dp}"])


# ---------------------------------------------------------------- gqa and mla (KV cache)


def _variant(m: Model, **attn) -> Model:
    return m.model_copy(update={"attention": m.attention.model_copy(update=attn)})


def _kv_and_tpot(m: Model, hw: Hardware, label: str, context: int, batch: int, tp: int) -> list[Figure]:
    from ..inference.kv import kv_cache
    from ..inference.latency import Deployment, latency

    kv = kv_cache(m, context, batch=batch, tp=tp)
    lat = latency(Deployment(m, hw, tp), batch=batch, prompt=context, output=2, knee=False)  # figures only
    return [_tag(kv["bytes_per_token_uncapped"], f"{label}/kv_token", f"{label}: KV per token"),
            _tag(kv["bytes_per_gpu"], f"{label}/kv_gpu", f"{label}: KV per GPU for the batch"),
            _tag(lat["tpot_start_s"], f"{label}/tpot", f"{label}: decode step at this context")]


def _tp_for(m: Model, hw: Hardware) -> int:
    from ..inference.latency import Deployment

    for t in (1, 2, 4, 8):
        a = m.attention
        if t <= hw.scale_up.domain_size and a.n_heads % t == 0 and (a.mla or a.n_kv_heads % t == 0) and \
                Deployment(m, hw, t).weight_bytes_per_gpu <= 0.9 * hw.memory_bytes:
            return t
    return 8


def _gqa(m: Model, hw: Hardware, context: int, batch: int) -> Why:
    a = m.attention
    if a.mla:
        raise LlmcalcError(f"{m.display_name} uses MLA, not GQA: try `llmcalc why mla {m.name}`")
    t = _tp_for(m, hw)
    if a.n_kv_heads == a.n_heads:  # an MHA model: what GQA would change, not "why it has GQA"
        g = next(x for x in (8, 4, 2, 1) if a.n_heads % x == 0 and x < a.n_heads) if a.n_heads > 1 else 1
        gq = _variant(m, n_kv_heads=g)
        me, other = _kv_and_tpot(m, hw, "this model (MHA)", context, batch, t), \
            _kv_and_tpot(gq, hw, f"GQA G={g}", context, batch, t)
        ratio = _ratio("gqa/kv_ratio", f"this model / GQA G={g}, KV bytes", me[0], other[0])
        lines = (f"{m.display_name} uses MHA: each of its H={a.n_heads} query heads has its own key/value head, "
                 f"{_t(me[0])} of KV per token. GQA with G={g} would cache {_t(other[0])} ({_t(ratio)}× less).",
                 f"At batch {batch} × context {context} on tp {t}: KV per GPU {_t(me[1])} vs {_t(other[1])}; a decode "
                 f"step reads it all: {_t(me[2])} vs {_t(other[2])} per step. GQA trades some quality for this "
                 "(Ainslie et al. 2023).")
        return Why("gqa", f"What GQA would buy: {m.display_name} (MHA) on {hw.display_name}", lines,
                   (*me, *other, ratio))
    variants = {"MHA": _variant(m, n_kv_heads=a.n_heads), f"this model (G={a.n_kv_heads})": m}
    if a.n_kv_heads != 1 and t == 1:
        variants["MQA"] = _variant(m, n_kv_heads=1)
    figs, rows = [], {}
    for label, v in variants.items():
        rows[label] = _kv_and_tpot(v, hw, label, context, batch, t)
        figs += rows[label]
    mha, me = rows["MHA"], rows[f"this model (G={a.n_kv_heads})"]
    ratio = _ratio("gqa/kv_ratio", "MHA / this model, KV bytes", mha[0], me[0])
    figs.append(ratio)
    faster = "saves" if me[2].value < mha[2].value else "does not save"
    lines = [f"{m.display_name} has H={a.n_heads} query heads sharing G={a.n_kv_heads} key/value heads. Per token it "
             f"caches {_t(me[0])}; as MHA it would cache {_t(mha[0])} ({_t(ratio)}×).",
             f"At batch {batch} × context {context} on tp {t}: KV per GPU {_t(me[1])} vs {_t(mha[1])}, and a decode "
             f"step reads it all: {_t(me[2])} vs {_t(mha[2])} per step, so here GQA {faster} decode time."]
    if "MQA" in rows:
        lines.append(f"MQA (G=1) would cache {_t(rows['MQA'][0])} per token and step in {_t(rows['MQA'][2])}; "
                     "GQA keeps more heads for quality (Ainslie et al. 2023).")
    return Why("gqa", f"Why GQA: {m.display_name} on {hw.display_name}", tuple(lines), tuple(figs))


def _mla(m: Model, hw: Hardware, context: int, batch: int) -> Why:
    from ..model.flops import forward_flops

    a = m.attention
    if not a.mla:
        raise LlmcalcError(f"{m.display_name} has no multi-head latent attention; try deepseek-v3, or "
                           f"`llmcalc why gqa {m.name}`")
    t = _tp_for(m, hw)
    mha = _variant(m, mla=None, n_kv_heads=a.n_heads, head_dim=a.qk_dim, v_head_dim=a.v_dim)
    me, full = _kv_and_tpot(m, hw, "MLA", context, batch, t), _kv_and_tpot(mha, hw, "MHA equivalent", context,
                                                                          batch, t)
    plain = forward_flops(m, batch, 1, kv_len=context)
    absorbed = forward_flops(m, batch, 1, kv_len=context, mla_absorbed=True)
    f_plain = _tag(plain["forward"], "mla/plain_flops", "decode step FLOPs, plain MLA (up-project every latent)")
    f_abs = _tag(absorbed["forward"], "mla/absorbed_flops", "decode step FLOPs, absorbed MLA")
    ratio = _ratio("mla/kv_ratio", "MHA equivalent / MLA, KV bytes", full[0], me[0])
    figs = (*me, *full, ratio, f_plain, f_abs)
    lines = (f"{m.display_name} caches a C={a.mla.kv_lora_rank} latent plus an R={a.mla.qk_rope_head_dim} rotary "
             f"key per token and layer: {_t(me[0])} per token, against {_t(full[0])} for MHA with the same "
             f"{a.n_heads} heads ({_t(ratio)}×).",
             f"At batch {batch} × context {context}: KV per GPU {_t(me[1])} vs {_t(full[1])}.",
             f"The price is compute: decoding one token with the plain form up-projects all {context} cached "
             f"latents, {_t(f_plain)} per step; absorbing W_UK and W_UV into the query and output "
             + ("brings it down to" if f_abs.value < f_plain.value else "does not help at this context:")
             + f" {_t(f_abs)} (DeepSeek-V2 §2.1.3).")
    return Why("mla", f"Why MLA: {m.display_name} on {hw.display_name}", lines, figs)


# ---------------------------------------------------------------- pipeline and tensor parallelism


def _pp(m: Model, hw: Hardware, gpus: int, seq: int, global_batch: int | None) -> Why:
    from ..training.layout import Layout
    from ..training.memory import training_memory
    from ..training.step import training_step

    t = 8 if m.attention.n_heads % 8 == 0 and (m.attention.mla or m.attention.n_kv_heads % 8 == 0) else 1
    gb = global_batch or gpus
    figs, lines = [], []
    rows = {}
    for p in (1, 2, 4, 8):
        if m.n_layers % p or gpus % (t * p) or gb % (gpus // (t * p)):
            continue
        lay = Layout(tp=t, pp=p, dp=gpus // (t * p), zero=1)
        mem = training_memory(m, hw, lay, seq=seq, global_batch=gb)
        st = training_step(m, hw, lay, global_batch=gb, seq=seq, gpus=gpus)
        rows[p] = [_tag(mem["memory/total"], f"pp{p}/memory", f"PP {p}: peak memory per GPU"),
                   _tag(st["pipeline/bubble_fraction"], f"pp{p}/bubble", f"PP {p}: bubble / ideal time"),
                   _tag(st["time/step"], f"pp{p}/step", f"PP {p}: step time"),
                   _tag(st["mfu"], f"pp{p}/mfu", f"PP {p}: MFU"), mem.data["fits"]]
        figs += rows[p][:4]
    if len(rows) < 2:  # e.g. --gpus 1: TP 8 alone needs 8 GPUs, PP 2 at TP 8 needs 16
        split = "only " + ", ".join(f"PP {p}" for p in rows) if rows else "none of them"
        raise LlmcalcError(f"why pp needs at least two of PP 1, 2, 4, 8 at TP {t} (ZeRO-1, DP the rest) on "
                           f"{m.display_name}: --gpus {gpus} with --global-batch {gb} splits into {split}; give "
                           f"--gpus a multiple of {2 * t} and a --global-batch the DP degree divides")
    lines.append(f"{m.display_name} on {gpus} × {hw.display_name}, TP {t}, ZeRO-1, global batch {gb} × {seq}:")
    for p, (mem, bub, stp, mfu, fits) in rows.items():
        mark = "" if fits else " (hypothetical)"
        lines.append(f"  PP {p}: {_t(mem)} per GPU ({'fits' if fits else 'does NOT fit'}), bubble {_t(bub)} of the "
                     f"ideal time, step {_t(stp)}{mark}, MFU {_t(mfu)}{mark}")
    lines.append("Pipeline stages divide the weights and optimizer states by pp and send only B·L·D/tp activations "
                 "between stages; the price is the bubble, (pp − 1)/m of the ideal time with m micro-batches "
                 "(Narayanan et al. 2021 §2.2).")
    fitting = [p for p, r in rows.items() if r[4]]
    if not fitting:
        title = f"Pipeline parallelism is not enough here: {m.display_name} on {hw.display_name}"
        lines.append(f"No PP degree tried fits at TP {t}: more GPUs, recompute or ZeRO-3 (`llmcalc why zero3`).")
    else:
        best = min(fitting, key=lambda p: rows[p][2].value)
        if best == min(rows):
            title = f"Pipeline parallelism is not needed here: {m.display_name} on {hw.display_name}"
            lines.append(f"PP {best} already fits and is the fastest: more stages only add bubble.")
        else:
            title = f"Why pipeline parallelism: {m.display_name} on {hw.display_name}"
            lines.append(f"PP {best} is the fastest degree that fits ({_t(rows[best][2])})"
                         + (f"; PP {min(rows)} does not fit" if not rows[min(rows)][4] else
                            f", ahead of PP {min(rows)} ({_t(rows[min(rows)][2])})") + ".")
    return Why("pp", title, tuple(lines), tuple(figs))


def _tp_node(m: Model, hw: Hardware, seq: int) -> Why:
    from ..network.collectives import ALPHA_OUT_S, ALPHA_UP_S, SRC_NCCL, link_efficiency_default, ring_time_formula

    if hw.scale_out is None:
        raise LlmcalcError(f"{hw.display_name} records no scale-out link; nothing to compare TP across nodes with")
    n = hw.scale_up.domain_size
    if n > 8:
        raise LlmcalcError(f"{hw.display_name}'s scale-up domain holds {n} devices: a TP group of any usual size "
                           "(8 or 16) stays inside it; the question is about 8-GPU nodes (try -H h100-sxm)")
    eff = link_efficiency_default()
    size = derive("tp/message", "2*B*L*D", "B", "bf16 activations of one micro-batch (Shoeybi et al. 2019 §3)",
                  label="all-reduce buffer B·L·D", B=1, L=seq, D=m.d_model)
    calls = derive("tp/calls", "4*layers", "call", "2 all-reduces forward + 2 backward per layer (Korthikanti et "
                   "al. 2022 §4.2.2)", label="all-reduces per micro-batch", layers=m.n_layers)
    per = {}
    for t, bw, alpha, where in ((n, hw.scale_up.ring_bw_per_direction(n), ALPHA_UP_S, "inside the domain"),
                                (2 * n, hw.scale_out.per_direction_bytes_per_s, ALPHA_OUT_S, "across two domains")):
        one = derive(f"tp{t}/per_call", ring_time_formula("all-reduce"), "s", SRC_NCCL,
                     label=f"TP {t} ({where}): one all-reduce", alpha=alpha, n=t, S=size.value, bw=bw, eff=eff)
        per[t] = (one, derive(f"tp{t}/per_microbatch", "calls*t", "s", "calls × time per call",
                              label=f"TP {t}: all-reduce time per micro-batch", calls=calls.value, t=one.value))
    bw = derive("tp/bw_ratio", "up/out", "ratio", "hardware spec: scale-up vs scale-out, per direction",
                label="scale-up / scale-out bandwidth per direction", up=hw.scale_up.ring_bw_per_direction(n),
                out=hw.scale_out.per_direction_bytes_per_s)
    figs = (size, calls, *per[n], *per[2 * n], bw)
    lines = (f"A TP group all-reduces B·L·D activations {_t(calls).split(' ')[0]} times per micro-batch on "
             f"{m.display_name} (2 forward + 2 backward per layer); at L={seq} each buffer is {_t(size)}.",
             f"Inside the {n}-GPU {hw.scale_up.name or 'scale-up'} domain one all-reduce takes {_t(per[n][0])}; a TP "
             f"group of {2 * n} spans two domains and its ring runs at the scale-out link, {_t(bw)}× slower per "
             f"direction: {_t(per[2 * n][0])} per call.",
             f"Per micro-batch: {_t(per[n][1])} at TP {n} vs {_t(per[2 * n][1])} at TP {2 * n}, on the critical "
             "path (TP collectives sit between dependent matmuls), "
             + ("so TP stays within the node and DP/PP cross it." if per[2 * n][1].value > per[n][1].value else
                f"so on {hw.display_name} a TP group may span two domains: its scale-out link is no slower here."))
    notes = ()
    if not m.attention.mla and m.attention.n_kv_heads % (2 * n):
        notes = (f"{m.display_name} has {m.attention.n_kv_heads} KV heads: TP {2 * n} would also have to replicate "
                 "them; only the all-reduce cost is compared here",)
    verdict = "Why TP stays within a node" if per[2 * n][1].value > per[n][1].value else "TP may cross nodes here"
    return Why("tp-within-node", f"{verdict}: {m.display_name} on {hw.display_name}", lines, figs, notes)


# ---------------------------------------------------------------- speculative decoding


# A draft must share the target's tokenizer: it proposes token ids that the target scores (Leviathan et al. 2023
# §2.3 compares the two distributions token by token). A spec records no tokenizer, only vocab_size, so that is
# what is compared, with llama.cpp's slack for padded embedding tables (common/speculative.cpp,
# SPEC_VOCAB_MAX_SIZE_DIFFERENCE = 128: Qwen2.5-0.5B's 151,936 vs Qwen2.5-7B's 152,064).
DRAFT_VOCAB_SLACK = 128


def _speculative(m: Model, hw: Hardware, draft: Model | None, alpha: float, gamma: int, batch: int) -> Why:
    from ..core.catalogue import all_models
    from ..inference.latency import Deployment, latency
    from ..inference.spec_decode import speculative
    from ..model.params import count_params

    if draft is None:
        same = [x for x in all_models() if x.vocab_size == m.vocab_size and count_params(x) < count_params(m)]
        if not same:
            raise LlmcalcError(f"no smaller catalogue model shares {m.display_name}'s vocabulary; give --draft")
        draft = min(same, key=count_params)
    elif abs(draft.vocab_size - m.vocab_size) > DRAFT_VOCAB_SLACK:
        raise LlmcalcError(
            f"--draft {draft.name} has a {draft.vocab_size:,}-token vocabulary and {m.display_name} a "
            f"{m.vocab_size:,}-token one: the draft proposes token ids the target verifies, so both need the same "
            f"tokenizer (llama.cpp refuses a draft whose vocabulary differs by more than {DRAFT_VOCAB_SLACK} "
            "entries); pick a draft of the same family, or drop --draft for the smallest catalogue model with the "
            "same vocabulary")
    tt, td = _tp_for(m, hw), _tp_for(draft, hw)
    target = latency(Deployment(m, hw, tt), batch=batch, prompt=1000, output=300, knee=False)  # figures only
    small = latency(Deployment(draft, hw, td), batch=batch, prompt=1000, output=300, knee=False)
    ft = _tag(target["tpot_mean_s"], "target/tpot", f"target {m.display_name} (tp {tt}): TPOT")
    fd = _tag(small["tpot_mean_s"], "draft/tpot", f"draft {draft.display_name} (tp {td}): TPOT")
    c = _ratio("cost_ratio", "c = draft step / target step", fd, ft)
    s = speculative(alpha, gamma, c.value, target_step_s=ft.value)
    knee = _tag(target["compute_bound_batch_weights_only"], "target/knee", "batch where the target's decode turns "
                "compute-bound")
    figs = (ft, fd, c, *s.figures, knee)
    lines = (f"Decode of {m.display_name} on {hw.display_name} at batch {batch} is {target.data['decode_bound']}-"
             f"bound: {_t(ft)} per token. The draft {draft.display_name} takes {_t(fd)} (c = {_t(c)}).",
             f"With acceptance α = {alpha:g} and γ = {gamma} drafted tokens, each target step yields "
             f"{_t(s['expected_tokens'])} on average: speed-up {_t(s['speedup'])}×, {_t(s['tpot_s'])} per token "
             f"(best γ here: {_t(s['optimal_gamma'])}).",
             (f"The gain comes from idle compute: verification reads the weights once for γ + 1 tokens. Past batch "
              f"≈ {_t(knee)} decode is compute-bound and the extra verification FLOPs are no longer free."
              if s["speedup"].value > 1 else
              f"Here it does not pay: the draft's steps cost more than the accepted tokens save (c = {_t(c)} at "
              f"γ = {gamma}); it needs " + (
                  "a cheaper draft, a higher α or a smaller γ" if s.data["speculation_pays"] else
                  # Leviathan Corollary 3.9: with α <= c no γ and no α below c helps; only a cheaper draft does
                  f"a draft cheaper than α × the target's step (c < α = {alpha:g}): with α <= c no γ pays "
                  "(Leviathan Corollary 3.9)") + f", and past batch ≈ {_t(knee)} verification is no longer free "
              "either."))
    verdict = "Why speculative decoding" if s["speedup"].value > 1 else "Why speculative decoding does not pay here"
    return Why("speculative", f"{verdict}: {m.display_name} on {hw.display_name}", lines, figs,
               tuple(s.assumptions))


# the inputs each topic reads (the command line notes any other it is given instead of dropping it silently)
_TRAINING = ("gpus", "seq", "global_batch")
TOPIC_INPUTS = {"zero3": _TRAINING, "pp": _TRAINING, "tp-within-node": ("seq",), "gqa": ("context", "batch"),
                "mla": ("context", "batch"), "speculative": ("batch", "draft", "alpha", "gamma")}


def why(topic: str, m: Model, hw: Hardware, *, gpus: int = 64, seq: int = 4096, global_batch: int | None = None,
        context: int = 8192, batch: int | None = None, draft: Model | None = None, alpha: float = 0.8,
        gamma: int = 4) -> Why:
    """``batch``: the decode batch, by default 32 for gqa and mla and 1 for speculative (a given 32 was taken as the
    default and replaced by 1 for speculative)."""
    if topic == "zero3":
        return _zero3(m, hw, gpus, seq, global_batch)
    if topic in ("gqa", "mla"):
        w = (_gqa if topic == "gqa" else _mla)(m, hw, context, 32 if batch is None else batch)
        warn = m.past_positions(context, f"context {context:,}")  # as infer and kv warn
        if warn:
            w = replace(w, notes=(warn, *w.notes))
        return w
    if topic == "pp":
        return _pp(m, hw, gpus, seq, global_batch)
    if topic == "tp-within-node":
        return _tp_node(m, hw, seq)
    if topic == "speculative":
        return _speculative(m, hw, draft, alpha, gamma, 1 if batch is None else batch)
    from ..core.errors import unknown_name

    raise unknown_name("why topic", topic, TOPICS)
