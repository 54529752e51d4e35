"""Start ``streamlit run`` on a free localhost port for browser tests and benchmarks.

Race-free in practice: the port comes from the OS (bind to port 0), and if another process takes it
before Streamlit binds, Streamlit says so on its output and we try another port. Readiness is read from
the server's own output (its "URL:" line) and confirmed by the health endpoint, never a fixed sleep.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_cmd(port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
            "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none"]


class ServerError(RuntimeError):
    pass


@contextmanager
def streamlit_server(cmd_for_port=default_cmd, timeout_s: float = 60.0, tries: int = 3) -> Iterator[str]:
    """Yield the base URL of a running server; stop it afterwards."""
    last = ""
    for _ in range(tries):
        port = free_port()
        proc = subprocess.Popen(cmd_for_port(port), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        lines: queue.Queue[str | None] = queue.Queue()

        def pump(p=proc, q=lines):
            for line in p.stdout:
                q.put(line)
            q.put(None)

        threading.Thread(target=pump, daemon=True).start()
        url, out, deadline = f"http://127.0.0.1:{port}", [], time.monotonic() + timeout_s
        ready = retry = False
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:  # the server exited
                retry = any("already in use" in x for x in out)
                break
            out.append(line)
            if f":{port}" in line and "URL" in line:
                ready = True
                break
        if ready:
            # the server printed its URL; confirm it answers before handing it out
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(url + "/_stcore/health", timeout=2)
                    break
                except OSError:
                    if proc.poll() is not None:
                        break
                    time.sleep(0.05)
            try:
                yield url
            finally:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            return
        proc.terminate()
        proc.wait(10)
        last = "".join(out)[-2000:]
        if not retry:
            break
    raise ServerError(f"streamlit did not start: {last}")
