"""Tests of the activities on a real PostgreSQL."""
