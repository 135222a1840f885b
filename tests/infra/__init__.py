"""Tests of settings, the database runner, logging's redaction, the codec."""
