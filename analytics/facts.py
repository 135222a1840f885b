"""The facts of each order in scope, as temporary tables the rollup's rows are summed from.

The same statements serve the refresh (the rollup's pairs, `stats_*`) and a read (the live
part, `live_*`): only the scope differs, so the two cannot disagree. Each statement is a table:

  stats_scope    the orders counted, with their summary (migration 0008's `order_summaries`)
  stats_ev       their timeline events the figures read, each with the person holding the order
  stats_keys     one row per deadline key: met, breached or hard, and whose it was
  stats_handling from the first assignment to delivery, and who delivered
  stats_ord      one row per order: outcome, money, rating, complaint, breach, anomaly

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
  * refunds and feedback response time: see the package's docstring.
"""

from __future__ import annotations

from typing import Final

from analytics.vocabulary import OPEN, TERMINAL, case_key, clause_of_key, key_of, lit, lits
from schemas.contract import Event
from schemas.messages import FeedbackKind
from schemas.order import OrderType, Stage
from schemas.policy import Clause
from schemas.refund import RefundState

FINISHED: Final = lits(TERMINAL)
"""SQL: the stages of a finished order, as migration 0008's partial index spells them."""
ENDED_BADLY: Final = lits((Stage.CANCELLED, Stage.REJECTED))
"""SQL: an order cancelled or rejected (its money counts as refunded in full)."""

# --- the scope ---------------------------------------------------------------------------------

_SCOPE_COLUMNS = f"""
    o.order_id,
    (o.created_at AT TIME ZONE $1)::date AS day,
    extract(hour FROM o.created_at AT TIME ZONE $1)::smallint AS hour,
    o.store_code, o.order_type, o.region, o.source, o.total, o.discount_total, o.stage,
    o.stage IN ({FINISHED}) AS finished,
    s.order_id IS NOT NULL AS summarised, s.rating AS summary_rating, s.stage_seconds,
    s.breaches
"""

# Refresh: the finished orders of the claimed pairs that are not pending (an order finishing
# meanwhile is added by the next refresh), and the claimed pending orders outside those pairs.
SCOPE_REFRESH: Final = f"""
CREATE TEMP TABLE stats_scope ON COMMIT DROP AS
SELECT {_SCOPE_COLUMNS}
FROM stats_pairs p
JOIN orders_masked o
  ON o.store_code = p.store_code AND o.created_at >= p.starts AND o.created_at < p.ends
LEFT JOIN order_summaries s ON s.order_id = o.order_id
WHERE o.stage IN ({FINISHED})
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
SCOPE_LIVE: Final = f"""
CREATE TEMP TABLE stats_scope ON COMMIT DROP AS
SELECT {_SCOPE_COLUMNS}
FROM orders_masked o
LEFT JOIN order_summaries s ON s.order_id = o.order_id
WHERE o.created_at >= $2 AND o.created_at < $3
  AND o.stage NOT IN ({FINISHED})
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
WHERE o.stage IN ({FINISHED})
  AND NOT EXISTS (SELECT 1 FROM stats_pending q WHERE q.order_id = o.order_id)
