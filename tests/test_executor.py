"""The per-poster executors: in-process and Ray give the same cache and the same features.

The Ray tests share one local instance (module fixture, ~5 s to start) and real
posters of ../shared/posters: RapidOCR and the offline image encoder on a few of
them, so each dataset run stays a few seconds on a 2-core machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.params import EncoderParams, OcrParams, ParamsError, RayParams, RayStageParams, parse_group
from pipeline.features.cache import ArrayCache, RecordCache
from pipeline.features.executors import Item, fill_cache
from pipeline.features.ocr.run import RECORD_SCHEMA, ocr_table_arrow, run_ocr
from pipeline.features.store import embed_images, embed_texts, write_features
from tests.factories import ROOT

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")

from pipeline.features.executors import ray_data  # noqa: E402


def sizes(params):
    """A fake engine (a reader factory): reads a poster's size, instantly."""
    return lambda image: {"texts": [f"{image.size[0]}x{image.size[1]}"], "confidences": [1.0], "boxes": [[0] * 8]}


@pytest.fixture(scope="module")
def local_ray():
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actors cannot import tests/
    ray_data.connect("local")
    yield RayParams(address="local", ocr=RayStageParams(actors=2, batch_size=2),
                    embed_image=RayStageParams(actors=1, batch_size=4), embed_text=RayStageParams(actors=1))
    ray.shutdown()


@pytest.fixture(scope="module")
def real_posters(posters_dir):
    """The first 12 real posters (sha256, path), by file name."""
    import polars as pl

    from pipeline.core.io import sha256_file

    files = sorted((posters_dir / "images").glob("*.jpg"))[:12]
    return pl.DataFrame({"sha256": [sha256_file(f) for f in files], "path": [str(f) for f in files]})


@pytest.fixture(scope="module")
def few_posters(real_posters):
    return real_posters.head(6)


def _ocr(posters, root, ray_params=None, reader_factory=None, checkpoint_every=2):
    cache = RecordCache("ocr", {"engine": "test"}, root=root, schema=RECORD_SCHEMA)
    return run_ocr(posters, OcrParams(checkpoint_every=checkpoint_every), cache, reader_factory, ray=ray_params)


def _parts(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("part-*"))}


@pytest.mark.slow
def test_ocr_on_ray_is_byte_identical_to_in_process(few_posters, local_ray, tmp_path):
    local, rep_local = _ocr(few_posters, tmp_path / "local")
    on_ray, rep_ray = _ocr(few_posters, tmp_path / "ray", local_ray)
    assert rep_ray["executor"] == "ray local" and rep_ray["computed"] == len(few_posters)
    assert ocr_table_arrow(on_ray).equals(ocr_table_arrow(local))
    assert sum(len(t) for t in local["texts"].to_list()) > 0  # real posters were read
    # same parts, same bytes: the cache does not know which executor filled it
    assert _parts(tmp_path / "ray") == _parts(tmp_path / "local")


@pytest.mark.slow
def test_image_features_on_ray_are_byte_identical(few_posters, local_ray, tmp_path):
    from pipeline.features.encoders import create_image_encoder, create_text_encoder

    enc = EncoderParams(name="offline", batch_size=2)
    image = create_image_encoder(enc)
    files = {}
    for name, params in (("local", None), ("ray", local_ray)):
        cache = ArrayCache("image", image.identity, root=tmp_path / name)
        keys, arrays, rep = embed_images(few_posters, image, 2, cache, ray=params)
        assert rep["computed"] == len(few_posters) and not rep["failed"]
        write_features(tmp_path / f"{name}.h5", tmp_path / f"{name}.parquet", keys, arrays, image.identity)
        files[name] = ((tmp_path / f"{name}.h5").read_bytes(), (tmp_path / f"{name}.parquet").read_bytes())
    assert files["ray"] == files["local"]

    import polars as pl

    text = create_text_encoder(enc)
    texts = pl.DataFrame({"key": ["a", "b", "c"], "text": ["THE LAST NIGHT", "", "a comedy of errors"]})
    out = {name: embed_texts(texts, text, 2, ArrayCache("text", text.identity, root=tmp_path / f"t{name}"), ray=p)[1]
           for name, p in (("local", None), ("ray", local_ray))}
    assert all(np.array_equal(out["local"][n], out["ray"][n]) for n in out["local"])


