import io
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

import pipeline.data.ingest
from pipeline.data.images import MIN_POSTER_SIDE, PosterError, load_rgb, read_poster
from pipeline.data.ingest import IngestError, ingest_folder
from tests.factories import image_bytes, poster_bytes

GENRES = ["Action", "Comedy", "Drama", "Horror"]




@pytest.fixture
def broken_folder(tmp_path):
    img = tmp_path / "images"
    img.mkdir()
    files = {
        "good.jpg": poster_bytes(),
        "gray.png": image_bytes(Image.new("L", (64, 96), 128), "PNG"),
        "cmyk.jpg": image_bytes(Image.new("CMYK", (64, 96), (0, 255, 255, 0)), "JPEG"),
        "palette.png": image_bytes(Image.new("RGB", (64, 96), (0, 0, 255)).convert("P"), "PNG"),
        "alpha.png": image_bytes(Image.new("RGBA", (64, 96), (255, 0, 0, 0)), "PNG"),
        "deep.png": image_bytes(Image.fromarray(np.full((96, 64), 40000, dtype=np.uint16)), "PNG"),
        "truncated.jpg": poster_bytes(size=(300, 400))[:400],
        "empty.jpg": b"",
        "html.jpg": b"<html><body>429 Too Many Requests</body></html>",
        "garbage.jpg": bytes(range(256)) * 4,
        "tiny.png": image_bytes(Image.new("RGB", (4, 4)), "PNG"),
        "second.jpg": poster_bytes((10, 200, 10)),
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
    assert report["ignored_genres"] == {"Documentary": 2}  # tt0000001 (once: its repeat is a duplicate), tt0000012
    # a film with two posters keeps both, with one label set
    film = table.filter(pl.col("imdb_id") == "tt0000013")
    assert len(film) == 2 and set(film["labels"]) == {"Comedy"}
    assert table.filter(pl.col("imdb_id") == "tt0000001")["labels"].item() == "Action"
    json.dumps(report)  # serialisable
    # every kept poster loads as RGB; alpha is composited on white
    for path, sha in zip(table["path"], table["sha256"]):
        assert load_rgb(path, sha).mode == "RGB"
    alpha = load_rgb(broken_folder / "images" / "alpha.png")
    assert alpha.getpixel((0, 0)) == (255, 255, 255)


def test_limit_keeps_that_many_films_deterministically_and_grows_monotonically(tmp_path):
    """data.limit counts films (with all their posters), the same ones for a seed, and raising it only adds films.

    On posters that all decode, so that every chosen film is kept (a chosen film whose poster fails is skipped)."""
    images = [f"images/{i}.jpg" for i in range(10)]
    (tmp_path / "images").mkdir()
    for i, image in enumerate(images):
        (tmp_path / image).write_bytes(poster_bytes((25 * i, 0, 0)))
    _labels(tmp_path, images[:9])
    with open(tmp_path / "labels.csv", "a") as fh:
        fh.write(f"tt0000001,Film 1,2000,Drama,{images[9]}\n")  # film 1 has two posters
    full, _ = ingest_folder(tmp_path, GENRES)
    assert full["imdb_id"].n_unique() == 9 and len(full) == 10
    chosen = []
    for limit in range(1, 10):
        table, report = ingest_folder(tmp_path, GENRES, limit=limit, seed=0)
        again, _ = ingest_folder(tmp_path, GENRES, limit=limit, seed=0)
        assert table.equals(again)
        films = set(table["imdb_id"])
        assert len(films) == report["films_kept"] == limit
        assert len(table) == limit + ("tt0000001" in films)  # every poster of a chosen film
        assert not chosen or chosen[-1] < films  # one film more than the smaller limit, none dropped
        chosen.append(films)
    assert chosen[-1] == set(full["imdb_id"])
    # the seed decides which films
    assert any(set(ingest_folder(tmp_path, GENRES, limit=3, seed=s)[0]["imdb_id"]) != chosen[2] for s in range(1, 6))


def test_source_errors_are_one_line(tmp_path):
    with pytest.raises(IngestError, match="is not a folder"):
        ingest_folder(tmp_path / "nope", GENRES)
    with pytest.raises(IngestError, match="labels.csv: not found"):
        ingest_folder(tmp_path, GENRES)
    (tmp_path / "labels.csv").write_text("id,genre\n1,Drama\n")
    with pytest.raises(IngestError, match="missing column"):
        ingest_folder(tmp_path, GENRES)
    (tmp_path / "labels.csv").write_text('imdb_id,title,genres,image\ntt0000001,12" Single,Drama,a.jpg\n')
    with pytest.raises(IngestError, match=r"labels.csv: malformed CSV \("):
        ingest_folder(tmp_path, GENRES)
    (tmp_path / "labels.csv").write_bytes(b"imdb_id,title,genres,image\ntt0000001,\xe9t\xe9,Drama,a.jpg\n")
    with pytest.raises(IngestError, match="labels.csv: not UTF-8 text"):
        ingest_folder(tmp_path, GENRES)


def test_labels_csv_as_written(tmp_path):
    """Byte-order mark, CRLF, blank lines, quoted commas and quotes: read as Python's csv reads them."""
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(poster_bytes())
    text = ('\ufeffimdb_id,title,year,genres,image\r\n\r\n'
            'tt0000001,"Stop, or My Mom Will ""Shoot""",1992,Action|Comedy,images/a.jpg\r\n\r\n')
    (tmp_path / "labels.csv").write_bytes(text.encode())
    table, report = ingest_folder(tmp_path, GENRES)
    assert report["rows_read"] == 1 and report["skipped_total"] == 0
    assert table.select("title", "year", "labels").rows() == [('Stop, or My Mom Will "Shoot"', 1992, "Action|Comedy")]


def test_changed_poster_is_detected(tmp_path):
    p = tmp_path / "a.jpg"
    p.write_bytes(poster_bytes())
    _, info = read_poster(p)
    p.write_bytes(poster_bytes((0, 0, 0)))
    with pytest.raises(PosterError, match="changed since ingest"):
        load_rgb(p, info.sha256)


def test_real_posters_ingest(posters_dir):
    table, report = ingest_folder(posters_dir, GENRES, limit=20)
    assert report["films_kept"] == 20 and len(table) == 20
    assert (table["sha256"].str.len_chars() == 64).all()


def test_decompression_bomb_is_refused():
    from pipeline.data.images import decode

    buf = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buf, "PNG")  # 64 megapixels, a few kB on disk
    with pytest.raises(PosterError, match=r"^too_large: bomb\.png: ") as err:
        decode(buf.getvalue(), "bomb.png")
    assert err.value.reason == "too_large"


