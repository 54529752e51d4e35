"""The examples a new user runs first keep working: the quickstart script and the notebook's code cells."""

import json
import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_script_runs(capsys):
    runpy.run_path(str(EXAMPLES / "quickstart.py"), run_name="__main__")
    assert "8,030,261,248" in capsys.readouterr().out  # Llama-3.1-8B exact count (keras-hub llama3_8b_en)


def test_notebook_code_cells_run():
    pytest.importorskip("pandas")
    nb = json.loads((EXAMPLES / "sizing_walkthrough.ipynb").read_text())
    scope: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), "sizing_walkthrough.ipynb", "exec"), scope)
    assert scope["step"].data["mfu"].shape == (4, 3)
