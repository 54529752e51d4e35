"""Batch and context sweeps: throughput and latency as a table ready for a chart, in one vectorised call.

The knee of a batch sweep is defined as the smallest swept batch at which either
(a) a decode step (at the mid-output context) is compute-bound: past it, more batch adds latency
    as fast as throughput (roofline ridge, Williams et al. 2009); or
(b) the next swept batch gives less than 10 % more decode throughput per GPU: diminishing returns.
The ``latency_result`` key holds the vectorised Result behind the columns (``--explain``).
Rows whose KV at the final context does not fit beside the weights (10 % of memory reserved, as in
``fit`` and ``serve``) are kept but marked ``fits`` False, so a chart can grey them out. The knee is
searched over fitting rows only, and a fitting row is never compared with a non-fitting one; when no
fitting row qualifies but larger swept batches do not fit, the knee is the largest fitting batch with
the reason "memory cap at N".
"""

from __future__ import annotations

import numpy as np

from ..core.checks import check_count, check_scalar
from .kv import fit
from .latency import Deployment, latency, step

GAIN_THRESHOLD = 0.10  # "extra batch gives < 10 % more throughput"


def _table(r, dep: Deployment, x_key: str, x, fits) -> dict:
    d = r.data
    decode_tps = np.asarray(d["batch"], dtype=float) / np.asarray(d["tpot_mean_s"]) / dep.tp
    cols = {x_key: np.asarray(x).tolist(),
            "ttft_s": np.broadcast_to(d["ttft_s"], np.shape(x)).tolist(),
            "tpot_mean_s": np.asarray(d["tpot_mean_s"]).tolist(),
            "e2e_s": np.asarray(d["e2e_s"]).tolist(),
            "tokens_per_s_per_request": np.asarray(d["tokens_per_s_per_request"]).tolist(),
            "tokens_per_s_per_gpu": np.asarray(d["tokens_per_s_per_gpu"]).tolist(),
            "decode_tokens_per_s_per_gpu": decode_tps.tolist(),
            "fits": np.broadcast_to(fits, np.shape(x)).tolist()}
    rows = [dict(zip(cols, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]
    return {"columns": cols, "rows": rows}


def batch_sweep(dep: Deployment, batches, prompt: int = 1024, output: int = 256, reserve: float = 0.1) -> dict:
    """Throughput and latency against batch size; ``knee`` = {batch, reason} (see module docstring)."""
    check_count(np.atleast_1d(batches), "--batch")
    for opt, v in (("--prompt", prompt), ("--output", output), ("--reserve", reserve)):
        check_scalar(opt, v, "one value in a batch sweep")
    b = np.asarray(sorted(set(int(x) for x in np.atleast_1d(batches))))
    r = latency(dep, b, prompt, output, reserve)
    cap = fit(dep.model, dep.hw, dep.weights, dep.group_size, dep.kv_dtype, dep.tp, reserve=reserve,
              context=prompt + output).data["max_batch"]
    fits = b <= cap
    out = _table(r, dep, "batch", b, fits)
    out["latency_result"] = r  # the vectorised Result behind every column: its figures explain themselves
    bound = step(dep, b, 1, prompt + output // 2, prefill=False)["compute_bound"]
    out["columns"]["compute_bound"] = bound.tolist()
    for row, cb in zip(out["rows"], bound.tolist(), strict=True):
        row["compute_bound"] = cb
    tps = np.asarray(out["columns"]["decode_tokens_per_s_per_gpu"])
    # a gain is only meaningful towards a batch that fits: rows are sorted, so fitting rows come first
    gain = np.append(np.where(fits[1:], tps[1:] / tps[:-1] - 1, np.inf), np.inf)
    knee, reason = None, "none in the swept range"
    for i in np.flatnonzero(fits):
        if bound[i]:
            knee, reason = int(b[i]), "decode turns compute-bound"
            break
        if gain[i] < GAIN_THRESHOLD:
            knee, reason = int(b[i]), f"next batch adds {gain[i]:.0%} < {GAIN_THRESHOLD:.0%} throughput"
            break
    else:
        if not fits.any():
            reason = f"no swept batch fits (memory cap at {int(cap)} sequences)"
        elif not fits.all():
            knee = int(b[fits][-1])
            reason = f"memory cap at {int(cap)} sequences"
    out["knee"] = {"batch": knee, "reason": reason}
    out["max_batch_that_fits"] = int(cap)
    out["assumptions"] = list(r.assumptions) + [
        "knee: smallest fitting batch where decode is compute-bound or the next batch adds < 10% throughput; "
        "else the memory cap when larger swept batches do not fit"]
    return out


def context_sweep(dep: Deployment, contexts, batch: int = 1, output: int = 256, reserve: float = 0.1) -> dict:
    """Throughput and latency against prompt length (context) at a fixed batch."""
    check_count(np.atleast_1d(contexts), "--context")
    for opt, v in (("--batch", batch), ("--output", output), ("--reserve", reserve)):
        check_scalar(opt, v, "one value in a context sweep")
    c = np.asarray(sorted(set(int(x) for x in np.atleast_1d(contexts))))
    r = latency(dep, batch, c, output, reserve)
    f = fit(dep.model, dep.hw, dep.weights, dep.group_size, dep.kv_dtype, dep.tp, reserve=reserve, context=c + output)
    out = _table(r, dep, "context", c, np.asarray(f.data["max_batch"]) >= batch)
    out["latency_result"] = r
    out["assumptions"] = list(r.assumptions)
    return out
