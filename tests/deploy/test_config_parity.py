"""Config parity: every environment variable the manifests give a workload is a setting its
service reads (a field of its settings class, introspected), every required setting is set,
and the values parse as the settings class types them."""

from __future__ import annotations

import base64
import importlib
import inspect
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from deploy.tools import gen
from sbkit.settings import KitSettings
from tests.deploy.conftest import OVERLAYS

SERVICES = tuple(s.name for s in gen.SERVICES)
WORKLOAD_OVERLAYS = tuple(o for o in OVERLAYS if o != "prod-topics")
# Secrets the operator creates in prod (deploy/README.md): plausible values to parse with.
SAMPLE_SECRETS = {
    "database-url": "postgresql+asyncpg://svc:secret@postgres.example:5432/switchboard",
    "public-keys": "{}",
    "secret": "0123456789abcdef0123456789abcdef",  # crm-tombstone
}


def settings_class(svc: str) -> type[KitSettings]:
    module = importlib.import_module(f"{svc}.config")
    classes = [
        c
        for _, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, KitSettings) and c is not KitSettings and c.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"{svc}.config should define one settings class: {classes}"
    return classes[0]


def env_names(cls: type[BaseSettings]) -> dict[str, str]:
    """Environment variable → field name, as pydantic-settings reads them."""
    prefix = cls.model_config.get("env_prefix", "")
    names = {}
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        env = alias if isinstance(alias, str) else f"{prefix}{name}"
        names[env.upper()] = name
    return names


def workloads(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(service, container) of every Deployment and Job."""
    out = []
    for d in docs:
        if d["kind"] not in ("Deployment", "Job"):
            continue
        svc = d["metadata"]["labels"]["app.kubernetes.io/name"]
        out += [(svc, c) for c in d["spec"]["template"]["spec"]["containers"]]
    return out


def container_env(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """Every variable the container gets, resolved from the rendered ConfigMaps and Secrets."""
    maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert "secretRef" not in source, "name each secret key in `env` so parity can see it"
        ref = source["configMapRef"]["name"]
        assert ref in maps, f"ConfigMap {ref} is not part of the overlay"
        assert not source.get("prefix")
        env.update(maps[ref].get("data", {}))
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
            continue
        ref = e["valueFrom"].get("secretKeyRef") or e["valueFrom"].get("configMapKeyRef")
        assert ref, f"{e['name']}: only ConfigMap and Secret keys"
        if ref["name"] in secrets:
            secret = secrets[ref["name"]]
            env[e["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
        elif ref["name"] in maps:
            env[e["name"]] = maps[ref["name"]]["data"][ref["key"]]
        else:  # created by the operator (prod): the key must be one we document
            assert ref["key"] in SAMPLE_SECRETS, f"{e['name']}: undocumented secret key"
            env[e["name"]] = SAMPLE_SECRETS[ref["key"]]
    return env


@pytest.mark.parametrize("overlay", WORKLOAD_OVERLAYS)
def test_every_variable_set_is_a_setting_the_service_reads(
    overlay: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    docs = rendered[overlay]
    seen = set()
    for svc, container in workloads(docs):
        seen.add(svc)
        known = env_names(settings_class(svc))
        unknown = sorted(set(container_env(docs, container)) - set(known))
        assert not unknown, f"{overlay}/{svc}/{container['name']}: not settings: {unknown}"
    assert seen == set(SERVICES)


@pytest.mark.parametrize("overlay", WORKLOAD_OVERLAYS)
def test_every_required_setting_is_set_and_every_value_parses(
    overlay: str, rendered: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    docs = rendered[overlay]
    for svc, container in workloads(docs):
        cls = settings_class(svc)
        env = container_env(docs, container)
        names = env_names(cls)
        required = {env_var for env_var, f in names.items() if cls.model_fields[f].is_required()}
        missing = sorted(required - set(env))
        assert not missing, f"{overlay}/{svc}: required settings not set: {missing}"
        with monkeypatch.context() as m:
            for var in list(os.environ):
                if var.startswith("SB_"):
                    m.delenv(var)
            for var, value in env.items():
                m.setenv(var, value)
            settings = cls()  # raises on a value of the wrong type
        assert settings.service == svc
        assert settings.bus == "kafka"
        assert settings.migrate_on_start is False, "Kubernetes migrates with a Job"
        assert settings.host == "0.0.0.0" and settings.port == 8000
        assert settings.db_url().startswith("postgresql+asyncpg://")
        assert settings.schema_name() == svc


def test_introspection_sees_service_specific_settings() -> None:
    """A field added to a service's class shows up (so parity grows with the services)."""
    for svc in SERVICES:
        cls = settings_class(svc)
        assert set(env_names(KitSettings)) <= set(env_names(cls))
        assert "SB_DATABASE_URL" in env_names(cls)
