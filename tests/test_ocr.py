"""OCR engines: both read real shared posters with their real weights; identities, workers, faults."""

import sys

import polars as pl
import pytest

from pipeline.core.io import write_parquet
from pipeline.core.params import OcrParams, ParamsError, parse_group
from pipeline.data.images import load_rgb, read_poster
from pipeline.features.cache import RecordCache
from pipeline.features.ocr import (
    OcrSetupError,
    create_reader,
    ocr_identity,
    ocr_table_arrow,
    ocr_texts,
    poster_text,
    read_quality,
    run_ocr,
    split_joined_words,
    splits_words,
    title_recall,
)

# posters whose title is printed large: film id -> a title word
TITLED = {"tt0084867": "vigilante", "tt0088847": "breakfast", "tt0089755": "africa", "tt0092005": "stand"}


@pytest.fixture(scope="module")
def titled(posters_dir):
    rows = []
    for imdb_id, word in TITLED.items():
        path = posters_dir / "images" / f"{imdb_id}.jpg"
        rows.append({"sha256": read_poster(path)[1].sha256, "path": str(path), "title": word})
    return pl.DataFrame(rows)


ENGINES = [("easyocr", {}), ("rapidocr", {"runtime": "onnxruntime"}), ("rapidocr", {"runtime": "openvino"}),
           ("rapidocr", {"runtime": "openvino", "precision": "bf16"})]


@pytest.mark.parametrize(("engine", "rapidocr"), ENGINES)
def test_engine_reads_real_posters_with_real_weights(engine, rapidocr, titled):
    reader = create_reader(OcrParams(engine=engine, rapidocr=rapidocr))
    found = 0
    for row in titled.iter_rows(named=True):
        image = load_rgb(row["path"])
        rec = reader(image)
        assert len(rec["texts"]) == len(rec["confidences"]) == len(rec["boxes"]) > 0
        for box, conf in zip(rec["boxes"], rec["confidences"]):
            xs, ys = box[0::2], box[1::2]
            assert len(box) == 8 and all(isinstance(v, int) for v in box)
            assert 0 <= min(xs) <= max(xs) <= image.width and 0 <= min(ys) <= max(ys) <= image.height
            assert 0.0 <= conf <= 1.0
        found += row["title"] in " ".join(rec["texts"]).lower()
    assert found >= 2, f"{engine} found {found} of {len(TITLED)} titles"


def test_identities_differ_by_engine_and_setting_and_come_back():
    easy = ocr_identity(OcrParams(engine="easyocr"))
    rapid = ocr_identity(OcrParams(engine="rapidocr"))
    small = ocr_identity(OcrParams(engine="rapidocr", rapidocr={"det_limit_side_len": 480}))
    assert easy["engine"] == "easyocr" and rapid["engine"] == "rapidocr"
    assert len({str(easy), str(rapid), str(small)}) == 3
    assert all(len(h) == 64 for h in rapid["models"].values()) and rapid["version"]
    # where and how often are not what: workers, checkpoints, text settings and the other engine's
    # settings leave the identity (and so the cache folder) alone
    same = OcrParams(engine="rapidocr", workers=1, checkpoint_every=5, min_confidence=0.5,
                     easyocr={"decoder": "beamsearch"})
    assert ocr_identity(same) == rapid
    assert RecordCache("ocr", rapid, root="/tmp/x").dir == RecordCache("ocr", ocr_identity(same), root="/tmp/x").dir


