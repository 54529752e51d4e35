"""Inference and serving commands: kv, fit, infer, sweep, serve, speculative, batching."""

from __future__ import annotations

import json

import typer

from ._app import app
from ._common import (
    EXPLAIN_OPT,
    HARDWARE_OPT,
    JSON_OPT,
    MODEL_ARG,
    emit,
    profile_inference,
    quantity_option,
    table,
    user_errors,
    with_profile,
)

KV_DTYPE_OPT = typer.Option("bf16", "--kv-dtype", help="KV-cache storage: bf16, fp8, int8 or int4.")
WEIGHTS_OPT = typer.Option("bf16", "--weights", help="bf16, fp8, int8, int4, or bits per weight (e.g. 4.85).")
GROUP_OPT = typer.Option(None, "--group-size", help="Weights per quantisation group (fp16 scale + zero each).")
TP_OPT = typer.Option(1, "--tp", help="Tensor-parallel degree.")
PP_OPT = typer.Option(1, "--pp", help="Pipeline-parallel degree.")
ACT_OPT = typer.Option("bf16", "--activations", help="bf16, or fp8/int8 (only with the same --weights).")
RESERVE_OPT = typer.Option(0.1, "--reserve", help="Fraction of memory kept free (activations, fragmentation).")
EFF_FLOPS = typer.Option(None, "--eff-flops", help="Fraction of peak FLOP/s reached (default 0.8, measured MAMF).")
EFF_MEM = typer.Option(None, "--eff-mem", help="Fraction of HBM bandwidth reached (default 0.85, a judgement).")
EFF_LINK = typer.Option(None, "--eff-link", help="Fraction of link bandwidth reached (default 0.8, measured).")
ROOFLINE_OPT = typer.Option(False, "--roofline", help="Pure roofline: every efficiency = 1 and every latency 0.")
LATENCY_SCALE_OPT = typer.Option(1.0, "--latency-scale",
                                 help="Multiply every latency term (collective hops, kernel launches); 0 = none.")
ALLREDUCE_OPT = typer.Option("nccl", "--allreduce", help="TP all-reduce: nccl (NCCL's tuning model) or custom "
                             "(vLLM/TensorRT-LLM one-shot kernel on NVLink where faster).")
TP_OVERLAP_OPT = typer.Option(False, "--tp-overlap", help="Hide the TP all-reduce behind compute (engine option).")
CUDA_GRAPHS_OPT = typer.Option(True, "--cuda-graphs/--no-cuda-graphs",
                               help="Decode replayed as a CUDA graph (~1 µs per kernel, judgement) or launched "
                               "eagerly (8 µs per kernel, calibrated on TensorRT-LLM v0.5).")


def _eff(flops, mem, link, roofline, hardware=None):
    """--eff-* / --roofline, or the --profile's inference block for ``hardware`` (llmcalc.cli._common)."""
    return profile_inference(hardware, flops, mem, link, roofline)


def _deployment(model, hardware, tp, weights, group_size, kv_dtype, activations, eff, **latency_opts):
    from ..core.catalogue import load_hardware, load_model
    from ..inference.latency import Deployment

    return Deployment(load_model(model), load_hardware(hardware), tp, weights, group_size, kv_dtype.lower(),
                      activations.lower(), eff, **latency_opts)


def _seconds(text: str, option: str) -> float:
    """A latency target: a time with its unit ('50ms', '2s'); a bare number is an error (core/units.parse_duration)."""
    from ..core.units import parse_duration

    return parse_duration(text, option)


MAX_SWEEP_POINTS = 4096  # a table or chart of more rows says nothing more; bounds time and memory (issue #13)


