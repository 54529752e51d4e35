"""Collectives: the one cost model of every collective, after NCCL's own tuning model.

Entry point::

    collective_time(hw, "all-reduce", nbytes, n, ranks_per_node=None, link_efficiency=None,
                    latency_scale=1.0) -> CollectiveTime

``nbytes`` is S in nccl-tests' convention (NVIDIA nccl-tests doc/PERFORMANCE.md): the whole buffer of an
all-reduce or broadcast, the FULL gathered array of an all-gather / reduce-scatter, the whole send buffer
of an all-to-all, the message of a send/recv. ``n`` ranks sit ``ranks_per_node`` to a scale-up domain
(default: all on one domain while n fits it, else as many as fit). ``nbytes``, ``n`` and ``ranks_per_node``
broadcast as numpy arrays; the result's ``time_s`` has their broadcast shape and its ``algorithm`` /
``protocol`` say what was chosen (a string, or an array of strings for a sweep).

The model (NVIDIA/nccl v2.30.7, src/graph/tuning.cc, ``ncclTopoTuneModel`` and ``ncclTopoGetAlgoTime``):
time = latency + S / algorithm bandwidth, evaluated for every enabled (algorithm, protocol) pair, the
minimum chosen as NCCL's tuner does.

- latency = base latency of the (algorithm, protocol) + hops × per-hop latency of the fabric crossed
  (the per-hop latencies live in the hardware YAML's scale_up / scale_out blocks, ``hop_latency``).
  Ring: 2(n−1) hops for all-reduce, n−1 for all-gather / reduce-scatter, of which 2(m−1) (resp. m−1)
  cross the network on m nodes; tree all-reduce: 2·((k−1)·intra + ⌊log2 m⌋·inter); NVLS: one NVLS hop.
- bandwidth: the ring's bus bandwidth B is the link's per-direction figure × link efficiency; across
  nodes a rank's ring is limited by min(scale-up, k·NIC) per direction, because NCCL spreads its k rings
  over the k NICs of a node (one per GPU on DGX/HGX). Protocol factors from tuning.cc: LL = min(llMaxBw,
  B/2), LL128 = 0.92·B (capped per channel), tree all-reduce 0.92·B then /3.8 for LL, ·7/9 (one node) or
  120/128 for LL128, algorithm bandwidth = bus·n/steps for rings, bus/2 for trees.
- NVLS (NVLink SHARP, in-switch reduction; only where the scale-up block says ``nvls: true``: H100, H200,
  B200, GB200): latency one NVLS hop (25 µs on NVLink), all-reduce algorithm bandwidth
  B·nvlsEfficiency·(c−1)/c with c = min(k, 16) NVLS channels (tuning.cc's intra-node NVLS bandwidth
  before its ×2 pipelining; this reproduces the maintainers' ~480 GB/s busbw on 8×H100,
  NVIDIA/nccl#1455). Multi-node NVLS needs CollNet and is not modelled.
- hierarchical all-reduce across nodes (reduce-scatter in the node, all-reduce over the nodes on every
  NIC at once, all-gather in the node) is a candidate too, chosen when faster.
- all-to-all and send/recv are NCCL point-to-point operations (not in tuning.cc's table): all-to-all sends
  (k−1)/n·S to same-node peers over the scale-up link and (n−k)/n·S over the rank's own NIC at once, and
  pays ONE latency (the peers' sends are concurrent, not serialised over n−1 peers: DeepEP's low-latency
  EP256 dispatch, 128 tokens × 7168 × top-8 in FP8 on H800 + CX7, takes 194 µs, DeepEP docs/legacy.md);
  send/recv is one ring Simple hop.
- TPU ICI (``fabric: ici``) and other non-NCCL fabrics run one ring algorithm: hops along the torus axes
  spanned (a collective over several axes runs one axis at a time, scaling-book "How to think about
  TPUs"), bandwidth from the torus rule of ``Link.ring_bw_per_direction``.
- ``latency_scale`` multiplies every latency; ``--roofline`` means link efficiency 1 and latency_scale 0.

Training's ledger (training/comms.py) and inference's TP all-reduce (inference/latency.py) both time
their collectives here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from ..core.errors import LlmcalcError
from ..core.held import HeldCache
from ..core.pointmemo import distinct
from ..core.results import errstate_key
from ..core.specs import Hardware, Link

SRC_NCCL = "NVIDIA nccl-tests doc/PERFORMANCE.md (ring bus-bandwidth factors)"
SRC_TUNING = "NVIDIA/nccl v2.30.7 src/graph/tuning.cc (ncclTopoTuneModel, ncclTopoGetAlgoTime)"
COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "broadcast", "send/recv")
# collective -> (bytes per rank on the wire as a fraction of S, ring steps): nccl-tests bus-bandwidth factors
FACTORS = {"all-reduce": ("2*(n - 1)/n", "2*(n - 1)"), "all-gather": ("(n - 1)/n", "(n - 1)"),
           "reduce-scatter": ("(n - 1)/n", "(n - 1)"), "all-to-all": ("(n - 1)/n", "(n - 1)"),
           "broadcast": ("1", "1"), "send/recv": ("1", "1")}

# ---- tuning.cc constants (NCCL 2.30.7), facts transcribed; µs and GB/s as NCCL writes them
BASE_LATENCY_US = {("tree", "ll"): 6.8, ("tree", "ll128"): 14.0, ("tree", "simple"): 8.4,
                   ("ring", "ll"): 6.6, ("ring", "ll128"): 14.0, ("ring", "simple"): 8.4,
                   ("nvls", "simple"): 0.0}  # NVLS: latency is the NVLS hop alone
NVLS_EFFICIENCY = {"hopper": 0.85, "blackwell": 0.74}  # tuning.cc nvlsEfficiency (Volta/Ampere: 0, no NVLS)
# llMaxBws: one node by GPU generation; several nodes by host CPU (Intel x86 assumed): [2 nodes, >2 nodes]
LL_MAX_BW_ONE_NODE = {"volta": 39.0, "ampere": 87.7, "hopper": 141.0, "blackwell": 282.0}
LL_MAX_BW_NODES = (39.0, 20.4)
PER_CH_RING_LL128 = {"volta": 20.0, "ampere": 20.0, "hopper": 36.7, "blackwell": 40.0}
PER_CH_TREE = {"volta": (26.5, 18.5, 10.0), "ampere": (24.0, 23.6, 17.8), "hopper": (38.7, 41.4, 36.0),
               "blackwell": (70.0, 42.8, 24.0)}  # [1 node, 2 nodes, >2 nodes]
PER_CH_TREE_LL128 = {"volta": (20.0, 20.0, 20.0), "ampere": (20.0, 20.0, 20.0), "hopper": (36.7, 36.7, 29.0),
                     "blackwell": (55.6, 31.67, 20.0)}
NVLS_TREE_CAP = {"hopper": (57.7, 45.5), "blackwell": (96.0, 80.0)}  # perChMaxNVLSTreeBws [2 nodes, >2 nodes]
# treeCorrectionFactor[protocol][log2(S/64)], 64 B .. 256 MiB
TREE_CORRECTION = {
    "ll": (1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7, .7, .7, .6, .5, .4, .4, .5, .6, .7, .8, .9, 1.0, 1.0, 1.0, 1.0, 1.0),
    "ll128": (1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .6, .6, .6, .8, .9, .9, .9, .9, 1.0, 1.0, 1.0),
    "simple": (.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .6, .7, .8, .7, .7, .8, .9, .9, .9)}
NET_OVERHEAD_US = 1.0  # getNetOverhead: 1 µs on Intel x86 hosts (assumed), ×3 for Simple
RING_PLATEAU = 1.4  # multi-node ring Simple all-reduce latency ×1.4 on compute capability >= 8.0
# Assumption: NCCL runs 16 channels on an 8-GPU H100 node (NCCL_DEBUG logs in NVIDIA/nccl#1453 and #1519:
# "16 coll channels", Ring 00..15); used only for tuning.cc's per-channel bandwidth caps.
N_CHANNELS = 16
PROTOCOLS = ("ll", "ll128", "simple")
PROTO_NAME = {"ll": "LL", "ll128": "LL128", "simple": "Simple"}

# Kept for callers that still print the old single-α description (deprecated; not used by the model).
ALPHA_UP_S = 5e-6
ALPHA_OUT_S = 10e-6


def ring_time_formula(collective: str) -> str:
    """The textbook ring form (α per ring step + bytes per rank / bandwidth), for explanations only."""
    factor, steps = FACTORS[collective]
    return f"alpha*{steps} + {factor}*S/(bw*eff)"


def link_efficiency_default() -> float:
    """The sourced default shared by training and inference (core/efficiency.py: NCCL ~370/450 GB/s on H100)."""
    from ..core.efficiency import DEFAULT_EFFICIENCY

    return DEFAULT_EFFICIENCY.link


def scale_out_bw(hw: Hardware) -> float | None:
    """Per-direction network bandwidth per device, or None where the catalogue records none."""
    return None if hw.scale_out is None else hw.scale_out.per_direction_bytes_per_s


def network_needed(hw: Hardware, what: str) -> LlmcalcError:
    return LlmcalcError(f"{what} spans more than the {hw.scale_up.domain_size}-device scale-up domain of "
                        f"{hw.display_name}, whose catalogue entry records no scale_out bandwidth (unverified); "
                        "keep that group inside one domain, or give the hardware YAML a scale_out link")


def topology_note(hw: Hardware) -> list[str]:
    """Say how a group shares a scale-up link that is not a switch (the aggregate is not what a pair gets)."""
    up = hw.scale_up
    if up.topology == "full_mesh":
        agg, peer = up.per_direction_bytes_per_s / 1e9, up.per_peer_bytes_per_s / 1e9
        return [f"{hw.display_name} scale-up is a full mesh: a group of n gets min({agg:g}, (n−1)·{peer:g}) GB/s "
                "per direction"]
    if up.topology == "torus":
        return [f"{hw.display_name} scale-up is a torus: a ring gets {up.per_link_bytes_per_s / 1e9:g} GB/s per link, "
                f"2 links per {up.axis_size}-chip axis spanned (1 below a full axis), at most "
                f"{up.per_direction_bytes_per_s / 1e9:g} GB/s"]
    return []


def placement(hw: Hardware, n, span=None):
    """(ranks per scale-up domain k, domains m) of a group of ``n`` ranks spread over ``span`` consecutive
    ranks (default n: contiguous). A group whose ranks are ``span/n`` apart puts ⌊domain/(span/n)⌋ on a
    domain (DP over tp=8 ranks: one per node)."""
    n = np.asarray(n, dtype=float)
    span = n if span is None else np.asarray(span, dtype=float)
    dom = hw.scale_up.domain_size
    stride = np.maximum(span / np.maximum(n, 1), 1)
    k = np.where(span <= dom, n, np.clip(np.floor(dom / stride), 1, None))
    k = np.minimum(k, n)
    return k, np.ceil(n / k)


@dataclass(frozen=True)
class CollectiveTime:
    """Predicted time of one collective call and how it was obtained (arrays broadcast like the inputs)."""

    collective: str
    time_s: Any
    algorithm: Any  # "ring", "tree", "nvls", "hierarchical", "p2p" (str, or array of str)
    protocol: Any  # "LL", "LL128", "Simple"
    latency_s: Any
    bandwidth_bytes_per_s: Any  # algorithm bandwidth: S / (time − latency)
    hops: Any  # latency hops charged (per-hop latency applies to each)
    per_hop_latency_s: Any
    bytes_per_rank: Any  # nccl-tests bus bytes: factor × S
    ranks: Any
    ranks_per_node: Any
    nodes: Any
    fabric: str  # what the group crosses, in words
    candidates: dict = field(default_factory=dict, repr=False)  # "ring/LL" -> time_s

    @property
    def bus_bandwidth_bytes_per_s(self):
        """nccl-tests busbw = bytes per rank / time."""
        return self.bytes_per_rank / self.time_s

    def describe(self) -> str:
        """One line for --explain: algorithm/protocol, hops, per-hop latency and the bandwidth term."""
        if np.ndim(self.time_s):
            return f"{self.collective}: NCCL-style choice per point of the sweep (see data)"
        alg = f"{self.algorithm}/{self.protocol}"
        return (f"{self.collective} over {int(self.ranks)} ranks ({int(self.nodes)} node(s) × "
                f"{int(self.ranks_per_node)}, {self.fabric}): {alg}, latency {self.latency_s * 1e6:.3g} µs "
                f"({self.hops:g} hops × {self.per_hop_latency_s * 1e6:.3g} µs + base), bandwidth term "
                f"{(self.time_s - self.latency_s) * 1e6:.3g} µs at {self.bandwidth_bytes_per_s / 1e9:.4g} GB/s "
                f"algorithm bandwidth → {self.time_s * 1e6:.4g} µs")

    def as_dict(self) -> dict:
        def j(v):
            return v.tolist() if isinstance(v, np.ndarray) else v
        return {"collective": self.collective, "time_s": j(self.time_s), "algorithm": j(self.algorithm),
                "protocol": j(self.protocol), "latency_s": j(self.latency_s),
                "bandwidth_bytes_per_s": j(self.bandwidth_bytes_per_s), "hops": j(self.hops),
                "per_hop_latency_s": j(self.per_hop_latency_s), "ranks": j(self.ranks),
                "ranks_per_node": j(self.ranks_per_node), "nodes": j(self.nodes), "fabric": self.fabric}


def _hop(link: Link, alg: str, proto: str) -> float:
    """Per-hop latency in µs of this link for an (algorithm, protocol), from the hardware YAML (or NCCL's row for
    its fabric; a scale-out link that names none is priced as a network, as NCCL does for every inter-node hop)."""
    return link.hop_latency_s(alg, proto, default_fabric="infiniband" if link.domain_size == 1 else None) * 1e6


def _log2i(x):
    return np.floor(np.log2(np.maximum(x, 1)))


def _arch(hw: Hardware) -> str:
    return hw.scale_up.nccl_arch or "hopper"


def collective_time(hw: Hardware, collective: str, nbytes, n, *, ranks_per_node=None, span=None,
                    link_efficiency: float | None = None, latency_scale: float = 1.0,
                    algorithms: tuple[str, ...] | None = None) -> CollectiveTime:
    """Time of one ``collective`` of S = ``nbytes`` over ``n`` ranks on ``hw`` (see the module docstring).

    ``ranks_per_node`` (k) defaults to :func:`placement` of a contiguous group (or of ``span`` consecutive
    ranks). ``algorithms`` restricts the candidates (e.g. ("ring",)). Raises LlmcalcError when the group
    needs a network the catalogue entry does not record.

    A large sweep usually repeats a few (S, n, placement) points many times (a planner's 10⁵ layouts share a
    handful of group sizes and message sizes): those are timed once each and scattered back."""
    kw = dict(link_efficiency=link_efficiency, latency_scale=latency_scale, algorithms=algorithms)
    key = _scalar_key(collective, nbytes, n, ranks_per_node, span, kw)
    if key is not None:
        hit = _SCALAR_CALLS.get((hw,), key)
        if hit is not None:
            return hit
        if all(v is None or type(v) in _SCALAR for v in (nbytes, n, ranks_per_node, span)):
            ct = _collective_time(hw, collective, nbytes, n, ranks_per_node=ranks_per_node, span=span, **kw)
        else:  # a small array: its points may be known from an earlier call (a planner's seed rounds)
            ct = _deduplicated(hw, collective, nbytes, n, ranks_per_node, span, kw)
        for f in ("time_s", "algorithm", "protocol", "latency_s", "bandwidth_bytes_per_s", "hops",
                  "per_hop_latency_s", "bytes_per_rank", "ranks", "ranks_per_node", "nodes"):
            v = ct.__dict__.get(f)  # a deduplicated sweep's other fields: read-only when first read (_ScatteredTime)
            if isinstance(v, np.ndarray):
                v.flags.writeable = False  # shared with every later caller: never changed in place
        if isinstance(ct, _ScatteredTime):
            ct.__dict__["_shared"] = True
        return _SCALAR_CALLS.put((hw,), key, ct)
    where_ = ranks_per_node if ranks_per_node is not None else span
    shape = np.broadcast(np.asarray(nbytes, dtype=float), np.asarray(n, dtype=float),
                         np.asarray(0.0 if where_ is None else where_, dtype=float)).shape
    if len(shape) == 0 or int(np.prod(shape)) < 4096:
        return _collective_time(hw, collective, nbytes, n, ranks_per_node=ranks_per_node, span=span, **kw)
    return _deduplicated(hw, collective, nbytes, n, ranks_per_node, span, kw)


def _deduplicated(hw: Hardware, collective: str, nbytes, n, ranks_per_node, span, kw) -> CollectiveTime:
    """collective_time of array inputs, each distinct (S, n, placement) point timed once per process
    (:func:`_points`) and scattered back to the inputs' shape."""
    where_ = ranks_per_node if ranks_per_node is not None else span
    shape = np.broadcast(np.asarray(nbytes, dtype=float), np.asarray(n, dtype=float),
                         np.asarray(0.0 if where_ is None else where_, dtype=float)).shape
    # distinct (S, n, placement) points: each input's own distinct values first (a planner's grid broadcasts
    # inputs of fewer dimensions), then the distinct combinations of their codes
    ins = [np.asarray(x, dtype=float) for x in (nbytes, n, 0.0 if where_ is None else where_)]
    vals, codes = [], []
    for x in ins:
        u, c = _factorize(x)
        vals.append(u)
        codes.append(c)
    size = len(vals[0]) * len(vals[1]) * len(vals[2])
    code = (codes[0] * len(vals[1]) + codes[1]) * len(vals[2]) + codes[2]  # < size, in input order
    if size <= 4 * code.size:  # few combinations (a planner's grid): mark and count them, no sort
        seen = np.zeros(size, bool)
        seen[code.ravel()] = True
        present = np.flatnonzero(seen)
        inv = (np.cumsum(seen) - 1)[code]
    else:
        present, inv = np.unique(code, return_inverse=True)
    inv = inv.reshape(shape)
    i1, i2 = np.divmod(present, len(vals[2]))
    i0, i1 = np.divmod(i1, len(vals[1]))
    uniq = (vals[0][i0], vals[1][i1], vals[2][i2])
    kind = None if where_ is None else ("ranks_per_node" if ranks_per_node is not None else "span")
    small, fabric, fresh = _points(hw, collective, uniq, (vals[1], i1, vals[2], i2), kind, kw)
    n_uniq = len(present)

    def back(v):
        v = np.asarray(v)
        return v[inv] if v.shape == (n_uniq,) else v

    def candidates() -> dict:  # every candidate's time at the distinct points (read by no planner)
        ct = fresh if fresh is not None else _collective_time(hw, collective, *uniq[:2], **_where(kind, uniq), **kw)
        return ct.candidates

    out = object.__new__(_ScatteredTime)  # time_s scattered now; the other per-point fields when first read
    out.__dict__.update(collective=collective, time_s=back(small["time_s"]), fabric=fabric,
                        candidates=_Scattered(_Later(candidates), back),
                        _small=small, _back=back)
    return out


