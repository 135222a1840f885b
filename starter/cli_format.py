"""`dumps` of `starter/cli/format.py` at its former import path, which `analytics.stats` names."""

from starter.cli.format import dumps

__all__ = ["dumps"]
