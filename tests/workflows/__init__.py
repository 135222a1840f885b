"""Tests of the workflows on the time-skipping test server, and recorded histories replayed."""
