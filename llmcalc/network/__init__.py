"""network: how bytes move between devices — the cost of every collective and the link a group crosses.

May import ``core`` only; ``training`` and ``inference`` both time their collectives here.
"""
