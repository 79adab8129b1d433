"""End to end: the real `dvc repro` in a temporary git repo on 30 real posters, offline encoders."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.conftest import ASSETS, committed_params
from tests.factories import ROOT, git_commit, git_repo

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def run(cmd: list[str], cwd: Path, check: bool = True, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **env}
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def ran_stages(output: str, films: bool = False) -> list[str]:
    """The stages DVC ran, in order; without ``films``, less the films stage, which runs every time (its CSV
    path may be null, which DVC cannot declare as a dependency) and changes nothing when nothing changed."""
    # stages of comparison/dvc.yaml are named "comparison/dvc.yaml:compare@..."
    ran = [line.split("'")[1].split(":")[-1] for line in output.splitlines() if line.startswith("Running stage")]
    return ran if films else [s for s in ran if s != "films"]


@pytest.fixture(scope="module")
def built_repo(tmp_path_factory, posters_dir) -> Path:
    """A throwaway git repo of the project on 30 posters, after one `dvc repro` (committed)."""
    repo = tmp_path_factory.mktemp("repo")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (repo / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, repo / f)
    params = committed_params()  # not the workspace's: a user's `dvc exp run -S ...` may have changed it
    params["data"].update(source=str(posters_dir), limit=30)
    params["encoder"]["name"] = "offline"
    params["train"]["epochs"] = 4
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git_repo(repo)  # dvc exp run commits experiments: the throwaway repo has an identity of its own
    out = run(["dvc", "repro"], repo)
    ran = ran_stages(out.stdout)
    assert sorted(ran) == sorted(["scrape", "ingest", "embed-image", "ocr", "embed-text", "split", "train", "evaluate",
                                  "embed-plot", "product"])
    assert ran[:2] == ["scrape", "ingest"] and sorted(ran[-3:]) == ["evaluate", "product", "train"]
    assert ran.index("train") < min(ran.index("evaluate"), ran.index("product"))
    assert "films" in ran_stages(out.stdout, films=True)
    git_commit(repo, "run")
    return repo


@pytest.fixture
def repo(built_repo, tmp_path) -> Path:
    """A copy of the built repo for one test: no test sees another's experiments or edits, in any order (the
    feature cache is shared, as it is keyed by content)."""
    copy = tmp_path / "built"
    shutil.copytree(built_repo, copy, symlinks=True)
    return copy


def test_metrics_present_and_finite(repo):
    metrics = json.loads((repo / "dvclive" / "evaluate" / "metrics.json").read_text())
    for key in ("f1_macro", "f1_micro", "f1_weighted", "f1_samples", "balanced_accuracy_macro",
                "balanced_accuracy_micro", "balanced_accuracy_weighted", "balanced_accuracy_samples",
                "hamming_loss", "hit", "average_precision_macro"):
        assert math.isfinite(metrics[key]) and 0 <= metrics[key] <= 1, key
    train = json.loads((repo / "dvclive" / "train" / "metrics.json").read_text())
    assert 1 <= train["best_epoch"] <= train["epochs_run"] <= 4
    # DVCLive logged every epoch (step = epoch): losses and validation metrics, one row per epoch
    for name in ("train/loss", "val/loss", "val/f1_macro", "val/average_precision_macro"):
        rows = (repo / "dvclive" / "train" / "plots" / "metrics" / f"{name}.tsv").read_text().splitlines()
        assert rows[0] == f"step\t{name.split('/')[1]}" and [int(r.split()[0]) for r in rows[1:]] == list(
            range(1, train["epochs_run"] + 1)), rows
    assert train["step"] == train["epochs_run"] and train["val"]["loss"] > 0
    # both decision rules: the paper's (the metrics above) and the product's, chosen by train on validation
    assert list(train["decision_rule"]) == ["poster_only"]  # a poster-only model: one decision for every film
    assert train["decision_rule"]["poster_only"]["metric"] == "f1_macro_samples"
    assert metrics["product_rule"]["rules"] == [f"poster_only:{train['decision_rule']['poster_only']['name']}"]
    for key in ("genres_per_poster", "genres_per_poster_true"):
        assert 0 <= metrics[key] <= 13
    per_genre = json.loads((repo / "dvclive" / "evaluate" / "plots" / "custom" / "per_genre.json").read_text())
    assert len(per_genre) == 13 and {"genre", "f1", "precision", "recall"} <= set(per_genre[0])
    # calibration measured on test (temperature and Platt fitted on validation); the one applied chosen on validation
    assert metrics["calibration"]["applied"] == train["decision_rule"]["poster_only"]["calibration"]
    assert metrics["calibration"]["applied"] in ("none", "temperature", "platt")
    assert set(metrics["calibration"]["ece_macro"]) == {"none", "temperature", "platt"}
    assert all(0 <= v <= 1 for v in metrics["calibration"]["ece_macro"].values())
    for plot in ("calibration", "reliability"):
        assert (repo / "dvclive" / "evaluate" / "plots" / "custom" / f"{plot}.json").exists()
    # the review page of the test split: one card per test poster
    test_films = pl.read_parquet(repo / "data" / "split.parquet").filter(pl.col("split") == "test")["imdb_id"]
    test_posters = pl.read_parquet(repo / "data" / "posters.parquet").filter(pl.col("imdb_id").is_in(test_films))
    page = (repo / "eval" / "review" / "index.html").read_text()
    assert page.count('<article class="card"') == metrics["posters"] == test_posters.height
    assert "no thumbnail" not in page and "worst errors first" in page
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], repo).stdout)
    files = shown[""]["data"]
    assert files["dvclive/evaluate/metrics.json"]["data"]["f1_macro"] == metrics["f1_macro"]
    assert files["dvclive/train/metrics.json"]["data"]["best_epoch"] == train["best_epoch"]


def test_second_repro_runs_nothing(repo):
    out = run(["dvc", "repro"], repo)
    assert ran_stages(out.stdout, films=True) == ["films"], out.stdout  # always runs; its outputs stay the same
    status = run(["dvc", "status", "dvc.yaml"], repo).stdout
    assert [line.strip() for line in status.splitlines() if line.strip()] == ["films:", "always changed"], status


def test_fusion_param_reruns_only_train_evaluate_and_product(repo):
    out = run(["dvc", "exp", "run", "-S", "fusion.layers=1"], repo)
    assert sorted(ran_stages(out.stdout)) == ["evaluate", "product", "train"], out.stdout
    table = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    text = json.dumps(table)
    assert '"layers": 1' in text and '"layers": 4' in text and "f1_macro" in text
    # the experiment itself (not only the workspace) carries its metrics, so exp show can compare
    exps = [r for entry in table for e in entry.get("experiments") or [] for r in e.get("revs", [])]
    assert exps and all("f1_macro" in json.dumps(r["data"]["metrics"]) for r in exps), exps
    # metrics diff and plots diff compare the experiment with the workspace's base commit
    diff = json.loads(run(["dvc", "metrics", "diff", "HEAD", exps[0]["rev"], "--json"], repo).stdout)
    assert "f1_macro" in diff.get("dvclive/evaluate/metrics.json", {}), diff
    run(["dvc", "plots", "diff", "HEAD", exps[0]["rev"], "-o", "dvc_plots_diff"], repo)
    html = (repo / "dvc_plots_diff" / "index.html").read_text()
    assert "Asymmetric loss per epoch" in html and exps[0]["rev"][:7] in html


def test_plots_render(repo):
    out = run(["dvc", "plots", "show", "-o", "dvc_plots"], repo)
    html = (repo / "dvc_plots" / "index.html").read_text()
    titles = ("Asymmetric loss per epoch", "Validation macro F1", "Test F1 per genre", "Precision-recall per genre",
              "Expected calibration error per genre", "Reliability on test (scores as trained)",
              "Reliability on test (probabilities calibrated")
    for title in titles:
        assert title in html, (title, out.stdout)


def test_predict_cli_json_with_a_bad_file(repo, posters_dir, tmp_path):
    folder = tmp_path / "new"
    folder.mkdir()
    posters = sorted((posters_dir / "images").glob("*.jpg"))[:3]
    for p in posters[1:]:
        shutil.copy(p, folder / p.name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = run([sys.executable, "-m", "stages.cli", "predict", str(posters[0]), str(folder), "--format", "json",
               "--threshold", "0.5", "--html", str(tmp_path / "page")], repo)
    result = json.loads(out.stdout)
    assert [Path(r["path"]).name for r in result] == [posters[0].name, posters[1].name, posters[2].name]
    for r in result:
        assert len(r["probabilities"]) == 13 and all(0 <= v <= 1 for v in r["probabilities"].values())
        assert set(r["genres"]) == {g for g, v in r["probabilities"].items() if v > 0.5}  # the paper's rule
        assert r["rule"] == "global@0.5"
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.jpg" in errors[0]
    # --html: a review page of the same posters, their genres and probabilities, the broken file named on it
    page = (tmp_path / "page" / "index.html").read_text()
    assert page.count('<article class="card"') == 3 and "broken.jpg" in page and "global@0.5" in page
    keys = re.findall(r'<article class="card" data-key="([0-9a-f]+)"', page)
    assert sorted(p.name for p in (tmp_path / "page" / "thumbs").iterdir()) == sorted(f"{k}.jpg" for k in keys)
    for r in result:
        top = max(r["probabilities"].values())
        assert f'data-conf="{round(top, 4):.6f}"' in page  # the page shows probabilities to 4 places
    # by default, the product (models/product.pt): its poster-only plan's rule, named on stderr and per row
    from pipeline.models.product import load_product

    rule = load_product(repo / "models" / "product.pt").plan_for("poster_only").decision.rule
    csv_out = run([sys.executable, "-m", "stages.cli", "predict", str(posters[0]), "-f", "csv"], repo)
    assert csv_out.stdout.splitlines()[0].startswith("path,genres,Action")
    assert csv_out.stdout.splitlines()[0].endswith(",rule,pattern")
    assert csv_out.stdout.splitlines()[1].endswith(f",{rule.name},poster_only")
    assert [line for line in csv_out.stderr.splitlines() if line.startswith("poster_only: rule: ")]
    bad = run([sys.executable, "-m", "stages.cli", "predict", str(folder / "broken.jpg")], repo, check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("error:") and bad.stderr.count("\n") == 1


def test_bad_param_is_one_line(repo, tmp_path):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["fusion"]["layres"] = 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(params))
    out = run([sys.executable, "-m", "stages.train", "--params", str(bad)], repo, check=False)
    assert out.returncode == 1 and out.stderr.strip() == (f"error: {bad}: unknown parameter 'fusion.layres' "
                                                             "(did you mean 'fusion.layers'?)")


def test_clip_path_end_to_end_with_tiny_random_model(repo, tmp_path):
    """OpenCLIP through embed-image, embed-text, train and evaluate (tiny config, random weights)."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["encoder"].update(name="clip", model=str(ASSETS / "tiny-clip-test.json"), pretrained="random")
    params["train"]["epochs"] = 2
    p = tmp_path / "clip.yaml"
    p.write_text(yaml.safe_dump(params))
    f = tmp_path / "clip"
    env = {"POSTER_GENRES_ALLOW_RANDOM_WEIGHTS": "1"}
    cli = [sys.executable, "-m", "stages.cli"]
    run(cli + ["embed-image", "--params", str(p), "--out", str(f / "image.h5"), "--index", str(f / "image.parquet"),
               "--report", str(f / "image_report.json")], repo, **env)
    run(cli + ["embed-text", "--params", str(p), "--out", str(f / "text.h5"), "--index", str(f / "text.parquet"),
               "--report", str(f / "text_report.json")], repo, **env)
    run(cli + ["embed-plot", "--params", str(p), "--out", str(f / "plot.h5"), "--index", str(f / "plot.parquet"),
               "--report", str(f / "plot_report.json")], repo, **env)  # data.films null: empty, no encoder
    run(cli + ["train", "--params", str(p), "--features", str(f), "--model", str(f / "model.pt"),
               "--live", str(f / "live_train")], repo, **env)
    run(cli + ["evaluate", "--params", str(p), "--features", str(f), "--model", str(f / "model.pt"),
               "--live", str(f / "live_eval"), "--predictions", str(f / "pred.parquet")], repo, **env)
    shown = json.loads(run(cli + ["features", "show", str(f)], repo).stdout)
    assert shown["image"]["identity"]["encoder"] == "clip"
    assert shown["image"]["datasets"]["tokens"]["shape"][1:] == [17, 32]  # class token first, all projected
    assert math.isfinite(json.loads((f / "live_eval" / "metrics.json").read_text())["f1_micro"])
    # without the test switch, the same params refuse to run
    out = run(cli + ["embed-image", "--params", str(p), "--out", str(tmp_path / "x.h5"), "--index",
                     str(tmp_path / "x.parquet"), "--report", str(tmp_path / "x.json")], repo, check=False,
              POSTER_GENRES_ALLOW_RANDOM_WEIGHTS="0")
    assert out.returncode == 1 and "encoder.name=offline" in out.stderr