"""

# --- the events --------------------------------------------------------------------------------

TAKES: Final = (Event.ASSIGNED, Event.REASSIGNED)
"""Who holds an order: the latest of these."""
# R4.2.2 a feedback case, a platform's reminder or refund request opened, and answered.
CASE_OPENED: Final = (Event.FEEDBACK_OPENED, Event.CUSTOMER_REMINDED, Event.REFUND_NOTICE)
CASE_ANSWERED: Final = (Event.FEEDBACK_RESPONDED, Event.REMINDER_REPLIED, Event.REFUND_DECIDED)
_CONFIRMING: Final = (Event.CONFIRMED_WITH_CUSTOMER, Event.CUSTOMER_CHANGED)
_BREACHES: Final = (Event.DEADLINE_BREACHED, Event.HARD_LIMIT_PASSED)
_ENDED: Final = (Event.CANCELLED, Event.REJECTED)

# The event that ends each deadline's work, with the SQL of the key it meets.
_MEETS: Final[tuple[tuple[Event, str], ...]] = (
    (Event.RECEIVED, key_of(Clause.RECEIVE)),
    (Event.REVIEW_PASS, key_of(Clause.REVIEW)),
    (Event.REVIEW_REJECT, key_of(Clause.REVIEW)),
    (Event.REVIEW_ANOMALY, key_of(Clause.REVIEW)),
    (Event.ACCEPTED, key_of(Clause.ACCEPT)),
    (Event.ASSIGNED, key_of(Clause.ASSIGN)),
    (Event.READY, key_of(Clause.PREPARE)),
    (
        Event.DELIVERED,
        f"CASE WHEN order_type = {lit(OrderType.GOODS)} THEN {key_of(Clause.DELIVER)} "
        f"ELSE {key_of(Clause.EXECUTE)} END",
    ),
    (Event.BOOKED, key_of(Clause.SCHEDULE)),
    (Event.VISIT_RECONFIRMED, key_of(Clause.RECONFIRM_VISIT)),
    (Event.FEEDBACK_RESPONDED, f"{case_key(Clause.FEEDBACK_RESPONSE)} || case_no || '.' || round"),
    (Event.REMINDER_REPLIED, f"{case_key(Clause.REMINDER_REPLY)} || ref"),
    (Event.REFUND_DECIDED, f"{case_key(Clause.REFUND_DECISION)} || ref"),
)

EVENTS_READ: Final = sorted(
    {
        *(event.value for event, _ in _MEETS),
        *(event.value for event in (*TAKES, *_CONFIRMING, *CASE_OPENED, *CASE_ANSWERED)),
        *(event.value for event in (Event.FEEDBACK_RESOLVED, *_BREACHES, Event.RATED, *_ENDED)),
    }
)
"""The events the statements read, passed as `$1::text[]`: nothing else of the log is read."""

# Each event with the person holding the order at it (the latest assigned / reassigned).
EVENTS: Final = f"""
CREATE TEMP TABLE stats_ev ON COMMIT DROP AS
SELECT x.order_id, x.seq, x.at, x.event, x.actor, x.order_type, x.took,
       max(x.took) OVER (PARTITION BY x.order_id, x.grp) AS holder,
       x.key, x.case_no, x.round, x.ref, x.kind, x.score, x.cancel_code, x.by_whom
FROM (
    SELECT e.order_id, e.seq, e.at, e.event, e.actor, sc.order_type,
           CASE e.event WHEN {lit(Event.ASSIGNED)} THEN e.assignee
                        WHEN {lit(Event.REASSIGNED)} THEN e.to_staff END AS took,
           count(*) FILTER (WHERE e.event IN ({lits(TAKES)}))
               OVER (PARTITION BY e.order_id ORDER BY e.seq) AS grp,
           e.key, e.case_no, e.round, e.ref, e.kind, e.score::smallint AS score,
           e.cancel_code::int AS cancel_code, e.by_whom
    FROM stats_scope sc
    CROSS JOIN LATERAL (  -- by the primary key, order by order: never a scan of the whole log
        SELECT * FROM order_events_masked oe
        WHERE oe.order_id = sc.order_id AND oe.event = ANY($1::text[])
    ) e
) x
"""

# --- the deadlines -----------------------------------------------------------------------------

_MEETS_KEY = "".join(f"\n               WHEN {lit(event)} THEN {key}" for event, key in _MEETS)

# One row per deadline key of an order: met, breached or hard, and whose it was. A breach in
# the summary is spelled `<key>` or `<key> (hard)` (workflows/summary.py).
KEYS: Final = rf"""
CREATE TEMP TABLE stats_keys ON COMMIT DROP AS
WITH marks AS (
    SELECT order_id, seq, holder, 3 AS rank,
           CASE event{_MEETS_KEY}
           END AS key
    FROM stats_ev
    WHERE event IN ({lits(event for event, _ in _MEETS)})
    UNION ALL
    SELECT order_id, seq, holder, 3,
           {case_key(Clause.FEEDBACK_RESOLUTION)} || case_no || '.'
               || row_number() OVER (PARTITION BY order_id, case_no ORDER BY seq)
    FROM stats_ev
    WHERE event = {lit(Event.FEEDBACK_RESOLVED)}
    UNION ALL
    SELECT order_id, seq, holder, 3,
           CASE WHEN row_number() OVER (PARTITION BY order_id ORDER BY seq) = 1
                THEN {key_of(Clause.CONFIRM)}
                ELSE {case_key(Clause.CONFIRM)} || (changes + 1) END
    FROM (
        SELECT order_id, seq, holder, event, actor,
               count(*) FILTER (WHERE event = {lit(Event.CUSTOMER_CHANGED)})
                   OVER (PARTITION BY order_id ORDER BY seq) AS changes
        FROM stats_ev
        WHERE event IN ({lits(_CONFIRMING)})
    ) c
    WHERE event = {lit(Event.CONFIRMED_WITH_CUSTOMER)} AND actor <> 'system'
    UNION ALL
    SELECT order_id, seq, holder,
           CASE event WHEN {lit(Event.HARD_LIMIT_PASSED)} THEN 1 ELSE 2 END, key
    FROM stats_ev
    WHERE event IN ({lits(_BREACHES)})
    UNION ALL
    SELECT sc.order_id, NULL, NULL, CASE WHEN b.k LIKE '% (hard)' THEN 1 ELSE 2 END,
           regexp_replace(b.k, ' \(hard\)$', '')
    FROM stats_scope sc
    CROSS JOIN LATERAL jsonb_array_elements_text(sc.breaches) AS b(k)
    WHERE sc.summarised
)
SELECT m.order_id, m.key,
       {clause_of_key("m.key")} AS clause,
       CASE min(m.rank) WHEN 1 THEN 'hard' WHEN 2 THEN 'breached' ELSE 'met' END AS state,
       (array_agg(m.holder ORDER BY m.rank, m.seq) FILTER (WHERE m.holder IS NOT NULL))[1]
           AS holder
