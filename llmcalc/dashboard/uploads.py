"""Uploaded specs (read in memory, never saved): a model from a HF config.json or catalogue YAML, hardware
from a catalogue-style YAML. Either side of A vs B may use one; it is titled by its file name."""

from __future__ import annotations

import json

from ..core.catalogue import parse_yaml_spec
from ..core.errors import SpecError
from ..core.specs import Hardware, Model


def title(upload) -> str:
    """An upload is titled by its file name (a HF config.json adds the checkpoint it names, if any)."""
    return upload.name


def uploaded_model(upload) -> Model:
    """A Model from an uploaded Hugging Face config.json or catalogue YAML (read in memory, never saved)."""
    text = upload.getvalue().decode("utf-8", errors="replace")
    if upload.name.endswith(".json"):
        from llmcalc.core.hf_config import model_from_config

        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"{upload.name}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
        if not isinstance(data, dict):
            raise SpecError(f"{upload.name}: expected a JSON object")
        name = upload.name
        origin = str(data.get("_name_or_path") or "").strip()
        if origin:
            name = f"{upload.name} ({origin})"
        return model_from_config(data, name, upload.name)
    return parse_yaml_spec(text, Model, upload.name)


def uploaded_hardware(upload) -> Hardware:
    """A Hardware spec from an uploaded catalogue-style YAML (units written out: '80 GiB', '3.35 TB/s')."""
    return parse_yaml_spec(upload.getvalue().decode("utf-8", errors="replace"), Hardware, upload.name)