def test_comparison_pipeline_from_cached_features(repo):
    """dvc repro comparison/dvc.yaml: methods x seeds from the feature store, then the report."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["compare"].update(methods=["ours", "concat", "naive", "text"], seeds=[0, 1], bootstrap=200)
    params["train"]["epochs"] = 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(["dvc", "repro", "comparison/dvc.yaml"], repo)
    ran = ran_stages(out.stdout)
    assert sorted(ran) == sorted([f"compare@{m}-{s}" for m in params["compare"]["methods"] for s in (0, 1)]
                                 + ["report"]), ran
    assert not {"ocr", "embed-image", "embed-text", "ingest"} & set(ran)
    report = (repo / "compare" / "report.md").read_text()
    for heading in ("Table I", "Table II", "Table III", "Table IV", "Paired bootstrap", "p (Holm)"):
        assert heading in report
    metrics = json.loads((repo / "compare" / "metrics.json").read_text())
    assert set(metrics["methods"]) == set(params["compare"]["methods"])
    assert ran_stages(run(["dvc", "repro", "comparison/dvc.yaml"], repo).stdout) == []
    # changing the loss re-trains every method and re-reports, nothing else
    out = run(["dvc", "exp", "run", "comparison/dvc.yaml", "-S", "loss.name=bce"], repo)
    ran = ran_stages(out.stdout)
    assert "report" in ran and len(ran) == 2 * len(params["compare"]["methods"]) + 1
    assert all(r.startswith("compare@") or r == "report" for r in ran)
    # thresholds are post-hoc: per-genre thresholds re-run the report only, no training
    out = run(["dvc", "exp", "run", "comparison/dvc.yaml", "-S", "eval.threshold_mode=per_genre"], repo)
    assert ran_stages(out.stdout) == ["report"]
    assert "tuned on each run's validation scores" in (repo / "compare" / "report.md").read_text()


def test_evaluate_stage_tunes_per_genre_thresholds_on_the_validation_split(repo, tmp_path):
    """The evaluate stage itself (not a function it calls) hands the tuner the validation split: its per-genre
    thresholds are those tuned on the model's validation scores, and not those test would give."""
    import numpy as np
    import torch

    from pipeline.models.checkpoint import load_head
    from pipeline.models.datasets import load_datasets, predict_scores
    from pipeline.scoring.thresholds import tune_thresholds

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["eval"]["threshold_mode"] = "per_genre"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run([sys.executable, "-m", "stages.evaluate", "--params", str(tmp_path / "params.yaml"),
         "--live", str(tmp_path / "live"), "--predictions", str(tmp_path / "predictions.parquet"),
         "--thresholds", str(tmp_path / "thresholds.json")], repo)
    saved = json.loads((tmp_path / "thresholds.json").read_text())
    assert saved["mode"] == "per_genre"
    head, ckpt = load_head(repo / "models" / "model.pt")
    data = load_datasets(repo / "features", repo / "data" / "posters.parquet", repo / "data" / "split.parquet",
                         ckpt["genres"], repo / "data" / "films.parquet", spec=ckpt.get("metadata_spec")).datasets
    cpu = torch.device("cpu")
    tuned = {name: tune_thresholds(d.labels.numpy(), predict_scores(head, d, cpu)) for name, d in data.items()}
    got = np.array([saved["thresholds"][g] for g in ckpt["genres"]])
    assert got == pytest.approx(tuned["val"])
    # the check can tell the splits apart: test (or train) would have given other thresholds
    assert not np.allclose(tuned["test"], tuned["val"]) and not np.allclose(tuned["train"], tuned["val"])


