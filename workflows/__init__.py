"""Deterministic workflow code: the order lifecycle and the anomaly child."""
