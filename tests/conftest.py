import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
CONFIGS = DATA / "configs"


@pytest.fixture
def config_dict():
    """A catalogue model's Hugging Face config.json (shipped in tests/data/configs) as a dict."""

    def load(name: str) -> dict:
        return json.loads((CONFIGS / name / "config.json").read_text())

    return load