def test_train_stage_saves_the_rule_chosen_on_the_validation_split(repo):
    """The train stage (not a test fixture) chooses the product rule: the checkpoint's rule and its figures are
    choose_rule's on the saved head's validation scores, and differ from what test or train would choose."""
    import torch

    from pipeline.models.checkpoint import load_head
    from pipeline.models.datasets import load_datasets, predict_scores
    from pipeline.scoring.decisions import Decision
    from pipeline.scoring.thresholds import choose_rule

    head, ckpt = load_head(repo / "models" / "model.pt")
    decision = Decision.from_dict(ckpt["decisions"]["poster_only"])
    metric = yaml.safe_load((repo / "params.yaml").read_text())["eval"]["rule_metric"]
    data = load_datasets(repo / "features", repo / "data" / "posters.parquet", repo / "data" / "split.parquet",
                         ckpt["genres"], repo / "data" / "films.parquet", spec=ckpt.get("metadata_spec")).datasets
    chosen = {}
    for name, d in data.items():
        scores = decision.probabilities(predict_scores(head, d, torch.device("cpu")))  # as train chose it
        rule, report = choose_rule(d.labels.numpy(), scores, ckpt["genres"], metric=metric)
        chosen[name] = (rule.to_dict(), report["chosen"])
    assert (decision.rule.to_dict(), decision.validation["chosen"]) == chosen["val"]
    assert chosen["test"] != chosen["val"] and chosen["train"] != chosen["val"]


