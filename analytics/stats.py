"""Statistics of a period, what stands out in them, and the staff scorecards (R4.3, R7.2).

    orderctl stats [--from DATE] [--to DATE] [--by store|region|type|hour] [--json]

The figures are read from the rollup of migration 0008 (finished orders per business day and
store) plus, from the raw tables, the running orders, the orders finished since the last refresh
and the pairs changed since, all in one snapshot: every order counts exactly once, and a period
of a million orders answers in under two seconds (docs/benchmarks.md). `refresh` brings the
rollup up to date first. The SQL that builds rollup rows and the SQL that computes the rest on
the fly are the same statements aimed at other tables, so the two cannot disagree.

Everything after the queries is pure: `Totals` of a group and period are summed from rows, and
`figures`, `find` (R4.3.2) and `scorecards` (R7.2) read only those, so they are tested on
hand-made inputs.

Where the event log stands in for a figure (the measures name it; no table holds it):
  * a deadline met: the event that ends its work (received, a review verdict, accepted,
    assigned, a person's confirmation, ready, delivered, booked, visit_reconfirmed, a feedback
    response or resolution, a reminder reply, a refund decision) with no breach of its key;
    breaches come from the post-execution summary (finished orders: it also knows a receive
    deadline missed before the order was on record) and from `deadline_breached` /
    `hard_limit_passed` events. Met, breached (late, within the hard limit) and hard (past
    it) are disjoint.
  * who held an order when: the `assigned` / `reassigned` events, so a breach is the person's
    who held the order at the breach, a deadline met the person's who held it when the work
    ended; receive, review, accept and assign are the system's and nobody's.
  * handling time: from the first `assigned` to `delivered`, for the person holding it then.
  * refunds: orders cancelled or rejected count in full; any other order counts the money of
    its agreed refunds (the `refunds` table of migration 0009: a partial refund's amount),
    at most its total. Net is paid less refunded.
  * feedback response time: from a case's opening to its first response, paired by the case
    number on the events: `feedback_opened` / `feedback_responded`, and for the platform's
    reminders and refund requests (R4.2.1) `customer_reminded` / `reminder_replied` and
    `refund_notice` / `refund_decided`. Reminders and refunds of orders that started before
    they became feedback cases carry no case number and have no case to count.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Literal

import asyncpg

from infra.database import Conn, connect
from infra.settings import BUSINESS_TZ
from meituan.codes import MerchantCancelReason, PlatformCancelReason
from schemas.policy import Clause

# --- what the figures are about ---------------------------------------------------------------

Group = Literal["store", "region", "type", "hour"]
GROUPS: tuple[Group, ...] = ("store", "region", "type", "hour")
TERMINAL = ("closed", "rejected", "cancelled")
OUTCOMES = (*TERMINAL, "open")
STAGES = (
    "received",
    "reviewing",
    "accepted",
    "assigned",
    "confirmed",
    "in_progress",
    "delivering",
    "delivered",
    "on_hold",
)
CLAUSES = tuple(clause.value for clause in Clause)  # in the order of the measures

BUCKETS_PER_UNIT = 20
"""Duration histograms: bucket b holds ln(1 + seconds) * 20 in [b, b + 1), about 5 % wide."""
FORMAT = f"1:ln*{BUCKETS_PER_UNIT}"
"""The rollup's format; another one in stats_state rebuilds the rollup."""
_REFRESH_LOCK = 0x7374_6174_7331  # pg_advisory_lock key: one refresh at a time

# --- the period --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Business days `start`..`end`, both included, in the business zone."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"the period ends ({self.end}) before it starts ({self.start})")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """R4.3.2 the same length just before, to compare with."""
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def bounds(self, zone: tzinfo) -> tuple[datetime, datetime]:
        start = datetime.combine(self.start, datetime.min.time(), zone)
        end = datetime.combine(self.end + timedelta(days=1), datetime.min.time(), zone)
        return start, end

    def label(self) -> str:
        return str(self.start) if self.days == 1 else f"{self.start} – {self.end}"

    @classmethod
    def today(cls, zone: tzinfo = BUSINESS_TZ) -> Period:
        day = datetime.now(zone).date()
        return cls(day, day)


def zone_name(zone: tzinfo) -> str:
    """The IANA name PostgreSQL cuts days with."""
    return str(getattr(zone, "key", None) or zone)


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(value: str) -> date:
    """A business day as typed: 2025-06-01, or today / yesterday."""
    text = value.strip().lower()
    today = datetime.now(BUSINESS_TZ).date()
    if text in ("today", "yesterday"):
        return today - timedelta(days=1 if text == "yesterday" else 0)
    if _DAY.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f"expected a date such as 2025-06-01 (or today, yesterday), got {value!r}")


class StatsError(Exception):
    """A failure explained in one line for the person."""


# ==================================================================================================
# SQL: the rollup's rows, built alike for refresh (stats_*) and for the live part (live_*)
# ==================================================================================================

ROLLUP = (
    "orders",
    "durations",
    "deadlines",
    "anomalies",
    "cancels",
    "feedback",
    "staff",
    "staff_deadlines",
)

_SCOPE_COLUMNS = """
    o.order_id,
    (o.created_at AT TIME ZONE $1)::date AS day,
    extract(hour FROM o.created_at AT TIME ZONE $1)::smallint AS hour,
    o.store_code, o.order_type, o.region, o.source, o.total, o.discount_total, o.stage,
    o.stage IN ('closed', 'rejected', 'cancelled') AS finished,
    s.order_id IS NOT NULL AS summarised, s.rating AS summary_rating, s.stage_seconds,
    s.breaches
"""

# Refresh: the finished orders of the claimed pairs that are not pending (an order finishing
# meanwhile is added by the next refresh), and the claimed pending orders outside those pairs.
_SCOPE_REFRESH = f"""
CREATE TEMP TABLE stats_scope ON COMMIT DROP AS
SELECT {_SCOPE_COLUMNS}
FROM stats_pairs p
JOIN orders_masked o
  ON o.store_code = p.store_code AND o.created_at >= p.starts AND o.created_at < p.ends
LEFT JOIN order_summaries s ON s.order_id = o.order_id
WHERE o.stage IN ('closed', 'rejected', 'cancelled')
  AND NOT EXISTS (SELECT 1 FROM stats_pending q WHERE q.order_id = o.order_id)
UNION ALL
SELECT {_SCOPE_COLUMNS}
FROM stats_claimed c
JOIN orders_masked o ON o.order_id = c.order_id
LEFT JOIN order_summaries s ON s.order_id = o.order_id
WHERE NOT EXISTS (
    SELECT 1 FROM stats_pairs p WHERE p.day = c.day AND p.store_code = c.store_code)
"""

# Live: the period's running orders (partial index), its pending orders, and the finished
# orders of its marked pairs that are not pending.
_SCOPE_LIVE = f"""
CREATE TEMP TABLE stats_scope ON COMMIT DROP AS
SELECT {_SCOPE_COLUMNS}
FROM orders_masked o
LEFT JOIN order_summaries s ON s.order_id = o.order_id
WHERE o.created_at >= $2 AND o.created_at < $3
  AND o.stage NOT IN ('closed', 'rejected', 'cancelled')
UNION ALL
SELECT {_SCOPE_COLUMNS}
FROM stats_pending q
JOIN orders_masked o ON o.order_id = q.order_id
LEFT JOIN order_summaries s ON s.order_id = o.order_id
WHERE o.created_at >= $2 AND o.created_at < $3
UNION ALL
SELECT {_SCOPE_COLUMNS}
FROM stats_pairs p
JOIN orders_masked o
  ON o.store_code = p.store_code AND o.created_at >= p.starts AND o.created_at < p.ends
LEFT JOIN order_summaries s ON s.order_id = o.order_id
WHERE o.stage IN ('closed', 'rejected', 'cancelled')
  AND NOT EXISTS (SELECT 1 FROM stats_pending q WHERE q.order_id = o.order_id)
"""

_EVENTS_READ = [
    "received",
    "review_pass",
    "review_reject",
    "review_anomaly",
    "accepted",
    "assigned",
    "reassigned",
    "confirmed_with_customer",
    "customer_changed",
    "ready",
    "delivered",
    "booked",
    "visit_reconfirmed",
    "feedback_opened",
    "feedback_responded",
    "feedback_resolved",
    "customer_reminded",
    "reminder_replied",
    "refund_notice",
    "refund_decided",
    "deadline_breached",
    "hard_limit_passed",
    "rated",
    "cancelled",
    "rejected",
]

