"""The communication ledger: every collective one training step issues, per rank.

For each collective: the parallelism that issues it, the collective, the tensor (suffix-notation
shape), the message size S, the bytes each rank moves under the ring algorithm, how many times per
step, which link it crosses, its time and whether it can hide behind compute.

Bytes per rank and time per call come from the one collective model, llmcalc/network/collectives.py.

Links: a group stays on the scale-up link (NVLink) when its ranks span at most
``hardware.scale_up.domain_size`` consecutive ranks under the order TP, CP, EP, DP, PP (innermost
first), at the bandwidth its topology gives a group of n (``Link.ring_bw_per_direction``: NVSwitch the
full figure, an xGMI full mesh (n−1) peer links, a TPU torus 2 links per axis spanned); a group that
spans domains has k ranks on each (from its span) and uses k NICs per node, min(scale-up, k·NIC) per
direction. Each call is timed by llmcalc.network.collectives.collective_time (NCCL's tuning model:
ring/tree/NVLS/NVLS-tree/hierarchical × LL/LL128/Simple, the fastest chosen).

Every row is always present; rows that do not apply to a layout have count 0. That keeps a sweep a
single vectorised evaluation (zero stage, sp and recompute may be arrays too).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ..core.checks import check_fraction, check_number
from ..core.held import HeldCache
from ..core.results import Figure, Result, derive, errstate_key
from ..core.specs import Hardware, Model
from ..network.collectives import (
    FACTORS,
    SRC_NCCL,
    SRC_TUNING,
    collective_time,
    link_efficiency_default,
    network_needed,
    scale_out_bw,
    topology_note,
)
from .layout import (
    RANK_ORDER,
    Layout,
    check_layout,
    group_spans,
    masked_sweep,
    microbatches,
    recompute_code,
    recompute_share,
    stage_layers,
    stage_notes,
    where,
)

SRC_ZERO7 = "Rajbhandari et al. 2020 (ZeRO) §7.1-7.2: DP 2Ψ, ZeRO-1/2 2Ψ, ZeRO-3 3Ψ per step"
SRC_TP = "Korthikanti et al. 2022 §4.2.2: 4 all-reduces per layer (fwd+bwd), or with SP 4 all-gathers + " \
         "4 reduce-scatters; +2 for the recomputed forward (Rajbhandari et al. 2020 §8)"
SRC_PP = "Narayanan et al. 2021 §4.1: one activation send forward and one gradient send backward per " \
         "micro-batch and stage boundary, scatter/gather optimisation sends 1/tp of BLD"
SRC_EP = "Lepikhin et al. 2020 (GShard) §2.2 / Megatron-Core MoE: all-to-all dispatch and combine per MoE layer, " \
         "fwd and bwd"
SRC_CP = "Liu et al. 2023 (Ring Attention) §3 / Megatron-Core context parallelism: K,V blocks pass around the " \
         "CP ring (cp−1 hops fwd; K,V and dK,dV in bwd), overlapped with blockwise attention"
SRC_ETP = ("Megatron-Core token_dispatcher.py (alltoall dispatcher): after the EP all-to-all the received tokens are "
           "all-gathered over the expert-TP group (--expert-tensor-parallel-size) and reduce-scattered after the "
           "expert MLP; MoE README, MoE Parallel Folding")
SRC_HOST = ("ZeRO-Offload (Ren et al. 2021, arXiv 2101.06840) §4 / DeepSpeed offload_optimizer: each rank copies its "
            "16-bit gradient partition to the host and the updated 16-bit parameters back, once per step, over the "
            "host link (PCIe, the hardware YAML's host_link_bw_bytes_per_s, per direction)")
SRC_FSDP = "Zhao et al. 2023 (PyTorch FSDP) §3.2-3.3: one all-gather and one reduce-scatter per FSDP unit (layer)"


@dataclass(frozen=True)
class CommRow:
    parallelism: str
    collective: str
    tensor: str
    shape: str
    group: Any  # ranks in the group (n)
    message_bytes: Any  # S
    bytes_per_rank: Figure  # per call, ring factor applied
    count: Any  # calls per step
    scale_up: Any  # bool: stays inside the scale-up domain
    time: Figure  # seconds per step for all calls
    overlap: bool  # can hide behind compute
    phase: str  # "pipeline" (on every micro-batch's critical path) or "step" (once per step, gradient sync)
    call: Any = None  # the CollectiveTime of one call (algorithm, protocol, latency, bandwidth)

    def as_dict(self) -> dict:
        call = self.call
        how = {} if call is None or np.ndim(call.time_s) else {
            "algorithm": call.algorithm, "protocol": call.protocol, "latency_s": call.latency_s,
            "nodes": call.nodes, "ranks_per_node": call.ranks_per_node}
        return {**how, "parallelism": self.parallelism, "collective": self.collective, "tensor": self.tensor,
                "shape": self.shape, "group_size": self.group, "message_bytes": self.message_bytes,
                "bytes_per_rank": self.bytes_per_rank.value, "count": self.count,
                "scale_up": self.scale_up, "time_s": self.time.value,
                "overlappable": self.overlap, "phase": self.phase, "source": self.time.source,
                **({} if np.ndim(self.scale_up) else {"link": "scale-up" if self.scale_up else "scale-out"})}


def _row(parallelism, collective, tensor, shape, n, S, count, span, ctx, overlap, phase, source) -> CommRow:
    factor, _ = FACTORS[collective]
    key = f"comm/{parallelism}/{collective}/{tensor.split(' ')[0]}"
    per = derive(key + "/bytes", f"({factor})*S", "B", SRC_NCCL, label=f"{parallelism} {collective} bytes per rank",
                 n=n, S=S)
    up = np.asarray(span) <= ctx["domain"]
    if ctx["out_bw"] is None and not np.all(up):
        raise network_needed(ctx["hw"], f"the {parallelism} group")
    # One call timed by the collective model (llmcalc.network.collectives: NCCL's tuning model, the group placed
    # k ranks per scale-up domain from its span, k NICs per node across domains).
    ct = collective_time(ctx["hw"], collective, S, n, span=span, link_efficiency=ctx["eff"],
                         latency_scale=ctx["latency_scale"])
    how = ct.describe() if np.ndim(ct.time_s) == 0 else "NCCL-style choice per point (llmcalc.network.collectives)"
    time = derive(key, "count*t_call", "s", f"{source}; per call: {how}; {SRC_TUNING}",
                  label=f"{parallelism}: {collective} of {tensor}", count=count, t_call=ct.time_s, shape=shape)
    return CommRow(parallelism, collective, tensor, shape, n, S, per, count, up if up.ndim else bool(up), time,
                   overlap, phase, ct)


def host_copies(m: Model, hw: Hardware, layout: Layout, params: dict, offload, *, grad_bytes: int = 2,
                weight_bytes: int = 2) -> dict:
    """ZeRO-Offload host traffic per rank per step: the rank's ZeRO partition of 16-bit gradients down (D2H) and of
    updated 16-bit parameters up (H2D), each at the host link's per-direction bandwidth (Ren et al. 2021 §4, Figure 2:
    g16 to CPU, p16 back). Nothing when ``offload`` is off everywhere."""
    off = np.asarray(offload)
    if not np.any(off):
        return {"figures": [], "rows": [], "d2h_s": 0.0, "h2d_s": 0.0, "params": 0.0}
    bw = getattr(hw, "host_link_bw_bytes_per_s", None)
    if bw is None:
        from ..core.errors import LlmcalcError

        raise LlmcalcError(f"--offload-optimizer: {hw.display_name} records no host link (add host_link_bw_bytes_per_s "
                           "with its source to the hardware YAML)")
    Pd = np.maximum(np.maximum(params["first"].value, params["middle"].value), params["last"].value)
    part = derive("offload/params_per_rank", "off*(Pd/(dp*cp) + Px/edp)", "param",
                  "the rank's ZeRO partition of the fullest stage (offload needs ZeRO 1-3): dense over DP×CP, experts "
                  "over the expert-DP group", label="parameters whose optimizer step runs on this rank's host",
                  off=where(off, 1, 0), Pd=Pd, dp=layout.dp, cp=layout.cp, Px=params["experts"].value,
                  edp=layout.expert_dp)
    d2h = derive("comm/host/d2h/gradients", "g*P/bw", "s", SRC_HOST, label="host link: 16-bit gradients to the host",
                 g=grad_bytes, P=part.value, bw=bw)
    h2d = derive("comm/host/h2d/parameters", "w*P/bw", "s", SRC_HOST,
                 label="host link: updated 16-bit parameters to the GPU", w=weight_bytes, P=part.value, bw=bw)
    rows = []
    if np.ndim(part.value) == 0:
        for f, what, nbytes in ((d2h, "gradients (to host)", grad_bytes),
                                (h2d, "parameters (from host)", weight_bytes)):
            rows.append({"parallelism": "host", "collective": "copy", "tensor": what, "shape": "P/zero",
                         "group_size": 1, "message_bytes": nbytes * part.value, "bytes_per_rank": nbytes * part.value,
                         "count": 1, "scale_up": False, "time_s": f.value, "overlappable": True, "phase": "step",
                         "source": SRC_HOST, "link": "host (PCIe)", "algorithm": "memcpy", "protocol": "PCIe"})
    return {"figures": [part, d2h, h2d], "rows": rows, "d2h_s": d2h.value, "h2d_s": h2d.value, "params": part.value}


def comm_ledger(m: Model, hw: Hardware, layout: Layout = Layout(), *, micro_batch=1, seq=2048, global_batch=None,
                recompute="none", link_efficiency: float | None = None, act_bytes: int = 2,
                grad_bytes: int = 2, latency_scale: float = 1.0, recompute_layers=None,
                offload_optimizer=False, pipeline_only: bool = False, checked=None) -> Result:
    """Every collective of one training step, per rank (first pipeline stage, the fullest). With full
    recompute of only ``recompute_layers`` layers per stage, only those repeat their forward collectives.
    ``offload_optimizer`` adds the host-link copies of ZeRO-Offload (gradients down, 16-bit parameters up).
    ``pipeline_only``: the rows of every micro-batch (TP, EP, ETP, PP send/recv, CP) and the host copies, without
    the once-per-step DP/ZeRO and tied-embedding rows (a planner's step lower bound, llmcalc.training.step).
    ``checked``: what :func:`check_layout` returned for this layout and these inputs (or a stricter check: the
    step's, which adds the GPU count), from a caller that has just run it; it is ``data['valid']`` and the check
    is not run again (a planner's step calls, 10⁴-10⁵ layouts each: issue #13).

    A scalar call is kept per process by the identity of the model and hardware and the exact inputs (types
    included): calibrate's fit asks 26 times for the same ledger, changing only the compute efficiency (issue
    #13). The Result is shared: callers only read it."""
    args = (micro_batch, seq, global_batch, recompute, link_efficiency, act_bytes, grad_bytes, latency_scale,
            recompute_layers, offload_optimizer, pipeline_only)
    # (not in the key: a scalar layout that passed a check is valid, True, whoever checked it)
    key = _ledger_key(m, hw, layout, args)
    if key is None:
        return _comm_ledger(m, hw, layout, *args, checked=checked)
    hit = _LEDGERS.get((m, hw), key)
    return hit if hit is not None else _LEDGERS.put((m, hw), key, _comm_ledger(m, hw, layout, *args, checked=checked))


_LEDGERS = HeldCache(256)  # scalar ledgers by model, hardware and inputs
_KEYABLE = (int, float, bool, str, type(None), np.integer, np.floating, np.bool_)
_LAYOUT_FIELDS = tuple(f.name for f in fields(Layout))


def _ledger_key(m, hw, layout, args) -> tuple | None:
    """A hashable key when every input is one plain value (a layout's ``pp_layers`` a tuple of them); None for a
    sweep (an array anywhere) or anything unusual, which is then not cached."""
    if type(layout) is not Layout:
        return None
    vals = (*(getattr(layout, f) for f in _LAYOUT_FIELDS), *args)
    types = []
    for v in vals:
        if type(v) is tuple and all(isinstance(x, _KEYABLE) for x in v):
            types.append(tuple(map(type, v)))
        elif isinstance(v, _KEYABLE):
            types.append(type(v))
        else:
            return None
    return (*vals, *types, errstate_key())


@masked_sweep
def _comm_ledger(m: Model, hw: Hardware, layout: Layout, micro_batch, seq, global_batch, recompute, link_efficiency,
                 act_bytes, grad_bytes, latency_scale, recompute_layers, offload_optimizer, pipeline_only,
                 checked=None) -> Result:
    from .memory import stage_params

    rc = recompute_code(recompute)
    valid = checked if checked is not None else check_layout(m, layout, micro_batch=micro_batch, seq=seq,
                                                             global_batch=global_batch)
    eff = link_efficiency_default() if link_efficiency is None else check_fraction(
        link_efficiency, "--link-efficiency (fraction of the per-direction link bandwidth)")
    ctx = {"domain": hw.scale_up.domain_size, "out_bw": scale_out_bw(hw), "eff": eff, "hw": hw,
           "latency_scale": check_number(latency_scale, "--latency-scale", low=0, low_ok=True)}
    t, p, d, c, ep, v = layout.tp, layout.pp, layout.dp, layout.cp, layout.ep, layout.interleave
    z, sp = np.asarray(layout.zero), layout.sp
    mb = 1 if global_batch is None else microbatches(layout, micro_batch, global_batch)
    spans = group_spans(layout)
    params = stage_params(m, layout)
    # The fullest stage (uneven pipelines: the most layers, or the first/last with embedding/head) issues the
    # longest gradient sync; per-micro-batch TP/EP/CP rows are counted on the stage with the most layers.
    Pd = np.maximum(np.maximum(params["first"].value, params["middle"].value), params["last"].value)
    Pd = Pd.item() if np.ndim(Pd) == 0 else Pd
    Px = params["experts"].value
    Lp = stage_layers(m.n_layers, layout)["max"]  # layers on the fullest stage (L/p when even)
    full = recompute_share(rc, recompute_layers, Lp, v)
    moe_frac = m.n_moe_layers / m.n_layers
    tok = micro_batch * (seq // c)  # tokens of one micro-batch on this rank: B·L/cp
    bld = act_bytes * tok * m.d_model
    sdiv = where(sp, t, 1)
    tpc = where(np.asarray(t) > 1, 1, 0)
    rows: list[CommRow] = []
    kinds: dict = {}

    def grad_sync(tag: str, P, n, span, layers):
        # ZeRO-3/FSDP gathers and reduce-scatters one layer (FSDP unit) at a time: the bytes are those of the
        # whole stage, but each layer is its own collective with its own α·(n−1) latency.
        per_layer = where(z == 3, layers, 1)
        ar = where(z == 0, 1, 0)
        rs = where(z == 1, 1, where(z == 2, mb, where(z == 3, mb * layers, 0)))
        ag = where((z == 1) | (z == 2), 1, 0)
        ag3 = where(z == 3, mb * layers, 0)
        g, w = grad_bytes * P, act_bytes * P
        first = len(rows)
        rows.extend([
            _row(tag, "all-reduce", "gradients", "P", n, g, ar, span, ctx, True, "step",
                 SRC_ZERO7 + " (plain DP: all-reduce 2Ψ)"),
            _row(tag, "reduce-scatter", "gradients (ZeRO)", "P/layers" if np.ndim(z) == 0 and z == 3 else "P", n,
                 g / per_layer, rs, span, ctx, True, "step",
                 SRC_ZERO7 + " (ZeRO-2: reduce-scatter every micro-batch; ZeRO-3: every layer of every "
                 "micro-batch, " + SRC_FSDP + ")"),
            _row(tag, "all-gather", "parameters (ZeRO-1/2 after the step)", "P", n, w, ag, span, ctx, True, "step",
                 SRC_ZERO7),
            _row(tag, "all-gather", "parameters (ZeRO-3 forward)", "P/layers", n, w / per_layer, ag3, span, ctx,
                 True, "step", SRC_ZERO7 + " (ZeRO-3: gather each layer before its forward; " + SRC_FSDP + ")"),
            _row(tag, "all-gather", "parameters (ZeRO-3 backward)", "P/layers", n, w / per_layer, ag3, span, ctx,
                 True, "step", SRC_ZERO7 + " (and again before its backward; " + SRC_FSDP + ")")])
        t_ar, t_rs, t_ag, t_f, t_b = (r.time.value for r in rows[first:])
        # what each gradient/parameter collective can hide behind (llmcalc.training.step applies the rules)
        kinds["grad_last"] = kinds.get("grad_last", 0) + t_ar + where(z == 1, t_rs, 0)
        kinds["grad_each"] = kinds.get("grad_each", 0) + where(z == 2, t_rs, 0)
        kinds["param_gather"] = kinds.get("param_gather", 0) + t_ag
        kinds["zero3_fwd"] = kinds.get("zero3_fwd", 0) + t_f
        kinds["zero3_bwd"] = kinds.get("zero3_bwd", 0) + t_b + where(z == 3, t_rs, 0)

    et = layout.expert_tp
    if not pipeline_only:
        grad_sync("dp", Pd, d * c, spans["dp"], Lp)
    if m.moe and not pipeline_only:  # the expert-DP group tp·cp·dp/(etp·ep) (Megatron-Core parallel_state.py)
        grad_sync("edp", Px, layout.expert_dp, spans["edp"], moe_frac * Lp)
    if m.tie_embeddings and not pipeline_only:
        rows.append(_row("pp", "all-reduce", "tied embedding gradients", "VD", 2, grad_bytes * m.vocab_size *
                         m.d_model / t, where(np.asarray(p) > 1, 1, 0), spans["pp"], ctx, False, "step",
                         "Megatron-LM: the first and last stage sum their tied embedding gradients"))
    tp_calls = tpc * Lp * mb * (4 + 2 * full)
    # MoE layers: the expert MLP's tensor-parallel collectives run over the expert-TP group on the dispatched tokens
    # (Megatron-Core token_dispatcher.py, alltoall dispatcher: all-to-all over EP, then an all-gather over ETP of the
    # received tokens before the expert GEMMs and a reduce-scatter after; with SP each rank dispatches its own
    # B·L/(cp·tp) tokens). So the MLP half of the MoE layers' TP collectives (2 per layer forward and backward, +1
    # re-run under recompute) leaves the TP rows; the ETP rows carry k·B·L·D·etp/(cp·tp) per call. Applies with SP or
    # tp = 1 or an explicit etp; without SP at tp > 1 (refused by Megatron-Core) the TP rows keep them as before.
    etp_rows = bool(m.moe) and (np.any(np.asarray(sp, bool)) or np.any(np.asarray(t) == 1)
                                or np.any(np.asarray(layout.etp_explicit)))
    if etp_rows:
        split = where(np.asarray(sp, bool) | (np.asarray(t) == 1) | np.asarray(layout.etp_explicit), 1, 0)
        moe_mlp_calls = split * moe_frac * Lp * mb * (2 + full)
        tp_calls = tp_calls - tpc * moe_mlp_calls
        etp_calls = moe_mlp_calls * where(np.asarray(et) > 1, 1, 0)
    rows += [
        _row("tp", "all-reduce", "activations (attention and MLP outputs)", "BLD", t, bld,
             where(sp, 0, tp_calls), spans["tp"], ctx, False, "pipeline", SRC_TP),
        _row("tp", "all-gather", "activations (sequence parallel)", "BLD", t, bld, where(sp, tp_calls, 0),
             spans["tp"], ctx, False, "pipeline", SRC_TP),
        _row("tp", "reduce-scatter", "activations (sequence parallel)", "BLD", t, bld, where(sp, tp_calls, 0),
             spans["tp"], ctx, False, "pipeline", SRC_TP),
        _row("pp", "send/recv", "activations and their gradients", "BLD/tp", 2, bld / t,
             where(np.asarray(p) > 1, 2 * mb * v, 0), spans["pp"], ctx, False, "pipeline", SRC_PP)]
    if m.moe:
        moe_calls = moe_frac * Lp * mb * (4 + 2 * full) * where(np.asarray(ep) > 1, 1, 0)
        rows.append(_row("ep", "all-to-all", "routed tokens (dispatch and combine)", "kBLD", ep,
                         act_bytes * m.moe.top_k * tok * m.d_model / sdiv, moe_calls, spans["ep"], ctx, False,
                         "pipeline", SRC_EP))
        if etp_rows:
            x_bytes = act_bytes * m.moe.top_k * tok * m.d_model * et / sdiv
            rows += [_row("etp", "all-gather", "dispatched tokens (expert TP)", "kBLD", et, x_bytes, etp_calls,
                          spans["etp"], ctx, False, "pipeline", SRC_ETP),
                     _row("etp", "reduce-scatter", "expert outputs (expert TP)", "kBLD", et, x_bytes, etp_calls,
                          spans["etp"], ctx, False, "pipeline", SRC_ETP)]
    a = m.attention
    # Ring attention passes the keys and values attention actually uses. For MLA these are the up-projected
    # per-head K (nope + rope) and V, H·((Kn + R) + Kv) per token, not the 576-wide cached latent
    # (Megatron-Core/TransformerEngine context parallelism exchanges K and V after the up-projection).
    kv_width = a.n_heads * (a.qk_dim + a.v_dim) if a.mla else a.n_kv_heads * (a.qk_dim + a.v_dim)
    kv_shape = "BLH(K+Kv)/tp" if a.mla else "BLG(K+Kv)/tp"  # K and V both: the shape the bytes count
    rows.append(_row("cp", "send/recv", "K and V blocks (ring attention)", kv_shape, c,
                     act_bytes * tok * kv_width / t, (3 + full) * (np.asarray(c) - 1) * Lp * mb, spans["cp"], ctx,
                     True, "pipeline", SRC_CP))

    for r in rows:
        if r.parallelism in ("tp", "ep", "etp", "cp") or r.phase == "pipeline":
            kinds[r.parallelism] = kinds.get(r.parallelism, 0) + r.time.value
    kinds["tied"] = sum((r.time.value for r in rows if r.tensor.startswith("tied")), 0)
    figs = [r.time for r in rows]
    times = {k: sum(r.time.value for r in rows if r.overlap == ov and r.phase == ph) for k, ov, ph in
             (("pipe_exposed", False, "pipeline"), ("step_exposed", False, "step"),
              ("overlappable", True, "pipeline"), ("overlappable_step", True, "step"))}
    moved = derive("comm/bytes_per_rank", "sum_count_x_bytes", "B", "Σ count·bytes per rank over the rows",
                   label="bytes moved per rank per step",
                   sum_count_x_bytes=sum(r.count * r.bytes_per_rank.value for r in rows))
    tot = derive("comm/total_time", "pipe_exposed + step_exposed + overlappable", "s",
                 "sum of the rows above (before any overlap with compute)", label="communication time (serial)",
                 pipe_exposed=times["pipe_exposed"], step_exposed=times["step_exposed"],
                 overlappable=times["overlappable"] + times["overlappable_step"])
    figs += [moved, tot]
    notes = [RANK_ORDER + ("; expert layers on Megatron-Core's expert grid ETP, EP, EDP (innermost first)"
                           if np.any(np.asarray(layout.etp_explicit)) else ""),
             f"link efficiency {eff:g} of per-direction bandwidth (NCCL ring busbw ~370/450 GB/s on "
             "H100 NVLink; 235/300 on A100)",
             *topology_note(hw),
             "collective times from NCCL's tuning model (NVIDIA/nccl v2.30.7 src/graph/tuning.cc): per-hop "
             "latencies of the hardware YAML, ring/tree/NVLS × LL/LL128/Simple, the fastest chosen; across nodes a "
             "group of k ranks per node uses k NICs" + (f"; latency × {latency_scale:g}" if latency_scale != 1
                                                           else ""),
             f"activations {act_bytes} B, gradients reduced in {grad_bytes} B (bf16)",
             "counted on the fullest pipeline stage; embedding/LM-head vocab-parallel all-reduces not listed",
             *stage_notes(m, layout)]
    # Rows that do nothing (count 0, or a group of one rank: 0 bytes) are left out of the table.
    shown = [r for r in rows if np.ndim(r.count) or np.ndim(r.group) or (r.count and r.group > 1)]
    host = host_copies(m, hw, layout, params, offload_optimizer, grad_bytes=grad_bytes, weight_bytes=act_bytes)
    figs += host["figures"]
    if host["figures"]:
        notes.append(SRC_HOST)
    data = {"rows": [r.as_dict() for r in shown] + host["rows"], "valid": valid,
            "host_d2h_s": host["d2h_s"], "host_h2d_s": host["h2d_s"], "offloaded_params": host["params"],
            "microbatches": mb, "exposed_pipeline_s": times["pipe_exposed"], "exposed_step_s": times["step_exposed"],
            "overlappable_s": times["overlappable"] + times["overlappable_step"],
            "total_time_s": tot.value, "bytes_per_rank": moved.value, "by_overlap_s": kinds}
    return Result(f"Communication per training step: {m.display_name} on {hw.display_name}", tuple(figs),
                  tuple(notes), data)