def test_imdb_source_against_local_server(repo, posters_dir):
    """data.source: imdb, pointed at a fake IMDb on 127.0.0.1 serving 30 real posters, through to metrics."""
    import csv as _csv

    from tests.http_fixture import LocalServer
    from tests.imdb_fixture import serve_films

    rows = [r for r in _csv.DictReader(open(posters_dir / "labels.csv"))
            if set(r["genres"].split("|")) & {"Action", "Comedy", "Drama", "Horror", "Romance", "Thriller"}][:30]
    with LocalServer() as srv:
        serve_films(srv, rows, posters_dir)
        out = run(["dvc", "exp", "run", "-S", "data.source=imdb", "-S", f"data.datasets_url={srv.url}/datasets",
                   "-S", f"data.title_url={srv.url}/title", "-S", "data.rate_limit=0", "-S", "data.limit=30"], repo)
    assert ran_stages(out.stdout)[:2] == ["scrape", "ingest"]
    report = json.loads((repo / "imdb" / "scrape_report.json").read_text())
    assert report["films_listed"] == 30 and report["posters_saved"] == 30 and report["failures"] == {}
    metrics = json.loads((repo / "dvclive" / "evaluate" / "metrics.json").read_text())
    assert math.isfinite(metrics["f1_micro"]) and metrics["posters"] >= 2