def _labels(folder, images):
    rows = ["imdb_id,title,year,genres,image"]
    rows += [f"tt{i:07d},Film {i},2000,Drama,{image}" for i, image in enumerate(images, start=1)]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")


def test_image_paths_outside_the_folder_are_refused_unopened(tmp_path, monkeypatch):
    folder, elsewhere = tmp_path / "posters", tmp_path / "elsewhere"
    (folder / "images").mkdir(parents=True)
    elsewhere.mkdir()
    (folder / "images" / "inside.jpg").write_bytes(poster_bytes())
    (elsewhere / "real.jpg").write_bytes(poster_bytes((0, 0, 200)))  # a valid image: only its place is wrong
    (folder / "images" / "link-out.jpg").symlink_to(elsewhere / "real.jpg")
    (folder / "images" / "link-in.jpg").symlink_to(folder / "images" / "inside.jpg")
    _labels(folder, [
        "images/inside.jpg",
        "../../../etc/passwd",
        str(elsewhere / "real.jpg"),  # absolute, outside
        "images/link-out.jpg",  # inside the folder, pointing out
        "images/../../elsewhere/real.jpg",
        "images/link-in.jpg",  # a link that stays inside is fine
        str(folder / "images" / "inside.jpg"),  # and so is an absolute path inside
    ])
    opened = []

    def read_inside_only(path):
        resolved = Path(path).resolve()
        assert resolved.is_relative_to(folder.resolve()), f"ingest opened {path}"
        opened.append(resolved)
        return read_poster(path)

    monkeypatch.setattr(pipeline.data.ingest, "read_poster", read_inside_only)
    table, report = ingest_folder(folder, GENRES)
    assert report["skipped"] == {"outside_source": 4}
    assert set(opened) == {(folder / "images" / "inside.jpg").resolve()}
    assert list(table["imdb_id"]) == ["tt0000001", "tt0000006", "tt0000007"]
    details = {d["imdb_id"]: d["detail"] for d in report["skipped_rows"]}
    assert "../../../etc/passwd" in details["tt0000002"]
    assert "images/link-out.jpg" in details["tt0000004"] and str(elsewhere.resolve()) in details["tt0000004"]


def test_images_smaller_than_a_poster_are_too_small(tmp_path):
    sizes = {"thumb.png": (8, 12), "narrow.png": (MIN_POSTER_SIDE - 1, 400),
             "smallest.png": (MIN_POSTER_SIDE, MIN_POSTER_SIDE), "real.png": (89, 132)}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(image_bytes(Image.new("RGB", size, (90, 90, 90)), "PNG"))
    _labels(tmp_path, list(sizes))
    table, report = ingest_folder(tmp_path, GENRES)
    assert report["skipped"] == {"too_small": 2}
    assert sorted(table["image"]) == ["real.png", "smallest.png"]
    detail = report["skipped_rows"][0]["detail"]
    assert "thumb.png" in detail and "8x12 px" in detail and f"under {MIN_POSTER_SIDE} px" in detail


def test_no_real_poster_is_too_small(posters_dir):
    sizes = []
    for p in (posters_dir / "images").iterdir():
        with Image.open(p) as img:  # reads the header only
            sizes.append(img.size)
    assert len(sizes) > 1000
    assert min(min(s) for s in sizes) >= MIN_POSTER_SIDE