def _where(kind, uniq) -> dict:
    return {} if kind is None else {kind: uniq[2]}


# Distinct points already timed in this process, per (hardware, collective, placement argument, options): the
# planner times its layouts in several calls (bounds, seed rounds, the rest) whose groups and message sizes
# mostly repeat (issue #13: GPT-3 over three GPU counts, 4,046 point evaluations of 1,174 distinct points).
# Every field of _collective_time is computed point by point, so a point's fields do not depend on the call.
_POINTS = HeldCache(256)
_PER_POINT = ("algorithm", "protocol", "latency_s", "bandwidth_bytes_per_s", "hops", "per_hop_latency_s",
              "bytes_per_rank", "ranks", "ranks_per_node", "nodes")
_POINT_FIELDS = ("time_s", *_PER_POINT)


def _points(hw: Hardware, collective: str, uniq: tuple, codes: tuple, kind,
            kw) -> tuple[dict, str, CollectiveTime | None]:
    """Every per-point field at the distinct points ``uniq`` (S, n, placement), from the table of points
    timed before, the others timed now in one call; the fabric the group crosses; and the fresh CollectiveTime
    when every point was timed now (else None). ``codes`` = (distinct n, each point's index in them, distinct
    placements, each point's index in them), as :func:`_deduplicated` found them. Whatever the result, the same as
    one call on ``uniq``: a call on the missing points that fails is redone on all of them (the error names the
    whole group)."""
    algs = kw["algorithms"]
    key = (collective, kind, kw["link_efficiency"], kw["latency_scale"], None if algs is None else tuple(algs),
           errstate_key())
    ent = _POINTS.get((hw,), key)
    if ent is None or ent[2][0] > 100_000:  # bounded: ~100k points × 12 fields
        ent = _POINTS.put((hw,), key, ({}, {}, [0]))
    groups, table, count = ent
    # the rows of the points timed before: per (n, placement) group (a call holds a few), a sorted array of its
    # sizes S and their rows, searched at once (a serving plan asks 4,096-point grids ~90 times: issue #13)
    S = uniq[0]
    nv, nc, wv, wc = codes
    pair_code = nc * len(wv) + wc
    pairs = distinct(pair_code).tolist()
    idx = np.full(len(S), -1, np.int64)
    for g in pairs:
        sel = np.flatnonzero(pair_code == g) if len(pairs) > 1 else slice(None)
        known = groups.get((nv[g // len(wv)].item(), wv[g % len(wv)].item()))
        if known is not None:
            xs, rs = known
            pos = np.minimum(np.searchsorted(xs, S[sel]), len(xs) - 1)
            idx[sel] = np.where(xs[pos] == S[sel], rs[pos], -1)
    fresh = None
    mi = np.flatnonzero(idx < 0)
    if len(mi):
        part = tuple(u[mi] for u in uniq)
        try:
            ct = _collective_time(hw, collective, *part[:2], **_where(kind, part), **kw)
        except LlmcalcError:  # the whole group's error (a message may name its largest group)
            _collective_time(hw, collective, *uniq[:2], **_where(kind, uniq), **kw)
            raise
        m = len(mi)
        new = {f: np.broadcast_to(getattr(ct, f), (m,)) for f in _POINT_FIELDS}
        new["finite"] = np.any([np.isfinite(np.broadcast_to(v, (m,))) for v in ct.candidates.values()], axis=0)
        n0 = count[0]
        rows = n0 + np.arange(m)
        idx[mi] = rows
        count[0] = n0 + m
        for f, v in new.items():  # columns keep spare rows (doubling): an append does not copy the whole table
            col = table.get(f)
            if col is None or len(col) < n0 + m or col.dtype != v.dtype:
                grown = np.empty(2 * (n0 + m), dtype=v.dtype if col is None else np.result_type(col.dtype, v.dtype))
                if col is not None:
                    grown[:n0] = col[:n0]
                table[f] = col = grown
            col[n0:n0 + m] = v  # rows already handed out (idx < n0) stay where they are
        for g in distinct(pair_code[mi]).tolist():
            pv = (nv[g // len(wv)].item(), wv[g % len(wv)].item())
            at = np.flatnonzero(pair_code[mi] == g)
            xs, rs = groups.get(pv, (np.empty(0), np.empty(0, np.int64)))
            xs, rs = np.concatenate([xs, part[0][at]]), np.concatenate([rs, rows[at]])
            order = np.argsort(xs, kind="stable")
            groups[pv] = (xs[order], rs[order])
        if m == len(S):
            fresh = ct
    small = _Gathered(table, idx)  # a field is gathered when first read
    fabric = _fabric(hw, bool(np.any(small["nodes"] > 1)))
    if not np.any(table["finite"][idx]):
        raise LlmcalcError(f"no algorithm can run a {collective} on {hw.display_name}")
    return small, fabric, fresh


def _fabric(hw: Hardware, multi: bool) -> str:
    """What a group crosses, in words: the scale-up link, and the scale-out one when it spans nodes."""
    up, out = hw.scale_up, hw.scale_out
    if out is not None and multi:
        return f"{up.name.split(' (')[0]} + {out.name.split(' (')[0].split(',')[0]}"
    return up.name.split(" (")[0]


class _Later(Mapping):
    """A mapping computed on first use."""

    def __init__(self, make):
        self._make, self._d = make, None

    def _get(self) -> dict:
        if self._d is None:
            self._d = self._make()
        return self._d

    def __getitem__(self, name):
        return self._get()[name]

    def __iter__(self):
        return iter(self._get())

    def __len__(self):
        return len(self._get())


def _factorize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, each element's index among them) of a float array, by hashing the bits into a table
    when the distinct values are few and collide nowhere (a planner's grid: no sort of 10⁵-10⁶ elements);
    np.unique otherwise. The distinct values come in no particular order. Below 16,384 elements np.unique is as
    fast or faster (4,096: 35 µs against the table's 120-150 µs; the serving planner's grids are that size)."""
    if x.size >= 16384:
        flat = np.ascontiguousarray(x).ravel()
        h = (flat.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - 16)  # Fibonacci hashing
        slot = np.zeros(1 << 16)
        slot[h] = flat
        if np.array_equal(slot[h], flat):  # one value per used slot (NaN never compares equal: falls through)
            used = np.zeros(1 << 16, bool)
            used[h] = True
            return slot[used], (np.cumsum(used) - 1)[h].reshape(x.shape)
    u, c = np.unique(x, return_inverse=True)
    return u, c.reshape(x.shape)




class _Gathered(Mapping):
    """The point table's per-point fields at rows ``idx``, each gathered when first read (the engine reads the time
    and node count of every point; the other fields, two of them object arrays, of none in a planner run). It holds
    the table itself, whose columns only grow (rows keep their place) until the table starts afresh as a new dict,
    not its column arrays of the moment (each call would keep a copy of the whole table alive)."""

    def __init__(self, table: dict, idx):
        self._table, self._idx, self._done = table, idx, {}

    def __getitem__(self, name):
        if name not in _POINT_FIELDS:
            raise KeyError(name)
        if name not in self._done:
            self._done[name] = self._table[name][self._idx]
        return self._done[name]

    def __contains__(self, name):
        return name in _POINT_FIELDS

    def __iter__(self):
        return iter(_POINT_FIELDS)

    def __len__(self):
        return len(_POINT_FIELDS)


class _ScatteredTime(CollectiveTime):
    """A deduplicated sweep's CollectiveTime: ``time_s`` is scattered back to the sweep's shape at once, every other
    per-point field (a gather over 10⁵-10⁶ points each, which a planner never reads) when it is first read."""

    def __getattr__(self, name):  # only for attributes not set yet
        small = self.__dict__.get("_small")
        if small is None or name not in small:
            raise AttributeError(name)
        value = self.__dict__["_back"](small[name])
        if self.__dict__.get("_shared") and isinstance(value, np.ndarray):
            value.flags.writeable = False  # kept by collective_time for later callers: never changed in place
        object.__setattr__(self, name, value)
        return value


class _Scattered(Mapping):
    """The per-candidate times of a deduplicated sweep, scattered back to the sweep's shape when one is read
    (the engine reads none of them in a planner run; each would be a gather over 10⁵-10⁶ points)."""

    def __init__(self, small: dict, back):
        self._small, self._back, self._done = small, back, {}

    def __getitem__(self, name):
        if name not in self._done:
            self._done[name] = self._back(self._small[name])
        return self._done[name]

    def __iter__(self):
        return iter(self._small)

    def __len__(self):
        return len(self._small)


# Scalar calls already timed in this process, by hardware and inputs: a calibration fit or an RL step times the
# same few collectives once per trial (issue #13: one-liners <= 0.3 s); a CollectiveTime is frozen. At most
# 256 × 11 fields × 8,192 float64 (~190 MB) in a long session.
_SCALAR_CALLS = HeldCache(256)
_SCALAR = (int, float, np.float64, np.int64)


def _scalar_key(collective, nbytes, n, ranks_per_node, span, kw):
    """A hashable key when every numeric input is one number or a small array (None: not cached, e.g. a
    planner's 10⁵-point sweep, deduplicated below instead). Scalars enter the model as float64, so the key holds
    them as floats; arrays by dtype, shape and bytes (a serving planner times the same batch grid per replica)."""
    nums = (nbytes, n, ranks_per_node, span, kw["link_efficiency"], kw["latency_scale"])
    parts = []
    for v in nums:
        if v is None or type(v) in _SCALAR:
            parts.append(None if v is None else float(v))
        elif isinstance(v, np.ndarray) and v.dtype.kind in "iuf" and v.size <= 8192:
            parts.append((v.dtype.str, v.shape, v.tobytes()))
        else:
            return None
    try:
        if np.broadcast(*[np.asarray(0.0 if v is None else v) for v in nums[:4]]).size > 8192:
            return None
    except ValueError:  # shapes that do not broadcast: the model names them
        return None
    algs = kw["algorithms"]
    return (collective, *parts, None if algs is None else tuple(algs), errstate_key())


def _collective_time(hw: Hardware, collective: str, nbytes, n, *, ranks_per_node=None, span=None,
                     link_efficiency: float | None = None, latency_scale: float = 1.0,
                     algorithms: tuple[str, ...] | None = None) -> CollectiveTime:
    """:func:`collective_time` evaluated point by point (every element of the broadcast inputs)."""
    if collective not in COLLECTIVES:
        raise LlmcalcError(f"unknown collective {collective!r}; expected one of {', '.join(COLLECTIVES)}")
    eff = link_efficiency_default() if link_efficiency is None else float(link_efficiency)
    if not 0 < eff <= 1:
        raise LlmcalcError(f"link efficiency must lie in (0, 1], got {link_efficiency!r}")
    if not (np.isfinite(latency_scale) and latency_scale >= 0):
        raise LlmcalcError(f"--latency-scale expects a finite number >= 0, got {latency_scale!r}")
    S = np.asarray(nbytes, dtype=float)
    n = np.asarray(n, dtype=float)
    if np.any(n < 1) or np.any(S < 0):
        raise LlmcalcError("a collective needs at least 1 rank and a non-negative message size")
    if ranks_per_node is None:
        k, m = placement(hw, n, span)
    else:
        k = np.minimum(np.asarray(ranks_per_node, dtype=float), n)
        m = np.ceil(n / k)
    up, out = hw.scale_up, hw.scale_out
    if np.any(m > 1) and out is None:
        raise network_needed(hw, f"a {collective} group of {int(np.max(n))}")
    multi = m > 1
    # Bandwidths in GB/s (tuning.cc units). Scale-up: what a group of k gets on this link's topology.
    b_up = np.asarray(up.ring_bw_per_direction(np.where(multi, k, n)), dtype=float) * eff / 1e9
    b_nic = (out.per_direction_bytes_per_s * eff / 1e9) if out is not None else np.inf
    # NCCL's k rings leave a node through its k NICs: min(scale-up, k·NIC) per direction per rank
    bus = np.where(multi, np.minimum(b_up, k * b_nic), b_up)
    arch = _arch(hw)
    idx = np.where(m <= 1, 0, np.where(m <= 2, 1, 2)).astype(int)
    ll_max = np.where(m <= 1, LL_MAX_BW_ONE_NODE[arch], np.where(m <= 2, *LL_MAX_BW_NODES))
    ls = float(latency_scale)
    cands: dict[str, tuple] = {}  # name -> (time_us, lat_us, algbw_GBps, hops, per_hop_us)
    S_safe = np.maximum(S, 0.0)

    def add(name, lat, algbw, hops, per_hop, prescaled=False):
        lat = np.asarray(lat, dtype=float) * (1.0 if prescaled else ls)
        algbw = np.asarray(algbw, dtype=float)
        t = lat + np.where(algbw > 0, S_safe / (1000.0 * np.where(algbw > 0, algbw, 1)), np.inf)
        cands[name] = (t, lat, algbw, np.asarray(hops, dtype=float), np.asarray(per_hop, dtype=float))

    allowed = set(algorithms or ("ring", "tree", "nvls", "hierarchical", "p2p"))
    kind = up.fabric_kind()
    if kind not in ("nvlink", "pcie", "xgmi", None):  # TPU ICI and other non-NCCL fabrics
        _torus_or_generic(hw, collective, S_safe, n, k, m, b_up, b_nic, add)
    elif collective in ("all-to-all", "send/recv"):
        _p2p(hw, collective, n, k, m, b_up, b_nic, add)
    else:
        nsteps = {"all-reduce": 2 * (n - 1), "all-gather": n - 1, "reduce-scatter": n - 1}.get(collective, n)
        n_inter = np.where(multi, np.where(collective == "all-reduce", 2 * (m - 1), m - 1), 0)
        for p in PROTOCOLS:
            if "ring" not in allowed:
                break
            bw = {"simple": bus, "ll128": np.minimum(0.92 * bus, N_CHANNELS * PER_CH_RING_LL128[arch]),
                  "ll": np.minimum(ll_max, 0.5 * bus)}[p]
            alg_bw = bw * n / np.maximum(nsteps, 1) if collective != "broadcast" else bw
            intra = _hop(up, "ring", p)
            net_oh = NET_OVERHEAD_US * (3 if p == "simple" else 1)
            intra_l = np.where(multi, max(intra, net_oh), intra)
            inter_l = np.where(k <= 1, _hop(out, "tree", p), _hop(out, "ring", p)) if out is not None else 0.0
            if collective == "broadcast":  # tuning.cc: one hop of latency when channels are the same
                ph = np.where(multi, inter_l, intra)
                lat, hops = BASE_LATENCY_US[("ring", p)] + ph, 1
            else:
                lat = BASE_LATENCY_US[("ring", p)] + (nsteps - n_inter) * intra_l + n_inter * inter_l
                if p == "simple" and collective == "all-reduce":  # ring plateau effect across nodes
                    lat = np.where(multi & (S_safe / (N_CHANNELS * n) >= 64), lat * RING_PLATEAU, lat)
                hops, ph = nsteps, np.where(multi, (lat - BASE_LATENCY_US[("ring", p)]) / np.maximum(nsteps, 1),
                                            intra)
            add(f"ring/{PROTO_NAME[p]}", lat, alg_bw, hops, ph)
        if collective == "all-reduce" and "tree" in allowed:
            for p in PROTOCOLS:
                cap = N_CHANNELS * np.take(PER_CH_TREE[arch], idx)
                bw = np.minimum(0.92 * bus, cap)
                if p == "ll":
                    bw = np.minimum(bw / 3.8, ll_max)
                elif p == "ll128":
                    bw = np.minimum(bw * np.where(multi, 120 / 128, 7 / 9),
                                    N_CHANNELS * np.take(PER_CH_TREE_LL128[arch], idx))
                log_size = _log2i(np.maximum(S_safe, 1) / 64).astype(int)
                corr = np.where((S_safe >= 64) & (log_size < 23),
                                np.take(TREE_CORRECTION[p], np.clip(log_size, 0, 23)), 1.0)
                intra = _hop(up, "tree", p)
                inter = _hop(out, "tree", p) if out is not None else 0.0
                lat = BASE_LATENCY_US[("tree", p)] + 2 * ((k - 1) * intra + _log2i(m) * inter)
                add(f"tree/{PROTO_NAME[p]}", lat, 0.5 * bw * corr, 2 * ((k - 1) + _log2i(m)),
                    np.where(multi, inter, intra))
        if up.nvls and collective in ("all-reduce", "all-gather", "reduce-scatter") and "nvls" in allowed:
            ch = np.minimum(k, N_CHANNELS)
            nv = NVLS_EFFICIENCY.get(arch, 0.0) * b_up * (ch - 1) / np.maximum(ch, 1)
            # all-gather / reduce-scatter: the (n−1)/n of S each rank receives/sends at the NVLS rate
            alg = nv if collective == "all-reduce" else nv * n / np.maximum(n - 1, 1)
            ok = (~multi) & (k >= 2)  # multi-node NVLS needs CollNet (tuning.cc disables it otherwise)
            add("nvls/Simple", _hop(up, "nvls", "simple"), np.where(ok, alg, 0.0), 1, _hop(up, "nvls", "simple"))
        if up.nvls and collective == "all-reduce" and np.any(multi) and out is not None and "nvls" in allowed:
            # NVLS tree (tuning.cc NVLS_TREE, enabled across nodes without CollNet): in-switch reduction inside
            # each node, pipelined with a tree across the nodes on all k NICs at once. Latency: one NVLS hop +
            # 2·⌊log2 m⌋ network hops; bandwidth: the slower of the NVLS rate and the k NICs' share,
            # k·NIC·m/(2(m−1)), capped per channel by tuning.cc's perChMaxNVLSTreeBws (Hopper 57.7 / 45.5 GB/s).
            ch = np.minimum(k, N_CHANNELS)
            nv = NVLS_EFFICIENCY.get(arch, 0.0) * b_up * (ch - 1) / np.maximum(ch, 1)
            inter = k * b_nic * m / np.maximum(2 * (m - 1), 1)
            cap = N_CHANNELS * np.where(m <= 2, *NVLS_TREE_CAP.get(arch, (np.inf, np.inf)))
            alg = np.minimum(np.minimum(nv, inter), cap * n / np.maximum(2 * (n - 1), 1))
            net = _hop(out, "nvls_tree", "simple")
            lat = _hop(up, "nvls", "simple") + 2 * _log2i(m) * net
            add("nvls_tree/Simple", lat, np.where(multi & (k >= 2), alg, 0.0), 1 + 2 * _log2i(m), net)
        if collective == "all-reduce" and np.any(multi) and "hierarchical" in allowed:
            _hierarchical(hw, S_safe, n, k, m, eff, ls, add)
    names = list(cands)
    point = np.broadcast(S, n, k).shape
    if point == ():  # one point: every candidate's entries are 0-d already
        times = np.stack([cands[c][0] for c in names])
    else:  # each row broadcast on assignment (a broadcast_to per candidate cost more than the copy)
        times = np.empty((len(names), *point))
        for j, c in enumerate(names):
            times[j] = cands[c][0]
    best = np.argmin(np.where(np.isfinite(times), times, np.inf), axis=0)

    if times.ndim == 1:  # one point: the winner's entries as np.choose gives them (float64 scalars), without
        won = cands[names[best]]  # broadcasting every candidate's five entries first (issue #13: most of the call)

        def pick(i):
            return np.float64(won[i])
    else:
        def pick(i):  # np.choose broadcasts each candidate's entry itself (a broadcast_to each: half a small call)
            return np.choose(best, [cands[c][i] for c in names])

    t_us, lat_us, bw, hops, ph = (pick(i) for i in range(5))
    one = np.broadcast_to(n, t_us.shape) <= 1  # a group of one rank communicates nothing
    t_us, lat_us = np.where(one, 0.0, t_us), np.where(one, 0.0, lat_us)
    # index the few candidate names, not the (possibly million-element) choice array: same result, no per-element
    # Python call (np.vectorize of str.split took most of a planner sweep's time)
    alg = np.asarray([c.split("/")[0] for c in names], dtype=object)[best]
    proto = np.asarray([c.split("/")[1] for c in names], dtype=object)[best]
    factor, _ = FACTORS[collective]
    nn = np.broadcast_to(n, times.shape[1:])
    per_rank = eval(_factor_code(factor), {}, {"n": nn}) * S  # noqa: S307 - our own factor table
    scalar = times.shape[1:] == ()

    def out_(v, obj=False):
        v = np.asarray(v)
        if scalar:
            return v.item() if not obj else str(v.item())
        return v

    fabric = _fabric(hw, out is not None and bool(np.any(multi)))
    if not scalar and not np.any(np.isfinite(times)):
        raise LlmcalcError(f"no algorithm can run a {collective} on {hw.display_name}")
    return CollectiveTime(
        collective, out_(t_us * 1e-6), out_(alg, True), out_(proto, True), out_(lat_us * 1e-6),
        out_(np.where(bw > 0, bw * 1e9, np.inf)), out_(hops), out_(ph * 1e-6),
        out_(np.where(nn > 1, per_rank, 0.0)), out_(nn), out_(np.broadcast_to(k, nn.shape)),
        out_(np.broadcast_to(m, nn.shape)), fabric,
        {c: out_((cands[c][0] if scalar else times[j]) * 1e-6) for j, c in enumerate(names)})


@cache
def _factor_code(factor: str):
    """A FACTORS entry compiled once (eval of the text compiled it on every call: a third of a scalar call)."""
    return compile(factor, f"<factor {factor}>", "eval")


def _p2p(hw, collective, n, k, m, b_up, b_nic, add):
    """All-to-all and send/recv: NCCL point-to-point, priced as one ring Simple hop of latency (tuning.cc has
    no p2p row; assumption) plus the bytes on each link at once."""
    up, out = hw.scale_up, hw.scale_out
    multi = m > 1
    base = BASE_LATENCY_US[("ring", "simple")]
    hop = np.where(multi, _hop(out, "ring", "simple") if out is not None else 0.0, _hop(up, "ring", "simple"))
    if collective == "send/recv":
        bw = np.where(multi, b_nic, b_up)
        add("p2p/Simple", base + hop, bw, 1, hop)
        return
    # all-to-all over n ranks, k per node: (k−1)/n of S to same-node peers on the scale-up link, (n−k)/n over
    # the rank's own NIC, concurrently; algorithm bandwidth S / max(intra time, inter time)
    t_intra = (k - 1) / np.maximum(n, 1) / b_up
    t_inter = np.where(multi, (n - k) / np.maximum(n, 1) / b_nic, 0.0)
    slow = np.maximum(t_intra, t_inter)
    add("p2p/Simple", base + hop, np.where(slow > 0, 1.0 / np.where(slow > 0, slow, 1), np.inf), 1, hop)


def _hierarchical(hw, S, n, k, m, eff, ls, add):
    """Reduce-scatter inside each node, all-reduce of S/k across the m nodes on every NIC at once (one rank
    per node per NIC), all-gather inside the node (the two-level scheme of NCCL's tree / Horovod).
    The three are evaluated point by point at once (_collective_time): the caller's points are new ones already
    (collective_time caches and deduplicates around it), so its caches would only add their cost (issue #13)."""
    rs = _collective_time(hw, "reduce-scatter", S, k, ranks_per_node=k, link_efficiency=eff, latency_scale=ls,
                          algorithms=("ring", "nvls"))
    ar = _collective_time(hw, "all-reduce", S / np.maximum(k, 1), m, ranks_per_node=1, link_efficiency=eff,
                          latency_scale=ls, algorithms=("ring", "tree"))
    ag = _collective_time(hw, "all-gather", S, k, ranks_per_node=k, link_efficiency=eff, latency_scale=ls,
                          algorithms=("ring", "nvls"))
    lat = (np.asarray(rs.latency_s) + np.asarray(ar.latency_s) + np.asarray(ag.latency_s)) * 1e6
    t = (np.asarray(rs.time_s) + np.asarray(ar.time_s) + np.asarray(ag.time_s)) * 1e6
    data = t - lat
    algbw = np.where(data > 0, S / (1000.0 * np.where(data > 0, data, 1)), np.inf)
    ok = (m > 1) & (k > 1)
    add("hierarchical/Simple", np.where(ok, lat, np.inf), np.where(ok, algbw, 0), 2 * (k - 1) + 2 * (m - 1), 0.0,
        prescaled=True)


def _torus_or_generic(hw, collective, S, n, k, m, b_up, b_nic, add):
    """A non-NCCL fabric (TPU ICI): one ring algorithm; latency per hop along each torus axis spanned."""
    up, out = hw.scale_up, hw.scale_out
    hop = _hop(up, "ring", "simple")
    multi = m > 1
    if up.topology == "torus" and up.axis_size:
        a = float(up.axis_size)
        # axes filled one after another: hops per pass = Σ over axes (len − 1)
        full = np.floor(np.log(np.maximum(k, 1)) / np.log(a) + 1e-9)
        rest = np.maximum(k / a**full, 1)
        per_pass = full * (a - 1) + (rest - 1)
    else:
        per_pass = k - 1
    passes = {"all-reduce": 2, "all-gather": 1, "reduce-scatter": 1}.get(collective, 1)
    steps = {"all-reduce": 2 * (n - 1), "all-gather": n - 1, "reduce-scatter": n - 1}.get(collective, 1)
    bus = np.where(multi, np.minimum(b_up, k * b_nic), b_up)
    net_hop = _hop(out, "ring", "simple") if out is not None else 0.0
    if collective in ("all-to-all", "send/recv"):
        t_intra = (k - 1) / np.maximum(n, 1) / b_up
        t_inter = np.where(multi, (n - k) / np.maximum(n, 1) / b_nic, 0.0)
        slow = np.maximum(t_intra, t_inter) if collective == "all-to-all" else 1 / np.where(multi, b_nic, b_up)
        lat = np.where(multi, net_hop, hop * np.where(collective == "all-to-all", per_pass, 1))
        add("ring/Simple", lat, np.where(slow > 0, 1 / np.where(slow > 0, slow, 1), np.inf),
            np.where(collective == "all-to-all", per_pass, 1), np.where(multi, net_hop, hop))
        return
    hops = passes * per_pass + np.where(multi, passes * (m - 1), 0)
    lat = passes * per_pass * hop + np.where(multi, passes * (m - 1) * net_hop, 0)
    alg = bus * n / np.maximum(steps, 1) if collective != "broadcast" else bus
    add("ring/Simple", lat, alg, hops, hop)
