"""Running per-case jobs: in this process, in a process pool, on a local Dask cluster or on a remote one.

Every step (``evaluate``, ``features``, ``agree``) hands its module-level case function and picklable jobs
to :func:`run_step`, which records the run (provenance, status) and writes each result as it arrives;
:func:`run_jobs` is the scheduling underneath.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from segaudit.base.types import Executor
from segaudit.errors import SegauditError
from segaudit.io.atomic import pid_alive
from segaudit.store.store import ResultsStore

J = TypeVar("J")
R = TypeVar("R")


def progress_bar(enabled: bool):
    """The rich progress bar every step shows (description, bar, done/total, elapsed); off when not enabled."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    disable=not enabled, transient=False)


def run_step(store: ResultsStore, step: str, config_hash: str, config: dict, argv: list[str] | None,
             fn: Callable[[J], R], jobs: list[J], write: Callable[[ResultsStore, R, str], None], label: str,
             total: int | None = None,
             advance: Callable[[R], int] | None = None, summary: Callable[[], dict] | None = None,
             start: Callable[[str], object] | None = None, progress: bool = True, workers: int = 1,
             scheduler: str | None = None, executor: Executor = "auto") -> str:
    """The skeleton every per-case step shares; returns the run id.

    Records the run in ``store`` (:meth:`~segaudit.store.ResultsStore.start_run`), runs ``fn`` over ``jobs``
    (:func:`run_jobs`) behind a progress bar of ``total`` units (default one per job; ``advance(result)`` units
    per result), writes each result at once with ``write(store, result, run_id)`` (one transaction per case, so
    an interruption keeps what was finished), and finishes the run as ``ok``, or ``interrupted`` when anything
    (Ctrl-C included) stops it, which is re-raised; ``summary()`` gives the run's JSON summary either way.
    ``start(run_id)`` runs first, inside the run (e.g. rows every job needs).
    """
    run_id = store.start_run(step, config_hash, config, argv)
    status = "ok"
    try:
        if start is not None:
            start(run_id)
        with progress_bar(progress) as bar:
            task = bar.add_task(label, total=len(jobs) if total is None else total)
            for res in run_jobs(fn, jobs, workers, scheduler, executor):
                write(store, res, run_id)
                bar.advance(task, advance(res) if advance else 1)
    except BaseException:
        status = "interrupted"
        raise
    finally:
        store.finish_run(run_id, status, summary() if summary else {})
    return run_id


def run_jobs(fn: Callable[[J], R], jobs: list[J], workers: int = 1, scheduler: str | None = None,
             executor: Executor = "auto") -> Iterator[R]:
    """Yield ``fn(job)`` for every job, in completion order when parallel.

    ``workers > 1`` starts a local Dask cluster of that many single-threaded processes when Dask is installed
    (``executor="processes"`` forces a process pool, ``"dask"`` forces Dask); ``scheduler`` (``tcp://…``) sends
    the jobs to a running Dask cluster. ``fn`` must be a module-level function and never raise.
    """
    if scheduler or (workers > 1 and executor in ("auto", "dask") and len(jobs) > 1 and _has_dask()) \
            or executor == "dask":
        yield from _run_dask(fn, jobs, workers, scheduler)
    elif workers > 1 and len(jobs) > 1:
        with process_pool(workers) as pool:
            yield from pool.map(fn, jobs, chunksize=1)
    else:
        for job in jobs:
            yield fn(job)


#: Seconds between two checks of a pool worker that its parent is still alive.
PARENT_POLL_S = 0.25


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers exit when the process that started them dies (see :func:`exit_with_parent`).

    Without this, killing the main process (SIGKILL, a crash) leaves every worker finishing its job and then
    waiting on the pool's queue for minutes.
    """
    return ProcessPoolExecutor(max_workers=workers, initializer=exit_with_parent, initargs=(os.getpid(),))


def exit_with_parent(parent: int, interval: float = PARENT_POLL_S) -> None:
    """Pool-worker initializer: end this process at once when the process ``parent`` is gone.

    A daemon thread checks every ``interval`` seconds; when the parent dies the worker exits with status 1
    through :func:`os._exit` (no clean-up: its result would have nowhere to go). A worker forked by ``parent``
    sees its :func:`os.getppid` change (it is re-parented to init or a subreaper); a worker started through a
    fork server has another parent, so ``parent`` itself is checked (:func:`~segaudit.io.atomic.pid_alive`).
    Portable, unlike Linux's ``PR_SET_PDEATHSIG``, which fires when the *thread* that started the worker ends,
    and a pool may start workers from a helper thread.
    """
    first = os.getppid()

    def gone() -> bool:
        return os.getppid() != first if first == parent else not pid_alive(parent)

    def watch() -> None:
        while not gone():
            time.sleep(interval)
        os._exit(1)

    if gone():  # the parent died before this worker got going
        os._exit(1)
    threading.Thread(target=watch, name="segaudit-exit-with-parent", daemon=True).start()


def _has_dask() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def _run_dask(fn: Callable[[J], R], jobs: list[J], workers: int, scheduler: str | None) -> Iterator[R]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise SegauditError("Dask is not installed: pip install 'segaudit[dask]'") from exc
    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="30s")
    else:
        import dask

        # Dask makes its workers return freed memory to the OS at once (MALLOC_TRIM_THRESHOLD_=64 KiB); with the
        # tens-of-MB temporaries of reading 3D masks that costs ~30 % of the run, so our own cluster keeps the
        # C library's default.
        # The worker's sampling profiler also competes for the GIL with the scoring thread: off for our cluster.
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 128 * 1024 * 1024,
                              "distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=40)
        client = Client(cluster)
    try:
        futures = client.map(fn, jobs, pure=False)
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
