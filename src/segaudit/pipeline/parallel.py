"""Running per-case jobs: in this process, in a process pool, on a local Dask cluster or on a remote one.

Every step (``evaluate``, ``features``) hands its module-level case function and picklable jobs to
:func:`run_jobs`; results come back as plain records the caller writes to the store as they arrive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from segaudit.errors import SegauditError

J = TypeVar("J")
R = TypeVar("R")


def run_jobs(fn: Callable[[J], R], jobs: list[J], workers: int = 1, scheduler: str | None = None,
             executor: str = "auto") -> Iterator[R]:
    """Yield ``fn(job)`` for every job, in completion order when parallel.

    ``workers > 1`` starts a local Dask cluster of that many single-threaded processes when Dask is installed
    (``executor="processes"`` forces a process pool, ``"dask"`` forces Dask); ``scheduler`` (``tcp://…``) sends
    the jobs to a running Dask cluster. ``fn`` must be a module-level function and never raise.
    """
    if scheduler or (workers > 1 and executor in ("auto", "dask") and len(jobs) > 1 and _has_dask()) \
            or executor == "dask":
        yield from _run_dask(fn, jobs, workers, scheduler)
    elif workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            yield from pool.map(fn, jobs, chunksize=1)
    else:
        for job in jobs:
            yield fn(job)


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