# Each event with the person holding the order at it (the latest assigned / reassigned).
_EVENTS = """
CREATE TEMP TABLE stats_ev ON COMMIT DROP AS
SELECT x.order_id, x.seq, x.at, x.event, x.actor, x.order_type, x.took,
       max(x.took) OVER (PARTITION BY x.order_id, x.grp) AS holder,
       x.key, x.case_no, x.round, x.ref, x.kind, x.score, x.cancel_code, x.by_whom
FROM (
    SELECT e.order_id, e.seq, e.at, e.event, e.actor, sc.order_type,
           CASE e.event WHEN 'assigned' THEN e.details ->> 'assignee'
                        WHEN 'reassigned' THEN e.details ->> 'to_staff' END AS took,
           count(*) FILTER (WHERE e.event IN ('assigned', 'reassigned'))
               OVER (PARTITION BY e.order_id ORDER BY e.seq) AS grp,
           e.details ->> 'key' AS key, e.details ->> 'case' AS case_no,
           e.details ->> 'round' AS round,
           COALESCE(e.details ->> 'remind_id', e.details ->> 'refund_id') AS ref,
           e.details ->> 'kind' AS kind, (e.details ->> 'score')::smallint AS score,
           (e.details ->> 'cancel_code')::int AS cancel_code, e.details ->> 'by' AS by_whom
    FROM stats_scope sc
    CROSS JOIN LATERAL (  -- by the primary key, order by order: never a scan of the whole log
        SELECT * FROM order_events oe
        WHERE oe.order_id = sc.order_id AND oe.event = ANY($1::text[])
    ) e
) x
"""

# One row per deadline key of an order: met, breached or hard, and whose it was.
_KEYS = r"""
CREATE TEMP TABLE stats_keys ON COMMIT DROP AS
WITH marks AS (
    SELECT order_id, seq, holder, 3 AS rank,
           CASE event
               WHEN 'received' THEN 'receive'
               WHEN 'review_pass' THEN 'review'
               WHEN 'review_reject' THEN 'review'
               WHEN 'review_anomaly' THEN 'review'
               WHEN 'accepted' THEN 'accept'
               WHEN 'assigned' THEN 'assign'
               WHEN 'ready' THEN 'prepare'
               WHEN 'delivered'
                   THEN CASE WHEN order_type = 'goods' THEN 'deliver' ELSE 'execute' END
               WHEN 'booked' THEN 'schedule'
               WHEN 'visit_reconfirmed' THEN 'reconfirm_visit'
               WHEN 'feedback_responded'
                   THEN 'feedback_response#' || case_no || '.' || round
               WHEN 'reminder_replied' THEN 'reminder#' || ref
               WHEN 'refund_decided' THEN 'refund#' || ref
           END AS key
    FROM stats_ev
    WHERE event IN ('received', 'review_pass', 'review_reject', 'review_anomaly', 'accepted',
                    'assigned', 'ready', 'delivered', 'booked', 'visit_reconfirmed',
                    'feedback_responded', 'reminder_replied', 'refund_decided')
    UNION ALL
    SELECT order_id, seq, holder, 3,
           'feedback_resolution#' || case_no || '.'
               || row_number() OVER (PARTITION BY order_id, case_no ORDER BY seq)
    FROM stats_ev
    WHERE event = 'feedback_resolved'
    UNION ALL
    SELECT order_id, seq, holder, 3,
           CASE WHEN row_number() OVER (PARTITION BY order_id ORDER BY seq) = 1 THEN 'confirm'
                ELSE 'confirm#' || (changes + 1) END
    FROM (
        SELECT order_id, seq, holder, event, actor,
               count(*) FILTER (WHERE event = 'customer_changed')
                   OVER (PARTITION BY order_id ORDER BY seq) AS changes
        FROM stats_ev
        WHERE event IN ('confirmed_with_customer', 'customer_changed')
    ) c
    WHERE event = 'confirmed_with_customer' AND actor <> 'system'
    UNION ALL
    SELECT order_id, seq, holder, CASE event WHEN 'hard_limit_passed' THEN 1 ELSE 2 END, key
    FROM stats_ev
    WHERE event IN ('deadline_breached', 'hard_limit_passed')
    UNION ALL
    SELECT sc.order_id, NULL, NULL, CASE WHEN b.k LIKE '% (hard)' THEN 1 ELSE 2 END,
           regexp_replace(b.k, ' \(hard\)$', '')
    FROM stats_scope sc
    CROSS JOIN LATERAL jsonb_array_elements_text(sc.breaches) AS b(k)
    WHERE sc.summarised
)
SELECT m.order_id, m.key,
       CASE split_part(m.key, '#', 1)
           WHEN 'reminder' THEN 'reminder_reply'
           WHEN 'refund' THEN 'refund_decision'
           ELSE split_part(m.key, '#', 1)
       END AS clause,
       CASE min(m.rank) WHEN 1 THEN 'hard' WHEN 2 THEN 'breached' ELSE 'met' END AS state,
       (array_agg(m.holder ORDER BY m.rank, m.seq) FILTER (WHERE m.holder IS NOT NULL))[1]
           AS holder
FROM marks m
WHERE m.key IS NOT NULL
GROUP BY m.order_id, m.key
"""

# R5.2.2 the anomaly_decision deadline runs in the anomaly's own workflow: its outcome tells.
_ANOMALY_KEYS = """
INSERT INTO stats_keys (order_id, key, clause, state, holder)
SELECT a.order_id, a.anomaly_id, 'anomaly_decision',
       CASE WHEN a.outcome ->> 'decided_by' = 'policy' THEN 'hard'
            WHEN COALESCE((a.outcome ->> 'escalations')::int, 0) > 0 THEN 'breached'
            ELSE 'met' END,
       CASE WHEN a.outcome ->> 'decided_by' = 'policy' THEN NULL
            ELSE a.outcome ->> 'decided_by' END
FROM stats_scope sc
JOIN anomalies a ON a.order_id = sc.order_id
WHERE a.outcome IS NOT NULL AND a.outcome ->> 'decided_by' <> 'system'
"""

_HANDLING = """
CREATE TEMP TABLE stats_handling ON COMMIT DROP AS
SELECT h.order_id, extract(epoch FROM h.delivered_at - h.assigned_at)::float8 AS seconds,
       d.holder
FROM (
    SELECT order_id, min(at) FILTER (WHERE event = 'assigned') AS assigned_at,
           min(at) FILTER (WHERE event = 'delivered') AS delivered_at,
           min(seq) FILTER (WHERE event = 'delivered') AS delivered_seq
    FROM stats_ev
    WHERE event IN ('assigned', 'delivered')
    GROUP BY order_id
) h
JOIN stats_ev d ON d.order_id = h.order_id AND d.seq = h.delivered_seq
WHERE h.assigned_at IS NOT NULL
"""

_ORDER_FACTS = """
CREATE TEMP TABLE stats_ord ON COMMIT DROP AS
SELECT sc.order_id, sc.day, sc.hour, sc.store_code, sc.order_type, sc.region,
       CASE WHEN sc.finished THEN sc.stage ELSE 'open' END AS outcome,
       sc.total + sc.discount_total AS gross, sc.discount_total AS discounts, sc.total AS paid,
       CASE WHEN sc.stage IN ('cancelled', 'rejected') THEN sc.total
            ELSE LEAST(sc.total, COALESCE(rf.refunded, 0)) END AS refunded,
       COALESCE(sc.summary_rating, r.score) AS rating,
       COALESCE(f.complaints, 0) > 0 AS complained,
       COALESCE(k.late, false) AS breached,
       COALESCE(k.hard, false) AS hard,
       a.order_id IS NOT NULL AS anomalous,
       sc.source = 'patrol' AS patrol
FROM stats_scope sc
LEFT JOIN (  -- R4.3.1 agreed refunds, partial ones included
    SELECT r.order_id, sum(r.refunded) AS refunded
    FROM stats_scope s4 JOIN refunds_masked r ON r.order_id = s4.order_id
    WHERE r.state = 'agreed'
    GROUP BY r.order_id
) rf ON rf.order_id = sc.order_id
LEFT JOIN (
    SELECT DISTINCT ON (order_id) order_id, score
    FROM stats_ev WHERE event = 'rated' ORDER BY order_id, seq DESC
) r ON r.order_id = sc.order_id
LEFT JOIN (
    SELECT f.order_id, count(*) FILTER (WHERE f.kind = 'complaint') AS complaints
    FROM stats_scope s2 JOIN feedback_masked f ON f.order_id = s2.order_id
    GROUP BY f.order_id
) f ON f.order_id = sc.order_id
LEFT JOIN (
    SELECT order_id, bool_or(state <> 'met') AS late, bool_or(state = 'hard') AS hard
    FROM stats_keys GROUP BY order_id
) k ON k.order_id = sc.order_id
LEFT JOIN (
    SELECT DISTINCT a.order_id
    FROM stats_scope s3 JOIN anomalies_masked a ON a.order_id = s3.order_id
) a ON a.order_id = sc.order_id
"""

