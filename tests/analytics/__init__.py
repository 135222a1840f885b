"""Tests of the statistics and the report."""
