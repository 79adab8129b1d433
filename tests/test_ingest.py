import io
import json

import numpy as np
import pytest
from PIL import Image

from pipeline.images import load_rgb, read_poster
from pipeline.ingest import IngestError, ingest_folder

GENRES = ["Action", "Comedy", "Drama", "Horror"]


def _jpeg(color=(200, 30, 30), size=(60, 90), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else 0).save(buf, "JPEG")
    return buf.getvalue()


def _save(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def broken_folder(tmp_path):
    img = tmp_path / "images"
    img.mkdir()
    files = {
        "good.jpg": _jpeg(),
        "gray.png": _save(Image.new("L", (40, 60), 128), "PNG"),
        "cmyk.jpg": _save(Image.new("CMYK", (40, 60), (0, 255, 255, 0)), "JPEG"),
        "palette.png": _save(Image.new("RGB", (40, 60), (0, 0, 255)).convert("P"), "PNG"),
        "alpha.png": _save(Image.new("RGBA", (40, 60), (255, 0, 0, 0)), "PNG"),
        "deep.png": _save(Image.fromarray(np.full((60, 40), 40000, dtype=np.uint16)), "PNG"),
        "truncated.jpg": _jpeg(size=(300, 400))[:400],
        "empty.jpg": b"",
        "html.jpg": b"<html><body>429 Too Many Requests</body></html>",
        "garbage.jpg": bytes(range(256)) * 4,
        "tiny.png": _save(Image.new("RGB", (4, 4)), "PNG"),
        "second.jpg": _jpeg((10, 200, 10)),
    }
    for name, data in files.items():
        (img / name).write_bytes(data)
    rows = [
        "imdb_id,title,year,genres,image",
        "tt0000001,Good,1999,Action|Documentary,images/good.jpg",
        "tt0000002,Gray,,Drama,images/gray.png",
        "tt0000003,Cmyk,2001,Comedy,images/cmyk.jpg",
        "tt0000004,Palette,2002,Horror|N/A,images/palette.png",
        "tt0000005,Alpha,2003,Drama,images/alpha.png",
        "tt0000006,Deep,2004,Drama,images/deep.png",
        "tt0000007,Trunc,2005,Drama,images/truncated.jpg",
        "tt0000008,Empty,2006,Drama,images/empty.jpg",
        "tt0000009,Html,2007,Drama,images/html.jpg",
        "tt0000010,Garbage,2008,Drama,images/garbage.jpg",
        "tt0000011,Missing,2009,Drama,images/missing.jpg",
        "tt0000012,Docu,2010,Documentary,images/good.jpg",
        "tt0000001,Good,1999,Action|Documentary,images/good.jpg",
        "tt0000001,Good,1999,Comedy,images/second.jpg",
        "tt0000013,Second poster,2011,Comedy,images/second.jpg",
        "tt0000013,Second poster,2011,Comedy,images/good.jpg",
        "nonsense,Bad id,2011,Comedy,images/good.jpg",
        "tt0000014,Tiny,2012,Comedy,images/tiny.png",
    ]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_every_broken_case_is_fixed_or_skipped_with_a_reason(broken_folder):
    table, report = ingest_folder(broken_folder, GENRES)
    assert report["skipped"] == {
        "bad_imdb_id": 1, "conflicting_genres": 1, "corrupt": 1, "duplicate_row": 1, "empty_file": 1,
        "missing_file": 1, "no_target_genre": 1, "not_an_image": 2, "too_small": 1,
    }
    assert report["rows_read"] == 18
    assert report["posters_kept"] + report["skipped_total"] == report["rows_read"]
    kept = set(table["imdb_id"])
    assert kept == {"tt0000001", "tt0000002", "tt0000003", "tt0000004", "tt0000005", "tt0000006", "tt0000013"}
    assert report["converted_modes"] == {"CMYK": 1, "I;16": 1, "L": 1, "P": 1, "RGBA": 1}
    assert report["unknown_genres"] == {"N/A": 1}
    assert report["ignored_genres"]["Documentary"] >= 1
    # a film with two posters keeps both, with one label set
    film = table[table["imdb_id"] == "tt0000013"]
    assert len(film) == 2 and set(film["labels"]) == {"Comedy"}
    assert table.loc[table["imdb_id"] == "tt0000001", "labels"].item() == "Action"
    json.dumps(report)  # serialisable
    # every kept poster loads as RGB; alpha is composited on white
    for path, sha in zip(table["path"], table["sha256"]):
        assert load_rgb(path, sha).mode == "RGB"
    alpha = load_rgb(broken_folder / "images" / "alpha.png")
    assert alpha.getpixel((0, 0)) == (255, 255, 255)


def test_limit_is_deterministic_and_grows_monotonically(broken_folder):
    a, _ = ingest_folder(broken_folder, GENRES, limit=3, seed=0)
    b, _ = ingest_folder(broken_folder, GENRES, limit=3, seed=0)
    c, _ = ingest_folder(broken_folder, GENRES, limit=5, seed=0)
    assert a.equals(b)
    assert set(a["imdb_id"]) <= set(c["imdb_id"])


def test_source_errors_are_one_line(tmp_path):
    with pytest.raises(IngestError, match="is not a folder"):
        ingest_folder(tmp_path / "nope", GENRES)
    with pytest.raises(IngestError, match="labels.csv: not found"):
        ingest_folder(tmp_path, GENRES)
    (tmp_path / "labels.csv").write_text("id,genre\n1,Drama\n")
    with pytest.raises(IngestError, match="missing column"):
        ingest_folder(tmp_path, GENRES)


def test_changed_poster_is_detected(tmp_path):
    p = tmp_path / "a.jpg"
    p.write_bytes(_jpeg())
    _, info = read_poster(p)
    p.write_bytes(_jpeg((0, 0, 0)))
    with pytest.raises(Exception, match="changed since ingest"):
        load_rgb(p, info.sha256)


def test_real_posters_ingest(posters_dir):
    table, report = ingest_folder(posters_dir, GENRES, limit=20)
    assert report["films_kept"] == 20 and len(table) == 20
    assert table["sha256"].str.len().eq(64).all()


def test_decompression_bomb_is_refused():
    from pipeline.images import decode

    buf = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buf, "PNG")  # 64 megapixels, a few kB on disk
    with pytest.raises(Exception) as err:
        decode(buf.getvalue(), "bomb.png")
    assert getattr(err.value, "reason", None) == "too_large"