_DIMENSIONS = ("day", "store_code", "order_type", "region")
_KEYS_OF: dict[str, tuple[str, ...]] = {
    "orders": (*_DIMENSIONS, "hour", "outcome"),
    "durations": (*_DIMENSIONS, "metric", "bucket"),
    "deadlines": (*_DIMENSIONS, "clause"),
    "anomalies": (*_DIMENSIONS, "kind", "decision"),
    "cancels": (*_DIMENSIONS, "outcome", "code", "by_whom"),
    "feedback": (*_DIMENSIONS, "kind"),
    "staff": ("day", "store_code", "staff_id"),
    "staff_deadlines": ("day", "store_code", "staff_id", "clause"),
}
_VALUES_OF: dict[str, tuple[str, ...]] = {
    "orders": (
        "orders",
        "gross",
        "discounts",
        "paid",
        "refunded",
        "rated",
        "rating_sum",
        "rating_1",
        "rating_2",
        "rating_3",
        "rating_4",
        "rating_5",
        "complained_orders",
        "breached_orders",
        "hard_orders",
        "anomaly_orders",
        "patrol_found",
    ),
    "durations": ("n", "seconds"),
    "deadlines": ("met", "breached", "hard"),
    "anomalies": ("n", "escalated", "resumed"),
    "cancels": ("n",),
    "feedback": ("cases", "responded", "rounds", "multi_round", "satisfied", "escalated"),
    "staff": (
        "orders",
        "handled",
        "handling_seconds",
        "rated",
        "rating_sum",
        "complaints",
        "anomalies_decided",
    ),
    "staff_deadlines": ("met", "breached", "hard"),
}


def _upsert(table: str, target: str) -> str:
    """Every rollup column is a sum, so rows of orders not yet counted are added to it."""
    keys, values = _KEYS_OF[table], _VALUES_OF[table]
    added = ", ".join(f"{v} = {target}.{v} + EXCLUDED.{v}" for v in values)
    return (
        f"INSERT INTO {target} ({', '.join((*keys, *values))})"
        + _SELECTS[table]
        + f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added}"
    )


_SELECTS: dict[str, str] = {
    "orders": """
SELECT day, store_code, order_type, region, hour, outcome, count(*), sum(gross),
       sum(discounts), sum(paid), sum(refunded), count(rating), COALESCE(sum(rating), 0),
       count(*) FILTER (WHERE rating = 1), count(*) FILTER (WHERE rating = 2),
       count(*) FILTER (WHERE rating = 3), count(*) FILTER (WHERE rating = 4),
       count(*) FILTER (WHERE rating = 5), count(*) FILTER (WHERE complained),
       count(*) FILTER (WHERE breached), count(*) FILTER (WHERE hard),
       count(*) FILTER (WHERE anomalous), count(*) FILTER (WHERE patrol)
FROM stats_ord
GROUP BY day, store_code, order_type, region, hour, outcome
""",
    "durations": f"""
SELECT day, store_code, order_type, region, metric,
       floor(ln(1 + greatest(seconds, 0)) * {BUCKETS_PER_UNIT})::smallint, count(*), sum(seconds)
FROM (
    SELECT sc.day, sc.store_code, sc.order_type, sc.region, 'stage:' || st.key AS metric,
           st.value::float8 AS seconds
    FROM stats_scope sc
    CROSS JOIN LATERAL jsonb_each_text(sc.stage_seconds) AS st(key, value)
    WHERE sc.summarised AND st.key NOT IN ('closed', 'rejected', 'cancelled')
    UNION ALL
    SELECT sc.day, sc.store_code, sc.order_type, sc.region, 'handling', h.seconds
    FROM stats_handling h JOIN stats_scope sc ON sc.order_id = h.order_id
    UNION ALL
    SELECT sc.day, sc.store_code, sc.order_type, sc.region, 'first_response',
           extract(epoch FROM fr.responded - fr.opened)::float8
    FROM (  -- R4.2.2 every case, the platform's reminders and refund requests included
        SELECT order_id, case_no,
               min(at) FILTER (WHERE event IN ('feedback_opened', 'customer_reminded',
                                               'refund_notice')) AS opened,
               min(at) FILTER (WHERE event IN ('feedback_responded', 'reminder_replied',
                                               'refund_decided')) AS responded
        FROM stats_ev
        WHERE event IN ('feedback_opened', 'feedback_responded', 'customer_reminded',
                        'reminder_replied', 'refund_notice', 'refund_decided')
          AND case_no IS NOT NULL
        GROUP BY order_id, case_no
    ) fr
    JOIN stats_scope sc ON sc.order_id = fr.order_id
    WHERE fr.opened IS NOT NULL AND fr.responded IS NOT NULL
) x
GROUP BY 1, 2, 3, 4, 5, 6
""",
    "deadlines": """
SELECT sc.day, sc.store_code, sc.order_type, sc.region, k.clause,
       count(*) FILTER (WHERE k.state = 'met'), count(*) FILTER (WHERE k.state = 'breached'),
       count(*) FILTER (WHERE k.state = 'hard')
FROM stats_keys k JOIN stats_scope sc ON sc.order_id = k.order_id
GROUP BY 1, 2, 3, 4, 5
""",
    "anomalies": """
SELECT sc.day, sc.store_code, sc.order_type, sc.region, a.kind, COALESCE(a.decision, 'open'),
       count(*), count(*) FILTER (WHERE COALESCE((a.outcome ->> 'escalations')::int, 0) > 0),
       count(*) FILTER (WHERE COALESCE((a.outcome ->> 'resume')::boolean, false))
FROM stats_scope sc JOIN anomalies a ON a.order_id = sc.order_id
GROUP BY 1, 2, 3, 4, 5, 6
""",
    "cancels": """
SELECT sc.day, sc.store_code, sc.order_type, sc.region, sc.stage,
       COALESCE(t.cancel_code, 0),
       CASE WHEN sc.stage = 'rejected' THEN 'review'
            WHEN t.by_whom IS NULL THEN 'unknown'
            WHEN t.by_whom IN ('platform', 'policy', 'refund', 'review', 'operator', 'system',
                               'customer') THEN t.by_whom
            ELSE 'staff' END,
       count(*)
FROM stats_scope sc
LEFT JOIN (
    SELECT DISTINCT ON (order_id, event) order_id, event, cancel_code, by_whom
    FROM stats_ev WHERE event IN ('cancelled', 'rejected') ORDER BY order_id, event, seq DESC
) t ON t.order_id = sc.order_id AND t.event = sc.stage
WHERE sc.stage IN ('cancelled', 'rejected')
GROUP BY 1, 2, 3, 4, 5, 6, 7
""",
    "feedback": """
SELECT sc.day, sc.store_code, sc.order_type, sc.region, f.kind, count(*),
       count(*) FILTER (WHERE f.responses > 0), sum(f.rounds),
       count(*) FILTER (WHERE f.rounds > 1), count(*) FILTER (WHERE f.state = 'satisfied'),
       count(*) FILTER (WHERE f.state = 'escalated')
FROM stats_scope sc JOIN feedback_masked f ON f.order_id = sc.order_id
GROUP BY 1, 2, 3, 4, 5
""",
    "staff": """
SELECT sc.day, sc.store_code, x.staff_id,
       count(DISTINCT x.order_id) FILTER (WHERE x.held), count(x.handling),
       COALESCE(sum(x.handling), 0), count(x.rating), COALESCE(sum(x.rating), 0),
       count(*) FILTER (WHERE x.complaint), count(*) FILTER (WHERE x.decided)
FROM (
    SELECT order_id, took AS staff_id, true AS held, NULL::float8 AS handling,
           NULL::int AS rating, false AS complaint, false AS decided
    FROM stats_ev WHERE took IS NOT NULL
    UNION ALL
    SELECT h.order_id, h.holder, false, h.seconds, o.rating, false, false
    FROM stats_handling h JOIN stats_ord o ON o.order_id = h.order_id
    WHERE h.holder IS NOT NULL
    UNION ALL
    SELECT order_id, holder, false, NULL, NULL, true, false
    FROM stats_ev
    WHERE event = 'feedback_opened' AND kind = 'complaint' AND holder IS NOT NULL
    UNION ALL
    SELECT a.order_id, a.outcome ->> 'decided_by', false, NULL, NULL, false, true
    FROM stats_scope s2 JOIN anomalies a ON a.order_id = s2.order_id
    WHERE a.outcome ->> 'decided_by' NOT IN ('system', 'policy')
) x
JOIN stats_scope sc ON sc.order_id = x.order_id
GROUP BY 1, 2, 3
""",
    "staff_deadlines": """
SELECT sc.day, sc.store_code, k.holder, k.clause,
       count(*) FILTER (WHERE k.state = 'met'), count(*) FILTER (WHERE k.state = 'breached'),
       count(*) FILTER (WHERE k.state = 'hard')
FROM stats_keys k JOIN stats_scope sc ON sc.order_id = k.order_id
WHERE k.holder IS NOT NULL AND k.clause NOT IN ('receive', 'review', 'accept', 'assign')
GROUP BY 1, 2, 3, 4
""",
}

