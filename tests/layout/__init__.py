"""Tests of the layout's rules, on the source."""