@pytest.mark.slow
def test_a_bad_poster_on_ray_is_reported_with_its_reason(few_posters, local_ray, tmp_path):
    import polars as pl

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    missing = tmp_path / "gone.jpg"
    posters = pl.concat([few_posters.head(2).select("sha256", "path"),
                         pl.DataFrame({"sha256": ["0" * 64, "1" * 64], "path": [str(broken), str(missing)]})])
    for inputs in ("bytes", "paths"):
        table, rep = _ocr(posters, tmp_path / inputs, local_ray.model_copy(update={"inputs": inputs}), sizes)
        reasons = {f["path"]: f["reason"] for f in rep["failed"]}
        assert reasons == {str(broken): "not_an_image", str(missing): "missing_file"}, inputs
        assert table.height == 2


class KillOnce:
    """A reader factory whose reader kills its own process on the first poster it reads, once (the marker
    file says it already did): the actor dies mid-batch, as when a node is lost."""

    def __init__(self, marker: str):
        self.marker = marker

    def __call__(self, params):
        marker = self.marker

        def read(image):
            if not os.path.exists(marker):
                Path(marker).write_text("killed")
                os._exit(1)
            return sizes(params)(image)

        return read


@pytest.mark.slow
def test_a_killed_actor_is_retried_and_nothing_is_lost_or_duplicated(few_posters, local_ray, tmp_path):
    marker = tmp_path / "killed"
    table, rep = _ocr(few_posters, tmp_path / "ray", local_ray, KillOnce(str(marker)))
    assert marker.exists()  # an actor did die
    assert rep["computed"] == len(few_posters) and not rep["failed"]
    assert table["key"].to_list() == sorted(set(few_posters["sha256"].to_list()))
    reference, _ = _ocr(few_posters, tmp_path / "local", None, KillOnce(str(marker)))
    assert ocr_table_arrow(table).equals(ocr_table_arrow(reference))
    keys = [k for part in (tmp_path / "ray").rglob("part-*.parquet")
            for k in RecordCache("ocr", {"engine": "test"}, root=tmp_path / "ray")._part_keys(part)]
    assert sorted(keys) == sorted(set(keys))  # no poster stored twice


SLOW_DRIVER = """
import sys, time
import polars as pl
from pipeline.core.params import OcrParams, RayParams, RayStageParams
from pipeline.features.cache import RecordCache
from pipeline.features.ocr.run import RECORD_SCHEMA, run_ocr

def slow(params):
    def read(image):
        time.sleep(0.4)
        return {"texts": [str(image.size)], "confidences": [1.0], "boxes": [[0] * 8]}
    return read

posters = pl.read_parquet(sys.argv[1])
cache = RecordCache("ocr", {"engine": "test"}, root=sys.argv[2], schema=RECORD_SCHEMA)
ray = RayParams(address="auto", ocr=RayStageParams(actors=1, batch_size=1))
run_ocr(posters, OcrParams(checkpoint_every=1), cache, slow, ray=ray)
"""


@pytest.mark.slow
def test_a_killed_driver_resumes_from_the_cache(real_posters, local_ray, tmp_path):
    posters = real_posters.head(12).select("sha256", "path")
    posters.write_parquet(tmp_path / "posters.parquet")
    cache_dir = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_DRIVER, str(tmp_path / "posters.parquet"), str(cache_dir)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(cache_dir.rglob("part-*.parquet"))) < 2 and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # the driver dies mid-run
    proc.wait()
    done = len(list(cache_dir.rglob("part-*.parquet")))
    assert 2 <= done < len(posters), proc.stderr.read().decode()[-2000:]

    def same(params):  # the killed driver's reader, without the wait
        return lambda image: {"texts": [str(image.size)], "confidences": [1.0], "boxes": [[0] * 8]}

    table, rep = _ocr(posters, cache_dir, local_ray, same, checkpoint_every=1)
    assert rep["from_cache"] == done and rep["computed"] == len(posters) - done
    clean, _ = _ocr(posters, tmp_path / "clean", None, same, checkpoint_every=1)
    assert ocr_table_arrow(table).equals(ocr_table_arrow(clean))


