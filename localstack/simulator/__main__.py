"""`python -m localstack.simulator --port 8090 --push-base http://127.0.0.1:8080/meituan/push`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from infra.settings import settings
from localstack.simulator.app import create_app
from localstack.simulator.business import load_business
from localstack.simulator.engine import Simulator
from localstack.simulator.state import DEFAULT_PUSH_BASE, Faults, SimConfig


def _optional_seconds(text: str) -> float | None:
    value = float(text)
    return None if value <= 0 else value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m localstack.simulator",
        description="Local Meituan open platform: merchant API, signed pushes, admin API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--push-base",
        default=DEFAULT_PUSH_BASE,
        help="pushes go to {push-base}/{order,cancel,refund,...}; 'none' to not send them",
    )
    platform = settings().meituan  # MEITUAN_APP_ID, MEITUAN_APP_SECRET: the services' own
    parser.add_argument("--app-id", default=platform.app_id)
    parser.add_argument("--secret", default=platform.app_secret)
    parser.add_argument("--business", default=None, help="stores/catalogue JSON (default: demo)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--ids-file",
        type=Path,
        default=None,
        help="keep the last ids given out here, so a restart never repeats one "
        "(default: ids follow the seed)",
    )
    parser.add_argument("--anomaly-rate", type=float, default=0.1)
    parser.add_argument(
        "--confirm-timeout",
        type=_optional_seconds,
        default=600.0,
        help="seconds before an unconfirmed order is auto-cancelled (reason 1001); 0 = never",
    )
    parser.add_argument(
        "--courier-step",
        type=_optional_seconds,
        default=3.0,
        help="seconds between courier statuses after the meal is ready; 0 = manual only",
    )
    parser.add_argument(
        "--order-interval",
        type=_optional_seconds,
        default=None,
        help="generate and push an order every N seconds (default: only on request)",
    )
    parser.add_argument("--push-retries", type=int, default=3)
    parser.add_argument("--push-retry-delay", type=float, default=1.0)
    for name in (
        "push_drop",
        "order_push_drop",
        "push_duplicate",
        "push_delay",
        "push_reorder",
        "api_error_rate",
    ):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=0.0)
    parser.add_argument("--api-latency", type=float, default=0.0)
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> SimConfig:
    faults = Faults(
        push_drop=args.push_drop,
        order_push_drop=args.order_push_drop,
        push_duplicate=args.push_duplicate,
        push_delay=args.push_delay,
        push_reorder=args.push_reorder,
        api_error_rate=args.api_error_rate,
        api_latency_s=args.api_latency,
    )
    return SimConfig(
        app_id=args.app_id,
        secret=args.secret,
        push_base=None if args.push_base.lower() == "none" else args.push_base,
        confirm_timeout_s=args.confirm_timeout,
        courier_step_s=args.courier_step,
        push_retries=args.push_retries,
        push_retry_delay_s=args.push_retry_delay,
        seed=args.seed,
        ids_file=args.ids_file,
        anomaly_rate=args.anomaly_rate,
        order_interval_s=args.order_interval,
        faults=faults,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sim = Simulator(build_config(args), load_business(args.business))
    print(
        f"meituan simulator on http://{args.host}:{args.port} "
        f"(API /api/v1/, admin /sim/; app_id={sim.config.app_id}; "
        f"pushes to {sim.config.push_base or 'nowhere'})",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(create_app(sim), host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
