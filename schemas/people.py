"""Who may do what to an order: the roles, the person behind a token, and the one table of
permissions the staff API enforces (README "People and roles")."""

from __future__ import annotations

from enum import StrEnum

from schemas.base import Model
from schemas.reads import OrderScope


class Role(StrEnum):
    STAFF = "staff"
    TECHNICIAN = "technician"  # staff of a service department: acts as staff on its orders
    MANAGER = "manager"
    LIAISON = "liaison"  # the platform-facing steps: customers' feedback, reminders, changes
    ADMIN = "admin"  # people, tokens, stock, customers' bans; reads every order


class Person(Model):
    """A signed-in person, as the staff table has them now (not as the token was issued)."""

    staff_id: str
    name: str
    role: Role
    region: str
    departments: list[str]
    """Their own department, and every department they manage."""


class Duty(StrEnum):
    """What an action is, for the permission table."""

    WORK = "work"  # the order's own work: confirm, progress, ready, delivered, ...
    CARE = "care"  # the customer's side: feedback, reminders, ratings, changes by phone
    DECIDE = "decide"  # anomalies, refunds, reassignments and cancellations


ASSIGNEE, DEPARTMENT, REGION = "assignee", "department", "region"
PERMISSIONS: dict[Role, dict[Duty, str]] = {
    Role.STAFF: {Duty.WORK: ASSIGNEE, Duty.CARE: ASSIGNEE},
    Role.TECHNICIAN: {Duty.WORK: ASSIGNEE, Duty.CARE: ASSIGNEE},
    Role.MANAGER: {Duty.WORK: DEPARTMENT, Duty.CARE: DEPARTMENT, Duty.DECIDE: DEPARTMENT},
    Role.LIAISON: {Duty.CARE: REGION},
    Role.ADMIN: {},
}
"""Each role's duties and on which orders: those assigned to them, those of their departments,
or those of their region. A duty missing from a role's row is refused on every order."""

READS: dict[Role, str | None] = {
    Role.STAFF: ASSIGNEE,
    Role.TECHNICIAN: ASSIGNEE,
    Role.MANAGER: DEPARTMENT,
    Role.LIAISON: REGION,
    Role.ADMIN: None,
}
"""Which orders each role sees; None: every order."""


def refusal(person: Person, duty: Duty, order: OrderScope) -> str | None:
    """Why `person` may not do `duty` on `order`, or None when they may."""
    reach = PERMISSIONS[person.role].get(duty)
    if reach is None:
        return f"{person.staff_id} is {person.role.value}: only {_roles_for(duty)} may {duty.value}"
    return _outside(person, reach, order)


def read_refusal(person: Person, order: OrderScope) -> str | None:
    reach = READS[person.role]
    return None if reach is None else _outside(person, reach, order)


def _outside(person: Person, reach: str, order: OrderScope) -> str | None:
    if reach == ASSIGNEE and order.assignee != person.staff_id:
        return f"order {order.order_id} is not assigned to {person.staff_id}"
    if reach == DEPARTMENT and not set(order.departments) & set(person.departments):
        return f"order {order.order_id} is not in the departments of {person.staff_id}"
    if reach == REGION and order.region != person.region:
        return f"order {order.order_id} is not in the region of {person.staff_id}"
    return None


def _roles_for(duty: Duty) -> str:
    return ", ".join(role.value for role, duties in PERMISSIONS.items() if duty in duties)
