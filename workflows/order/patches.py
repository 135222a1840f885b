"""The order's workflow.patched() ids: each changed the commands of orders already in flight.

An id is never renamed or reused: a recorded history holds it, and an order started before its
patch replays the code the patch left in place. (FIRE_BY_TIMER, shared with the anomaly
child, is in workflows/deadlines.py.) From TOLD_AND_SHOWN_WITH_THE_WORK on, the newest patch takes
every older one with it (`Patches`): a new order's history carries one marker, not one per
patch. docs/patches.md has each id's dates and when it retires.
"""

from collections.abc import Iterable
from typing import Final

from temporalio import workflow

from workflows.deadlines import FIRE_BY_TIMER

FEEDBACK_RECORDS: Final = "feedback-records"  # feedback cases written to the system of record
# Reminders and refund requests as feedback cases on record, and refunds with their money.
PLATFORM_FEEDBACK: Final = "platform-feedback"
# The record is known as soon as it is written, so a refusal of the platform's receipt (an order
# the platform cancelled before its workflow started) opens an anomaly instead of failing.
RECORD_KNOWN_WHEN_RECEIVING: Final = "record-known-when-receiving"
# A courier status pushed again (the platform retries) changes nothing: a repeated cancellation
# opened a second anomaly.
COURIER_STATUS_ONCE: Final = "courier-status-once"
# People read the order from the record (R1.3): its status goes on record when it changes with no
# event to carry it: a deadline a person works to opens or closes, an anomaly is shown.
RECORD_VIEW_BETWEEN_EVENTS: Final = "record-view-between-events"
# Waits for free capacity or a free slot look less often the longer they last, and a wait that
# fills the history holds the order for a manager: looking every minute filled it.
WAITS_BACK_OFF: Final = "waits-back-off"
# What the order logged before it was recorded (a reminder that started it) goes on record once
# it is: the staff read the record, and missed the reminder.
TIMELINE_BEFORE_RECORD: Final = "timeline-before-record"
# A service order ends "completed" on the platform too (R3.4.1), as a delivered order does: the
# platform showed a finished visit as still under way.
SERVICE_COMPLETED_ON_PLATFORM: Final = "service-completed-on-platform"
# The timeline goes on record in bursts: the lines logged since the last write, with the status
# after them, in one `record_events` that runs beside the lifecycle instead of one serial
# `record_event` per line (and the status between events with them, not as `record_view`).
RECORD_IN_BURSTS: Final = "record-in-bursts"
# The recorder's write carries what the order's ending needs on record, with the lines it
# logged: the customer's credit for an order done, the assignee's release and the summary as it
# closes; no `record_credit_event`, `release_assignment` or `record_summary` round trip of their
# own (R1.3, R3.3.3, R5.3.3). Only where RECORD_IN_BURSTS is patched in.
ENDING_WITH_THE_RECORD: Final = "ending-with-the-record"
# The writes of the order's record (its timeline in fenced bursts, its status and data) and its
# review run as local activities on the workflow worker that runs the order: a marker in the
# history each, not a server round trip and a workflow task. Claims, notices and merchant API
# calls stay server activities (`activity_options.runs_locally`). The search attributes a task
# changes are upserted once as it ends. Only where ENDING_WITH_THE_RECORD is patched in.
LOCAL_WRITES: Final = "local-writes"
# People are told, and the order is shown, with the work rather than after it: the person a
# claim gives the order to is told in the claim's own transaction (the assignee by
# `assign_order`, the person booked for a visit by `book_service`, its slot filled in there), not
# by a `notify` round trip after it; a takeout's automatic confirmation is told while its
# preparation starts; an order is shown accepted once its own checks pass (the review, and for
# goods the stock), so confirming it on the platform is the accepted order's first step. It
# takes every patch above with it (TAKEN_WITH_THE_WORK).
TOLD_AND_SHOWN_WITH_THE_WORK: Final = "told-and-shown-with-the-work"

