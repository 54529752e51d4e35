"""Every option that reads a user's file (--profile, --measurements, --law, --answers) reads it as spec files
are read (core/textfile.py: a regular UTF-8 file of bounded size, duplicate YAML keys refused): a device, a
FIFO, a Latin-1 byte or a duplicate key is one line naming the option, never a hang or a traceback."""

from __future__ import annotations

import os

import pytest
from conftest import one_line_error

STEP = ["step", "llama-3.1-8b", "-H", "h100-sxm", "--gpus", "8", "--tp", "8", "--global-batch", "8"]
OPTIONS = {  # option -> the command line with the file in place of {}
    "--profile": [*STEP, "--profile", "{}"],
    "--measurements": ["calibrate", "--measurements", "{}"],
    "--law": ["loss", "--params", "7B", "--tokens", "1T", "--law", "{}"],
    "--answers": ["drill", "--count", "1", "--seed", "1", "--answers", "{}"],
}


def _bad_files(tmp_path):
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"E: 1\n# caf\xe9\n")
    dup = tmp_path / "dup.yaml"
    dup.write_text("E: 1\nE: 2\n", encoding="utf-8")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * ((1 << 20) + 10))
    return {"device": ("/dev/zero", "device"), "fifo": (str(fifo), "FIFO"), "latin-1": (str(latin1), "UTF-8"),
            "too large": (str(big), "limit"), "duplicate key": (str(dup), "duplicate key")}


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_a_bad_user_file_is_one_line_naming_the_option(option, tmp_path):
    for kind, (path, needle) in _bad_files(tmp_path).items():
        if option == "--answers" and kind == "duplicate key":
            continue  # answers are plain lines, not YAML
        args = [a.replace("{}", path) for a in OPTIONS[option]]
        one_line_error(args, option, needle)