def parse_int_list(text: str, option: str, limit: int = MAX_SWEEP_POINTS) -> list[int]:
    """'1,2,4,...,512' (geometric or arithmetic continuation) or '1,8,64' -> list of at most ``limit`` ints.

    The length of a continuation is worked out before it is generated, so '1,2,...,1e15' is a message, not a hang.
    """
    import math

    from ..core.checks import MAX_COUNT
    from ..core.errors import LlmcalcError

    def whole(p: str) -> int:
        from ..core.units import parse_whole

        x = parse_whole(p)  # '32k' as every count option reads it
        if abs(x) > MAX_COUNT:
            raise ValueError
        return x

    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if "..." in parts:
            i = parts.index("...")
            head = [whole(p) for p in parts[:i]]
            if len(head) < 2 or len(parts) != i + 2:
                raise ValueError
            end = whole(parts[i + 1])
            out, a, b = list(head), head[-2], head[-1]
            geometric = a > 0 and b % a == 0 and b // a > 1 and (len(head) < 3 or head[-3] * (b // a) == a)
            if geometric:
                more = math.floor(math.log(end / b, b // a) + 1e-9) if end > b else 0
            else:
                more = (end - b) // (b - a) if b > a and end > b else 0
            if len(out) + more + 1 > limit:
                raise LlmcalcError(f"{option} {text!r} spans {len(out) + more:,} values; at most {limit:,} points "
                                   "per sweep (use a geometric series such as 1,2,4,...,65536)")
            while True:
                nxt = out[-1] * (b // a) if geometric else out[-1] + (b - a)
                if nxt > end or nxt <= out[-1]:
                    break
                out.append(nxt)
            return out if out[-1] == end else out + [end]
        values = [whole(p) for p in parts]
    except (ValueError, IndexError, OverflowError):  # UnitError is a ValueError
        raise LlmcalcError(f"{option} expects whole numbers like 1,2,4,...,512 or 1024,4k, got {text!r}") from None
    if len(values) > limit:
        raise LlmcalcError(f"{option} lists {len(values):,} values; at most {limit:,} points per sweep")
    if not values:
        raise LlmcalcError(f"{option} expects whole numbers like 1,2,4,...,512 or 1024,4096, got {text!r}")
    return values


@app.command()
@user_errors
def kv(model: str = MODEL_ARG, context: int = typer.Option(..., "--context", help="Tokens per sequence."),
       batch: int = typer.Option(1, "--batch", help="Sequences."), kv_dtype: str = KV_DTYPE_OPT,
       tp: int = TP_OPT, pp: int = PP_OPT, as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """KV-cache bytes per token, per sequence and per GPU (MHA/GQA/MQA, MLA, sliding windows)."""
    from ..core.catalogue import load_model
    from ..inference.kv import kv_cache

    emit(kv_cache(load_model(model), context, batch, kv_dtype.lower(), tp, pp), as_json, explain)


@app.command()
@user_errors
def fit(model: str = MODEL_ARG, hardware: str = HARDWARE_OPT, weights: str = WEIGHTS_OPT,
        group_size: int | None = GROUP_OPT, kv_dtype: str = KV_DTYPE_OPT, tp: int = TP_OPT, pp: int = PP_OPT,
        ep: int = typer.Option(1, "--ep", help="Expert-parallel degree (MoE: routed experts spread over ep GPUs)."),
        reserve: float = RESERVE_OPT, context: int | None = typer.Option(None, "--context",
                                                                          help="Default: the model's maximum."),
        batch: int = typer.Option(1, "--batch", help="Batch for the longest-context figure."),
        as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """Do the weights fit, and the largest batch x context of KV beside them."""
    from ..core.catalogue import load_hardware, load_model
    from ..inference.kv import fit as fit_

    r = fit_(load_model(model), load_hardware(hardware), weights, group_size, kv_dtype.lower(), tp, pp, reserve,
             context, batch, ep=ep)
    emit(r, as_json, explain)
    if not (as_json or explain):
        rows = [(f"{c:,}", f"{b:,}") for c, b in r.data["max_batch_by_context"].items()]
        if rows:
            typer.echo(table(rows, ("context", "max batch")))


@app.command()
@user_errors
@with_profile
def infer(model: str = MODEL_ARG, hardware: str = HARDWARE_OPT, tp: int = TP_OPT,
          batch: int = typer.Option(1, "--batch"), prompt: int = typer.Option(1024, "--prompt"),
          output: int = typer.Option(256, "--output"), weights: str = WEIGHTS_OPT,
          group_size: int | None = GROUP_OPT, kv_dtype: str = KV_DTYPE_OPT, activations: str = ACT_OPT,
          eff_flops: float | None = EFF_FLOPS, eff_mem: float | None = EFF_MEM, eff_link: float | None = EFF_LINK,
          roofline: bool = ROOFLINE_OPT, latency_scale: float = LATENCY_SCALE_OPT,
          allreduce: str = ALLREDUCE_OPT, tp_overlap: bool = TP_OVERLAP_OPT, cuda_graphs: bool = CUDA_GRAPHS_OPT,
          as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """Latency: TTFT, TPOT as the context grows, end-to-end, tokens/s, and the bound of each step."""
    from ..inference.latency import latency

    dep = _deployment(model, hardware, tp, weights, group_size, kv_dtype, activations,
                      _eff(eff_flops, eff_mem, eff_link, roofline, hardware), latency_scale=latency_scale,
                      allreduce=allreduce.lower(), tp_overlap=tp_overlap, cuda_graphs=cuda_graphs)
    r = latency(dep, batch, prompt, output)
    if as_json or explain:
        emit(r, as_json, explain)
        return
    keep = [f for f in r.figures if "/" not in f.key]
    typer.echo(r.title)
    typer.echo(table([(f.name, f.text()) for f in keep]))
    knee = r.data["compute_bound_batch"]
    typer.echo(f"  with KV reads at the mid-output context, decode turns compute-bound at batch {knee:,}" if knee
               else "  with KV reads included, decode stays memory-bound at every batch (KV grows with the batch)")
    for a in r.assumptions:
        typer.echo(f"  * {a}")


SWEEP_BATCHES = "1,2,4,...,512"


def _rpm(rpm: float | None, users) -> float:
    """--requests-per-user-per-min scales --users only: beside --qps or --concurrent it was ignored silently."""
    if rpm is not None and users is None:
        from ..core.errors import LlmcalcError

        raise LlmcalcError(f"--requests-per-user-per-min {rpm:g} applies only to --users (it turns users into a "
                           "request rate); give --users, or drop it")
    return 1.0 if rpm is None else rpm


@app.command()
@user_errors
@with_profile
def sweep(model: str = MODEL_ARG, hardware: str = HARDWARE_OPT, tp: int = TP_OPT,
          batch: str = typer.Option(SWEEP_BATCHES, "--batch", help="Batches, e.g. 1,2,4,...,512; with --context "
                                    "one batch (default 1)."),
          context: str | None = typer.Option(None, "--context", help="Sweep prompt lengths instead, e.g. "
                                             "1024,4096,16384 (at one --batch)."),
          prompt: int | None = typer.Option(None, "--prompt", show_default=False,
                                            help="Prompt tokens per request  [default: 1024]; --context replaces it."),
          output: int = typer.Option(256, "--output"),
          weights: str = WEIGHTS_OPT, group_size: int | None = GROUP_OPT, kv_dtype: str = KV_DTYPE_OPT,
          activations: str = ACT_OPT, eff_flops: float | None = EFF_FLOPS, eff_mem: float | None = EFF_MEM,
          eff_link: float | None = EFF_LINK, roofline: bool = ROOFLINE_OPT, as_json: bool = JSON_OPT,
          explain: bool = EXPLAIN_OPT) -> None:
    """Throughput and latency against batch size (or context), with the knee marked."""
    from ..core.units import fmt
    from ..inference.sweeps import batch_sweep, context_sweep

    dep = _deployment(model, hardware, tp, weights, group_size, kv_dtype, activations,
                      _eff(eff_flops, eff_mem, eff_link, roofline, hardware))
    batches = parse_int_list(batch, "--batch")
    if context:  # silently dropped before: the prompt (the swept lengths replace it), batches after the first
        from ..core.errors import LlmcalcError

        if prompt is not None:
            raise LlmcalcError(f"--context sweeps the prompt length, so --prompt {prompt} would be ignored; give one "
                               "of the two")
        if batch != SWEEP_BATCHES and len(batches) > 1:
            raise LlmcalcError(f"--context sweeps at one batch, got --batch {batch}; give one batch, e.g. --batch "
                               f"{batches[0]}")
        s = context_sweep(dep, parse_int_list(context, "--context"), batches[0], output)
        x = "context"
    else:
        s = batch_sweep(dep, batches, 1024 if prompt is None else prompt, output)
        x = "batch"
    if as_json:
        typer.echo(json.dumps({k: v for k, v in s.items() if k not in ("rows", "latency_result")}, indent=2))
        return
    if explain:  # every column is a figure of one vectorised latency Result; the knee rule follows
        typer.echo(s["latency_result"].explain())
        typer.echo("\n".join(f"  * {a}" for a in s["assumptions"][-1:]))
        return
    knee = s.get("knee", {}).get("batch")
    rows = [(f"{r[x]:,}" + (" <- knee" if r[x] == knee else ""), fmt(r["ttft_s"], "s"), fmt(r["tpot_mean_s"], "s"),
             f"{r['tokens_per_s_per_request']:,.1f}", f"{r['decode_tokens_per_s_per_gpu']:,.0f}",
             "yes" if r["fits"] else "NO") for r in s["rows"]]
    typer.echo(table(rows, (x, "TTFT", "TPOT mean", "tok/s/request", "decode tok/s/GPU", "fits")))
    if "knee" in s:
        where = f"batch {knee} ({s['knee']['reason']})" if knee else "none in the swept range"
        typer.echo(f"  knee: {where}; max batch that fits: {s['max_batch_that_fits']}")
    for a in s["assumptions"]:
        typer.echo(f"  * {a}")


@app.command()
@user_errors
@with_profile
def serve(model: str = MODEL_ARG, hardware: str = HARDWARE_OPT,
          users: str | None = typer.Option(None, "--users", help="Users, each sending --requests-per-user-per-min "
                                           "(a request rate, not simultaneous streams), e.g. 10000 or 10k."),
          qps: float | None = typer.Option(None, "--qps", help="Requests per second (instead of --users)."),
          concurrent: str | None = typer.Option(None, "--concurrent", help="N simultaneous streams, each always "
                                                "with one request in flight (instead of --users/--qps)."),
          rpm: float | None = typer.Option(None, "--requests-per-user-per-min", show_default=False,
                                           help="Requests each user sends per minute (with --users)  [default: 1.0]."),
          prompt: int = typer.Option(1024, "--prompt"), output: int = typer.Option(256, "--output"),
          ttft: str = typer.Option("2s", "--ttft", help="TTFT target, e.g. 2s."),
          tpot: str = typer.Option("50ms", "--tpot", help="TPOT target, e.g. 50ms."),
          price: str | None = typer.Option(None, "--price", help="USD per GPU-hour (default: the catalogue's)."),
          weights: str = WEIGHTS_OPT, group_size: int | None = GROUP_OPT, kv_dtype: str = KV_DTYPE_OPT,
          activations: str = ACT_OPT, reserve: float = RESERVE_OPT, eff_flops: float | None = EFF_FLOPS,
          eff_mem: float | None = EFF_MEM, eff_link: float | None = EFF_LINK, roofline: bool = ROOFLINE_OPT,
          as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """How many GPUs serve a load within TTFT/TPOT targets, and the $ per million input and output tokens."""
    from ..core.catalogue import load_hardware, load_model
    from ..core.errors import LlmcalcError
    from ..core.units import parse_count
    from ..inference.serving import serve as serve_

    price_v = quantity_option(price, "USD_PER_HOUR", "--price", "2.49 or '$2.49/h'", 3600.0)  # parse gives USD/s
    users_v = conc_v = None
    if users is not None:
        try:
            users_v = parse_count(users)
        except LlmcalcError as e:
            raise LlmcalcError(f"--users: {e}") from None
    if concurrent is not None:
        try:
            conc_v = parse_count(concurrent)
        except LlmcalcError as e:
            raise LlmcalcError(f"--concurrent: {e}") from None
    r = serve_(load_model(model), load_hardware(hardware), prompt=prompt, output=output,
               ttft_s=_seconds(ttft, "--ttft"), tpot_s=_seconds(tpot, "--tpot"),
               users=users_v, requests_per_user_per_min=_rpm(rpm, users), qps=qps,
               weights=weights, group_size=group_size, kv_dtype=kv_dtype.lower(), activations=activations.lower(),
               eff=_eff(eff_flops, eff_mem, eff_link, roofline, hardware), price_usd_per_hour=price_v, reserve=reserve,
               concurrent=conc_v)
    if as_json or explain:
        emit(r, as_json, explain)
        return
    typer.echo(r.title)
    whole = ("GPU", "replica", "seq")  # counts print whole; a steady-state concurrency such as 2.4 keeps its decimals
    typer.echo(table([(f.name, f"{int(f.value):,} {f.unit}" if f.unit in whole and float(f.value).is_integer()
                       else f.text()) for f in r.figures]))
    for a in r.assumptions:
        typer.echo(f"  * {a}")


@app.command()
@user_errors
def speculative(alpha: float = typer.Option(..., "--alpha", help="Acceptance rate α in [0, 1]."),
                gamma: int = typer.Option(4, "--gamma", help="Draft tokens per target step γ."),
                cost_ratio: float = typer.Option(0.05, "--cost-ratio", help="Draft step cost / target step cost c."),
                as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """Speculative decoding: expected tokens per target step and speed-up (Leviathan et al. 2023)."""
    from ..inference.spec_decode import speculative as spec

    emit(spec(alpha, gamma, cost_ratio), as_json, explain)


def _number_list(text: str, option: str, counts: bool = True):
    """'512' -> 512.0, '512,2k' -> [512.0, 2000.0] (one entry per request class; token counts read as every other
    token option reads them, k/M suffixes included: `infer --prompt 2k`; ``counts=False``: plain numbers, for
    shares); ranges are checked later."""
    from ..core.errors import LlmcalcError, UnitError
    from ..core.units import parse_count

    def number(p: str) -> float:
        try:
            return parse_count(p) if counts else float(p)
        except UnitError:  # inf, nan, 1e400: as plain numbers, for the range check's own message
            return float(p)

    parts = [p.strip() for p in text.split(",")]
    try:
        values = [number(p) for p in parts]
    except ValueError:
        raise LlmcalcError(f"{option} expects a number or a comma-separated list such as 512,2048, "
                           f"got {text!r}") from None
    return values[0] if len(values) == 1 else values


@app.command()
@user_errors
@with_profile
def batching(model: str = MODEL_ARG, hardware: str = HARDWARE_OPT, tp: int = TP_OPT,
             qps: float = typer.Option(..., "--qps", help="Arrival rate, requests per second, for one replica."),
             prompt: str = typer.Option("1024", "--prompt", help="Prompt tokens; a list (512,2048) for a mix."),
             output: str = typer.Option("256", "--output", help="Output tokens; a list (128,512) for a mix."),
             mix: str | None = typer.Option(None, "--mix", help="Share of arrivals per class, e.g. 0.7,0.3 "
                                            "(sums to 1; default equal)."),
             weights: str = WEIGHTS_OPT, group_size: int | None = GROUP_OPT, kv_dtype: str = KV_DTYPE_OPT,
             activations: str = ACT_OPT, reserve: float = RESERVE_OPT, eff_flops: float | None = EFF_FLOPS,
             eff_mem: float | None = EFF_MEM, eff_link: float | None = EFF_LINK, roofline: bool = ROOFLINE_OPT,
             as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """Continuous batching in steady state: concurrency (Little's law), latency, throughput, KV cap; a request
    mix via --prompt/--output lists and --mix shares."""
    from ..inference.batching import check_mix, continuous_batching

    prompts, outputs = _number_list(prompt, "--prompt"), _number_list(output, "--output")
    shares = None if mix is None else _number_list(mix, "--mix", counts=False)
    p, o, w = check_mix(qps, prompts, outputs, shares, reserve)  # before loading specs: option errors first
    scalar = not isinstance(prompts, list) and not isinstance(outputs, list)
    dep = _deployment(model, hardware, tp, weights, group_size, kv_dtype, activations,
                      _eff(eff_flops, eff_mem, eff_link, roofline, hardware))
    emit(continuous_batching(dep, qps, p[0] if scalar else p, o[0] if scalar else o, reserve, w), as_json,
         explain)