_PAIRS_TABLE = """
CREATE TEMP TABLE stats_pairs (
    day date, store_code text, starts timestamptz, ends timestamptz
) ON COMMIT DROP
"""


async def _build(
    conn: Conn, zone: str, target: str, scope_sql: str, *scope_args: Any
) -> tuple[int, dict[str, float]]:
    """Compute the rollup rows of the scope's orders into `<target>_*`; returns its orders and
    the seconds of each step."""
    seconds: dict[str, float] = {}

    async def step(label: str, sql: str, *args: Any) -> None:
        began = time.perf_counter()
        await conn.execute(sql, *args)
        seconds[label] = round(time.perf_counter() - began, 4)

    await step("scope", scope_sql, zone, *scope_args)
    await step("scope_analyze", "ANALYZE stats_scope")  # else the event join reads all events
    await step("events", _EVENTS, _EVENTS_READ)
    await step("keys", _KEYS)
    await step("anomaly_keys", _ANOMALY_KEYS)
    await step("handling", _HANDLING)
    await step("order_facts", _ORDER_FACTS)
    for table in ROLLUP:
        await step(f"insert_{table}", _upsert(table, f"{target}_{table}"))
    orders: int = await conn.fetchval("SELECT count(*) FROM stats_scope")
    return orders, seconds


@dataclass
class Refreshed:
    pairs: int
    orders: int
    rebuilt: bool
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)


async def refresh(conn: Conn, zone: tzinfo = BUSINESS_TZ) -> Refreshed:
    """Add the orders finished since the last refresh and recompute the marked pairs (every pair
    when the zone or the rollup's format changed). One refresh at a time; the figures of
    `read` are right without it, only slower."""
    began = time.perf_counter()
    name = zone_name(zone)
    await conn.execute("SELECT pg_advisory_lock($1)", _REFRESH_LOCK)
    try:
        rebuilt = False
        state = await conn.fetchrow("SELECT zone, format FROM stats_state")
        if state is None or state["zone"] != name or state["format"] != FORMAT:
            # Committed before the rebuild: an order finishing from now on is pending.
            async with conn.transaction():
                await conn.execute(
                    """
                    INSERT INTO stats_state (zone, format) VALUES ($1, $2)
                    ON CONFLICT (singleton) DO UPDATE
                        SET zone = EXCLUDED.zone, format = EXCLUDED.format, refreshed_at = now()
                    """,
                    name,
                    FORMAT,
                )
                for table in ROLLUP:
                    await conn.execute(f"DELETE FROM stats_{table}")
                await conn.execute("DELETE FROM stats_pending")
                await conn.execute(
                    """
                    INSERT INTO stats_dirty (day, store_code)
                    SELECT DISTINCT (created_at AT TIME ZONE $1)::date, store_code
                    FROM orders WHERE stage IN ('closed', 'rejected', 'cancelled')
                    ON CONFLICT (day, store_code) DO NOTHING
                    """,
                    name,
                )
            rebuilt = True
        async with conn.transaction():
            await conn.execute(_PAIRS_TABLE)
            await conn.execute(
                """
                WITH claimed AS (DELETE FROM stats_dirty RETURNING day, store_code)
                INSERT INTO stats_pairs
                SELECT day, store_code, day::timestamp AT TIME ZONE $1,
                       (day + 1)::timestamp AT TIME ZONE $1
                FROM claimed
                """,
                name,
            )
            await conn.execute(
                """
                CREATE TEMP TABLE stats_claimed ON COMMIT DROP AS
                WITH claimed AS (DELETE FROM stats_pending RETURNING order_id, day, store_code)
                SELECT * FROM claimed
                """
            )
            pairs: int = await conn.fetchval("SELECT count(*) FROM stats_pairs")
            pending: int = await conn.fetchval("SELECT count(*) FROM stats_claimed")
            orders = 0
            steps: dict[str, float] = {}
            if pairs or pending:
                deleting = time.perf_counter()
                if pairs:
                    for table in ROLLUP:
                        await conn.execute(
                            f"""
                            DELETE FROM stats_{table} r USING stats_pairs p
                            WHERE r.day = p.day AND r.store_code = p.store_code
                            """
                        )
                steps["delete"] = round(time.perf_counter() - deleting, 4)
                orders, built = await _build(conn, name, "stats", _SCOPE_REFRESH)
                steps |= built
                await conn.execute("UPDATE stats_state SET refreshed_at = now()")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _REFRESH_LOCK)
    return Refreshed(pairs, orders, rebuilt, time.perf_counter() - began, steps)


# ==================================================================================================
# Reading a period and the one before it, in one snapshot
# ==================================================================================================


def _source(table: str) -> str:
    """Rollup rows of clean pairs in the range, plus the live rows."""
    return f"""(
        SELECT r.* FROM stats_{table} r
        WHERE r.day BETWEEN $1 AND $2
          AND NOT EXISTS (
              SELECT 1 FROM read_dirty d WHERE d.day = r.day AND d.store_code = r.store_code)
        UNION ALL
        SELECT * FROM live_{table}
    ) x"""


_PERIOD = "CASE WHEN x.day >= $3 THEN 'current' ELSE 'previous' END AS period"
# Types all three parameters, also in a query that does not need the third.
_WHERE = "($1::date IS NOT NULL AND $2::date IS NOT NULL AND $3::date IS NOT NULL)"

_READS: dict[str, str] = {
    "orders": f"""
SELECT {_PERIOD}, store_code, order_type, region, hour, outcome, sum(orders)::int AS orders,
       sum(gross) AS gross, sum(discounts) AS discounts, sum(paid) AS paid,
       sum(refunded) AS refunded, sum(rated)::int AS rated, sum(rating_sum)::int AS rating_sum,
       sum(rating_1)::int AS r1, sum(rating_2)::int AS r2, sum(rating_3)::int AS r3,
       sum(rating_4)::int AS r4, sum(rating_5)::int AS r5,
       sum(complained_orders)::int AS complained, sum(breached_orders)::int AS breached,
       sum(hard_orders)::int AS hard, sum(anomaly_orders)::int AS anomalous,
       sum(patrol_found)::int AS patrol
FROM {_source("orders")} WHERE {_WHERE}
GROUP BY 1, 2, 3, 4, 5, 6
""",
    "daily": f"""
SELECT x.day, sum(x.orders)::int AS orders
FROM {_source("orders")} WHERE {_WHERE}
GROUP BY 1
""",
    "durations": f"""
SELECT {_PERIOD}, {{keys}} metric, bucket, sum(n)::int AS n, sum(seconds) AS seconds
FROM {_source("durations")} WHERE {_WHERE}
GROUP BY {{groups}}
""",
    "deadlines": f"""
SELECT {_PERIOD}, store_code, order_type, region, clause, sum(met)::int AS met,
       sum(breached)::int AS breached, sum(hard)::int AS hard
FROM {_source("deadlines")} WHERE {_WHERE}
GROUP BY 1, 2, 3, 4, 5
""",
    "anomalies": f"""
SELECT x.day, {_PERIOD}, store_code, order_type, region, kind, decision, sum(n)::int AS n,
       sum(escalated)::int AS escalated, sum(resumed)::int AS resumed
FROM {_source("anomalies")} WHERE {_WHERE}
GROUP BY 1, 2, 3, 4, 5, 6, 7
""",
    "cancels": f"""
SELECT {_PERIOD}, outcome, code, by_whom, sum(n)::int AS n
FROM {_source("cancels")} WHERE {_WHERE}
GROUP BY 1, 2, 3, 4
""",
    "feedback": f"""
SELECT {_PERIOD}, store_code, order_type, region, kind, sum(cases)::int AS cases,
       sum(responded)::int AS responded, sum(rounds)::int AS rounds,
       sum(multi_round)::int AS multi_round, sum(satisfied)::int AS satisfied,
       sum(escalated)::int AS escalated
FROM {_source("feedback")} WHERE {_WHERE}
GROUP BY 1, 2, 3, 4, 5
""",
    "staff": f"""
SELECT {_PERIOD}, staff_id, sum(orders)::int AS orders, sum(handled)::int AS handled,
       sum(handling_seconds) AS handling_seconds, sum(rated)::int AS rated,
       sum(rating_sum)::int AS rating_sum, sum(complaints)::int AS complaints,
       sum(anomalies_decided)::int AS anomalies_decided
FROM {_source("staff")} WHERE {_WHERE}
GROUP BY 1, 2
""",
    "staff_deadlines": f"""
SELECT {_PERIOD}, staff_id, clause, sum(met)::int AS met, sum(breached)::int AS breached,
       sum(hard)::int AS hard
FROM {_source("staff_deadlines")} WHERE {_WHERE}
GROUP BY 1, 2, 3
""",
}

