"""The README's performance tables are the benchmarks' committed reports, not hand-typed numbers.

Each benchmark writes a JSON report (committed in ``benchmarks/``) and renders it as a markdown
table with its own ``markdown`` function; the README must hold that exact table, so a re-run that
changes a number fails here until the README shows the new one.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.factories import ROOT

BENCHMARKS = ROOT / "benchmarks"

#: (benchmark script, its committed report, the functions that render the README's tables)
TABLES = [
    ("bench_ocr.py", "ocr.json", ["markdown"]),
    ("bench_ocr.py", "ocr_detector.json", ["markdown"]),
    ("bench_pipeline.py", "pipeline.json", ["markdown", "markdown_warm"]),
    ("bench_pipeline.py", "epoch.json", ["markdown_epochs"]),
    ("bench_pipeline.py", "epoch_profile.json", ["markdown_profile"]),
    ("bench_cold_run.py", "cold_run.json", ["markdown", "markdown_metrics", "markdown_rule"]),
    ("bench_cold_run.py", "cold_run_bf16.json", ["markdown", "markdown_metrics", "markdown_rule"]),
    ("bench_cold_run.py", "cold_run_patience3.json", ["markdown"]),
    ("bench_cold_run.py", "cold_run_targets.json", ["markdown", "markdown_targets"]),
    ("bench_executors.py", "executors.json", ["markdown", "markdown_catalogue"]),
    ("bench_plots.py", "plots.json", ["markdown"]),
    ("bench_review.py", "review.json", ["markdown"]),
    ("bench_store.py", "store.json", ["markdown"]),
]


def _module(script: str):
    spec = importlib.util.spec_from_file_location(script.removesuffix(".py"), BENCHMARKS / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("script", "report", "renderers"), TABLES)
def test_readme_shows_the_committed_report(script, report, renderers):
    data = json.loads((BENCHMARKS / report).read_text())
    readme = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    module = _module(script)
    for name in renderers:
        table = getattr(module, name)(data)
        assert table in readme, f"README lacks the table of benchmarks/{report} ({script}, {name}):\n{table}"
