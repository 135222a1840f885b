"""Tests of the whole system: end to end, under faults, its benchmarks and its deployment."""
