"""RL post-training: one step synchronous vs asynchronous (``llmcalc rl``)."""

from __future__ import annotations

import typer

from ._app import app
from ._common import EXPLAIN_OPT, HARDWARE_OPT, JSON_OPT, MODEL_ARG, profile_blocks, user_errors, with_profile


def _fmt_s(x: float) -> str:
    return f"{x:,.1f} s" if x >= 1 else f"{x * 1e3:,.0f} ms"


def _speedup(speedup: dict, name: str) -> str:
    """The "vs sync" cell; without sync colocated (its trainer does not fit) there is no ratio, and the cell says
    so rather than "nanx"."""
    return f"{speedup[name]:.2f}x" if name in speedup else "n/a"


@app.command()
@user_errors
@with_profile
def rl(model: str = MODEL_ARG, hardware: str = HARDWARE_OPT,
       gpus: int = typer.Option(..., "--gpus", "-n", help="Total GPUs (rollout + trainer)."),
       prompts: int = typer.Option(..., "--prompts", help="Prompts per step (P)."),
       samples: int = typer.Option(16, "--samples", "-G", help="Samples per prompt (G; PPO runs usually give "
                                   "-G 1: the default 16 applies to --algo ppo too)."),
       prompt_len: int = typer.Option(512, "--prompt-len", help="Prompt length (tokens)."),
       response_len: str = typer.Option(..., "--response-len",
                                        help="Response lengths: 'mean,cv' (lognormal), 'p50,p90,p99', or "
                                             "'table:l1,l2,…' (tokens; 2k = 2000)."),
       max_response: int = typer.Option(None, "--max-response", help="Generation cap (tokens); clips the tail."),
       algo: str = typer.Option("grpo", "--algo", help="grpo (no critic) or ppo (critic + reference)."),
       regime: str = typer.Option("all", "--regime", help="sync, async or all."),
       staleness: str | None = typer.Option(None, "--staleness", show_default=False,
                                            help="η: AReaL's admission bound (a rollout starts only while "
                                            "⌊(N_r − 1)/B⌋ ≤ i + η); 'inf' for none. It bounds the lag of samples "
                                            "trained in admission order, not of long rollouts overtaken by shorter "
                                            "ones (async regimes)  [default: 2]."),
       rollout_gpus: int = typer.Option(None, "--rollout-gpus", help="GPUs for rollout (default: best split)."),
       rollout_tp: int = typer.Option(1, "--rollout-tp", help="Tensor parallelism of each inference engine."),
       partial: bool | None = typer.Option(None, "--partial/--no-partial", show_default=False,
                                           help="Interruptible (partial) rollouts (async regimes)  [default: on]."),
       ref: bool = typer.Option(None, "--ref/--no-ref", help="Reference-model log-probs (default: PPO only)."),
       reward_model: str = typer.Option(None, "--reward-model", help="Reward model (catalogue name); else rules."),
       minibatches: int = typer.Option(1, "--minibatches", help="PPO mini-batches (optimizer steps) per step."),
       train_tp: int = typer.Option(None, "--train-tp", help="Trainer tensor parallelism (default: planner)."),
       train_pp: int = typer.Option(None, "--train-pp", help="Trainer pipeline parallelism (default: planner)."),
       train_ep: int = typer.Option(None, "--train-ep", help="Trainer expert parallelism (default: planner)."),
       zero: int = typer.Option(None, "--zero", help="Trainer ZeRO stage 0-3 (default: planner; 3 with a layout)."),
       recompute: str = typer.Option(None, "--recompute", help="Trainer activation recomputation: none, selective "
                                     "or full (default: full, as verl's gradient checkpointing)."),
       rollout_logprobs: bool = typer.Option(False, "--rollout-logprobs/--no-rollout-logprobs",
                                             help="Use the engine's sampling log-probs as the old policy's (no "
                                                  "old-log-prob pass; verl fully async)."),
       as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """One RL step (GRPO/PPO): sync colocated, sync split, one-step-off and staleness-bounded async."""
    import json

    from ..core.catalogue import load_hardware, load_model
    from ..core.errors import LlmcalcError
    from ..rl.lengths import parse_response_len
    from ..rl.step import rl_step
    from ._common import _default, table

    regime, algo = regime.strip().lower(), algo.strip().lower()  # names are case-insensitive (README)
    if regime == "sync":  # both shape the fully async regime only: with sync they were dropped silently
        given = [o for o, v in (("--staleness", staleness), ("--partial/--no-partial", partial)) if v is not None]
        if given:
            one = len(given) == 1
            raise LlmcalcError(f"{' and '.join(given)} {'shapes' if one else 'shape'} the async regimes, which "
                               f"--regime sync leaves out; drop {'it' if one else 'them'} or use --regime async or all")
    staleness = "2" if staleness is None else staleness
    partial = True if partial is None else partial
    if staleness.strip().lower() in ("inf", "infinity", "none"):
        eta = None
    else:
        try:
            eta = float(staleness)
        except ValueError:
            raise LlmcalcError(f"--staleness expects a whole number of steps or inf, got {staleness!r}") from None
    m, hw = load_model(model), load_hardware(hardware)
    train_eff, rollout_eff = profile_blocks(hw)  # --profile: its training block (x the RL trainer scale), its
    settings = {}                                 # inference block for the rollout engines
    if train_eff is not None or rollout_eff is not None:
        from dataclasses import replace

        from ..rl.phases import DEFAULT_SETTINGS

        settings = dict(settings=replace(DEFAULT_SETTINGS, training_efficiency=train_eff,
                                         rollout_efficiency=rollout_eff))
    r = rl_step(m, hw, gpus=gpus, prompts=prompts, samples=samples, prompt_len=prompt_len,
                response=parse_response_len(response_len, max_response), algo=algo, regime=regime, staleness=eta,
                rollout_gpus=rollout_gpus, rollout_tp=rollout_tp, partial=partial, ref=ref,
                reward_model=load_model(reward_model) if reward_model else None, minibatches=minibatches,
                train_tp=train_tp, train_pp=train_pp, train_ep=train_ep, zero=zero, recompute=recompute,
                rollout_logprobs=rollout_logprobs, **settings)
    if as_json:
        typer.echo(json.dumps(r.as_dict(), indent=2, default=_default))
        return
    if explain:  # the derivation ends with the assumptions itself: printed above it too, they came twice
        typer.echo(r.explain())
        return
    typer.echo(r.title)
    typer.echo("assumptions:")
    for a in r.assumptions:
        typer.echo(f"  * {a}")
    d = r.data
    sp = d["split"]
    split = ("no feasible split" if sp["rollout_gpus"] is None else
             f"split {sp['rollout_gpus']} rollout + {sp['trainer_gpus']} trainer GPUs")
    typer.echo(f"responses: mean {d['response_mean']:,.0f} tokens, expected longest of the {d['batch']:,} samples "
               f"{d['response_expected_max']:,.0f} tokens; {split}")  # was "of 8,192 8,192": two bare counts
    rows = []
    for name, x in d["regimes"].items():
        b = x["breakdown_s"]
        rows.append((name.replace("_", " "), _fmt_s(x["step_s"]), _fmt_s(b["generate_s"]), _fmt_s(b["logprob_s"]),
                     _fmt_s(b["train_s"] + b["critic_s"] + b["score_s"]), _fmt_s(b["sync_s"]),
                     f"{x['trained_tokens_per_s'] / 1e3:,.1f}k", f"{x['generated_tokens_per_s'] / 1e3:,.1f}k",
                     f"{x['rollout_utilisation']:.0%}",
                     f"{x['trainer_utilisation']:.0%}", f"{x['staleness_mean']:.1f}/{x['staleness_max']}",
                     _speedup(d["speedup"], name)))
    typer.echo(table(rows, ("regime", "step", "generate", "log-probs", "train", "sync", "tok/s trained",
                            "tok/s generated", "rollout busy", "trainer busy", "lag mean/max", "vs sync")))
    typer.echo(f"best: {d['best_regime'].replace('_', ' ')}")
