"""Fixtures of the deploy tests: the offline renderer/validator and every rendered overlay.

`sbk8s` (deploy/validate) is built on first use by deploy/validate/build.sh and cached under
.data/cache/go/; a failing build fails these tests (a missing validator is a broken CI, not a
reason to pass).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "prod", "prod-topics", "keda")
CUSTOM_KINDS = ("kafka.strimzi.io/v1beta2/KafkaTopic", "keda.sh/v1alpha1/ScaledObject")


@pytest.fixture(scope="session")
def sbk8s() -> Path:
    result = subprocess.run(
        ["bash", str(ROOT / "deploy" / "validate" / "build.sh")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.fail(f"building deploy/validate failed:\n{result.stderr}")
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def rendered_text(sbk8s: Path) -> dict[str, str]:
    """`kustomize build` of every overlay."""
    out = {}
    for overlay in OVERLAYS:
        result = subprocess.run(
            [str(sbk8s), "render", str(ROOT / "deploy" / "overlays" / overlay)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            pytest.fail(f"overlay {overlay} does not render:\n{result.stderr}")
        out[overlay] = result.stdout
    return out


@pytest.fixture(scope="session")
def rendered(rendered_text: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Every overlay's documents, parsed."""
    return {o: [d for d in yaml.safe_load_all(text) if d] for o, text in rendered_text.items()}


def validate(sbk8s: Path, text: str) -> subprocess.CompletedProcess[str]:
    args = [str(sbk8s), "validate"]
    for kind in CUSTOM_KINDS:
        args += ["--crd", kind]
    return subprocess.run([*args, "-"], input=text, capture_output=True, text=True, timeout=120)
