"""The order workflow: one Meituan order from receipt to close (workflow.py), its state in one
dataclass (state.py), and the parts that act on it, one business matter each."""

from workflows.order.workflow import OrderWorkflow

__all__ = ["OrderWorkflow"]
