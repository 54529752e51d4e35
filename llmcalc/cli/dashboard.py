"""``llmcalc app``: start the Streamlit dashboard shipped inside the package (works after ``pip install .``)."""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
from pathlib import Path

import typer

from ._app import app
from ._common import fail, user_errors

# The script Streamlit runs: inside the package, so an installed wheel carries it (the repo's app.py is a thin alias).
APP_SCRIPT = Path(__file__).resolve().parent.parent / "dashboard" / "main.py"


def streamlit_command(port: int, headless: bool, host: str = "127.0.0.1", extra: list[str] | tuple = ()) -> list[str]:
    """``streamlit run`` of the packaged script, bound to ``host`` (loopback by default: the dashboard reads
    local files and has no authentication, so it is not offered to the network unless asked), then ``extra``
    Streamlit flags as given (e.g. ``--theme.base dark``)."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT), "--server.address", host,
           "--server.port", str(port), "--browser.gatherUsageStats", "false"]
    if headless:
        cmd += ["--server.headless", "true"]
    return cmd + list(extra)


@app.command("app", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@user_errors
def app_command(ctx: typer.Context,
                host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every "
                                         "interface, reachable from the network)."),
                port: int = typer.Option(8501, "--port", help="Port to serve the dashboard on (1-65535)."),
                headless: bool = typer.Option(False, "--headless", help="Do not open a browser window."),
                dry_run: bool = typer.Option(False, "--dry-run", help="Print the streamlit command and exit.")) -> None:
    """Open the what-if dashboard (Streamlit) in a browser: model, training, inference, serving, A vs B.
    Other --server.* / --theme.* flags go to Streamlit as given."""
    if not 1 <= port <= 65535:
        fail(f"--port expects a port number in 1..65535, got {port}")
    if not host or any(c.isspace() for c in host) or host.startswith("-"):
        fail(f"--host expects an address such as 127.0.0.1 or 0.0.0.0, got {host!r}")
    bad = [a for a in ctx.args if a.startswith("-") and not a.startswith("--") or a.startswith("--server.address")]
    if bad:
        fail(f"unknown option {bad[0]!r} for llmcalc app; Streamlit flags look like --theme.base dark, and the "
             "address is set with --host")
    cmd = streamlit_command(port, headless, host, ctx.args)
    if dry_run:
        typer.echo(shlex.join(cmd))
        return
    if importlib.util.find_spec("streamlit") is None:  # checked without importing it: ~0.7 s
        fail("the dashboard needs streamlit; install it with `pip install streamlit`")
    if not APP_SCRIPT.is_file():
        fail(f"the dashboard script {APP_SCRIPT} is missing; reinstall llmcalc")
    if os.name == "posix":  # become the server, so Ctrl-C and a parent's SIGTERM reach Streamlit itself
        sys.stdout.flush()
        os.execv(cmd[0], cmd)
    raise typer.Exit(subprocess.call(cmd))