Rows = list[dict[str, Any]]


@dataclass
class Raw:
    """The query results of one read: plain rows, as the pure functions take them."""

    period: Period
    zone: str
    by: Group | None
    rows: dict[str, Rows] = field(default_factory=dict)
    staff: Rows = field(default_factory=list)
    departments: dict[str, str] = field(default_factory=dict)
    patrol: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    live_orders: int = 0
    dirty_pairs: int = 0


async def read(conn: Conn, period: Period, by: Group | None, zone: tzinfo = BUSINESS_TZ) -> Raw:
    """Everything the figures need, for the period and the one before, in one snapshot."""
    name = zone_name(zone)
    raw = Raw(period, name, by)
    previous = period.previous()
    first, _ = previous.bounds(zone)
    current_start, last = period.bounds(zone)
    args = (previous.start, period.end, period.start)

    async def timed(key: str, sql: str, *params: Any) -> Rows:
        began = time.perf_counter()
        rows = [dict(r) for r in await conn.fetch(sql, *params)]
        raw.seconds[key] = round(time.perf_counter() - began, 4)
        return rows

    async with conn.transaction(isolation="repeatable_read"):
        began = time.perf_counter()
        await conn.execute(_PAIRS_TABLE)
        await conn.execute(
            """
            CREATE TEMP TABLE read_dirty ON COMMIT DROP AS
            SELECT day, store_code FROM stats_dirty WHERE day BETWEEN $1 AND $2
            """,
            previous.start,
            period.end,
        )
        await conn.execute(
            """
            INSERT INTO stats_pairs
            SELECT day, store_code, day::timestamp AT TIME ZONE $1,
                   (day + 1)::timestamp AT TIME ZONE $1
            FROM read_dirty
            """,
            name,
        )
        raw.dirty_pairs = await conn.fetchval("SELECT count(*) FROM read_dirty")
        for table in ROLLUP:
            await conn.execute(
                f"CREATE TEMP TABLE live_{table} (LIKE stats_{table} INCLUDING INDEXES) "
                "ON COMMIT DROP"
            )
        raw.live_orders, _ = await _build(conn, name, "live", _SCOPE_LIVE, first, last)
        raw.seconds["live"] = round(time.perf_counter() - began, 4)

        for key in ("orders", "daily", "deadlines", "anomalies", "cancels", "feedback"):
            raw.rows[key] = await timed(key, _READS[key], *args)
        keys = "store_code, order_type, region," if by in ("store", "region", "type") else ""
        groups = "1, 2, 3, 4, 5, 6" if keys else "1, 2, 3"
        raw.rows["durations"] = await timed(
            "durations", _READS["durations"].format(keys=keys, groups=groups), *args
        )
        raw.rows["staff"] = await timed("staff", _READS["staff"], *args)
        raw.rows["staff_deadlines"] = await timed(
            "staff_deadlines", _READS["staff_deadlines"], *args
        )
        raw.staff = await timed("staff_info", "SELECT staff_id, department, role FROM staff_masked")
        raw.departments = {
            r["code"]: r["name"] for r in await conn.fetch("SELECT code, name FROM departments")
        }
        for row in await timed(
            "patrol",
            """
            SELECT CASE WHEN at >= $2 THEN 'current' ELSE 'previous' END AS period,
                   count(*)::int AS runs, COALESCE(sum(cardinality(found)), 0)::int AS found
            FROM patrol_reports WHERE at >= $1 AND at < $3
            GROUP BY 1
            """,
            first,
            current_start,
            last,
        ):
            raw.patrol[row["period"]] = {"runs": row["runs"], "found": row["found"]}
    return raw


# ==================================================================================================
# Pure: totals, figures, findings, scorecards
# ==================================================================================================


@dataclass
class Histogram:
    """A duration histogram on the rollup's log scale; a percentile is the middle of its bucket,
    within 2.5 % of 1 + seconds of the exact value (2.5 % for anything over a minute)."""

    counts: Counter[int] = field(default_factory=Counter)
    n: int = 0
    seconds: float = 0.0

    def add(self, bucket: int, n: int, seconds: float) -> None:
        self.counts[bucket] += n
        self.n += n
        self.seconds += seconds

    def merge(self, other: Histogram) -> None:
        self.counts.update(other.counts)
        self.n += other.n
        self.seconds += other.seconds

    @staticmethod
    def bucket_of(seconds: float) -> int:
        return math.floor(math.log1p(max(seconds, 0.0)) * BUCKETS_PER_UNIT)

    @classmethod
    def of(cls, values: Iterable[float]) -> Histogram:
        hist = cls()
        for value in values:
            hist.add(cls.bucket_of(value), 1, value)
        return hist

    def percentile(self, p: float) -> float | None:
        """Nearest rank: the middle of the bucket holding the ceil(p * n)-th value."""
        if self.n == 0:
            return None
        rank = max(1, math.ceil(p * self.n))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return math.expm1((bucket + 0.5) / BUCKETS_PER_UNIT)
        return None  # pragma: no cover - counts add up to n

    def summary(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "p50": _round(self.percentile(0.5), 3),
            "p90": _round(self.percentile(0.9), 3),
            "mean": _round(self.seconds / self.n if self.n else None, 3),
        }


@dataclass
class Deadlines:
    met: int = 0
    breached: int = 0
    hard: int = 0

    def add(self, met: int, breached: int, hard: int) -> None:
        self.met += met
        self.breached += breached
        self.hard += hard

    @property
    def total(self) -> int:
        return self.met + self.breached + self.hard

    @property
    def late(self) -> int:
        return self.breached + self.hard

    def summary(self) -> dict[str, Any]:
        return {
            "met": self.met,
            "breached": self.breached,
            "hard": self.hard,
            "on_time_rate": _ratio(self.met, self.total),
        }


@dataclass
class Totals:
    """The additive figures of one group in one period."""

    orders: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    gross: Decimal = Decimal("0")
    discounts: Decimal = Decimal("0")
    paid: Decimal = Decimal("0")
    refunded: Decimal = Decimal("0")
    ratings: Counter[int] = field(default_factory=Counter)
    complained: int = 0
    breached_orders: int = 0
    hard_orders: int = 0
    anomaly_orders: int = 0
    patrol_found: int = 0
    hours: Counter[int] = field(default_factory=Counter)
    durations: dict[str, Histogram] = field(default_factory=lambda: defaultdict(Histogram))
    deadlines: dict[str, Deadlines] = field(default_factory=lambda: defaultdict(Deadlines))
    anomalies: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    feedback: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    @property
    def rated(self) -> int:
        return sum(self.ratings.values())

    @property
    def rating_average(self) -> float | None:
        return _ratio(sum(k * v for k, v in self.ratings.items()), self.rated, 2)

    @property
    def complaint_rate(self) -> float | None:
        return _ratio(self.complained, self.orders)

    @property
    def breach_rate(self) -> float | None:
        """Share of orders with a deadline missed."""
        return _ratio(self.breached_orders, self.orders)

    @property
    def net(self) -> Decimal:
        return self.paid - self.refunded

    def price_anomalies(self) -> int:
        return sum(self.anomalies.get("price", Counter()).values())


@dataclass
class StaffTotals:
    """R7.2 one person's figures in one period."""

    staff_id: str
    department: str = ""
    role: str = ""
    orders: int = 0
    handled: int = 0
    handling_seconds: float = 0.0
    rated: int = 0
    rating_sum: int = 0
    complaints: int = 0
    anomalies_decided: int = 0
    deadlines: dict[str, Deadlines] = field(default_factory=lambda: defaultdict(Deadlines))

    def merge(self, other: StaffTotals) -> None:
        self.orders += other.orders
        self.handled += other.handled
        self.handling_seconds += other.handling_seconds
        self.rated += other.rated
        self.rating_sum += other.rating_sum
        self.complaints += other.complaints
        self.anomalies_decided += other.anomalies_decided
        for clause, d in other.deadlines.items():
            self.deadlines[clause].add(d.met, d.breached, d.hard)

    @property
    def all_deadlines(self) -> Deadlines:
        total = Deadlines()
        for d in self.deadlines.values():
            total.add(d.met, d.breached, d.hard)
        return total

    def card(self) -> dict[str, Any]:
        overall = self.all_deadlines
        return {
            "orders": self.orders,
            "on_time_rate": _ratio(overall.met, overall.total),
            "late": overall.late,
            "on_time": {c: self.deadlines[c].summary() for c in CLAUSES if self.deadlines[c].total},
            "average_handling_seconds": _round(
                self.handling_seconds / self.handled if self.handled else None
            ),
            "average_rating": _ratio(self.rating_sum, self.rated, 2),
            "rated": self.rated,
            "complaints": self.complaints,
            "complaint_rate": _ratio(self.complaints, self.orders),
            "anomalies_decided": self.anomalies_decided,
        }


