"""The local stack: the platform simulator, the dev stack, the demo and its staff."""
