"""Uploaded specs (read in memory, never saved): a model from a HF config.json or catalogue YAML, hardware
from a catalogue-style YAML. Either side of A vs B may use one; it is titled by its file name."""

from __future__ import annotations

from ..core.catalogue import parse_yaml_spec
from ..core.specs import Hardware, Model
from ..core.textfile import spec_text


def title(upload) -> str:
    """An upload is titled by its file name (a HF config.json adds the checkpoint it names, if any)."""
    return upload.name


def uploaded_model(upload) -> Model:
    """A Model from an uploaded Hugging Face config.json or catalogue YAML (read in memory, never saved)."""
    text = spec_text(upload.getvalue(), upload.name)  # as a file is read: UTF-8 or one error, never "\ufffd"
    if upload.name.endswith(".json"):
        from llmcalc.core.hf_config import config_object, model_from_config

        data = config_object(text, upload.name)
        name = upload.name
        origin = str(data.get("_name_or_path") or "").strip()
        if origin:
            name = f"{upload.name} ({origin})"
        return model_from_config(data, name, upload.name)
    return parse_yaml_spec(text, Model, upload.name)


def uploaded_hardware(upload) -> Hardware:
    """A Hardware spec from an uploaded catalogue-style YAML (units written out: '80 GiB', '3.35 TB/s')."""
    return parse_yaml_spec(spec_text(upload.getvalue(), upload.name), Hardware, upload.name)


