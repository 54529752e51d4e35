"""Model/hardware YAML and Hugging Face config.json files under mutation (issue #13): one SpecError line naming
the file, or a spec whose figures are finite. Plus the file classes the issue names, each once broken."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fuzz_parts import check_config, check_yaml, config_files, yaml_files
from hypothesis import given, settings

import llmcalc as L
from llmcalc.core.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent


@settings(max_examples=300)
@given(yaml_files())
def test_mutated_yaml_keeps_the_promise(item):
    check_yaml(item)


@settings(max_examples=250)
@given(config_files())
def test_mutated_config_json_keeps_the_promise(item):
    check_config(item)


def _spec_error(fn, *args, needles=()):
    with pytest.raises(SpecError) as e:
        fn(*args)
    msg = str(e.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg
    return msg


def _model_yaml(tmp_path, replace_from=None, replace_to=None, extra="") -> Path:
    text = (ROOT / "models" / "llama-3.1-8b.yaml").read_text()
    if replace_from:
        assert replace_from in text
        text = text.replace(replace_from, replace_to, 1)
    p = tmp_path / "m.yaml"
    p.write_text(text + extra)
    return p


def test_bool_and_float_are_not_counts(tmp_path):
    _spec_error(L.load_model, str(_model_yaml(tmp_path, "n_layers: 32", "n_layers: true")), needles=["n_layers"])
    _spec_error(L.load_model, str(_model_yaml(tmp_path, "n_layers: 32", "n_layers: 32.0")), needles=["n_layers"])
    _spec_error(L.load_model, str(_model_yaml(tmp_path, "n_kv_heads: 8", "n_kv_heads: true")), needles=["n_kv_heads"])


def test_duplicate_yaml_key_is_an_error(tmp_path):
    p = _model_yaml(tmp_path, extra="d_model: 8192\n")
    _spec_error(L.load_model, str(p), needles=[str(p), "duplicate key 'd_model'"])


def test_latin1_byte_names_file_line_and_column(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_bytes((ROOT / "models" / "gpt2.yaml").read_bytes() + b"notes: caf\xe9\n")
    lines = p.read_bytes().count(b"\n")
    _spec_error(L.load_model, str(p), needles=[f"{p}:{lines}:11", "UTF-8", "0xe9"])  # "notes: caf" is 10 characters


@pytest.mark.parametrize("value, needle", [("{value: 80}", "'80 GiB'"), ("1e400 GiB", "finite"),
                                            ("[80]", "quantity"), ("80", "no unit")])
def test_bad_quantities_in_hardware_yaml(tmp_path, value, needle):
    text = (ROOT / "hardware" / "h100-sxm.yaml").read_text()
    line = next(t for t in text.splitlines() if t.startswith("memory_bytes:"))
    p = tmp_path / "h.yaml"
    p.write_text(text.replace(line, f"memory_bytes: {value}", 1))
    _spec_error(L.load_hardware, str(p), needles=["memory_bytes", needle, str(p)])


def test_devices_fifos_folders_and_big_files_are_refused(tmp_path):
    _spec_error(L.load_model, "/dev/zero", needles=["/dev/zero", "device"])
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    _spec_error(L.load_model, str(fifo), needles=["FIFO"])  # returns at once: no writer is waited for
    folder = tmp_path / "d.yaml"
    folder.mkdir()
    _spec_error(L.load_model, str(folder), needles=["directory"])
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (1 << 20 | 1))
    _spec_error(L.load_model, str(big), needles=["limit"])


@pytest.mark.parametrize("key, value, needle", [
    ("num_attention_heads", 0, "num_attention_heads"), ("hidden_size", "4096", "hidden_size"),
    ("model_type", ["llama"], "model_type"), ("num_key_value_heads", True, "n_kv_heads"),
    ("num_hidden_layers", True, "num_hidden_layers"), ("num_hidden_layers", 10**9, "num_hidden_layers"),
    ("head_dim", 1.5, "head_dim"),
])
def test_config_json_field_types(tmp_path, config_dict, key, value, needle):
    data = config_dict("llama-3.1-8b")
    data[key] = value
    p = tmp_path / "config.json"
    p.write_text(json.dumps(data))
    _spec_error(L.model_from_config_file, p, needles=[needle, str(p)])


def test_config_json_nesting_and_nan(tmp_path):
    p = tmp_path / "config.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    _spec_error(L.model_from_config_file, p, needles=["nested"])
    p.write_text('{"model_type": "llama", "hidden_size": NaN}')
    _spec_error(L.model_from_config_file, p, needles=["NaN"])


def test_models_dir_must_exist_and_a_bad_file_there_is_named(tmp_path, monkeypatch):
    from llmcalc.core import catalogue

    monkeypatch.setenv("LLMCALC_MODELS_DIR", str(tmp_path / "typo"))
    _spec_error(catalogue.names, "models", needles=["LLMCALC_MODELS_DIR", "typo"])
    monkeypatch.setenv("LLMCALC_MODELS_DIR", str(tmp_path))
    (tmp_path / "bad.yaml").write_bytes(b"name: bad\nnotes: \xff\n")
    catalogue._load_model.cache_clear()
    _spec_error(catalogue.all_models, needles=["bad.yaml", "UTF-8"])
