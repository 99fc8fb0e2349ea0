"""Layering rules: domain code stays pure; services talk to each other only through contracts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("ingest", "crm", "routing", "analytics", "notifier")
FRAMEWORKS = {
    "fastapi",
    "starlette",
    "sqlalchemy",
    "aiokafka",
    "httpx",
    "asyncpg",
    "aiosqlite",
    "alembic",
    "uvicorn",
    "sbkit",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _files(service: str, sub: str = "") -> list[Path]:
    return sorted((ROOT / "services" / service / "src" / service / sub).rglob("*.py"))


@pytest.mark.parametrize("service", SERVICES)
def test_domain_imports_no_framework(service: str) -> None:
    files = _files(service, "domain")
    assert files, f"{service} has no domain package"
    for path in files:
        bad = _imports(path) & FRAMEWORKS
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("service", SERVICES)
def test_service_never_imports_another_service(service: str) -> None:
    others = set(SERVICES) - {service}
    for path in _files(service):
        bad = _imports(path) & others
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_rules_catch_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text("from sqlalchemy import select\nimport crm.domain\n")
    assert _imports(bad) & FRAMEWORKS == {"sqlalchemy"} and "crm" in _imports(bad)