def _ratio(part: float, whole: float, digits: int = 4) -> float | None:
    return round(part / whole, digits) if whole else None


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def group_key(by: Group | None, row: Mapping[str, Any]) -> str:
    if by is None:
        return "all"
    if by == "hour":
        return f"{int(row['hour']):02d}"
    column = {"store": "store_code", "region": "region", "type": "order_type"}[by]
    return str(row[column])


@dataclass
class Tally:
    """Totals per period, per group in each period, and per person in each period."""

    current: Totals = field(default_factory=Totals)
    previous: Totals = field(default_factory=Totals)
    groups: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))
    previous_groups: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))
    stores: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))
    staff: dict[str, StaffTotals] = field(default_factory=dict)
    previous_staff: dict[str, StaffTotals] = field(default_factory=dict)
    daily: dict[date, dict[str, int]] = field(default_factory=dict)
    cancellations: Counter[tuple[str, int, str]] = field(default_factory=Counter)


def tally(raw: Raw) -> Tally:
    """Sum the rows into totals: the period, the previous one, the groups, stores and people."""
    t = Tally()
    by = raw.by

    def targets(row: Mapping[str, Any], with_groups: bool = True) -> list[Totals]:
        current = row["period"] == "current"
        found = [t.current if current else t.previous]
        if with_groups and by is not None:
            found.append((t.groups if current else t.previous_groups)[group_key(by, row)])
        if current and "store_code" in row:
            found.append(t.stores[row["store_code"]])
        return found

    for row in raw.rows.get("orders", []):
        for tot in targets(row):
            tot.orders += row["orders"]
            tot.outcomes[row["outcome"]] += row["orders"]
            tot.gross += row["gross"]
            tot.discounts += row["discounts"]
            tot.paid += row["paid"]
            tot.refunded += row["refunded"]
            for score in range(1, 6):
                tot.ratings[score] += row[f"r{score}"]
            tot.complained += row["complained"]
            tot.breached_orders += row["breached"]
            tot.hard_orders += row["hard"]
            tot.anomaly_orders += row["anomalous"]
            tot.patrol_found += row["patrol"]
            tot.hours[int(row["hour"])] += row["orders"]
    for row in raw.rows.get("durations", []):
        with_groups = by in ("store", "region", "type")
        for tot in targets(row, with_groups):
            tot.durations[row["metric"]].add(row["bucket"], row["n"], row["seconds"])
    for row in raw.rows.get("deadlines", []):
        for tot in targets(row, by != "hour"):
            tot.deadlines[row["clause"]].add(row["met"], row["breached"], row["hard"])
    for row in raw.rows.get("anomalies", []):
        for tot in targets(row, by != "hour"):
            tot.anomalies[row["kind"]][row["decision"]] += row["n"]
        day = t.daily.setdefault(row["day"], Counter())
        day[row["kind"]] += row["n"]
    for row in raw.rows.get("feedback", []):
        for tot in targets(row, by != "hour"):
            case = tot.feedback[row["kind"]]
            for name in ("cases", "responded", "rounds", "multi_round", "satisfied", "escalated"):
                case[name] += row[name]
    for row in raw.rows.get("cancels", []):
        if row["period"] == "current":
            t.cancellations[(row["outcome"], row["code"], row["by_whom"])] += row["n"]
    for row in raw.rows.get("daily", []):
        t.daily.setdefault(row["day"], Counter())["orders"] += row["orders"]
    who = {r["staff_id"]: r for r in raw.staff}
    for row in raw.rows.get("staff", []):
        people = t.staff if row["period"] == "current" else t.previous_staff
        person = people.setdefault(row["staff_id"], _person(row["staff_id"], who))
        person.merge(
            StaffTotals(
                staff_id=row["staff_id"],
                orders=row["orders"],
                handled=row["handled"],
                handling_seconds=float(row["handling_seconds"]),
                rated=row["rated"],
                rating_sum=row["rating_sum"],
                complaints=row["complaints"],
                anomalies_decided=row["anomalies_decided"],
            )
        )
    for row in raw.rows.get("staff_deadlines", []):
        people = t.staff if row["period"] == "current" else t.previous_staff
        person = people.setdefault(row["staff_id"], _person(row["staff_id"], who))
        person.deadlines[row["clause"]].add(row["met"], row["breached"], row["hard"])
    return t


def _person(staff_id: str, who: Mapping[str, Mapping[str, Any]]) -> StaffTotals:
    info = who.get(staff_id, {})
    return StaffTotals(
        staff_id=staff_id,
        department=str(info.get("department", "")),
        role=str(info.get("role", "")),
    )


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


def cancel_reason(code: int) -> str:
    """The platform's or the merchant's name of a cancel code."""
    for enum in (PlatformCancelReason, MerchantCancelReason):
        try:
            return enum(code).name.lower()
        except ValueError:
            continue
    return "unknown" if code == 0 else str(code)


def figures(tot: Totals) -> dict[str, Any]:
    """R4.3.1 the figures of one period (or group) as JSON."""
    feedback_cases = sum(c["cases"] for c in tot.feedback.values())
    rounds = sum(c["rounds"] for c in tot.feedback.values())
    first_response = tot.durations.get("first_response", Histogram())
    return {
        "orders": {
            "count": tot.orders,
            "by_outcome": {o: tot.outcomes[o] for o in OUTCOMES if tot.outcomes[o]},
            "patrol_found": tot.patrol_found,
            "with_anomaly": tot.anomaly_orders,
        },
        "amount": {
            "gross": _money(tot.gross),
            "discounts": _money(tot.discounts),
            "paid": _money(tot.paid),
            "refunded": _money(tot.refunded),
            "net": _money(tot.net),
        },
        "satisfaction": {
            "rated": tot.rated,
            "rating_average": tot.rating_average,
            "distribution": {str(k): tot.ratings[k] for k in range(1, 6)},
            "complaint_orders": tot.complained,
            "complaint_rate": tot.complaint_rate,
        },
        "stage_seconds": {
            s: tot.durations[f"stage:{s}"].summary()
            for s in STAGES
            if f"stage:{s}" in tot.durations and tot.durations[f"stage:{s}"].n
        },
        "handling_seconds": tot.durations["handling"].summary()
        if "handling" in tot.durations
        else Histogram().summary(),
        "deadlines": {c: tot.deadlines[c].summary() for c in CLAUSES if c in tot.deadlines},
        "breach_rate": tot.breach_rate,
        "orders_breached": tot.breached_orders,
        "orders_past_hard_limit": tot.hard_orders,
        "anomalies": {
            kind: dict(sorted(decisions.items()))
            for kind, decisions in sorted(tot.anomalies.items())
        },
        "feedback": {
            "cases": feedback_cases,
            "by_kind": {kind: dict(sorted(c.items())) for kind, c in sorted(tot.feedback.items())},
            "first_response_seconds": first_response.summary(),
            "average_rounds": _ratio(rounds, feedback_cases, 2),
            "more_than_one_round": sum(c["multi_round"] for c in tot.feedback.values()),
            "satisfied": sum(c["satisfied"] for c in tot.feedback.values()),
            "escalated": sum(c["escalated"] for c in tot.feedback.values()),
        },
    }


def group_row(key: str, tot: Totals, previous: Totals | None) -> dict[str, Any]:
    return {
        "key": key,
        "orders": tot.orders,
        "previous_orders": previous.orders if previous else 0,
        "net": _money(tot.net),
        "rating_average": tot.rating_average,
        "complaint_rate": tot.complaint_rate,
        "breach_rate": tot.breach_rate,
        "anomaly_orders": tot.anomaly_orders,
        "stage_p90": {
            s: _round(tot.durations[f"stage:{s}"].percentile(0.9), 3)
            for s in STAGES
            if f"stage:{s}" in tot.durations and tot.durations[f"stage:{s}"].n
        },
        "on_time_rate": _ratio(
            sum(d.met for d in tot.deadlines.values()),
            sum(d.total for d in tot.deadlines.values()),
        ),
    }


