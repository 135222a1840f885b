"""The staff API's headers, named once for the API and its clients."""

from typing import Final

ANSWER_WITHIN: Final = "X-Answer-Within"
"""Seconds the client waits for an answer; the API waits for Temporal no longer than that."""
IDEMPOTENCY_KEY: Final = "Idempotency-Key"
"""Sent again with a retried request: the API makes it the same update (starter/api/actions)."""
