"""Shared fixtures: the real poster set beside the repo, a per-session feature cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.factories import ROOT

POSTERS = (ROOT / ".." / "shared" / "posters").resolve()
ASSETS = Path(__file__).resolve().parent / "assets"


def committed_params() -> dict:
    """params.yaml as git holds it (the index: what is committed or staged), not the workspace's, which
    `dvc exp run -S ...` changes (a data.films left there by the README's films run must not reach a test's
    repo); the file itself outside a git checkout."""
    import subprocess

    import yaml

    shown = subprocess.run(["git", "show", ":params.yaml"], cwd=ROOT, capture_output=True, text=True)
    return yaml.safe_load(shown.stdout if shown.returncode == 0 else (ROOT / "params.yaml").read_text())


@pytest.fixture(scope="session")
def posters_dir() -> Path:
    if not (POSTERS / "labels.csv").exists():
        pytest.skip(f"poster set not found at {POSTERS}")
    return POSTERS


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory) -> Path:
    """One feature cache for the whole test session (OCR of a poster is done once)."""
    cache = tmp_path_factory.mktemp("feature-cache")
    os.environ["POSTER_GENRES_CACHE"] = str(cache)
    return cache


@pytest.fixture
def allow_random_clip(monkeypatch):
    monkeypatch.setenv("POSTER_GENRES_ALLOW_RANDOM_WEIGHTS", "1")
