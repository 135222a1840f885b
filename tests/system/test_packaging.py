"""The lock files keep step with pyproject.toml, and the image installs what production needs.

requirements/main.txt is the production image's (the dependencies), requirements/dev.txt what
make installs (with the dev, local and otel extras), requirements/otel.txt an image that traces
(the dependencies and the otel extra); all are made by `make lock`. Nothing here touches the
network.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra import database

ROOT = Path(__file__).parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
MAIN = [Requirement(r) for r in PROJECT["dependencies"]]
EXTRAS = {k: [Requirement(r) for r in v] for k, v in PROJECT["optional-dependencies"].items()}
LOCAL = {canonicalize_name(r.name) for r in EXTRAS["local"]}
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


def pins(lock: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a lock file as pip-compile writes it."""
    text = (ROOT / "requirements" / lock).read_text(encoding="utf-8").replace("\\\n", " ")
    found: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)((?:\s+--hash=\S+)*)", line)
        assert match, f"{lock}: not a pinned, hashed requirement: {line}"
        name, version, hashes = match.groups()
        found[canonicalize_name(name)] = (version, hashes.split())
    return found


LOCKS = {
    "main.txt": MAIN,
    "dev.txt": MAIN + EXTRAS["dev"] + EXTRAS["local"] + EXTRAS["otel"],
    "otel.txt": MAIN + EXTRAS["otel"],  # an image that traces (infra/tracing.py)
}


@pytest.mark.parametrize("lock", LOCKS)
def test_every_dependency_is_locked_exactly_with_hashes(lock: str) -> None:
    locked = pins(lock)
    for requirement in LOCKS[lock]:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is in pyproject.toml, not in {lock}: make lock"
        version, hashes = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock} has {name}=={version}, pyproject.toml wants {requirement.specifier}: make lock"
        )
    for name, (_, hashes) in locked.items():
        assert any(h.startswith("--hash=sha256:") for h in hashes), f"{lock}: {name} unhashed"


@pytest.mark.parametrize("lock", LOCKS)
def test_temporalio_is_locked_at_the_pin(lock: str) -> None:
    (temporalio,) = [r for r in MAIN if r.name == "temporalio"]
    (pin,) = temporalio.specifier
    assert pin.operator == "=="
    assert pins(lock)["temporalio"][0] == pin.version


def test_the_image_runs_the_versions_the_tests_ran() -> None:
    main, dev = pins("main.txt"), pins("dev.txt")
    assert {n: v for n, (v, _) in main.items()} == {n: dev[n][0] for n in main}
    assert not LOCAL & set(main), "the local servers are not for the production image"


@pytest.mark.parametrize("lock", ["main.txt", "dev.txt", "otel.txt", "tools.txt"])
def test_the_locks_are_made_for_python_3_11(lock: str) -> None:
    header = (ROOT / "requirements" / lock).read_text(encoding="utf-8")[:200]
    assert "pip-compile with Python 3.11" in header and "make lock" in header


def test_make_installs_from_the_dev_lock_and_again_when_it_changes() -> None:
    rule = re.search(r"^\$\(STAMP\): (.*)\n((?:\t.*\n)+)", MAKEFILE, re.M)
    assert rule, "the install rule"
    assert {"pyproject.toml", "requirements/dev.txt"} <= set(rule.group(1).split())
    assert "$(PIP_LOCKED) -r requirements/dev.txt" in rule.group(2)
    assert "PIP_LOCKED := -m pip install --quiet --require-hashes --no-deps" in MAKEFILE
    assert "--no-deps --no-build-isolation -e ." in rule.group(2)


def test_an_image_that_traces_runs_the_versions_the_tests_ran() -> None:
    """requirements/otel.txt is the main lock and the `otel` extra, at the dev lock's versions
    (the tracing tests ran them); the image installs it only when built with TRACING=yes."""
    main, dev, otel = pins("main.txt"), pins("dev.txt"), pins("otel.txt")
    assert set(main) - {"setuptools"} <= set(otel)  # the build backend: main installs it
    assert {n: v for n, (v, _) in otel.items()} == {n: dev[n][0] for n in otel}
    install = re.search(r'if \[ "\$TRACING" = yes \]; then \\\n\s+pip install (.*); fi', DOCKERFILE)
    assert install and "--require-hashes --no-deps -r requirements/otel.txt" in install.group(1)
    assert "ARG TRACING=no" in DOCKERFILE


def test_the_image_installs_the_main_lock_only() -> None:
    installs = re.findall(r"pip install ([^\n&]*)", DOCKERFILE)
    assert installs, "the Dockerfile installs nothing"
    locked = [i for i in installs if "-r requirements/main.txt" in i]
    assert locked and all("--require-hashes" in i and "--no-deps" in i for i in locked)
    for line in installs:
        assert "--no-deps" in line, f"the image resolves against the index: {line}"
        assert "[" not in line, f"the image installs an extra: {line}"
    assert "dev.txt" not in DOCKERFILE


def test_the_image_copies_every_package_production_runs() -> None:
    copied = set(re.findall(r"^COPY (\S+) \S+$", DOCKERFILE, re.M))
    find = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    packages = {p.rstrip("*") for p in find["setuptools"]["packages"]["find"]["include"]}
    assert packages - {"localstack"} <= copied
    assert "localstack" not in copied


# Run in a fresh interpreter: every module of what the image holds imports with only the main
# lock's distributions: the dev and local ones (pgserver, pytest, ...) and the local stack are
# made unimportable first.
_IMPORT_PRODUCTION = """
import importlib, importlib.metadata as md, pkgutil, re, sys
main = {re.sub(r"[-_.]+", "-", l.split("==")[0]).lower()
        for l in open("requirements/main.txt") if "==" in l and not l.startswith(" ")}
for module, dists in md.packages_distributions().items():
    names = {re.sub(r"[-_.]+", "-", d).lower() for d in dists}
    if not names & (main | {"orderflow", "pip"}):
        sys.modules[module] = None
sys.modules["localstack"] = None
for package in sys.argv[1:]:
    for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
assert "pgserver" not in sys.modules or sys.modules["pgserver"] is None
print("matplotlib" in sys.modules)
"""


def test_production_imports_without_the_dev_and_local_packages() -> None:
    packages = ["schemas", "infra", "meituan", "activities", "workflows", "analytics"]
    packages += ["workers", "starter"]
    run = subprocess.run(
        [sys.executable, "-c", _IMPORT_PRODUCTION, *packages],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False", "matplotlib is imported only to draw a chart"


def test_the_embedded_server_without_the_local_extra_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pgserver", None)
    with pytest.raises(database.EmbeddedServerMissingError, match=r"DATABASE_URL.*local extra"):
        database.start_embedded(tmp_path / "pg")
