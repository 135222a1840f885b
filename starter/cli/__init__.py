"""orderctl: people act on orders and see where they stand.

Each human action is a subcommand that builds its update's input model and calls the update on
`order-<order_id>` (or `anomaly-<order_id>-<n>`). The workflow's validator decides whether the
stage allows it, so a refusal shows its message unchanged. Arguments are checked against the
same pydantic models before anything is sent, so a bad argument never reaches Temporal.

Exit codes: 0 done, 1 other failure, 2 bad arguments, 3 unknown order or anomaly, 4 not allowed
now (refused by the workflow, or the workflow already ended), 5 Temporal unreachable, 6 no
worker answered in time.

One module per command group (orders, work, lifecycle, aftersales, anomalies, customer, stats,
pushes, dev), each with its parsers and handlers; `entry` assembles them.
"""

from starter.cli.entry import main

__all__ = ["main"]
