"""Results in git (results/): saved with their command and revision, and the README holds their tables."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.evaluation.results import load, run_markdown, save_results

ROOT = Path(__file__).resolve().parents[1]


def test_save_copies_the_reports_with_command_revision_and_changed_params(tmp_path):
    ws = tmp_path / "ws"
    (ws / "compare").mkdir(parents=True)
    (ws / "params.yaml").write_text(yaml.safe_dump({"data": {"films": None, "limit": 10}}))
    subprocess.run(["git", "init", "-q"], cwd=ws, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], cwd=ws, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], cwd=ws, check=True)
    (ws / "params.yaml").write_text(yaml.safe_dump({"data": {"films": "films.csv", "limit": 10}}))
    (ws / "compare" / "report.md").write_text("# report\n")
    (ws / "compare" / "summary.json").write_text("{}")
    prov = save_results(ws, tmp_path / "results" / "x", "dvc exp run -S data.films=films.csv")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ws, capture_output=True, text=True).stdout.strip()
    assert prov["revision"] == head and prov["params_changed"] == {"data.films": "films.csv"}
    assert prov["files"] == ["report.md", "summary.json"] and prov["uncommitted_changes"] is False  # params only
    assert prov["kind"] == "comparison"
    assert (tmp_path / "results" / "x" / "report.md").read_text() == "# report\n"
    assert json.loads((tmp_path / "results" / "x" / "provenance.json").read_text()) == prov


def test_save_refuses_a_workspace_without_reports(tmp_path):
    from pipeline.core.errors import PipelineError

    with pytest.raises(PipelineError, match="no report to save"):
        save_results(tmp_path, tmp_path / "out", "x")


def test_readme_holds_the_committed_films_results():
    """Every number of the README's films tables is the committed report's (results/films)."""
    from pipeline.evaluation.compare import films_markdown

    folder = ROOT / "results" / "films"
    readme = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    summary = load(folder, "summary.json")
    labels = {m: s["label"] for m, s in summary["methods"].items()}
    table = "\n".join(films_markdown(summary["films"], labels)).strip()
    for block in table.split("\n\n"):
        if block.startswith("|"):
            assert block in readme, f"README lacks this table of results/films/summary.json:\n{block}"
    prov = load(folder, "provenance.json")
    assert prov["command"] in readme and prov["revision"][:7] in readme
    main = ROOT / "results" / "films-main"
    table = run_markdown(load(main, "evaluate_metrics.json"), load(main, "train_metrics.json"),
                         "the paper's head + plot + metadata")
    assert table in readme, f"README lacks the table of results/films-main:\n{table}"


def test_docs_hold_the_committed_main_run_and_its_calibration():
    """The main pipeline on the shared set (results/main): its table, the README's headline figures and the ECE
    per genre before and after calibration are the committed run's."""
    from pipeline.evaluation.results import calibration_markdown

    main = ROOT / "results" / "main"
    readme = (ROOT / "README.md").read_text()
    docs = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    evaluate, train = load(main, "evaluate_metrics.json"), load(main, "train_metrics.json")
    table = run_markdown(evaluate, train, "the paper's head, poster only")
    assert table in docs, f"docs lack the table of results/main:\n{table}"
    table = calibration_markdown(evaluate, load(main, "calibration.json"))
    assert table in docs, f"docs lack the calibration table of results/main:\n{table}"
    for figure in (f"macro F1 {100 * evaluate['f1_macro']:.2f} at the paper's rule",
                   f"{100 * evaluate['product_rule']['f1_macro']:.2f} with the product's decision rule",
                   f"macro ECE {100 * evaluate['calibration']['ece_macro']['none']:.1f} points",
                   f"{100 * evaluate['calibration']['ece_macro']['platt']:.1f} after Platt scaling"):
        assert figure in readme, f"README lacks '{figure}' (results/main)"
    prov = load(main, "provenance.json")
    assert prov["command"] in docs and prov["revision"][:7] in docs and prov["kind"] == "main"