def test_ocr_engine_switch_reruns_ocr_and_downstream_only(repo):
    """Switching engines re-reads the posters with the other engine and re-runs what reads its text;
    the report says which engine read them and how well (film-title recall)."""
    first = json.loads((repo / "features" / "ocr_report.json").read_text())
    other = "easyocr" if first["engine"] == "rapidocr" else "rapidocr"
    out = run(["dvc", "exp", "run", "-S", f"ocr.engine={other}"], repo)
    assert sorted(ran_stages(out.stdout)) == sorted(["ocr", "embed-text", "train", "evaluate", "product"]), out.stdout
    report = json.loads((repo / "features" / "ocr_report.json").read_text())
    assert report["engine"] == other and report["posters"] == first["posters"]
    recall = report["quality"]["title_recall"]
    assert recall["posters_with_title_words"] >= 20 and 0 < recall["substring_any"] <= 1


FILMS_CSV = ROOT / ".." / "shared" / "films" / "films.csv"


def test_films_run_then_poster_only_again_reuses_every_poster_feature(repo, tmp_path, posters_dir):
    """data.films set: the films and embed-plot stages and what reads them re-run, no poster stage; the model reads
    the plot and metadata, evaluate reports films with and without a plot; predict with --plot and --films; back to
    data.films=null: nothing per poster re-runs, and the model is the poster-only one again."""
    import csv as _csv

    if not FILMS_CSV.exists():
        pytest.skip(f"films table not found at {FILMS_CSV}")
    # rows for 20 of the repo's own films (the others get none: films without a plot), read from this repo,
    # never from what another test left in it
    in_repo = set(pl.read_parquet(repo / "data" / "posters.parquet")["imdb_id"].to_list())
    with open(FILMS_CSV, newline="") as f:
        reader = _csv.reader(f)
        header = next(reader)
        rows = [r for r in reader if r[0] in in_repo][:20]
    films = tmp_path / "films.csv"
    with open(films, "w", newline="") as f:
        writer = _csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        writer.writerow(["tt0000001", "A bad runtime.", "test", "", "two hours", "2001", "en", "", "", ""])
    before = (repo / "models" / "model.pt").read_bytes()
    out = run(["dvc", "exp", "run", "-S", f"data.films={films}"], repo)
    assert sorted(ran_stages(out.stdout)) == ["embed-plot", "evaluate", "product", "train"], out.stdout
    report = json.loads((repo / "data" / "films_report.json").read_text())
    assert report["skipped"]["bad_runtime"] == 1
    assert 0 < report["films_with_plot"] < report["films"]
    import torch

    ckpt = torch.load(repo / "models" / "model.pt", weights_only=True)
    assert ckpt["modalities"] == ["image", "text", "plot", "metadata"] and "plot" in ckpt["features"]
    metrics = json.loads((repo / "dvclive" / "evaluate" / "metrics.json").read_text())
    assert metrics["modalities"] == "image+text+plot+metadata"
    assert metrics["with_plot"]["posters"] + metrics.get("without_plot", {}).get("posters", 0) == metrics["posters"]
    # predict: one poster with its synopsis, a folder with a films CSV (by the IMDb id in the file name), and
    # the poster only
    poster = posters_dir / "images" / f"{rows[0][0]}.jpg"  # a film with a row in the CSV
    scores = {}
    for name, extra in (("plot", ["--synopsis", "A killer stalks teenagers on Halloween night."]),
                        ("films", ["--films", str(films)]), ("poster", [])):
        res = run([sys.executable, "-m", "stages.cli", "predict", str(poster), "-f", "json", "--model",
                   "models/model.pt", *extra], repo)
        scores[name] = json.loads(res.stdout)[0]["probabilities"]
        assert json.loads(res.stdout)[0]["pattern"] == ("poster_only" if name == "poster" else "with_plot") or (
            name == "films" and not rows[0][1])
    # the product with films: a plan for each pattern, and its metrics on films with and without a plot
    product = json.loads((repo / "dvclive" / "product" / "metrics.json").read_text())
    assert set(product["plans"]) == {"poster_only", "with_plot"}
    assert all(t["epochs_run"] >= t["best_epoch"] >= 1 for t in product["training"].values()), product["training"]
    assert product["test"]["product"]["all"]["posters"] == metrics["posters"]
    assert scores["plot"] != scores["poster"]
    assert scores["films"] != scores["poster"]
    # back to the poster only: every poster feature is reused (no per-poster stage runs) and the model is the
    # poster-only model again, byte for byte
    out = run(["dvc", "exp", "run", "-S", "data.films=null"], repo)
    ran = ran_stages(out.stdout)
    assert not {"ocr", "embed-image", "embed-text", "ingest", "split"} & set(ran), out.stdout
    assert (repo / "models" / "model.pt").read_bytes() == before
    refused = run([sys.executable, "-m", "stages.cli", "predict", str(poster), "--plot", "x"], repo, check=False)
    assert refused.returncode == 1 and "--plot and --films need a model trained with data.films" in refused.stderr


