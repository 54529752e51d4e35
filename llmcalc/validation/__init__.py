"""Validation against published measurements, and calibration to your own (``llmcalc calibrate``).

Sits above the engine wings: may import core, model, network, training and inference (never the faces).
"""
