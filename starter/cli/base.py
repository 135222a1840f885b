"""What every orderctl command shares: its name, its timeouts, and (from starter.failures) its
exit codes and the failure that carries one.

Kept free of Temporal and argparse so any command module can import it without a cycle.
"""

from __future__ import annotations

from datetime import tzinfo

from infra.settings import settings
from starter.failures import Exit, Failure

__all__ = ["CONNECT_TIMEOUT", "DEFAULT_TIMEOUT", "PROG", "Exit", "Failure", "business_zone"]

PROG = "orderctl"
CONNECT_TIMEOUT = 5.0  # seconds; an unreachable server should not keep a person waiting
DEFAULT_TIMEOUT = 30.0  # seconds for the order to answer an action


def business_zone() -> tzinfo:
    """ORDERFLOW_TIMEZONE (default Asia/Shanghai), read when first used, so that a bad value
    is one clear line from `main`, not an import-time traceback."""
    return settings().business.timezone