# The signal `rewrite_record` has the recorder write the status again (fenced by the signal's
# task), taking back what a task that never completed wrote. A worker without its handler kept
# the signal unhandled, so its history has the signal and no write after it. Asked where the
# signal is handled, not with TOLD_AND_SHOWN_WITH_THE_WORK; taken with REVIEW_DEADLINE_LAPSES.
REWRITE_ON_SIGNAL: Final = "rewrite-on-signal"
# The timer of a deadline whose work is a local step (the review) is left to fire when the work
# is done, not cancelled. A query that rides the task in which the step runs has the SDK's core
# complete the task with the step's marker before the workflow hears the step's result; the
# cancellation then goes in the next task, where a replay, which hears the result at once, puts
# it in the same task as the timer's start, and drops both (docs/actions-and-replay.md). It
# takes every patch above with it, and the one below (TAKEN_WITH_THE_LAPSE).
REVIEW_DEADLINE_LAPSES: Final = "review-deadline-lapses"
# A refund decision the platform refuses because it has no open request any more (808: the
# customer withdrew it, or it was settled there, and the push saying so was lost) closes the
# request as withdrawn instead of failing; the order had waited for a decision nobody could
# give. Asked where the refusal comes, and taken with REVIEW_DEADLINE_LAPSES.
REFUND_NOT_OPEN_CLOSES: Final = "refund-not-open-closes"

TAKEN_WITH_THE_WORK: Final = frozenset(
    {
        FIRE_BY_TIMER,
        FEEDBACK_RECORDS,
        PLATFORM_FEEDBACK,
        RECORD_KNOWN_WHEN_RECEIVING,
        COURIER_STATUS_ONCE,
        RECORD_VIEW_BETWEEN_EVENTS,
        WAITS_BACK_OFF,
        TIMELINE_BEFORE_RECORD,
        SERVICE_COMPLETED_ON_PLATFORM,
        RECORD_IN_BURSTS,
        ENDING_WITH_THE_RECORD,
        LOCAL_WRITES,
    }
)
"""The patches an order started with TOLD_AND_SHOWN_WITH_THE_WORK takes without asking: every
order patch before it. Its history carries one marker, and one TemporalChangeVersion upsert,
instead of one of each per patch (ten events of a plain order's 131)."""


TAKEN_WITH_THE_LAPSE: Final = TAKEN_WITH_THE_WORK | {
    TOLD_AND_SHOWN_WITH_THE_WORK,
    REWRITE_ON_SIGNAL,
    REFUND_NOT_OPEN_CLOSES,
}
"""The patches an order started with REVIEW_DEADLINE_LAPSES takes without asking: those before
it, and those of its day asked where their branch comes."""

UMBRELLAS: Final = (
    (TOLD_AND_SHOWN_WITH_THE_WORK, TAKEN_WITH_THE_WORK),
    (REVIEW_DEADLINE_LAPSES, TAKEN_WITH_THE_LAPSE),
)
"""Each patch that takes the older ones with it, oldest first."""


class Patches:
    """What the order's patches answer.

    The umbrellas are asked newest first, in the order's first activation, until one answers
    True. An order started before all of them answers False to each (on replay: its history
    has no marker) and asks each older patch where its branch comes, as it always did; an order
    started with one takes every patch it took, without a marker of their own.
    """

    def __init__(self) -> None:
        self._taken: frozenset[str] = frozenset()
        for umbrella, taken in reversed(UMBRELLAS):
            if workflow.patched(umbrella):
                self._taken = taken | {umbrella}
                break
        self.with_the_work = self.patched(TOLD_AND_SHOWN_WITH_THE_WORK)

    def patched(self, patch_id: str) -> bool:
        return patch_id in self._taken or workflow.patched(patch_id)


def taken_with(patch_ids: Iterable[str]) -> tuple[str, ...]:
    """The later patches that take any of these with them: an order run as before a patch runs
    without them too."""
    ids, later = set(patch_ids), []
    for umbrella, taken in UMBRELLAS:
        if ids & taken:
            later.append(umbrella)
            ids.add(umbrella)
    return tuple(later)
