"""The parsed-catalogue cache (core/catalogue.py, issue #13) changes how fast an entry loads, never what it loads:
a kept parse is used only for the very text that was parsed, and what comes back is what the YAML parser returns."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmcalc.core import catalogue
from llmcalc.core.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMCALC_CACHE_DIR", str(tmp_path / "cache"))
    catalogue._load_model.cache_clear()
    catalogue._load_hardware.cache_clear()
    yield tmp_path / "cache"
    catalogue._load_model.cache_clear()
    catalogue._load_hardware.cache_clear()


def _typed(x):
    """A value with every type spelled out (1 == 1.0 == True in Python, not in a spec)."""
    if isinstance(x, dict):
        return [(_typed(k), _typed(v)) for k, v in x.items()]
    if isinstance(x, list):
        return [_typed(v) for v in x]
    return (type(x).__name__, repr(x))


@pytest.mark.parametrize("kind", ["models", "hardware"])
def test_every_catalogue_entry_comes_back_from_the_cache_as_pyyaml_parses_it(cache, kind):
    for name in catalogue.names(kind):
        text = (catalogue.catalogue_dir(kind) / f"{name}.yaml").read_text(encoding="utf-8")
        first = catalogue._load_yaml(text, name, cache_as=f"{kind}-{name}")  # parsed, then kept
        assert (cache / f"{kind}-{name}.marshal").is_file()
        kept = catalogue._cached_yaml(f"{kind}-{name}", text)
        assert _typed(kept) == _typed(first) == _typed(yaml.safe_load(text)), name


def test_a_changed_entry_is_parsed_again_and_a_broken_one_is_never_kept(cache, tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    src = (catalogue.catalogue_dir("models") / "gpt2.yaml").read_text(encoding="utf-8")
    monkeypatch.setenv("LLMCALC_MODELS_DIR", str(models))
    (models / "gpt2.yaml").write_text(src, encoding="utf-8")
    assert catalogue.load_model("gpt2").n_layers == 12  # GPT-2 small: 12 layers (Radford et al. 2019, Table 2)
    assert (cache / "models-gpt2.marshal").is_file()

    catalogue._load_model.cache_clear()
    (models / "gpt2.yaml").write_text(src.replace("n_layers: 12", "n_layers: 24"), encoding="utf-8")
    assert "n_layers: 12" in src
    assert catalogue.load_model("gpt2").n_layers == 24  # the kept parse was of other text: not used

    catalogue._load_model.cache_clear()
    (models / "gpt2.yaml").write_text(src + "n_layers: 13\n", encoding="utf-8")  # a key given twice
    with pytest.raises(SpecError, match="duplicate key 'n_layers'"):
        catalogue.load_model("gpt2")
    assert catalogue._cached_yaml("models-gpt2", src + "n_layers: 13\n") is catalogue._MISS


def test_a_corrupt_cache_file_is_parsed_past(cache):
    cache.mkdir(parents=True)
    (cache / "models-gpt2.marshal").write_bytes(b"\x00not marshal")
    assert catalogue.load_model("gpt2").n_layers == 12
    text = (catalogue.catalogue_dir("models") / "gpt2.yaml").read_text(encoding="utf-8")
    assert catalogue._cached_yaml("models-gpt2", text) is not catalogue._MISS  # rewritten by that load


def test_an_empty_cache_dir_setting_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMCALC_CACHE_DIR", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    catalogue._load_model.cache_clear()
    try:
        assert catalogue.load_model("gpt2").n_layers == 12
    finally:
        catalogue._load_model.cache_clear()
    assert list(tmp_path.iterdir()) == []


def test_a_one_liner_with_its_entries_kept_imports_no_yaml(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LLMCALC_CACHE_DIR": str(tmp_path)}
    code = ("import sys; sys.argv = ['llmcalc', 'params', 'llama-3.1-8b']\nfrom llmcalc.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
            "print('yaml' in sys.modules, file=sys.stderr)")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
            for _ in range(2)]
    assert [r.stderr.strip() for r in runs] == ["True", "False"]  # parsed once, then read from the cache
    assert runs[0].stdout == runs[1].stdout and "8,030,261,248" in runs[1].stdout  # Llama-3.1-8B (published)