def test_runtimes_have_their_own_identities_and_onnxruntime_keeps_its_old_one():
    ort = ocr_identity(OcrParams(rapidocr={"runtime": "onnxruntime"}))
    ov = ocr_identity(OcrParams(rapidocr={"runtime": "openvino", "precision": "bf16"}))
    ov32 = ocr_identity(OcrParams(rapidocr={"runtime": "openvino"}))  # f32, the default
    # the same model files in both wheels, read by different runtimes: different texts, different folders
    assert ort["models"] == ov["models"] and ort != ov and ov32["precision"] == "f32"
    assert ov["openvino"] and "openvino" not in ort and ort["onnxruntime"]
    # the ONNX Runtime identity is the one of the texts read before OpenVINO was supported (so their
    # cache stays valid): no runtime nor precision key, and precision does not apply to it
    assert list(ort) == ["engine", "version", "onnxruntime", "models", "use_cls", "det_limit_side_len",
                         "det_limit_type", "det_thresh", "box_thresh", "unclip_ratio", "text_score"]
    assert ocr_identity(OcrParams(rapidocr={"runtime": "onnxruntime", "precision": "f32"})) == ort
    # bf16 is what runs only where the CPU has bfloat16 instructions; the identity says which ran
    from openvino.runtime import Core

    has_bf16 = "BF16" in Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert ov["precision"] == ("bf16" if has_bf16 else "f32")
    assert (ov == ov32) is (not has_bf16)


def test_missing_openvino_is_one_line_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "rapidocr_openvino", None)
    with pytest.raises(OcrSetupError, match=r"^OCR engine needs the package 'rapidocr-openvino': "
                                            r"pip install rapidocr-openvino$"):
        create_reader(OcrParams(rapidocr={"runtime": "openvino"}))


def test_a_worker_whose_engine_differs_from_the_drivers_stops_in_one_line():
    from pipeline.features.executors import WorkerMismatchError
    from pipeline.features.ocr.run import OcrJob

    params = OcrParams(rapidocr={"runtime": "openvino", "precision": "f32"})
    driver = {**ocr_identity(params), "precision": "bf16"}  # as on a driver whose CPU has bfloat16
    with pytest.raises(WorkerMismatchError, match=r"^the OCR engine built on a Ray actor differs from the "
                                                  r"driver's \(in precision\); "):
        OcrJob(params, driver).worker(1)
    OcrJob(params, ocr_identity(params)).worker(1)  # the same engine builds


@pytest.mark.parametrize(("runtime", "precision"), [("onnxruntime", "f32"), ("openvino", "f32"), ("openvino", "bf16")])
def test_worker_processes_give_byte_identical_output(runtime, precision, titled, tmp_path):
    outputs = []
    for workers in (1, 2):
        params = OcrParams(engine="rapidocr", workers=workers, checkpoint_every=2,
                           rapidocr={"runtime": runtime, "precision": precision})
        table, report = run_ocr(titled, params, RecordCache("ocr", {"w": workers}, root=tmp_path / "c"))
        assert report["computed"] == len(TITLED) and report["workers"] == workers
        write_parquet(tmp_path / f"ocr{workers}.parquet", ocr_table_arrow(table))
        outputs.append((tmp_path / f"ocr{workers}.parquet").read_bytes())
        parts = sorted((tmp_path / "c").glob("ocr/*/part-*"))
        assert len(parts) >= 2  # written every 2 posters as they came back
    assert outputs[0] == outputs[1]


def test_missing_engine_package_is_one_line_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # import now raises ImportError
    with pytest.raises(OcrSetupError, match=r"^OCR engine needs the package 'rapidocr-onnxruntime': "
                                            r"pip install rapidocr-onnxruntime$"):
        ocr_identity(OcrParams(engine="rapidocr", rapidocr={"runtime": "onnxruntime"}))


def test_engine_failing_on_one_poster_is_reported_and_skipped(titled, tmp_path):
    bad = sorted(titled["sha256"])[1]  # posters are read in key order: the second one fails

    class Flaky:
        calls = 0

        def __init__(self, params):
            pass

        def __call__(self, image):
            Flaky.calls += 1
            if Flaky.calls == 2:
                raise RuntimeError("onnxruntime: invalid input\nsecond line")
            return {"texts": ["A"], "confidences": [0.9], "boxes": [[0, 0, 1, 0, 1, 1, 0, 1]]}

    table, report = run_ocr(titled, OcrParams(), RecordCache("ocr", {"f": 1}, root=tmp_path), Flaky)
    assert [f["reason"] for f in report["failed"]] == ["ocr_failed"]
    assert report["failed"][0]["key"] == bad
    assert "RuntimeError: onnxruntime: invalid input" in report["failed"][0]["detail"]
    assert "\n" not in report["failed"][0]["detail"]
    assert len(table) == len(TITLED) - 1 and bad not in set(table["key"])


