"""The CLI conventions every command follows: table, --json with stable keys, --explain, names, completion."""

import json
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.cli._common import complete_hardware, complete_models

runner = CliRunner()


def invoke(*args):
    r = runner.invoke(app, list(args))
    assert r.exit_code == 0, r.output
    return r.output


def test_params_table_names_every_component():
    out = invoke("params", "llama-3.1-8b")
    for label in ("token embedding", "attention", "MLP", "norms", "LM head", "total parameters"):
        assert label in out
    assert "8,030,261,248" in out  # Llama-3.1-8B: published exact count (keras-hub llama3_8b_en)


def test_params_json_stable_keys():
    d = json.loads(invoke("params", "mixtral-8x7b", "--json"))
    # Mixtral card / keras-hub: 46,702,792,704 total, 12,879,925,248 active (published-cases.yaml)
    assert d["total"] == 46_702_792_704 and d["active"] == 12_879_925_248
    assert isinstance(d["total"], int) and isinstance(d["active"], int)
    assert set(d["breakdown"]) == {"embedding", "attention", "moe/router", "moe/experts", "norms", "lm_head"}


def test_params_explain_shows_formula_values_and_source():
    out = invoke("params", "gpt2", "--explain")
    assert "formula: V·D" in out and "values:  50257·768" in out and "source:" in out


def test_names_are_case_insensitive():
    assert json.loads(invoke("params", "LLAMA-3.1-8B", "--json"))["total"] == 8_030_261_248


def test_list_models_and_hardware():
    out = invoke("list", "models")
    assert "deepseek-v3" in out and "MLA" in out and "256E top-8" in out
    hw = json.loads(invoke("list", "hardware", "--json"))
    h100 = next(h for h in hw if h["name"] == "h100-sxm")
    assert h100["bf16_dense_flops_per_s"] == 989e12  # fact sheet row H1: dense, sparse/2
    assert h100["scale_up_per_direction_bytes_per_s"] == 450e9  # fact sheet trap 2


def test_show_hardware_and_model():
    d = json.loads(invoke("show", "H100-SXM", "--json"))
    assert d["memory_bytes"] == 81559 * 2**20  # nvidia-smi 81559MiB (fact sheet N12)
    assert yaml.safe_load(invoke("show", "gemma-2-9b"))["attention"]["head_dim"] == 256  # trap 10


def test_notation_legend():
    out = invoke("notation")
    assert "G  key/value heads" in out and "BLD,DHK->BLHK" in out


def test_import_writes_yaml_that_loads(tmp_path):
    out_file = tmp_path / "qwen.yaml"
    config = str(Path(__file__).parent / "data/configs/qwen2.5-7b/config.json")  # any working directory (CI: /tmp)
    invoke("import", config, "-o", str(out_file))
    d = json.loads(invoke("params", str(out_file), "--json"))
    assert d["total"] == 7_615_616_512  # fact sheet row M13 derived count; HF reference test agrees
    assert yaml.safe_load(invoke("import", config))["attention"]["qkv_bias"]
    # the entry's name is the file's (the catalogue finds it by that name); a folder's name stays its display name
    doc = yaml.safe_load(out_file.read_text())
    assert doc["name"] == "qwen" and doc["display_name"] == "qwen2.5-7b"


def test_completion_candidates():
    assert "llama-3.1-8b" in complete_models("llama-3")
    assert complete_hardware("h1") and all(n.startswith("h1") for n in complete_hardware("h1"))


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "llmcalc", "params", "gpt2", "--json"], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["total"] == 124_439_808  # GPT-2 124M (keras-hub)


def test_cli_import_path_stays_light():
    """The one-liner path must not import the dashboard or notebook stacks (DESIGN.md: fast CLI), nor the
    command modules it does not need."""
    code = ("import sys\nsys.argv = ['llmcalc', 'params', 'llama-3.1-8b']\nfrom llmcalc.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "mods = ('streamlit', 'pandas', 'pint', 'torch', 'matplotlib', 'numpy', 'llmcalc.cli.inference')\n"
            "print(','.join(m for m in mods if m in sys.modules), file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == ""
    assert "8,030,261,248" in r.stdout


def test_public_api_names_are_not_shadowed_by_submodules():
    """A re-exported function must not share its name with a submodule: importing the submodule would
    replace the package attribute with the module (``llmcalc.kv_cache(...)`` -> 'module' is not callable)."""
    import importlib
    import pkgutil
    import types

    import llmcalc

    for info in pkgutil.walk_packages(llmcalc.__path__, "llmcalc."):
        if ".dashboard" not in info.name and not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    for name in llmcalc.__all__:
        assert not isinstance(getattr(llmcalc, name), types.ModuleType), name


def test_shell_completion_through_the_real_completion_protocol():
    """What bash asks the console script for on <TAB> (click's _LLMCALC_COMPLETE protocol)."""
    import os

    env = {**os.environ, "_LLMCALC_COMPLETE": "complete_bash", "COMP_WORDS": "llmcalc params llama-3",
           "COMP_CWORD": "2"}
    r = subprocess.run([sys.executable, "-c", "from llmcalc.cli import main; main()"], env=env,
                       capture_output=True, text=True)
    assert set(r.stdout.split()) == {"llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b"}


def test_command_to_module_map_matches_the_registered_commands():
    """main() loads only the module of the command asked for; the map must name every command's module."""
    import llmcalc.cli as cli

    registered = {(c.name or c.callback.__name__): c.callback.__module__.rsplit(".", 1)[1]
                  for c in cli.app.registered_commands}
    assert registered == cli.COMMANDS
