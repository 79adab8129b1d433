"""Reading every poster's printed words behind the content-addressed cache.

:func:`run_ocr` sends the posters the cache lacks to the engine named by
``ocr.engine`` (:mod:`pipeline.features.ocr.engines`) through the shared per-poster
loop (:mod:`pipeline.features.executors`): in this process, in worker processes
(one per core by default, each engine single-threaded) or on Ray (``ray.address``).
A cache part is written every ``ocr.checkpoint_every`` posters as results arrive,
so an interrupted run loses at most one part and the next run reads no poster
twice. Results come back in key order whatever the executor, so parts and outputs
are byte-identical to a serial run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from pipeline.core.params import OcrParams
from pipeline.data.images import PosterError, load_rgb
from pipeline.features.cache import RecordCache
from pipeline.features.executors import (
    Item,
    Result,
    Worker,
    check_identity,
    executor_name,
    failure,
    fill_cache,
    poster_paths,
)
from pipeline.features.ocr.engines import create_reader, ocr_identity

if TYPE_CHECKING:
    from pipeline.core.params import RayParams

#: The OCR record of a poster (besides its key); the OCR table is ``key`` + these.
RECORD_SCHEMA = pa.schema([
    ("texts", pa.list_(pa.string())),
    ("confidences", pa.list_(pa.float32())),
    ("boxes", pa.list_(pa.list_(pa.int32()))),
])
OCR_SCHEMA = pa.schema([("key", pa.string()), *RECORD_SCHEMA])


def ocr_workers(params: OcrParams) -> int:
    """Worker processes: ``ocr.workers``, else one per core; one on a GPU (it is shared)."""
    from pipeline.core.devices import resolve_device
    from pipeline.features.executors.local import cores

    if params.engine == "easyocr" and resolve_device(params.device, "ocr.device").type == "cuda":
        return 1
    return params.workers or max(1, cores())


def read_one(reader: Callable, item: Item) -> Result:
    """(key, record, None) or (key, None, failure): a poster that cannot be read never stops the run."""
    try:
        return item.key, reader(load_rgb(item.path, item.key, item.data)), None
    except PosterError as err:
        return item.key, None, failure(item.key, item.path, err.reason, str(err))
    except Exception as err:  # noqa: BLE001 - an engine failing on one odd image must not lose the run
        first_line = str(err).splitlines()[0][:200] if str(err) else ""
        detail = f"{item.path}: the OCR engine failed ({type(err).__name__}: {first_line})"
        return item.key, None, failure(item.key, item.path, "ocr_failed", detail)


@dataclass(frozen=True)
class OcrJob:
    """OCR as a job of the shared loop: one engine per process or actor, one record per poster."""

    params: OcrParams
    #: the driver's engine identity (names the cache folder); a process or actor whose engine differs
    #: (another package version, a CPU without bfloat16 on a bf16 run) stops instead of mixing texts
    identity: dict[str, Any] | None = None
    #: tests: replaces the engine (called with the params); runs in this process
    reader_factory: Callable[[OcrParams], Callable] | None = None
    stage: str = "ocr"
    splittable: bool = True
    reads_files: bool = True
    #: Every engine reads with one thread, in this process, in worker processes and on Ray alike: OpenVINO's
    #: kernels give other last bits with another thread count on some CPUs (an AMD EPYC read the same posters
    #: differently with 1 and 2 threads), and the text must not depend on where it was read.
    threads: int = 1

    @property
    def batch_size(self) -> int:
        return self.params.checkpoint_every

    def worker(self, threads: int | None) -> Worker:
        if self.reader_factory:
            reader = self.reader_factory(self.params)
        else:
            if self.identity is not None:
                check_identity("OCR engine", ocr_identity(self.params), self.identity,
                               "install the same packages on every node, or read at ocr.rapidocr.precision: f32 "
                               "where nodes differ in bfloat16 support")
            reader = create_reader(self.params, self.threads)
        return lambda items: [read_one(reader, item) for item in items]

    def store(self, cache: RecordCache, keys: list[str], values: list[Any]) -> None:
        cache.put(keys, values)

    def check_batch(self, batch_size: int) -> None:
        """Any batch: a poster's record does not depend on the others."""


def run_ocr(
    posters: pl.DataFrame,
    params: OcrParams,
    cache: RecordCache | None = None,
    reader_factory: Callable[[OcrParams], Callable] | None = None,
    ray: RayParams | None = None,
) -> tuple[pl.DataFrame, dict]:
    """OCR every unique poster of ``posters`` (columns ``sha256``, ``path``).

    Returns the OCR table (one row per poster key, sorted by key; :data:`OCR_SCHEMA`) and a
    report. Posters that cannot be read are reported and left out, never fatal.
    ``reader_factory`` (tests) replaces the engine and runs in this process; ``ray`` (its
    ``address`` set) runs the engine on a Ray actor pool instead.
    """
    import time

    # the engine identity (model files hashed) once: it names the cache and is what workers must match
    identity = None if reader_factory and cache else ocr_identity(params)
    cache = cache or RecordCache("ocr", identity, schema=RECORD_SCHEMA)
    paths = poster_paths(posters)
    todo = cache.missing(paths)
    workers = 1 if reader_factory else min(ocr_workers(params), max(len(todo), 1))
    job = OcrJob(params, None if reader_factory else identity, reader_factory)
    t0 = time.perf_counter()
    failed = fill_cache(job, [Item(k, paths[k]) for k in todo], cache, workers=workers, ray=ray,
                        description=f"ocr ({params.engine}, {executor_name(workers, ray)})")
    seconds = time.perf_counter() - t0
    bad = {f["key"] for f in failed}
    done = [k for k in paths if k not in bad]
    table = cache.get(done) if done else pl.from_arrow(OCR_SCHEMA.empty_table())
    table = table.select(OCR_SCHEMA.names)
    report = {
        "engine": params.engine,
        "posters": len(paths),
        "computed": len(todo) - len(failed),
        "from_cache": len(paths) - len(todo),
        "failed": failed,
        "with_text": int(sum(len(t) > 0 for t in table["texts"].to_list())),
        "seconds": round(seconds, 3),
        "workers": workers,
        "executor": executor_name(workers, ray),
        "posters_per_second": round((len(todo) - len(failed)) / seconds, 3) if todo and seconds > 0 else None,
        "cache": str(cache.dir),
    }
    return table, report


def ocr_table_arrow(table: pl.DataFrame) -> pa.Table:
    """The OCR table with its fixed schema (so empty lists keep their types)."""
    return table.select(OCR_SCHEMA.names).to_arrow().cast(OCR_SCHEMA)