def test_engine_settings_are_validated():
    expected = r"unknown parameter 'ocr.rapidocr.use_clss' \(did you mean 'ocr.rapidocr.use_cls'\?\)"
    with pytest.raises(ParamsError, match=expected):
        parse_group("ocr", {"rapidocr": {"use_clss": True}})
    with pytest.raises(ParamsError, match="ocr.engine"):
        parse_group("ocr", {"engine": "tesseract"})


def test_joined_words_are_split_for_engines_that_drop_spaces():
    assert split_joined_words("There'sonlyonewayto stop THEM") == "There's only one way to stop THEM"
    assert split_joined_words("TOM CRUISE in RightMoves") == "TOM CRUISE in Right Moves"
    assert splits_words(OcrParams(engine="rapidocr")) and not splits_words(OcrParams(engine="easyocr"))
    assert splits_words(OcrParams(engine="easyocr", split_words=True))
    assert not splits_words(OcrParams(engine="rapidocr", split_words=False))
    box = [0, 0, 10, 0, 10, 5, 0, 5]
    table = pl.DataFrame({"key": ["k"], "texts": [["THEBREAKFASTCLUB"]], "confidences": [[0.9]], "boxes": [[box]]})
    assert ocr_texts(table, OcrParams(engine="rapidocr"))["text"].to_list() == ["THE BREAKFAST CLUB"]
    assert ocr_texts(table, OcrParams(engine="easyocr"))["text"].to_list() == ["THEBREAKFASTCLUB"]


def test_reading_order_is_rows_top_to_bottom_then_left_to_right():
    # engine order is scrambled; "STAND BY" and "ME" share a row
    boxes = [[60, 100, 90, 100, 90, 120, 60, 120], [0, 10, 50, 10, 50, 30, 0, 30], [0, 101, 50, 101, 50, 121, 0, 121]]
    assert poster_text(["ME", "ROB REINER'S", "STAND BY"], boxes, [0.9, 0.9, 0.9], 0.0) == "ROB REINER'S STAND BY ME"
    assert poster_text(["ME", "ROB REINER'S", "STAND BY"], boxes, [0.9, 0.2, 0.9], 0.5) == "STAND BY ME"


def test_title_recall_counts_word_and_substring_hits():
    out = title_recall(["The Breakfast Club", "Out of Africa", "Up", None],
                       ["THE BREAKFAST CLUBHOUSE", "OUT OF AFRICA", "anything", "x"])
    # "Up" and None have no title word of 4+ letters: 2 posters count
    assert out["posters_with_title_words"] == 2
    assert out["word_any"] == 1.0 and out["word_all"] == 0.5  # "club" is not a word of the first text
    assert out["substring_any"] == 1.0 and out["substring_all"] == 1.0


def test_read_quality_reports_no_text_and_characters():
    box = [0, 0, 10, 0, 10, 5, 0, 5]
    table = pl.DataFrame({"key": ["a", "b"], "texts": [["STAND BY ME"], []], "confidences": [[0.9], []],
                          "boxes": [[box], []]})
    posters = pl.DataFrame({"sha256": ["a", "b"], "title": ["Stand by Me", "Heat"]})
    q = read_quality(posters, table)
    assert q["no_text"] == 0.5 and q["characters_per_poster"] == 5.5
    assert q["title_recall"]["posters_with_title_words"] == 2 and q["title_recall"]["word_all"] == 0.5


def test_ocr_benchmark_runs_on_a_tiny_sample(posters_dir, tmp_path):
    import json
    import subprocess

    from tests.conftest import ROOT

    out = tmp_path / "ocr.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_ocr.py"), "--posters", str(posters_dir),
                           "--n", "3", "--variants", "rapidocr, openvino bf16", "--workers", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    assert row["variant"] == "rapidocr, openvino bf16" and row["posters"] == 3 and row["posters_per_second"] > 0
    assert row["workers"] == 1 and row["precision"] in ("bf16", "f32")
    assert row["as_read"]["title_recall"]["posters_with_title_words"] == 3
    assert "| rapidocr, openvino bf16 | 1 |" in proc.stdout