FROM marks m
WHERE m.key IS NOT NULL
GROUP BY m.order_id, m.key
"""

# R5.2.2 the anomaly_decision deadline runs in the anomaly's own workflow: its outcome tells
# (who decided, after how many escalations; NULL while undecided).
ANOMALY_KEYS: Final = f"""
INSERT INTO stats_keys (order_id, key, clause, state, holder)
SELECT a.order_id, a.anomaly_id, {lit(Clause.ANOMALY_DECISION)},
       CASE WHEN a.decided_by = 'policy' THEN 'hard'
            WHEN a.escalations > 0 THEN 'breached'
            ELSE 'met' END,
       CASE WHEN a.decided_by = 'policy' THEN NULL ELSE a.decided_by END
FROM stats_scope sc
JOIN anomalies_masked a ON a.order_id = sc.order_id
WHERE a.decided_by <> 'system'
"""

# --- handling and the order's own facts --------------------------------------------------------

HANDLING: Final = f"""
CREATE TEMP TABLE stats_handling ON COMMIT DROP AS
SELECT h.order_id, extract(epoch FROM h.delivered_at - h.assigned_at)::float8 AS seconds,
       d.holder
FROM (
    SELECT order_id, min(at) FILTER (WHERE event = {lit(Event.ASSIGNED)}) AS assigned_at,
           min(at) FILTER (WHERE event = {lit(Event.DELIVERED)}) AS delivered_at,
           min(seq) FILTER (WHERE event = {lit(Event.DELIVERED)}) AS delivered_seq
    FROM stats_ev
    WHERE event IN ({lits((Event.ASSIGNED, Event.DELIVERED))})
    GROUP BY order_id
) h
JOIN stats_ev d ON d.order_id = h.order_id AND d.seq = h.delivered_seq
WHERE h.assigned_at IS NOT NULL
"""

ORDER_FACTS: Final = f"""
CREATE TEMP TABLE stats_ord ON COMMIT DROP AS
SELECT sc.order_id, sc.day, sc.hour, sc.store_code, sc.order_type, sc.region,
       CASE WHEN sc.finished THEN sc.stage ELSE {lit(OPEN)} END AS outcome,
       sc.total + sc.discount_total AS gross, sc.discount_total AS discounts, sc.total AS paid,
       CASE WHEN sc.stage IN ({ENDED_BADLY}) THEN sc.total
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
    WHERE r.state = {lit(RefundState.AGREED)}
    GROUP BY r.order_id
) rf ON rf.order_id = sc.order_id
LEFT JOIN (
    SELECT DISTINCT ON (order_id) order_id, score
    FROM stats_ev WHERE event = {lit(Event.RATED)} ORDER BY order_id, seq DESC
) r ON r.order_id = sc.order_id
LEFT JOIN (
    SELECT f.order_id,
           count(*) FILTER (WHERE f.kind = {lit(FeedbackKind.COMPLAINT)}) AS complaints
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

# The statements after the scope, in order, with their parameters.
STEPS: Final[tuple[tuple[str, str, tuple[object, ...]], ...]] = (
    ("scope_analyze", "ANALYZE stats_scope", ()),  # else the event join reads all events
    ("events", EVENTS, (EVENTS_READ,)),
    ("keys", KEYS, ()),
    ("anomaly_keys", ANOMALY_KEYS, ()),
    ("handling", HANDLING, ()),
    ("order_facts", ORDER_FACTS, ()),
)
