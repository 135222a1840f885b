"""`make demo`: a business day of Meituan orders through the whole stack, then its summary.

`run` starts the stack and runs the day; `day` plays the customers and watches the orders;
`summary` reads how they ended, `checks` holds the database to it, `report` prints it.
"""

from localstack.demo.checks import Check, check_database
from localstack.demo.day import Customer, Day, business_day, plan_customers
from localstack.demo.options import POLICY_FILE, DemoOptions, DemoResult
from localstack.demo.report import render
from localstack.demo.run import main, order_lookup, run_demo, sim_config
from localstack.demo.summary import Observed, deadline_table, summarise

__all__ = [
    "POLICY_FILE",
    "Check",
    "Customer",
    "Day",
    "DemoOptions",
    "DemoResult",
    "Observed",
    "business_day",
    "check_database",
    "deadline_table",
    "main",
    "order_lookup",
    "plan_customers",
    "render",
    "run_demo",
    "sim_config",
    "summarise",
]
