"""Tests of the gateway, orderctl and what talks to workflows from outside."""