# --- findings: R4.3.2 ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """When a figure is worth a person's attention."""

    p90_worse: float = 0.20
    """A stage's p90 up by more than this share ..."""
    p90_min_seconds: float = 30.0
    """... and by at least this many seconds ..."""
    p90_min_count: int = 20
    """... with at least this many orders in both periods."""
    outlier_factor: float = 2.0
    """A store or person more than this many times the overall rate ..."""
    outlier_min_count: int = 5
    """... with at least this many breaches or complaints ..."""
    outlier_min_base: int = 20
    """... out of at least this many orders (or deadlines for a person)."""
    price_factor: float = 1.5
    """Price anomalies per order up by this factor on the previous period ..."""
    price_min_count: int = 3
    """... with at least this many in the period."""


@dataclass(frozen=True)
class Finding:
    kind: str
    subject: str
    message: str
    severity: Literal["warning", "notice"] = "warning"
    figures: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "severity": self.severity,
            "message": self.message,
            "figures": dict(self.figures),
        }


def duration(seconds: float | None) -> str:
    """Seconds as a person reads them: 45 s, 12 min, 3.5 h, 2.1 d."""
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _change(now: float, before: float) -> str:
    if before == 0:
        return "new" if now else "no change"
    change = (now - before) / before
    return f"{change * 100:+.0f}%"


def poisson_tail(observed: int, expected: float) -> float:
    """P(X >= observed) for X ~ Poisson(expected): how likely the count is by chance alone."""
    if observed <= 0:
        return 1.0
    if expected <= 0:
        return 0.0
    term = math.exp(-expected)  # P(X = 0); summed in logs when that underflows
    if term == 0.0:
        log_term, below = -expected, 0.0
        for k in range(observed):
            below += math.exp(log_term)
            log_term += math.log(expected) - math.log(k + 1)
        return max(0.0, 1.0 - below)
    below = 0.0
    for k in range(observed):
        below += term
        term *= expected / (k + 1)
    return max(0.0, 1.0 - below)


def comparison(current: Totals, previous: Totals) -> list[dict[str, Any]]:
    """R4.3.2 the period against the one before, figure by figure, in words."""
    lines: list[dict[str, Any]] = []

    def line(name: str, now: float | None, before: float | None, text: str) -> None:
        lines.append({"figure": name, "current": now, "previous": before, "text": text})

    line(
        "orders",
        current.orders,
        previous.orders,
        f"{current.orders} orders ({_change(current.orders, previous.orders)} "
        f"on {previous.orders} the period before)",
    )
    line(
        "net",
        float(current.net),
        float(previous.net),
        f"net {_money(current.net)} ({_change(float(current.net), float(previous.net))})",
    )
    if current.rating_average is not None or previous.rating_average is not None:
        line(
            "rating_average",
            current.rating_average,
            previous.rating_average,
            f"average rating {current.rating_average or '—'} "
            f"(before {previous.rating_average or '—'})",
        )
    line(
        "complaint_rate",
        current.complaint_rate,
        previous.complaint_rate,
        f"complaints on {_pct(current.complaint_rate)} of orders "
        f"(before {_pct(previous.complaint_rate)})",
    )
    line(
        "breach_rate",
        current.breach_rate,
        previous.breach_rate,
        f"a deadline missed on {_pct(current.breach_rate)} of orders "
        f"(before {_pct(previous.breach_rate)})",
    )
    return lines


def find(
    current: Totals,
    previous: Totals,
    stores: Mapping[str, Totals],
    staff: Mapping[str, StaffTotals],
    limits: Thresholds = Thresholds(),
) -> list[Finding]:
    """R4.3.2 patterns, problems and risks, in plain words; a quiet period finds nothing."""
    found: list[Finding] = []
    # A stage slower than before.
    for stage in STAGES:
        now = current.durations.get(f"stage:{stage}")
        before = previous.durations.get(f"stage:{stage}")
        if not now or not before:
            continue
        if min(now.n, before.n) < limits.p90_min_count:
            continue
        p_now, p_before = now.percentile(0.9), before.percentile(0.9)
        if p_now is None or p_before is None or p_before <= 0:
            continue
        if p_now > p_before * (1 + limits.p90_worse) and p_now - p_before >= limits.p90_min_seconds:
            found.append(
                Finding(
                    "stage_slower",
                    stage,
                    f"Stage {stage} got slower: 90% of orders now take up to {duration(p_now)}, "
                    f"against {duration(p_before)} the period before "
                    f"({_change(p_now, p_before)}).",
                    figures={"p90": round(p_now, 1), "previous_p90": round(p_before, 1)},
                )
            )

    # A store whose breach or complaint rate stands out.
    def breaches(t: Totals) -> int:
        return t.breached_orders

    def complaints(t: Totals) -> int:
        return t.complained

    for name, count_of, what in (
        ("breach", breaches, "missed a deadline"),
        ("complaint", complaints, "complained"),
    ):
        overall = _ratio(count_of(current), current.orders)
        if not overall:
            continue
        for store, tot in sorted(stores.items()):
            count = count_of(tot)
            rate = _ratio(count, tot.orders)
            if (
                rate is not None
                and tot.orders >= limits.outlier_min_base
                and count >= limits.outlier_min_count
                and rate > limits.outlier_factor * overall
                and poisson_tail(count, overall * tot.orders) < 0.01
            ):
                found.append(
                    Finding(
                        f"store_{name}_rate",
                        store,
                        f"Store {store}: {_pct(rate)} of its orders {what} "
                        f"({count} of {tot.orders}), {rate / overall:.1f}× the overall "
                        f"{_pct(overall)}.",
                        figures={"rate": rate, "overall": overall, "count": count},
                    )
                )
    # A person whose breach or complaint rate stands out (R7.2). Lateness is weighed by the
    # clauses a person has (a manager's anomaly decisions are not a cook's deliveries), and
    # chance is ruled out: the count must be unlikely (p < 1 %) at the staff's own rates.
    per_clause: dict[str, Deadlines] = defaultdict(Deadlines)
    complaints_all = orders_all = 0
    for person in staff.values():
        for clause, d in person.deadlines.items():
            per_clause[clause].add(d.met, d.breached, d.hard)
        complaints_all += person.complaints
        orders_all += person.orders
    complaint_overall = _ratio(complaints_all, orders_all, 6)
    for staff_id, person in sorted(staff.items()):
        d = person.all_deadlines
        expected = sum(
            dd.total * per_clause[c].late / per_clause[c].total
            for c, dd in person.deadlines.items()
            if per_clause[c].total
        )
        if (
            expected > 0
            and d.total >= limits.outlier_min_base
            and d.late >= limits.outlier_min_count
            and d.late > limits.outlier_factor * expected
            and poisson_tail(d.late, expected) < 0.01
        ):
            found.append(
                Finding(
                    "person_breach_rate",
                    staff_id,
                    f"{staff_id} ({person.department or 'no department'}) was late on "
                    f"{d.late} of {d.total} deadlines, {d.late / expected:.1f}× what the "
                    f"staff's rates for the same clauses would give ({expected:.1f}).",
                    figures={"late": d.late, "deadlines": d.total, "expected": expected},
                )
            )
        if (
            complaint_overall
            and person.orders >= limits.outlier_min_base
            and person.complaints >= limits.outlier_min_count
            and person.complaints > limits.outlier_factor * complaint_overall * person.orders
            and poisson_tail(person.complaints, complaint_overall * person.orders) < 0.01
        ):
            rate = person.complaints / person.orders
            found.append(
                Finding(
                    "person_complaint_rate",
                    staff_id,
                    f"{staff_id} ({person.department or 'no department'}) drew complaints on "
                    f"{_pct(rate)} of their orders ({person.complaints} of {person.orders}), "
                    f"{rate / complaint_overall:.1f}× the staff's {_pct(complaint_overall)}.",
                    figures={"rate": rate, "overall": complaint_overall},
                )
            )
    # R5.3.2 price monitoring: price anomalies per order, against the period before.
    now_price, before_price = current.price_anomalies(), previous.price_anomalies()
    rate_now = _ratio(now_price, current.orders, 6)
    rate_before = _ratio(before_price, previous.orders, 6)
    if (
        rate_now
        and now_price >= limits.price_min_count
        and (not rate_before or rate_now > limits.price_factor * rate_before)
    ):
        found.append(
            Finding(
                "price_anomalies_up",
                "price",
                f"Price anomalies rose: {now_price} ({_pct(rate_now)} of orders) against "
                f"{before_price} ({_pct(rate_before or 0.0)}) the period before; check the "
                "price list against the platform's prices (R5.3.2).",
                figures={"count": now_price, "previous": before_price},
            )
        )
    # R6.3.2 orders only the patrol found: the push feed missed them.
    if current.patrol_found:
        found.append(
            Finding(
                "patrol_found",
                "integration",
                f"{current.patrol_found} order(s) reached us only through the patrol: the "
                "platform's pushes missed them. Raise it with the platform (R6.3.2).",
                figures={"count": current.patrol_found},
            )
        )
    return found


