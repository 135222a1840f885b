"""Tests of the suite's own tools: the watchdog and the time-skipping probe."""
