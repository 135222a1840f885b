"""A local stand-in for the Meituan open platform (R6.3.1), faithful to its documented behaviour.

In process: `Simulator(SimConfig(...))` and `create_app(sim)`, or `serve_simulator(...)` for a
real HTTP server on a free loopback port. Command line: `python -m localstack.simulator`.
"""

from localstack.simulator.app import create_app
from localstack.simulator.business import Business, CatalogueItem, Store, load_business
from localstack.simulator.engine import AdminError, Simulator
from localstack.simulator.generator import NO_ANOMALY, AnomalyKind, GeneratedOrder, OrderGenerator
from localstack.simulator.merchant_api import API, ApiFailure, detail_payload
from localstack.simulator.server import BackgroundServer, RunningSimulator, serve_simulator
from localstack.simulator.state import (
    DEFAULT_PUSH_BASE,
    Faults,
    MerchantCall,
    PushRecord,
    Refund,
    SimConfig,
    SimOrder,
)

__all__ = [
    "API",
    "DEFAULT_PUSH_BASE",
    "NO_ANOMALY",
    "AdminError",
    "AnomalyKind",
    "ApiFailure",
    "BackgroundServer",
    "Business",
    "CatalogueItem",
    "Faults",
    "GeneratedOrder",
    "MerchantCall",
    "OrderGenerator",
    "PushRecord",
    "Refund",
    "RunningSimulator",
    "SimConfig",
    "SimOrder",
    "Simulator",
    "Store",
    "create_app",
    "detail_payload",
    "load_business",
    "serve_simulator",
]
