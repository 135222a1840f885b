"""The simulator never gives out an id twice on the same data folder, restarts included (the
platform never does, and an order's workflow id is made of its id), while a simulator without
one keeps the seed's ids for repeatable tests."""

from __future__ import annotations

import json
from pathlib import Path

from localstack.devstack import SIMULATOR_IDS_FILE
from localstack.simulator import SimConfig, Simulator
from localstack.simulator.ids import ORDER_ID_BASE, KeptIds, order_id_floor


def _config(seed: int, ids_file: Path | None) -> SimConfig:
    return SimConfig(push_base=None, confirm_timeout_s=None, seed=seed, ids_file=ids_file)


def _given_out(sim: Simulator, orders: int) -> tuple[set[int], set[int], set[int]]:
    """Order ids, the customers' view ids and refund or reminder ids of `orders` new orders."""
    made = [sim.create_order(push=False) for _ in range(orders)]
    others = {sim.new_id() for _ in range(orders)}
    views = {m.order.wm_order_id_view for m in made if m.order.wm_order_id_view is not None}
    return {m.order_id for m in made}, views, others


def test_restarts_on_one_data_folder_never_repeat_an_id(tmp_path: Path) -> None:
    """As `orderctl dev` restarts: the same seed, the same folder, one simulator after the
    other."""
    ids_file = tmp_path / SIMULATOR_IDS_FILE
    first = _given_out(Simulator(_config(0, ids_file)), 40)
    second = _given_out(Simulator(_config(0, ids_file)), 40)
    for before, after in zip(first, second, strict=True):
        assert len(before) == len(after) == 40
        assert not before & after
    assert all(ORDER_ID_BASE <= i < 28 * 10**15 for i in first[0] | second[0])
    assert all(10**16 <= i < 11 * 10**15 for i in first[1] | second[1])
    kept = json.loads(ids_file.read_text())
    assert kept["last_order_id"] == max(second[0])


def test_a_clock_set_back_or_a_lost_file_repeats_no_id(tmp_path: Path) -> None:
    kept = KeptIds.load(tmp_path / "ids.json")
    now = 1_800_000_000.0
    first = [kept.next_order_id(now) for _ in range(3)]
    assert first[0] == order_id_floor(now) and first == sorted(set(first))
    after_restart = KeptIds.load(tmp_path / "ids.json")
    assert after_restart.next_order_id(now - 3600) == first[-1] + 1  # the clock went back
    (tmp_path / "ids.json").write_text("not json")
    assert KeptIds.load(tmp_path / "ids.json").next_order_id(now + 1) > first[-1]


def test_without_a_file_the_seed_gives_the_same_ids() -> None:
    def ids() -> list[int]:
        sim = Simulator(_config(5, None))
        return [sim.create_order(push=False).order_id for _ in range(10)] + [sim.new_id()]

    assert ids() == ids()


def test_a_file_leaves_the_rest_of_the_seeds_orders_as_they_were(tmp_path: Path) -> None:
    """The seed still decides the orders' contents (the demo's day stays the same)."""
    plain = Simulator(_config(3, None))
    kept = Simulator(_config(3, tmp_path / SIMULATOR_IDS_FILE))
    for _ in range(10):
        a, b = plain.create_order(push=False), kept.create_order(push=False)
        assert a.order_id != b.order_id
        assert (a.order.total, a.order.app_poi_code, a.anomaly) == (
            b.order.total,
            b.order.app_poi_code,
            b.anomaly,
        )


def test_a_fixed_order_id_is_kept(tmp_path: Path) -> None:
    sim = Simulator(_config(0, tmp_path / SIMULATOR_IDS_FILE))
    assert sim.create_order({"order_id": 27_000_000_000_000_001}, push=False).order_id == (
        27_000_000_000_000_001
    )
