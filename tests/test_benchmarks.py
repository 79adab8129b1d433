"""The per-stage benchmark runs end to end on a tiny sample (real posters, real weights)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # the fast tier (-m "not slow") leaves these to .ci/run


def test_pipeline_benchmark_measures_every_stage_and_its_alternatives(posters_dir, tmp_path):
    from tests.conftest import ROOT

    out = tmp_path / "pipeline.json"
    bench = ROOT / "benchmarks" / "bench_pipeline.py"
    args = ["--posters", str(posters_dir), "--n", "30", "--k", "2", "--out", str(out),
            "--ocr", "rapidocr, openvino f32", "rapidocr, onnxruntime"]
    proc = subprocess.run([sys.executable, str(bench), *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = {(r["stage"], r["alternative"].split(" (")[0]): r for r in report["stages"]}
    assert {"rapidocr, openvino f32", "rapidocr, onnxruntime"} <= {a for s, a in rows if s == "ocr"}
    images = [r for r in report["stages"] if r["stage"] == "embed_image" and "forward_seconds" in r]
    assert [r["alternative"].split(",")[0] for r in images] == ["pytorch", "onnxruntime", "openvino f32"]
    for r in images:  # the exported networks are PyTorch's, and each runtime is deterministic here
        assert r["max_abs_diff_vs_pytorch"] < 1e-3 and r["same_bytes_twice"]
    assert any(s == "train" for s, _ in rows) and any(s == "embed_text" for s, _ in rows)
    assert report["incremental_plus2_ocr"]["posters"] == 32
    assert "| ocr | rapidocr, openvino f32 (2 processes) | 30 |" in proc.stdout


def test_plots_benchmark_measures_the_films_stage_and_each_plot_limit(posters_dir, tmp_path):
    from tests.conftest import ROOT

    films = ROOT / ".." / "shared" / "films" / "films.csv"
    if not films.exists():
        import pytest

        pytest.skip(f"films table not found at {films}")
    out = tmp_path / "plots.json"
    args = ["--posters", str(posters_dir), "--films", str(films), "--n", "8", "--k", "2", "--out", str(out)]
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_plots.py"), *args],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [r["plot_max_tokens"] for r in report["stages"]] == [256, 128, 77]
    assert all(r["computed"] == 8 for r in report["stages"])
    assert report["warm"]["computed"] == 0 and report["incremental"]["computed"] == 2
    assert report["films_stage"]["films_with_plot"] > 0
    assert "| embed-plot, cold, plot_max_tokens 256 | 8 |" in proc.stdout


def test_review_benchmark_writes_a_page_and_opens_it_lazily_and_eagerly(posters_dir, tmp_path):
    import os

    import pytest

    from tests.browser import chromium_path
    from tests.conftest import ROOT

    if chromium_path() is None and not os.environ.get("CI"):
        pytest.skip("no chromium (apt-get install chromium); CI installs it")
    out = tmp_path / "review.json"
    args = ["--posters", str(posters_dir), "--n", "12", "--out", str(out)]
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_review.py"), *args],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["n"] == 12 and report["write"]["posters_per_s"] > 0
    assert report["open"]["eager"]["images_decoded_at_load"] == 12  # eager: every thumbnail by the load event
    assert report["open"]["lazy"]["images_decoded_at_load"] < 12  # lazy: only those near the viewport
    assert report["open"]["lazy"]["console_errors"] == 0 and 0 < report["open"]["lazy"]["shown_after_filter"] < 12
    assert "| write the page (thumbnails + HTML) | 12 |" in proc.stdout


def test_store_benchmark_trains_an_epoch_from_the_file_under_a_memory_limit(tmp_path):
    from tests.conftest import ROOT

    out = tmp_path / "store.json"
    args = ["--posters", "400", "--limit-gb", "3.5", "--threads", "1", "--workdir", str(tmp_path), "--out", str(out)]
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_store.py"), *args],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    stream, memory = report["runs"]
    assert stream["mode"] == "stream" and stream["ok"] and stream["train_posters"] == 320
    assert report["store"]["bytes_per_poster"] > 190_000  # 49 x 1280 + 77 x 384 float16 tokens, and the rest
    # streamed, a poster costs its pooled vectors and masks; read into memory, its tokens too
    assert report["kb_per_1000_posters"]["stream"] * 40 < report["kb_per_1000_posters"]["memory"]
    assert memory["mode"] == "memory" and memory["ok"]  # 400 posters fit under 3.5 GiB either way
    assert list(tmp_path.iterdir()) == [out]  # the store is built in a temporary folder and removed


def test_epoch_alternatives_train_the_paper_head_on_a_workspace_features(tmp_path):
    """bench_pipeline.py --epochs-of: each alternative on the same features (a synthetic store here), the
    default's checkpoint the reference; in memory or per batch, the same bytes."""
    from tests.conftest import ROOT

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_store import build_store

    build_store(tmp_path / "run", 160)
    out = tmp_path / "epoch.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_pipeline.py"), "--epochs-of",
                           str(tmp_path / "run"), "--epochs", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["alternative"].split(" (")[0]: r for r in json.loads(out.read_text())["epochs"]}
    assert set(rows) == {"default", "1 torch thread", "token arrays in memory", "train.precision bfloat16",
                         "train.compile"}
    assert all(rows[r]["same_checkpoint_as_default"] for r in ("default", "token arrays in memory"))
    assert not rows["train.precision bfloat16"]["same_checkpoint_as_default"]
    assert all(r["later_epoch_seconds"] > 0 and r["val_loss"] > 0 for r in rows.values())