def test_fill_cache_writes_a_part_every_batch_size_results(tmp_path):
    """The shared loop: parts of batch_size results, in item order, failures returned sorted by key."""

    class Echo:
        stage, batch_size, splittable, reads_files = "ocr", 2, True, False

        def worker(self, threads):
            return lambda items: [(i.key, {"texts": [i.data], "confidences": [1.0], "boxes": [[0] * 8]}, None)
                                  if i.data != "bad" else (i.key, None, {"key": i.key, "reason": "x"}) for i in items]

        def store(self, cache, keys, values):
            cache.put(keys, values)

        def check_batch(self, n):
            pass

    cache = RecordCache("ocr", {"t": 1}, root=tmp_path, schema=RECORD_SCHEMA)
    items = [Item(k, "", t) for k, t in [("e", "1"), ("d", "bad"), ("c", "2"), ("b", "3"), ("a", "bad")]]
    failed = fill_cache(Echo(), items, cache)
    assert [f["key"] for f in failed] == ["a", "d"]
    assert sorted(len(cache._part_keys(p)) for p in cache.parts()) == [1, 2]
    assert cache.get(["b", "c", "e"])["texts"].to_list() == [["3"], ["2"], ["1"]]


def test_embed_batches_on_ray_must_be_whole_encoder_batches(few_posters, local_ray, tmp_path):
    from pipeline.features.encoders import create_image_encoder
    from pipeline.features.store import FeatureError

    image = create_image_encoder(EncoderParams(name="offline", batch_size=4))
    odd = local_ray.model_copy(update={"embed_image": RayStageParams(batch_size=6)})
    with pytest.raises(FeatureError, match=r"ray.embed_image.batch_size 6 must be a multiple of encoder.batch_size 4"):
        embed_images(few_posters, image, 4, ArrayCache("image", image.identity, root=tmp_path), ray=odd)


def test_actor_cpus_leave_room_for_ray_datas_tasks(local_ray):
    total = ray.cluster_resources()["CPU"]
    assert ray_data.actor_cpus(RayStageParams(actors=2)) == round((total - 0.5) / 2, 3)
    assert ray_data.actor_cpus(RayStageParams(actors=1, cpus=0.25)) == 0.25


def test_an_unreachable_address_fails_in_one_line_within_seconds(tmp_path):
    """Through the ocr stage, as a user meets it: exit 1 and one line naming the address."""
    params = tmp_path / "params.yaml"
    params.write_text("ray:\n  address: 127.0.0.1:9\n")
    posters = tmp_path / "posters.parquet"
    import polars as pl

    pl.DataFrame({"sha256": ["0" * 64], "path": [str(tmp_path / "x.jpg")]}).write_parquet(posters)
    t0 = time.time()
    out = subprocess.run([sys.executable, "-m", "stages.ocr", "--params", str(params), "--posters", str(posters),
                          "--out", str(tmp_path / "o.parquet"), "--report", str(tmp_path / "r.json")],
                         cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "POSTER_GENRES_CACHE": str(tmp_path)})
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: ray.address '127.0.0.1:9': cannot reach 127.0.0.1:9 (Connection refused)"], out.stderr
    assert time.time() - t0 < 30
    with pytest.raises(ray_data.RayError, match=r"^ray.address 'ray://nohost.invalid:10001': cannot reach"):
        ray_data.check_reachable("ray://nohost.invalid:10001", timeout=2)


def test_without_ray_installed_the_error_names_the_extra(monkeypatch, few_posters, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ray_data.RayError, match=r"Ray \(with Ray Data\) is not installed: pip install -e '\.\[ray\]'"):
        _ocr(few_posters, tmp_path, RayParams(address="local"))


def test_ray_params_are_validated_like_every_other_key():
    with pytest.raises(ParamsError, match=r"parameters 'ray': address must be null, local, auto"):
        parse_group("ray", {"address": "somewhere"})
    with pytest.raises(ParamsError, match=r"parameter 'ray.ocr.actors'"):
        parse_group("ray", {"ocr": {"actors": 0}})
    with pytest.raises(ParamsError, match=r"unknown parameter 'ray.embed_image.cpu'"):
        parse_group("ray", {"embed_image": {"cpu": 1}})
