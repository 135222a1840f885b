"""The figures: statistics of a period, what stands out in them, and the staff scorecards
(R4.3, R7.2), in the terminal, as JSON, or as one HTML report.

    orderctl stats [--from DATE] [--to DATE] [--by store|region|type|hour] [--json]
    orderctl report --out FILE.html [--from DATE] [--to DATE]

From the database to the page, each step a module:

  period      the business days asked for, and the groups (`--by`)
  vocabulary  stages, events and clauses from `schemas`, spelled for SQL
  facts       the statements that derive each order's facts from its rows and its event log
  rollup      migration 0008's rollup (finished orders per business day and store), `refresh`
  reads       one snapshot of a period and the one before: rollup rows plus live rows
  totals      pure from here on: the rows summed per period, group, store and person
  findings    R4.3.2 what stands out, in words
  figures     the JSON answer (`compute`), scorecards (R7.2) included
  text        that answer for a terminal; `report` (with `charts`) as an HTML page
  collect     the command: refresh (when the role may write the rollup), read, compute
  refreshing  the workers' scheduled refresh of the rollup (`order-stats-refresh`)

Only `collect`, `refreshing` and `report.write` touch the database; everything after the reads
is pure and tested on hand-made rows. Analytics sits below the CLI: it returns data, the caller
renders it.

How refunds count in the statistics (R4.3.1)
--------------------------------------------
  * The money: `facts.ORDER_FACTS` gives every order a `refunded` amount. An order cancelled or
    rejected counts its whole total; any other order the sum of its agreed refunds (the
    `refunds` table of migration 0009, `state = 'agreed'`, a partial refund's amount), at most
    its total. No event carries the money: the amounts are the table's, where the order
    workflow records each request and its decision (`record_refund`). The rollup sums
    `refunded` per day and store (`stats_orders`), `totals.Totals` sums it over the period,
    and `figures` reports it under `amount`, with net = paid - refunded. A refund agreed
    after its pair was rolled up marks the pair (migration 0009's trigger), so the next
    refresh counts it.
  * The feedback: a platform refund request is a feedback case of kind `refund`
    (`feedback.by_kind`). Its response time is from the `refund_notice` event to the
    `refund_decided` event of the same case number (`rollup`'s `first_response` durations),
    and the `refund_decided` event meets the deadline keyed `refund#<refund_id>`, counted
    under the `refund_decision` clause (`facts.KEYS`); `deadline_breached` /
    `hard_limit_passed` events on that key make it late. Refunds of orders that started
    before they became feedback cases carry no case number and have no case to count.
  * The outcomes: `cancelled` and `rejected` events give the reason and who ended the order
    (`cancellations`), whatever money went back.
"""

from analytics.collect import StatsError, collect
from analytics.figures import compute
from analytics.period import GROUPS, Group, Period, parse_day, period_of
from analytics.text import render

__all__ = [
    "GROUPS",
    "Group",
    "Period",
    "StatsError",
    "collect",
    "compute",
    "parse_day",
    "period_of",
    "render",
]
