"""Checks that the environment / build files are consistent with each other."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - requires-python allows 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent

_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_PINNED_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9._,-]+\])?==([0-9][A-Za-z0-9.+!_-]*)$")


def _normalize(name: str) -> str:
    """PEP 503 name normalisation (PyYAML == pyyaml, pytest_timeout == pytest-timeout)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_lines() -> list[str]:
    lines = []
    for raw in (ROOT / "requirements.txt").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def _pins() -> dict[str, str]:
    pins = {}
    for line in _requirement_lines():
        m = _PINNED_RE.match(line)
        assert m, f"requirements.txt line is not an exact '==' pin: {line!r}"
        pins[_normalize(m.group(1))] = m.group(3)
    return pins


# --- environment.yml --------------------------------------------------------

def test_environment_yml():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert isinstance(env, dict)
    assert env.get("name") == "dac4rec-lite"
    assert env.get("channels") == ["conda-forge"]

    deps = env.get("dependencies")
    assert isinstance(deps, list)
    plain = [d for d in deps if isinstance(d, str)]
    assert "python=3.11" in [d.replace(" ", "") for d in plain]
    assert "pip" in plain

    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one 'pip:' section"
    assert pip_sections[0] == ["-r requirements.txt", "-e ."]


# --- requirements.txt -------------------------------------------------------

def test_requirements_all_pinned_exactly():
    lines = _requirement_lines()
    assert lines, "requirements.txt is empty"
    bad = [line for line in lines if not _PINNED_RE.match(line)]
    assert not bad, f"not pinned with '==': {bad}"
    names = [_normalize(_NAME_RE.match(line).group(1)) for line in lines]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"duplicate requirements: {dupes}"


def test_requirements_torch_pin():
    pins = _pins()
    # Any other torch spec would make pip download a multi-GB CUDA build.
    assert pins.get("torch") == "2.13.0"


def test_requirements_cover_tooling():
    pins = _pins()
    for name in ["jupyterlab", "ipykernel", "papermill", "nbformat", "nbclient",
                 "pytest", "pytest-timeout", "pyyaml", "setuptools", "anywidget"]:
        assert name in pins, f"{name} missing from requirements.txt"


# --- pyproject.toml ---------------------------------------------------------

def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def test_pyproject_runtime_deps_are_pinned_in_requirements():
    project = _pyproject()["project"]
    assert project["name"] == "dac4rec-lite"
    deps = project["dependencies"]
    assert deps, "pyproject.toml declares no runtime dependencies"
    pins = _pins()
    missing = []
    for dep in deps:
        m = _NAME_RE.match(dep)
        assert m, f"cannot parse dependency {dep!r}"
        if _normalize(m.group(1)) not in pins:
            missing.append(dep)
    assert not missing, f"runtime deps missing from requirements.txt: {missing}"


def test_pyproject_pytest_markers():
    ini = _pyproject()["tool"]["pytest"]["ini_options"]
    assert ini["testpaths"] == ["tests"]
    marker_names = {m.split(":", 1)[0].strip() for m in ini["markers"]}
    assert {"notebooks", "slow"} <= marker_names


# --- Makefile ---------------------------------------------------------------

_TARGET_RE = re.compile(r"^([A-Za-z0-9_.%/$() -]+?)\s*::?(?!=)")


def _make_targets() -> set[str]:
    targets: set[str] = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith(("\t", "#", " ")):
            continue
        m = _TARGET_RE.match(line)
        if m:
            targets.update(m.group(1).split())
    return targets


def test_makefile_targets():
    targets = _make_targets()
    required = {"setup", "lab", "test", "test-fast", "notebooks"}
    assert required <= targets, f"Makefile lacks targets: {sorted(required - targets)}"


def test_ci_script_runs_make_test():
    script = ROOT / ".ci" / "run"
    text = script.read_text()
    assert os.access(script, os.X_OK), ".ci/run must be executable"
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert re.search(r"^\s*make test\b", text, re.M)
