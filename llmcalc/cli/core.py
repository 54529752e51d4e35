"""Catalogue and model commands: params, list, show, notation, import, and the one-page summary."""

from __future__ import annotations

import json
from typing import Literal

import typer

from ..core.notation import NOTATION
from ._app import app
from ._common import (
    EXPLAIN_OPT,
    FORCE_OPT,
    HARDWARE_OPT,
    JSON_OPT,
    MODEL_ARG,
    emit,
    profile_inference,
    quantity_option,
    table,
    user_errors,
    with_profile,
    write_out,
)


@app.command()
@user_errors
def params(model: str = MODEL_ARG, as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """Exact parameter count: total, active per token (MoE), and a breakdown by component."""
    from ..core.catalogue import load_model
    from ..model.params import param_breakdown

    r = param_breakdown(load_model(model))
    if as_json or explain:
        emit(r, as_json, explain)
        return
    typer.echo(r.title)
    rows = [(f.name, f"{int(f.value):,}", f.text()) for f in r.figures]
    typer.echo(table(rows, ("component", "parameters", "")))
    for a in r.assumptions:
        typer.echo(f"  * {a}")


@app.command("list")
@user_errors
def list_(kind: Literal["models", "hardware"] = typer.Argument(..., help="models or hardware"),
          as_json: bool = JSON_OPT) -> None:
    """List the catalogue with key specs."""
    from ..core.catalogue import all_hardware, all_models
    from ..core.units import fmt
    from ..model.params import param_breakdown

    if kind == "models":
        rows = []
        for m in all_models():
            p = param_breakdown(m).data
            a = m.attention
            attn = "MLA" if a.mla else ("MHA" if a.n_kv_heads == a.n_heads else
                                        "MQA" if a.n_kv_heads == 1 else f"GQA {a.n_heads}/{a.n_kv_heads}")
            moe = f"{m.moe.n_experts}E top-{m.moe.top_k}" if m.moe else "dense"
            rows.append({"name": m.name, "display_name": m.display_name, "total_params": p["total"],
                         "active_params": p["active"], "layers": m.n_layers, "d_model": m.d_model,
                         "attention": attn, "mlp": moe, "vocab": m.vocab_size})
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        typer.echo(table([(r["name"], fmt(r["total_params"], "param"), fmt(r["active_params"], "param"),
                           str(r["layers"]), str(r["d_model"]), r["attention"], r["mlp"]) for r in rows],
                         ("model", "total", "active", "layers", "D", "attention", "mlp")))
        return
    rows = []
    for h in all_hardware():
        rows.append({"name": h.name, "display_name": h.display_name, "bf16_dense_flops_per_s": h.peak("bf16"),
                     "memory_bytes": h.memory_bytes, "memory_bw_bytes_per_s": h.memory_bw_bytes_per_s,
                     "scale_up_per_direction_bytes_per_s": h.scale_up.per_direction_bytes_per_s,
                     "scale_up_domain": h.scale_up.domain_size, "price_usd_per_hour": h.price_usd_per_hour})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(table([(r["name"], fmt(r["bf16_dense_flops_per_s"], "FLOP/s"),
                       fmt(r["memory_bytes"], "B").split(" (")[1].rstrip(")"),
                       fmt(r["memory_bw_bytes_per_s"], "B/s"),
                       fmt(r["scale_up_per_direction_bytes_per_s"], "B/s"), str(r["scale_up_domain"]),
                       fmt(r["price_usd_per_hour"], "USD/h") if r["price_usd_per_hour"] else "-") for r in rows],
                     ("hardware", "bf16 dense", "memory", "HBM bw", "scale-up/dir", "domain", "price")))


@app.command()
@user_errors
def show(name: str = typer.Argument(..., help="A model or hardware name, or a YAML/config.json path."),
         as_json: bool = JSON_OPT) -> None:
    """Show one catalogue entry in full (SI units)."""
    from ..core.catalogue import load_spec

    data = load_spec(name).model_dump(mode="json")
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        import yaml

        typer.echo(yaml.safe_dump(data, sort_keys=False, width=110).rstrip())




@app.command()
def notation() -> None:
    """Print the shape-suffix legend used in formulas."""
    typer.echo(NOTATION)


@app.command("import")
@user_errors
def import_(config: str = typer.Argument(..., help="Path to a Hugging Face config.json (read locally)."),
            output: str | None = typer.Option(None, "--output", "-o", help="Write the YAML here (never over "
                                              "the input; an existing file only with --force)."),
            force: bool = FORCE_OPT) -> None:
    """Convert a Hugging Face config.json into catalogue YAML."""
    from pathlib import Path

    from ..core.catalogue import model_to_yaml
    from ..core.hf_config import model_from_config_file

    same = output and Path(output).resolve() == Path(config).resolve()  # write_out names that: "the input file"
    if output and not same and Path(output).suffix.lower() == ".json":  # a .json path is read as a config.json:
        from ..core.errors import LlmcalcError  # YAML written there could not be read back ("invalid JSON")

        raise LlmcalcError(f"-o {output}: import writes YAML, and a .json path is read back as a Hugging Face "
                           f"config.json; name it {Path(output).with_suffix('.yaml')}")
    m = model_from_config_file(config)
    if output:  # the catalogue finds a model by its file's name: the entry's name is that name
        stem = Path(output).stem
        m = m.model_copy(update={"name": stem.lower(),
                                 "display_name": stem if m.display_name == "config" else m.display_name})
    write_out(model_to_yaml(m), output, force=force, inputs=(config,))


@app.command()
@user_errors
@with_profile
def summary(model: str = MODEL_ARG, hardware: str = HARDWARE_OPT,
            gpus: int = typer.Option(1024, "--gpus", help="GPUs for the training run."),
            mfu: float = typer.Option(0.4, "--mfu", help="Model FLOPs utilisation assumed for training."),
            tokens: str | None = typer.Option(None, "--tokens", help="Training tokens (default: 20 per parameter)."),
            prompt: int = typer.Option(1000, "--prompt", help="Prompt tokens per request."),
            output: int = typer.Option(300, "--output", help="Output tokens per request."),
            users: float = typer.Option(10_000, "--users", help="Users to serve (1 request per user per minute)."),
            price: str | None = typer.Option(None, "--price", help="USD per GPU-hour, e.g. 2.49 or '$2.49/h' "
                                             "(default: catalogue price)."),
            as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """One page: parameters, Chinchilla tokens, training days and cost, fit, latency, GPUs to serve N users."""
    from ..core.catalogue import load_hardware, load_model
    from ..core.units import parse_count
    from ..report import summary as summarise

    hw = load_hardware(hardware)
    r = summarise(load_model(model), hw, gpus=gpus, mfu=mfu, eff=profile_inference(hw),
                  tokens=None if tokens is None else parse_count(tokens), prompt=prompt, output=output, users=users,
                  price_usd_per_hour=quantity_option(price, "USD_PER_HOUR", "--price", "2.49 or '$2.49/h'", 3600.0))
    emit(r, as_json, explain)  # --price reads as train's and serve's ('$2/h' was "Input should be a valid number")
