"""Reading every poster's printed words behind the content-addressed cache.

:func:`run_ocr` sends the posters the cache lacks to the engine named by
``ocr.engine`` (:mod:`pipeline.features.ocr.engines`), spread over worker processes (one
per core by default, each engine single-threaded), and writes a cache part every
``ocr.checkpoint_every`` posters as results arrive, so an interrupted run loses at
most one part and the next run reads no poster twice. Results come back in key
order whatever the number of workers, so parts and outputs are byte-identical to
a serial run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pandas as pd
import pyarrow as pa

from pipeline.core.params import OcrParams
from pipeline.core.progress import progress_bar
from pipeline.data.images import PosterError, load_rgb
from pipeline.features.cache import RecordCache
from pipeline.features.ocr.engines import create_reader, ocr_identity

OCR_SCHEMA = pa.schema([
    ("key", pa.string()),
    ("texts", pa.list_(pa.string())),
    ("confidences", pa.list_(pa.float32())),
    ("boxes", pa.list_(pa.list_(pa.int32()))),
])


def ocr_workers(params: OcrParams) -> int:
    """Worker processes: ``ocr.workers``, else one per core; one on a GPU (it is shared)."""
    from pipeline.core.devices import resolve_device

    if params.engine == "easyocr" and resolve_device(params.device, "ocr.device").type == "cuda":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return params.workers or max(1, cores)


_READER: Callable | None = None


def _init_worker(params: OcrParams, threads: int) -> None:
    global _READER
    _READER = create_reader(params, threads)


def _read_one(reader: Callable, key: str, path: str) -> tuple[str, dict | None, dict | None]:
    """(key, record, None) or (key, None, failure): a poster that cannot be read never stops the run."""
    try:
        return key, reader(load_rgb(path, key)), None
    except PosterError as err:
        return key, None, {"key": key, "path": path, "reason": err.reason, "detail": str(err)}
    except Exception as err:  # noqa: BLE001 - an engine failing on one odd image must not lose the run
        first_line = str(err).splitlines()[0][:200] if str(err) else ""
        detail = f"{path}: the OCR engine failed ({type(err).__name__}: {first_line})"
        return key, None, {"key": key, "path": path, "reason": "ocr_failed", "detail": detail}


def _worker_read(item: tuple[str, str]) -> tuple[str, dict | None, dict | None]:
    return _read_one(_READER, *item)


def _results(items: list[tuple[str, str]], params: OcrParams, workers: int,
             reader_factory: Callable | None) -> Iterator[tuple[str, dict | None, dict | None]]:
    """Results in the order of ``items``: in this process, or from ``workers`` processes."""
    if workers <= 1 or reader_factory is not None or len(items) < 2:
        reader = (reader_factory or create_reader)(params)
        for key, path in items:
            yield _read_one(reader, key, path)
        return
    import multiprocessing as mp

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // workers)
    # spawn: torch and ONNX Runtime thread pools do not survive fork safely
    with mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(params, threads)) as pool:
        yield from pool.imap(_worker_read, items, chunksize=1)


def run_ocr(
    posters: pd.DataFrame,
    params: OcrParams,
    cache: RecordCache | None = None,
    reader_factory: Callable[[OcrParams], Callable] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """OCR every unique poster of ``posters`` (columns ``sha256``, ``path``).

    Returns the OCR table (one row per poster key, sorted by key) and a report.
    Posters that cannot be read are reported and left out, never fatal.
    ``reader_factory`` (tests) replaces the engine and runs in this process.
    """
    cache = cache or RecordCache("ocr", ocr_identity(params))
    unique = posters.drop_duplicates("sha256").sort_values("sha256", kind="mergesort")
    paths = dict(zip(unique["sha256"], unique["path"]))
    todo = cache.missing(unique["sha256"])
    failed: list[dict] = []
    workers = min(ocr_workers(params), max(len(todo), 1))
    t0 = time.perf_counter()
    if todo:
        keys, records = [], []
        with progress_bar() as bar:
            task = bar.add_task(f"ocr ({params.engine}, {workers} worker{'s' * (workers > 1)})", total=len(todo))
            for key, rec, failure in _results([(k, str(paths[k])) for k in todo], params, workers, reader_factory):
                if failure is None:
                    keys.append(key)
                    records.append(rec)
                else:
                    failed.append(failure)
                if len(keys) >= params.checkpoint_every:
                    cache.put(keys, records)
                    keys, records = [], []
                bar.advance(task)
        cache.put(keys, records)
    seconds = time.perf_counter() - t0
    bad = {f["key"] for f in failed}
    done = [k for k in unique["sha256"] if k not in bad]
    table = cache.get(done) if done else pd.DataFrame(columns=OCR_SCHEMA.names)
    table = table[OCR_SCHEMA.names]
    report = {
        "engine": params.engine,
        "posters": int(len(unique)),
        "computed": int(len(todo) - len(failed)),
        "from_cache": int(len(unique) - len(todo)),
        "failed": failed,
        "with_text": int(sum(len(t) > 0 for t in table["texts"])),
        "seconds": round(seconds, 3),
        "workers": workers,
        "posters_per_second": round((len(todo) - len(failed)) / seconds, 3) if todo and seconds > 0 else None,
        "cache": str(cache.dir),
    }
    return table, report


def ocr_table_arrow(table: pd.DataFrame) -> pa.Table:
    """The OCR table with its fixed schema (so empty lists keep their types)."""
    return pa.Table.from_pandas(table, schema=OCR_SCHEMA, preserve_index=False)
