"""Where the per-poster work runs: this process, worker processes, or a Ray cluster.

OCR, image embedding and text embedding (and so ``predict``) share one loop,
:func:`fill_cache`. A stage describes its work as a :class:`Job`: how to build a
worker (the OCR engine or encoder, loaded once per process or actor), how many
items one call of the worker takes, and how results are stored in the
content-addressed cache. The loop sends only the items the cache lacks to an
executor and writes a cache part every ``job.batch_size`` results as they arrive,
in the order of the items whatever the executor, so:

* the cache stays the source of truth: resume, incremental runs and identity
  checks are the same on every executor;
* an interrupted run (driver killed, machine rebooted) loses at most one part;
* results, cache parts and feature files are byte-identical across executors.

Executors (``ray.address`` picks one; ``ocr.workers`` sizes the process pool):

* :mod:`.local`: in this process, or a pool of spawned worker processes for jobs
  whose results do not depend on how items are grouped (OCR);
* :mod:`.ray_data`: a Ray Data actor pool on a local instance or a cluster.

The executor settings change where work runs, never what it computes: they are in
no cache identity and in no stage's DVC params.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.core.errors import PipelineError
from pipeline.core.progress import progress_bar

if TYPE_CHECKING:
    from pipeline.core.params import RayParams


@dataclass(frozen=True)
class Item:
    """One unit of per-poster work: the cache key, the poster's path (also what errors name) and,
    when the driver read it (Ray, ``ray.inputs: bytes``) or the item is not a file (a text), its data."""

    key: str
    path: str
    data: bytes | str | None = None


#: (key, value, None) on success, (key, None, failure record) when the item cannot be used.
Result = tuple[str, Any, "dict | None"]
#: A worker: one call reads a list of items and returns one result per item, in their order.
Worker = Callable[[list[Item]], list[Result]]


class Job(Protocol):
    """A stage's per-poster work, as plain picklable data (it travels to processes and actors)."""

    #: ``ocr`` | ``embed_image`` | ``embed_text``: names the stage's Ray resources and progress bar.
    stage: str
    #: Items per worker call and per cache part (the encoder batch; OCR's ocr.checkpoint_every).
    batch_size: int
    #: True when a result does not depend on which items share a call (OCR): the process pool may
    #: send items one at a time. False for encoders: a batch must be exactly the in-process batch.
    splittable: bool
    #: True when items are poster files (``ray.inputs: bytes`` ships their bytes).
    reads_files: bool

    def worker(self, threads: int | None) -> Worker: ...

    def store(self, cache: Any, keys: list[str], values: list[Any]) -> None: ...

    def check_batch(self, batch_size: int) -> None:
        """Raise a one-line error when a Ray task of ``batch_size`` items would change the results."""


class WorkerMismatchError(PipelineError):
    """A worker built on a process or actor differs from the driver's (message is one line)."""


def check_identity(what: str, built: dict[str, Any], expected: dict[str, Any], hint: str) -> None:
    """A worker's engine or encoder must be the driver's (same package versions, weights, precision):
    its results go into the cache folder named by the driver's identity. ``hint`` says what to align."""
    if built != expected:
        diff = sorted(k for k in set(built) | set(expected) if built.get(k) != expected.get(k))
        raise WorkerMismatchError(f"the {what} built on a Ray actor differs from the driver's "
                                  f"(in {', '.join(diff)}); {hint}")


def failure(key: str, path: str, reason: str, detail: str) -> dict[str, str]:
    """The record of an item that could not be used: reported by the stage, never fatal."""
    return {"key": key, "path": path, "reason": reason, "detail": detail}


def batched(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def results(job: Job, items: list[Item], workers: int = 1, ray: RayParams | None = None) -> Iterator[Result]:
    """Every item's result, in the order of ``items``, from the executor the settings name."""
    if ray is not None and ray.address is not None:
        from pipeline.features.executors.ray_data import run_on_ray

        return run_on_ray(job, items, ray)
    from pipeline.features.executors.local import run_local

    return run_local(job, items, workers)


def fill_cache(job: Job, items: list[Item], cache: Any, *, workers: int = 1, ray: RayParams | None = None,
               description: str | None = None) -> list[dict]:
    """Compute ``items`` (all missing from ``cache``) and store them part by part as they arrive.

    Returns the failure records, sorted by key (a poster that cannot be read never stops the run)."""
    failed: list[dict] = []
    if not items:
        return failed
    keys: list[str] = []
    values: list[Any] = []
    with progress_bar() as bar:
        task = bar.add_task(description or job.stage, total=len(items))
        for key, value, fail in results(job, items, workers, ray):
            if fail is None:
                keys.append(key)
                values.append(value)
            else:
                failed.append(fail)
            if len(keys) >= job.batch_size:
                job.store(cache, keys, values)
                keys, values = [], []
            bar.advance(task)
    job.store(cache, keys, values)
    return sorted(failed, key=lambda f: f["key"])


def executor_name(workers: int = 1, ray: RayParams | None = None) -> str:
    """How the work runs, for progress bars and benchmark tables."""
    if ray is not None and ray.address is not None:
        return f"ray {ray.address}"
    return f"{workers} process{'es' * (workers > 1)}"


def poster_paths(posters: Any) -> dict[str, str]:
    """Unique posters of a posters table (columns ``sha256``, ``path``): key -> its first path, by key."""
    first: dict[str, str] = {}
    for key, path in zip(posters["sha256"].to_list(), posters["path"].to_list(), strict=True):
        first.setdefault(key, str(path))
    return dict(sorted(first.items()))
