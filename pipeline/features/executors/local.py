"""The in-machine executor: this process, or a pool of worker processes.

A pool is used only for jobs whose results do not depend on how items are grouped
(``job.splittable``: OCR), one item per message so the workers stay balanced; each
worker holds its own engine, single-threaded or with its share of the cores
(measured faster on small posters than one engine with intra-op threads).
Encoders run in this process: their batches must be exactly ``job.batch_size``
consecutive items so the features do not depend on the executor.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from pipeline.features.executors import Item, Job, Result, Worker, batched


def cores() -> int:
    """CPU cores this process may use (its affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


_WORKER: Worker | None = None


def _init(job: Job, threads: int) -> None:
    global _WORKER
    _WORKER = job.worker(threads)


def _call(chunk: list[Item]) -> list[Result]:
    return _WORKER(chunk)


def run_local(job: Job, items: list[Item], workers: int = 1) -> Iterator[Result]:
    """Results in the order of ``items``: in this process, or from ``workers`` spawned processes."""
    if workers <= 1 or not job.splittable or len(items) < 2:
        worker = job.worker(None)
        for chunk in batched(items, job.batch_size):
            yield from worker(chunk)
        return
    import multiprocessing as mp

    threads = max(1, cores() // workers)
    # spawn: torch and ONNX Runtime thread pools do not survive fork safely
    with mp.get_context("spawn").Pool(workers, initializer=_init, initargs=(job, threads)) as pool:
        for out in pool.imap(_call, [[item] for item in items], chunksize=1):
            yield from out
