"""core: units, validated specs, results that explain themselves, errors, range checks, efficiencies and
the catalogue (YAML and Hugging Face config.json readers).

Used by every wing; imports nothing else from llmcalc.
"""
