"""The policy loader: defaults, file, environment; and the example file matches the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.policy import PolicyError, build_policy
from schemas.policy import Clause, HardAction, Policy

EXAMPLE = Path(__file__).parents[2] / "policy.example.toml"


def test_the_example_file_documents_the_defaults() -> None:
    assert build_policy(EXAMPLE, {}) == Policy()


def test_a_shared_deadline_applies_to_both_types_and_a_typed_one_wins(tmp_path: Path) -> None:
    file = tmp_path / "policy.toml"
    file.write_text(
        "[deadlines.review]\nminutes = 7\nhard_minutes = 9\n"
        "[service.deadlines.review]\nminutes = 3\nhard_minutes = 4\n",
        encoding="utf-8",
    )
    policy = build_policy(file, {})
    assert policy.goods.deadlines.of(Clause.REVIEW).minutes == 7
    assert policy.service.deadlines.of(Clause.REVIEW).minutes == 3


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    file = tmp_path / "policy.toml"
    file.write_text("[goods]\nauto_confirm = false\n", encoding="utf-8")
    policy = build_policy(
        file,
        {
            "ORDERFLOW_POLICY__goods__auto_confirm": "true",
            "ORDERFLOW_POLICY__goods__deadlines__confirm__action": "reassign",
            "ORDERFLOW_POLICY__receive__minutes": "1.5",
        },
    )
    assert policy.goods.auto_confirm is True
    assert policy.goods.deadlines.confirm.action is HardAction.REASSIGN
    assert policy.receive.minutes == 1.5


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ORDERFLOW_POLICY__goods__deadlines__prepare__hard_minutes": "5"}, "hard_minutes"),
        ({"ORDERFLOW_POLICY__goods__deadlines__prepare__action": "cancel"}, "cancel_code"),
        ({"ORDERFLOW_POLICY__goods__deadlines__prepare__minutes": "soon"}, "minutes"),
        ({"ORDERFLOW_POLICY__goods__typo": "1"}, "typo"),
    ],
)
def test_a_bad_policy_says_what_is_wrong(environ: dict[str, str], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        build_policy(None, environ)


def test_a_broken_file_names_itself(tmp_path: Path) -> None:
    file = tmp_path / "policy.toml"
    file.write_text("[goods\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"policy\.toml"):
        build_policy(file, {})