def scorecards(
    staff: Mapping[str, StaffTotals], departments: Mapping[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """R7.2 one card per person and per department (the people's figures added up)."""
    people = []
    by_department: dict[str, StaffTotals] = {}
    for staff_id, person in sorted(staff.items()):
        people.append(
            {"staff_id": staff_id, "department": person.department, "role": person.role}
            | person.card()
        )
        code = person.department or "unknown"
        by_department.setdefault(code, StaffTotals(staff_id=code, department=code)).merge(person)
    units = [
        {
            "department": code,
            "name": departments.get(code, ""),
            "people": sum(1 for p in staff.values() if (p.department or "unknown") == code),
        }
        | card.card()
        for code, card in sorted(by_department.items())
    ]
    return people, units


def compute(raw: Raw, limits: Thresholds = Thresholds()) -> dict[str, Any]:
    """The whole answer of `orderctl stats --json`."""
    t = tally(raw)
    period, previous = raw.period, raw.period.previous()
    people, units = scorecards(t.staff, raw.departments)
    cancellations = [
        {"outcome": outcome, "code": code, "reason": cancel_reason(code), "by": by, "n": n}
        for (outcome, code, by), n in sorted(t.cancellations.items(), key=lambda kv: -kv[1])
    ]
    days = [period.start + timedelta(days=i) for i in range(period.days)]
    groups: dict[str, Any] | None = None
    if raw.by is not None:
        keys = sorted(set(t.groups) | set(t.previous_groups))
        groups = {
            "by": raw.by,
            "rows": [
                group_row(k, t.groups.get(k, Totals()), t.previous_groups.get(k)) for k in keys
            ],
        }
    patrol = raw.patrol.get("current", {"runs": 0, "found": 0})
    return {
        "period": {"from": str(period.start), "to": str(period.end), "days": period.days},
        "previous_period": {"from": str(previous.start), "to": str(previous.end)},
        "zone": raw.zone,
        **figures(t.current),
        "cancellations": cancellations,
        "orders_per_hour": [t.current.hours.get(h, 0) for h in range(24)],
        "daily": [
            {
                "day": str(d),
                "orders": t.daily.get(d, {}).get("orders", 0),
                "price_anomalies": t.daily.get(d, {}).get("price", 0),
                "anomalies": sum(v for k, v in t.daily.get(d, {}).items() if k != "orders"),
            }
            for d in days
        ],
        "patrol": {"runs": patrol["runs"], "orders_found": patrol["found"]},
        "groups": groups,
        "comparison": comparison(t.current, t.previous),
        "previous": figures(t.previous),
        "findings": [f.as_json() for f in find(t.current, t.previous, t.stores, t.staff, limits)],
        "staff": people,
        "departments": units,
        "source": {
            "orders_computed_live": raw.live_orders,
            "pairs_not_yet_rolled_up": raw.dirty_pairs,
            "seconds": raw.seconds,
        },
    }


# ==================================================================================================
# The command
# ==================================================================================================


async def collect(
    period: Period,
    by: Group | None = None,
    *,
    database_url: str | None = None,
    zone: tzinfo = BUSINESS_TZ,
    limits: Thresholds = Thresholds(),
    pool: asyncpg.Pool | None = None,
) -> dict[str, Any]:
    """Refresh the rollup, read the period, compute: the stats of `orderctl stats --json`."""
    began = time.perf_counter()
    own = pool is None
    try:
        if pool is None:
            pool = await connect(database_url, max_size=2)
    except (OSError, asyncpg.PostgresError) as err:
        raise StatsError(f"cannot reach the database: {err}") from None
    try:
        async with pool.acquire() as conn:
            done = await refresh(conn, zone)
            raw = await read(conn, period, by, zone)
        raw.seconds["refresh"] = round(done.seconds, 4)
        stats = compute(raw, limits)
        stats["source"]["refreshed_pairs"] = done.pairs
        stats["source"]["refreshed_orders"] = done.orders
        stats["source"]["refresh_steps"] = done.steps
        stats["source"]["seconds"]["total"] = round(time.perf_counter() - began, 4)
        return stats
    except asyncpg.UndefinedTableError as err:
        raise StatsError(
            f"the database lacks the statistics tables ({err}); run `python -m starter.db_cli "
            "migrate`"
        ) from None
    except (OSError, asyncpg.PostgresError) as err:
        raise StatsError(f"database: {err}") from None
    finally:
        if own:
            await pool.close()


def render(stats: Mapping[str, Any]) -> str:
    """The stats as a person reads them in a terminal."""
    out: list[str] = []
    p = stats["period"]
    span = p["from"] if p["days"] == 1 else f"{p['from']} – {p['to']}"
    prev = stats["previous_period"]
    out.append(f"Statistics {span} ({stats['zone']}); compared with {prev['from']} – {prev['to']}")
    orders = stats["orders"]
    outcomes = " · ".join(f"{k} {v}" for k, v in orders["by_outcome"].items())
    out.append(f"  orders {orders['count']}" + (f"  ({outcomes})" if outcomes else ""))
    a = stats["amount"]
    out.append(
        f"  amount gross {a['gross']} · discounts {a['discounts']} · refunded {a['refunded']} · "
        f"net {a['net']}"
    )
    s = stats["satisfaction"]
    dist = " ".join(f"{k}★{v}" for k, v in s["distribution"].items())
    out.append(
        f"  satisfaction: average {s['rating_average'] or '—'} of {s['rated']} rated ({dist}); "
        f"complaints on {_pct(s['complaint_rate'])} of orders"
    )
    out.append("")
    out.append("  stage                 n      p50      p90")
    for stage, h in stats["stage_seconds"].items():
        out.append(f"  {stage:<16} {h['n']:>6} {duration(h['p50']):>8} {duration(h['p90']):>8}")
    out.append("")
    out.append("  deadline             met  breached  hard  on time")
    for clause, d in stats["deadlines"].items():
        out.append(
            f"  {clause:<19} {d['met']:>4} {d['breached']:>9} {d['hard']:>5} "
            f"{_pct(d['on_time_rate']):>8}"
        )
    if stats["anomalies"]:
        out.append("")
        out.append(
            "  anomalies: "
            + "; ".join(
                f"{kind} " + ", ".join(f"{d} {n}" for d, n in decisions.items())
                for kind, decisions in stats["anomalies"].items()
            )
        )
    if stats["cancellations"]:
        out.append(
            "  cancelled / rejected: "
            + ", ".join(
                f"{c['outcome']} {c['code']} {c['reason']} by {c['by']}: {c['n']}"
                for c in stats["cancellations"]
            )
        )
    f = stats["feedback"]
    if f["cases"]:
        fr = f["first_response_seconds"]
        out.append(
            f"  feedback: {f['cases']} cases, first response p50 {duration(fr['p50'])} "
            f"p90 {duration(fr['p90'])}, {f['average_rounds']} rounds on average, "
            f"{f['satisfied']} satisfied, {f['escalated']} escalated"
        )
    if stats["groups"]:
        g = stats["groups"]
        out.append("")
        out.append(f"  by {g['by']:<12} orders  before      net  rating  complaints  breaches")
        for row in g["rows"]:
            out.append(
                f"  {row['key']:<15} {row['orders']:>6} {row['previous_orders']:>7} "
                f"{row['net']:>8} {row['rating_average'] or '—':>7} "
                f"{_pct(row['complaint_rate']):>11} {_pct(row['breach_rate']):>9}"
            )
    if stats["staff"]:
        out.append("")
        out.append("  staff (R7.2)     dept          orders  on time  handling  rating  compl.")
        for card in stats["staff"]:
            out.append(
                f"  {card['staff_id']:<15} {card['department']:<13} {card['orders']:>6} "
                f"{_pct(card['on_time_rate']):>8} "
                f"{duration(card['average_handling_seconds']):>9} "
                f"{card['average_rating'] or '—':>7} {card['complaints']:>7}"
            )
    out.append("")
    out.append("  compared with the period before:")
    for line in stats["comparison"]:
        out.append(f"    {line['text']}")
    out.append("")
    if stats["findings"]:
        out.append("  findings (R4.3.2):")
        for finding in stats["findings"]:
            out.append(f"    - {finding['message']}")
    else:
        out.append("  findings (R4.3.2): nothing stands out")
    return "\n".join(out)


def render_json(stats: Mapping[str, Any]) -> str:
    from starter.cli_format import dumps

    return dumps(stats)


def period_of(start: date | None, end: date | None, zone: tzinfo = BUSINESS_TZ) -> Period:
    """--from / --to as typed: either alone means that one day; neither means today."""
    if start is None and end is None:
        return Period.today(zone)
    first = start or end
    last = end or start
    assert first is not None and last is not None
    return Period(first, last)
