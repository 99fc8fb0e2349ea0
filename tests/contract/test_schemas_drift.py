"""The generated JSON Schemas and AsyncAPI document match the pydantic models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field

from sbcontracts import catalog, generate
from sbcontracts.envelope import EventData
from sbcontracts.events.control import TenantCreated

REPO_ROOT = generate.CONTRACTS_DIR.parent


class TenantCreatedWithPlan(EventData):
    """TenantCreated as someone might change it without regenerating."""

    event_type: ClassVar[str] = TenantCreated.event_type
    topic: ClassVar[str] = TenantCreated.topic
    tenant_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    plan: str = "free"


def test_committed_contracts_match_the_models() -> None:
    assert generate.check() == []


def test_cli_check_exits_zero_on_committed_tree() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sbcontracts.generate", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_generate_writes_one_schema_per_event_type_and_the_asyncapi(tmp_path: Path) -> None:
    generate.generate(tmp_path)
    written = {p.stem for p in (tmp_path / "schemas").glob("*.json")}
    assert written == {m.event_type for m in catalog.EVENT_MODELS}
    assert (tmp_path / generate.ASYNCAPI_FILE).exists()
    assert generate.check(tmp_path) == []


def test_check_reports_a_model_change_with_a_diff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate.generate(tmp_path)
    changed = tuple(
        TenantCreatedWithPlan if m is TenantCreated else m for m in catalog.EVENT_MODELS
    )
    monkeypatch.setattr(catalog, "EVENT_MODELS", changed)
    problems = generate.check(tmp_path)
    schema_file = tmp_path / "schemas" / f"{TenantCreated.event_type}.json"
    drifted = [p for p in problems if p.startswith(f"drift: {schema_file}")]
    assert drifted and '+        "plan": {' in drifted[0]
    assert any(p.startswith(f"drift: {tmp_path / generate.ASYNCAPI_FILE}") for p in problems)


def test_check_reports_a_hand_edited_file(tmp_path: Path) -> None:
    generate.generate(tmp_path)
    edited = tmp_path / "schemas" / f"{TenantCreated.event_type}.json"
    edited.write_text(edited.read_text().replace('"maxLength": 200', '"maxLength": 300'))
    problems = generate.check(tmp_path)
    assert len(problems) == 1
    assert '-          "maxLength": 300,' in problems[0]


def test_check_reports_missing_and_stale_schemas(tmp_path: Path) -> None:
    generate.generate(tmp_path)
    missing = tmp_path / "schemas" / f"{TenantCreated.event_type}.json"
    missing.unlink()
    stale = tmp_path / "schemas" / "com.switchboard.gone.json"
    stale.write_text("{}\n")
    problems = generate.check(tmp_path)
    assert f"missing: {missing}" in problems
    assert f"stale schema (no such event type): {stale}" in problems


def test_generate_deletes_stale_schemas(tmp_path: Path) -> None:
    generate.generate(tmp_path)
    stale = tmp_path / "schemas" / "com.switchboard.gone.json"
    stale.write_text("{}\n")
    assert stale in generate.generate(tmp_path)
    assert not stale.exists()


def test_schema_pins_the_envelope_type_and_names_the_topic() -> None:
    schema = generate.envelope_schema(TenantCreated)
    assert schema["properties"]["type"]["const"] == TenantCreated.event_type
    assert schema["x-topic"] == TenantCreated.topic
    assert schema["$id"] == f"urn:switchboard:schema:{TenantCreated.event_type}"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
