"""Notifications to staff, managers, customers and the platform liaison."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from schemas.records import Notification


class Notifier:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def notify(self, inp: Notification) -> None:
        """Deliver once per `key`."""
        raise NotImplementedError
