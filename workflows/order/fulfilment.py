"""What the order's work claims: stock for goods (R3.1), a booked visit for a service (R3.2),
and the handover that ends a delivery (R3.4.1)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.order.deadlines import Deadlines
from workflows.order.entity import Order, refusal
from workflows.order.state import Halt
from workflows.order.waiting import look_until_found

with workflow.unsafe.imports_passed_through():
    from activities.booking import Bookings
    from activities.stock import Stock
    from schemas.contract import Event
    from schemas.notices import Audience, Topic
    from schemas.order import DeliveryMode, Stage
    from schemas.resources import Booking, BookService, OrderRef, ReserveStock, StockLine
    from schemas.review import AnomalyKind


class Fulfilment:
    """Claims are made here and given back by cancellation, which reads what is claimed from
    the state."""

    def __init__(self, order: Order, deadlines: Deadlines) -> None:
        self._order = order
        self._state = order.state
        self._deadlines = deadlines

    # --- goods -----------------------------------------------------------------------------

    async def reserve_stock(self) -> None:
        """A shortage holds the order for a manager (R3.3.2), then the stock is tried again."""
        state = self._state
        while True:
            if state.cancel is not None:
                raise Halt  # nothing is claimed for an order that is being cancelled
            try:
                reservation = await self._order.steps.act(
                    Stock.reserve_stock,
                    ReserveStock(
                        order_id=state.order_id,
                        store_code=state.order.store_code,
                        lines=[
                            StockLine(sku=i.sku, quantity=i.quantity) for i in state.order.items
                        ],
                        round=state.stock_round,
                    ),
                )
            except ActivityError as err:
                refused = refusal(err)
                if refused is None or refused.type != "OutOfStock":
                    raise
                # R3.3.2 a shortage is an exception for a manager to remedy.
                await self._order.holds.open(AnomalyKind.OTHER, f"shortage: {refused.message}")
                continue
            state.stock_reserved = True
            if reservation.low_stock:
                await self._order.steps.tell(
                    Audience.SUPERVISOR,
                    Topic.LOW_STOCK,
                    {"items": ", ".join(reservation.low_stock)},
                )
            return

    async def reserve_stock_again(self) -> None:
        """The customer changed the items: the old reservation goes, a new round is claimed."""
        state = self._state
        await self._order.steps.act(Stock.release_stock, OrderRef(order_id=state.order_id))
        state.stock_reserved = False
        state.stock_round += 1
        await self.reserve_stock()

    async def handover(self, mode: DeliveryMode) -> None:
        """A platform courier's pickup starts the delivery; the order is delivered with proof
        or by the courier's status."""
        if mode is DeliveryMode.PLATFORM_COURIER:
            await self._order.until(lambda: self._state.courier_picked_up or self._state.delivered)
            await self._order.enter(Stage.DELIVERING)
        await self._order.until(lambda: self._state.delivered)

    # --- services --------------------------------------------------------------------------

    async def book(self, *, briefed: bool = False) -> Booking:
        """A slot with a qualified person, waiting for one to free up when none is.
        `briefed`: the booking tells the person booked (R3.2.2), where
        TOLD_AND_SHOWN_WITH_THE_WORK is patched in."""
        return await look_until_found(
            self._order, Event.WAITING_FOR_SLOT, lambda: self._free_slot(briefed)
        )

    async def _free_slot(self, briefed: bool) -> Booking | None:
        state = self._state
        assert state.promise is not None
        notice = None
        if briefed and self._order.patches.with_the_work:
            notice = self._order.steps.notice(Audience.STAFF, Topic.VISIT, {"brief": state.brief()})
        try:
            return await self._order.step(
                Bookings.book_service,
                BookService(
                    order_id=state.order_id,
                    store_code=state.order.store_code,
                    region=state.recorded.region,
                    skills=state.recorded.skills,
                    earliest=state.promise.delivery_at,
                    preferred_staff=state.staff_id,
                    notice=notice,
                ),
                refusals={"NoSlotAvailable"},
            )
        except ActivityError as err:
            refused = refusal(err)
            if refused is None or refused.type != "NoSlotAvailable":
                raise
            return None

    async def rebook(self) -> None:
        """R3.2.1 the visit moved: a slot at the new time, and the person re-confirms it."""
        state = self._state
        old = state.booking
        assert old is not None
        state.booking = None
        state.visit_reconfirmed = False
        await self._order.steps.act(Bookings.release_booking, OrderRef(order_id=state.order_id))
        new = await self.book()
        state.booking = new
        self._deadlines.follow_visit(new.slot_start)
        await self._order.log(
            Event.REBOOKED,
            staff_id=new.staff_id,
            slot_start=new.slot_start.isoformat(),
            previous=old.slot_start.isoformat(),
        )
        await self._order.steps.tell(
            Audience.STAFF,
            Topic.VISIT_MOVED,
            {"slot_at": new.slot_start.isoformat(), "brief": state.brief()},
            recipient=new.staff_id,
        )
