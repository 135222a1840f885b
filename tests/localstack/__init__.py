"""Tests of the simulator, the dev stack and the demo."""
