"""Every side effect of the workflows: the system of record, the platform, people."""
