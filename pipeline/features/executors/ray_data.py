"""The Ray executor: a Ray Data actor pool, on a local instance or a cluster.

Each actor builds the job's worker once (the OCR engine or the encoder, on its
CPUs or GPU) and reads one batch of items per task; the driver streams the
results back in order and :func:`pipeline.features.executors.fill_cache` writes
the cache parts, exactly as in-process. So:

* only posters missing from the cache are sent, and the features are
  byte-identical to an in-process run (the encoder sees the same batches: a task
  carries ``ray.<stage>.batch_size`` items, a multiple of the encoder batch);
* a killed actor is restarted and its task retried (Ray Data's defaults for
  actor pools: ``max_restarts=-1``, ``max_task_retries=-1``): nothing is lost, and
  nothing is duplicated because the driver keeps results by key in order;
* a killed driver loses at most the part in flight: the next run resumes from
  the cache.

How posters reach the actors (``ray.inputs``): ``bytes`` (the default) has the
driver read each poster and ship its bytes, so the workers need no access to the
files (a cluster without shared storage); ``paths`` ships only paths, which every
node must be able to open (a shared filesystem mounted at the same path, or a
local instance). The driver works through the posters ``ray.window`` at a time,
one Ray Data dataset each, so its memory stays bounded on a catalogue.

CPU accounting: an actor that claims whole CPUs on a small instance leaves none
for Ray Data's own tasks and the run stalls (two 1-CPU actors on 2 CPUs hang), so
unless ``ray.<stage>.cpus`` is given the actors share the instance's CPUs less half
a CPU, capped by the largest node.
"""

from __future__ import annotations

import logging
import pickle
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pipeline.core.errors import PipelineError
from pipeline.data.images import PosterError, read_bytes
from pipeline.features.executors import Item, Job, Result, batched, failure
from pipeline.features.executors.local import cores

if TYPE_CHECKING:
    from pipeline.core.params import RayParams, RayStageParams

#: What to install for Ray (the optional extra of pyproject.toml).
INSTALL = "pip install -e '.[ray]'  (or: pip install 'poster-genres[ray]')"
#: Seconds to wait for a cluster address to answer before giving up.
CONNECT_TIMEOUT = 5.0
#: CPUs left to Ray Data's own tasks when the actors' CPUs are shared out automatically.
RESERVED_CPUS = 0.5


class RayError(PipelineError):
    """Ray is missing, unreachable or failed (message is one line)."""


def require_ray():
    """``import ray`` (with Ray Data), or stop with one line saying what to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayError(f"ray.address is set but Ray (with Ray Data) is not installed: {INSTALL}") from None
    return ray


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """A ``host:port`` or ``ray://host:port`` address answers within ``timeout`` seconds, or one line."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayError(f"ray.address '{address}': expected host:port or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise RayError(f"ray.address '{address}': cannot reach {host}:{port} ({reason})") from None


def connect(address: str) -> None:
    """Start (``local``) or join (``auto``, ``ray://host:port``, ``host:port``) Ray, once per process."""
    ray = require_ray()
    if ray.is_initialized():
        return
    if address == "local":
        # the instance gets the CPUs this process may use, not the machine's count; address="local" starts
        # a new one even where `ray start` left a cluster on this machine (plain ray.init() would join it)
        ray.init(address="local", num_cpus=cores(), include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
        return
    if address != "auto":
        check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except Exception as err:  # noqa: BLE001 - Ray raises several kinds; the user needs one line
        if "InvalidAuthToken" in _chain_text(err):
            raise RayError(f"ray.address '{address}': the cluster refused this driver (InvalidAuthToken: token "
                           f"authentication is on): set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to the cluster's "
                           f"token (`ray get-auth-token` on the head node prints it)") from None
        raise RayError(f"ray.address '{address}': cannot connect ({_first_line(err)})") from None


def _chain_text(err: BaseException) -> str:
    """The messages of an exception and of everything it was raised from (Ray wraps the reason twice)."""
    texts, seen = [], set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        texts.append(str(err))
        err = err.__cause__ or err.__context__
    return "\n".join(texts)


def actor_cpus(res: RayStageParams) -> float:
    """CPUs per actor: ``ray.<stage>.cpus``, else the cluster's CPUs shared out (see the module docstring)."""
    if res.cpus is not None:
        return res.cpus
    import ray

    total = float(ray.cluster_resources().get("CPU", 1.0))
    largest = max((float(n["Resources"].get("CPU", 0.0)) for n in ray.nodes() if n.get("Alive")), default=total)
    share = min((total - RESERVED_CPUS) / res.actors, largest - RESERVED_CPUS)
    return round(max(share, 0.1), 3)


def _actor_class(job: Job, threads: int) -> type:
    """The pool's actor class, with the job bound in (not passed as constructor arguments, which Ray
    would keep in the object store and could lose before restarting a killed actor)."""

    class PosterActor:
        """One pool member: builds the job's worker once, then reads a pickled batch of items per task."""

        def __init__(self):
            self.worker = job.worker(threads)

        def __call__(self, row: dict) -> dict:
            return {"results": pickle.dumps(self.worker(pickle.loads(row["items"])))}

    return PosterActor


def _read_on_driver(window: list[Item]) -> tuple[list[Item], list[Result]]:
    """``ray.inputs: bytes``: the items with their bytes, and failures for files the driver cannot read."""
    shipped, failed = [], []
    for item in window:
        try:
            shipped.append(Item(item.key, item.path, read_bytes(item.path)))
        except PosterError as err:
            failed.append((item.key, None, failure(item.key, item.path, err.reason, str(err))))
    return shipped, failed


def _task_error(stage: str, err: BaseException) -> RayError:
    """One line for a task that failed on Ray: the worker's own error when there is one."""
    cause = err
    while cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, PipelineError):
        return RayError(f"{stage} on Ray: {_first_line(cause)}")
    return RayError(f"{stage} on Ray failed: {type(cause).__name__}: {_first_line(cause)}")


def run_on_ray(job: Job, items: list[Item], params: RayParams) -> Iterator[Result]:
    """Results in the order of ``items``, computed by an actor pool on Ray."""
    ray = require_ray()
    connect(params.address)
    res = getattr(params, job.stage)
    batch = res.batch_size or job.batch_size
    job.check_batch(batch)
    cpus = actor_cpus(res)
    # a job that fixes its own thread count (the encoders: their last bits depend on it) keeps it
    threads = getattr(job, "threads", None) or max(1, round(cpus))
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # parts (and so the cache) as in-process
    ctx.enable_progress_bars = False  # the stage shows its own bar
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    actor = _actor_class(job, threads)
    for window in batched(items, params.window):
        if params.inputs == "bytes" and job.reads_files:
            window, unread = _read_on_driver(window)
            yield from unread
        if not window:
            continue
        rows = [{"items": pickle.dumps(chunk)} for chunk in batched(window, batch)]
        ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map(
            # one task in flight per actor: the first actor ready would otherwise queue the next tasks
            # too, and a second actor would sit idle on a short run (measured: 2 actors no faster than 1)
            actor, compute=ray.data.ActorPoolStrategy(size=res.actors, max_tasks_in_flight_per_actor=1),
            num_cpus=cpus, num_gpus=res.gpus or None,
        )
        try:
            for row in ds.iter_rows():
                yield from pickle.loads(row["results"])
        except ray.exceptions.RayError as err:
            raise _task_error(job.stage, err) from None
        except Exception as err:  # Ray Data wraps a worker's exception in its own types
            if type(err).__module__.startswith("ray."):
                raise _task_error(job.stage, err) from None
            raise
