"""Tests of the platform's protocol, against its real material and the simulator."""
