"""study: the interview study kit — one-page sheets, the daily drill, sharding exercises and trade-off
explainers, every number taken from the calculators below with its derivation.

May import every engine wing (``core``, ``model``, ``network``, ``training``, ``inference``); never a face.
"""