def test_calibration_is_fitted_on_validation_and_the_product_rule_reads_calibrated_scores(repo):
    """eval.calibration re-runs train (it fits and saves the calibration) and evaluate; the product rule is chosen
    on the calibrated validation scores; the paper's figures (uncalibrated scores) do not move."""
    import torch

    from pipeline.models.checkpoint import load_head
    from pipeline.models.datasets import load_datasets, predict_scores
    from pipeline.scoring.calibration import apply_calibration, fit_calibration
    from pipeline.scoring.thresholds import choose_rule

    before = json.loads((repo / "dvclive" / "evaluate" / "metrics.json").read_text())
    out = run(["dvc", "exp", "run", "-S", "eval.calibration=temperature"], repo)
    assert sorted(ran_stages(out.stdout)) == ["evaluate", "product", "train"], out.stdout
    head, ckpt = load_head(repo / "models" / "model.pt")
    data = load_datasets(repo / "features", repo / "data" / "posters.parquet", repo / "data" / "split.parquet",
                         ckpt["genres"], repo / "data" / "films.parquet").datasets
    val = data["val"]
    s_val = predict_scores(head, val, torch.device("cpu"))
    saved = ckpt["decisions"]["poster_only"]
    assert saved["calibration"] == fit_calibration("temperature", val.labels.numpy(), s_val, ckpt["genres"])
    rule, _ = choose_rule(val.labels.numpy(), apply_calibration(saved["calibration"], s_val, ckpt["genres"]),
                          ckpt["genres"])
    assert saved["rule"] == rule.to_dict()
    after = json.loads((repo / "dvclive" / "evaluate" / "metrics.json").read_text())
    assert after["calibration"]["applied"] == "temperature"
    assert after["f1_macro"] == before["f1_macro"]  # same training, the paper's rule on the same scores
    assert after["calibration"]["ece_macro"] == before["calibration"]["ece_macro"]
    assert (repo / "dvclive" / "evaluate" / "plots" / "custom" / "reliability_calibrated.json").exists()
    if before["calibration"]["applied"] != "temperature":  # the rule was re-chosen on other (calibrated) scores
        assert after["product_rule"] != before["product_rule"]
    assert "fitted on validation: poster_only temperature" in (repo / "eval" / "review" / "index.html").read_text()
