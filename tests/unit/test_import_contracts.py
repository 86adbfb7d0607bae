"""The import contracts ([tool.importlinter] in pyproject.toml) hold on the real tree, catch a
violation of each kind on a copy of it, and name every service and every shared module, so a
fifth service or a new adapter cannot slip past them by being forgotten."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("shared", "services", "scs_router")
# The shared modules a core may import: pure values and functions. Every other shared module is
# an adapter or process plumbing and is in the core contract's forbidden_modules.
PURE_SHARED = {"shared.events", "shared.topics", "shared.nlp"}


def _pyproject() -> dict[str, Any]:
    with (REPO / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def _config() -> dict[str, Any]:
    config: dict[str, Any] = _pyproject()["tool"]["importlinter"]
    return config


def _contract(kind: str, source_suffix: str = "") -> dict[str, Any]:
    contracts: list[dict[str, Any]] = _config()["contracts"]
    found = [
        contract
        for contract in contracts
        if contract["type"] == kind
        and all(source.endswith(source_suffix) for source in contract.get("source_modules", []))
    ]
    assert len(found) == 1, f"expected one {kind} contract, found {len(found)}"
    return found[0]


def _services() -> set[str]:
    return {path.name for path in (REPO / "services").iterdir() if (path / "__init__.py").is_file()}


def _lint_imports(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.is_file():
        pytest.fail(f"{LINT_IMPORTS} missing: import-linter is not installed in this venv")
    only = [argument for contract in contracts for argument in ("--contract", contract)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", *only],
        cwd=root,  # lint-imports reads ./pyproject.toml and puts . first on sys.path
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_contracts_are_kept() -> None:
    result = _lint_imports(REPO)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(_config()['contracts'])} kept, 0 broken." in result.stdout


def _core_init(root: Path, service: str) -> Path:
    """A service's core, whether a module or a package."""
    module = root / "services" / service / "core.py"
    return module if module.is_file() else root / "services" / service / "core" / "__init__.py"


@pytest.mark.parametrize(
    ("importer", "statement", "contract"),
    [
        (
            "services/ingest/core/__init__.py",
            "import services.classifier.core",
            "independent-services",
        ),
        (
            "services/kpi/handlers.py",
            "from services.router import repository",
            "independent-services",
        ),
        ("shared/events.py", "import services.kpi.core", "shared-is-a-library"),
        ("shared/db.py", "import scs_router.schema", "shared-is-a-library"),
        ("services/kpi/api.py", "import scs_router.cli", "composition-root-on-top"),
        ("services/router/core", "import sqlalchemy", "pure-cores"),
        ("services/router/core", "import shared.kafka", "pure-cores"),
        ("services/router/core", "from services.router import handlers", "pure-cores"),
        ("services/kpi/core", "import services.kpi.metrics", "pure-cores"),
        # indirectly, through a shared module a core may import
        ("shared/events.py", "import httpx", "pure-cores"),
    ],
)
def test_a_violation_is_caught(
    tmp_path: Path, importer: str, statement: str, contract: str
) -> None:
    for package in PACKAGES:
        shutil.copytree(
            REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    service = importer.removeprefix("services/").removesuffix("/core")
    path = _core_init(tmp_path, service) if importer.endswith("/core") else tmp_path / importer
    path.write_text(path.read_text() + f"\n{statement}\n")

    result = _lint_imports(tmp_path, contract)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Contracts: 0 kept, 1 broken." in result.stdout, result.stdout


def test_every_service_is_in_the_contracts() -> None:
    services = _services()
    assert services >= {"ingest", "classifier", "router", "kpi"}

    independent = set(_contract("independence")["modules"])
    pure = set(_contract("forbidden", ".core")["source_modules"])

    assert independent == {f"services.{name}" for name in services}
    assert pure == {f"services.{name}.core" for name in services}
    for name in services:
        assert _core_init(REPO, name).is_file(), f"services/{name} has no core"


def test_every_shared_module_is_either_pure_or_forbidden_to_cores() -> None:
    shared = {
        f"shared.{path.stem}"
        for path in (REPO / "shared").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").is_file())
    }
    forbidden = {
        module
        for module in _contract("forbidden", ".core")["forbidden_modules"]
        if module.startswith("shared.")
    }

    assert not forbidden & PURE_SHARED
    unclassified = shared - forbidden - PURE_SHARED
    assert not unclassified, (
        f"{sorted(unclassified)}: may a core import it? If it does I/O, add it to the core "
        "contract's forbidden_modules in pyproject.toml; if it is pure, to PURE_SHARED here"
    )


def test_the_scs_command_is_the_composition_root() -> None:
    project = _pyproject()
    assert project["project"]["scripts"]["scs"] == "scs_router.cli:app"
    assert "scs_router*" in project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert project["tool"]["importlinter"]["root_packages"] == list(PACKAGES)


def test_every_service_table_is_collected_for_autogenerate() -> None:
    """shared/migrations/env.py may not import the services: scs_router.schema collects them."""
    script = (
        "import sys; from scs_router.schema import all_tables; all_tables(); "
        "print(' '.join(sorted(m for m in sys.modules if m.endswith('.repository'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    repositories = {
        f"services.{path.parent.name}.repository"
        for path in (REPO / "services").glob("*/repository.py")
    }
    assert set(done.stdout.split()) == repositories
