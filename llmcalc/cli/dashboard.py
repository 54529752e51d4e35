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


def streamlit_command(port: int, headless: bool) -> list[str]:
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT), "--server.port", str(port),
           "--browser.gatherUsageStats", "false"]
    if headless:
        cmd += ["--server.headless", "true"]
    return cmd


@app.command("app")
@user_errors
def app_command(port: int = typer.Option(8501, "--port", help="Local port to serve the dashboard on."),
                headless: bool = typer.Option(False, "--headless", help="Do not open a browser window."),
                dry_run: bool = typer.Option(False, "--dry-run", help="Print the streamlit command and exit.")) -> None:
    """Open the what-if dashboard (Streamlit) in a browser: model, training, inference, serving, A vs B."""
    cmd = streamlit_command(port, headless)
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
