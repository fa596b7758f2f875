"""Resuming by content: which stored jobs are stale, and which cases are gone from disk.

Every per-case step (``evaluate``, ``features``, ``agree``) records, with each job's results, the
:class:`~segaudit.io.fingerprint.Fingerprint` of every input file of the job (the ``inputs`` table: step,
dataset, case, model, role, key, path, exists, size, mtime_ns, digest), taken in the worker *before* the files
are read (a file replaced while it is scored is seen as changed next time, never the other way round).

On a re-run, a job already done with the same settings is skipped only when its input files are unchanged:
the same set of (role, key, path), and for each the same existence, size, modification time and digest
(computed in the digest's recorded mode). Asking for the full hash (``--full-hash``) where only edge hashes
were recorded re-does the job once, to record a full one; going back to the default keeps comparing the full
hashes recorded. A job with no recorded fingerprint (a store written before fingerprints) is re-done.

And every re-run drops the rows its step stored for cases that no longer exist in their dataset (also the
``cases``/``files``/``qc`` rows an earlier ``scan`` wrote about them), except for a dataset where no case at all
is found (an unmounted disk or a wrong root must not erase its results).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from segaudit.io.fingerprint import FINGERPRINT_MODES, Fingerprint, file_fingerprint
from segaudit.store.store import ResultsStore

#: One input file of a job: (role, key, path); role as in the ``files`` table, key the sequence or model.
Input = tuple[str, str, str]

FINGERPRINT_COLUMNS = ("role", "key", "path", "exists", "size_bytes", "mtime_ns", "digest")


def fingerprint_inputs(inputs: Iterable[Input], mode: str = "edge") -> list[dict]:
    """One row per input file with its fingerprint (the columns of :data:`FINGERPRINT_COLUMNS`)."""
    return [{"role": role, "key": key, "path": path, **asdict(file_fingerprint(path, mode))}
            for role, key, path in inputs]


def run_recorded(case_step: Callable[[Any], Any], job: Any) -> Any:
    """``case_step(job)`` with ``job.inputs`` fingerprinted (``job.fingerprint`` mode) just *before* they are read.

    The fingerprints go to the output's ``inputs``: a file replaced while the case ran is then seen as changed
    on the next run instead of being recorded with its new content under the old results.
    """
    inputs = fingerprint_inputs(job.inputs, job.fingerprint)
    out = case_step(job)
    out.inputs = inputs
    return out


def inputs_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows for the store's ``inputs`` table, with ``size_bytes`` and ``mtime_ns`` kept as exact integers.

    A plain DataFrame of dicts where a missing file has None would turn those columns into float64, and a
    nanosecond time (~1.8e18) does not fit a double's 53-bit mantissa: the stored time would differ from the
    file's, and every case with a missing file would look changed on each re-run.
    """
    if not rows:
        return pd.DataFrame()
    cols = list(dict.fromkeys(k for r in rows for k in r))
    data = {c: pd.array([r.get(c) for r in rows], dtype="Int64") if c in ("size_bytes", "mtime_ns")
            else [r.get(c) for r in rows] for c in cols}
    return pd.DataFrame(data)


def case_inputs(files: pd.DataFrame, roles: tuple[str, ...]) -> dict[tuple[str, str], list[Input]]:
    """(dataset, case) -> the declared files of those roles, from discovery's files frame (missing ones too)."""
    f = files[files.role.isin(roles)]
    out: dict[tuple[str, str], list[Input]] = {}
    for r in f.sort_values(["dataset", "case", "role", "key"]).itertuples():
        out.setdefault((str(r.dataset), str(r.case)), []).append((str(r.role), str(r.key or ""), str(r.path)))
    return out


@dataclass
class Staleness:
    """Which done jobs must be re-done, each with the reason in words (the first changed file)."""

    changed: dict[tuple, str] = field(default_factory=dict)


def _same(recorded: dict, path: str, cache: dict[tuple[str, str], Fingerprint], mode: str) -> bool:
    """Whether ``path`` still matches its recorded fingerprint (compared in the recorded digest's mode)."""
    rec_mode = str(recorded["digest"] or "").split(":", 1)[0]
    use = rec_mode if rec_mode in FINGERPRINT_MODES else mode
    if (path, use) not in cache:
        cache[(path, use)] = file_fingerprint(path, use)
    now = cache[(path, use)]
    if not bool(recorded["exists"]):
        return not now.exists
    return (now.exists and now.size_bytes == _int(recorded["size_bytes"])
            and now.mtime_ns == _int(recorded["mtime_ns"]) and now.digest == recorded["digest"])


def _int(v) -> int | None:
    return None if v is None or pd.isna(v) else int(v)


def stale_jobs(store: ResultsStore, step: str, key_columns: list[str], current: dict[tuple, list[Input]],
               mode: str = "edge") -> Staleness:
    """Which of the done jobs ``current`` (key tuple -> its input files now) have changed inputs.

    Parameters
    ----------
    store:
        The results store, with the ``inputs`` rows of earlier runs.
    step:
        The step whose fingerprints are compared.
    key_columns:
        The job key (``dataset, case, model`` for evaluate; ``dataset, case`` otherwise); for keys without a
        ``model``, fingerprints are those recorded with model ``''``.
    current:
        The done jobs and the files they read now (from :func:`case_inputs`).
    mode:
        Digest mode for files whose recorded digest has none (unreadable then): ``edge`` or ``full``.
    """
    out = Staleness()
    if not current:
        return out
    datasets = sorted({k[0] for k in current})
    rec = store.inputs(step, datasets)
    if "model" not in key_columns:
        rec = rec[rec.model.fillna("") == ""]
    recorded: dict[tuple, dict[Input, dict]] = {}
    for r in rec.to_dict(orient="records"):
        key = tuple(str(r[c]) for c in key_columns)
        recorded.setdefault(key, {})[(r["role"], r["key"] or "", r["path"])] = r
    cache: dict[tuple[str, str], Fingerprint] = {}
    for key, inputs in current.items():
        have = recorded.get(tuple(str(k) for k in key))
        if have is None:
            out.changed[key] = "no input fingerprint recorded (stored by an older segaudit)"
            continue
        now = {tuple(i) for i in inputs}
        if set(have) != now:
            added = sorted(p for _, _, p in now - set(have))
            gone = sorted(p for _, _, p in set(have) - now)
            parts = ([f"now also reads {', '.join(added)}"] if added else []) + \
                ([f"no longer reads {', '.join(gone)}"] if gone else [])
            out.changed[key] = "; ".join(parts)
            continue
        if mode == "full" and any(str(r["digest"] or "").startswith("edge:") for r in have.values()):
            out.changed[key] = "its recorded fingerprint is not a full hash (--full-hash): redone to record one"
            continue
        for (_, _, path), r in sorted(have.items()):
            if not _same(r, path, cache, mode):
                out.changed[key] = f"{path} changed since it was scored"
                break
    return out


def vanished_cases(store: ResultsStore, step: str, tables: list[str], present: pd.DataFrame
                   ) -> tuple[pd.DataFrame, list[str]]:
    """Cases the step stored rows for that no longer exist; also notes on datasets left alone.

    ``present`` holds (dataset, case) of every case discovered now, for the datasets the run covers (a dataset
    name with case ``None`` marks a dataset that is covered but where no case was found). A dataset without any
    case found is left alone (its rows are kept, and a note says so).
    """
    notes: list[str] = []
    if present.empty:
        return pd.DataFrame(columns=["dataset", "case"]), notes
    found = present.dropna(subset=["case"])
    datasets = sorted(present.dataset.unique())
    stored = store.step_cases(step, tables, datasets)
    empty = sorted(set(datasets) - set(found.dataset))
    for ds in empty:
        if (stored.dataset == ds).any():
            notes.append(f"dataset {ds}: no case found on disk; its stored {step} rows are kept (check its root)")
    stored = stored[~stored.dataset.isin(empty)]
    have = set(zip(found.dataset.astype(str), found.case.astype(str), strict=True))
    gone = stored[[(d, c) not in have for d, c in zip(stored.dataset.astype(str), stored.case.astype(str),
                                                      strict=True)]]
    return gone.reset_index(drop=True), notes


def drop_vanished(store: ResultsStore, step: str, tables: list[str], gone: pd.DataFrame) -> int:
    """Delete the step's rows of the cases in ``gone`` and what a scan recorded about them; returns how many."""
    if gone.empty:
        return 0
    n = store.drop_cases(step, gone, tables)
    store.drop_scan_cases(gone)
    return n


def present_cases(files: pd.DataFrame, datasets: Iterable[str]) -> pd.DataFrame:
    """(dataset, case) of every discovered case of these datasets, plus (dataset, None) for each dataset."""
    names = list(datasets)
    f = files[files.dataset.isin(names)][["dataset", "case"]].drop_duplicates().astype(str)
    marks = pd.DataFrame({"dataset": names, "case": [None] * len(names)})
    return pd.concat([f, marks], ignore_index=True)


def resume_lines(step_jobs: str, changed: dict[tuple, str], dropped: pd.DataFrame | list, verb: str,
                 limit: int = 5) -> list[str]:
    """The sentences a step prints about resumption: jobs re-done because their files changed, cases dropped.

    ``step_jobs`` names the jobs (``case-model(s)``, ``case(s)``); ``verb`` what was re-done (``re-scored``).
    """
    lines = []
    if changed:
        lines.append(f"{len(changed)} {step_jobs} {verb} because their input files changed since they were "
                     "stored:")
        for key, why in list(sorted(changed.items()))[:limit]:
            lines.append(f"  {'/'.join(map(str, key))}: {why}")
        if len(changed) > limit:
            lines.append(f"  ... {len(changed) - limit} more")
    gone = dropped if isinstance(dropped, list) else list(dropped.itertuples(index=False, name=None))
    if gone:
        shown = ", ".join(f"{d}/{c}" for d, c in gone[:limit]) + (" ..." if len(gone) > limit else "")
        lines.append(f"{len(gone)} case(s) no longer on disk: their stored rows were dropped ({shown})")
    return lines


@dataclass
class ResumePlan:
    """What a per-case step does about its earlier runs, decided once before its jobs are built.

    Attributes
    ----------
    step:
        The step (``evaluate``, ``features``, ``agree``).
    tables:
        The tables whose rows the step owns (dropped for vanished cases).
    changed:
        Done jobs (key tuple) whose input files changed since they were stored, each with the reason: they are
        redone (see :func:`stale_jobs`).
    gone:
        (dataset, case) the step stored rows for that are no longer on disk (see :func:`vanished_cases`).
    notes:
        Sentences about datasets left alone (no case found at all).
    """

    step: str
    tables: tuple[str, ...]
    changed: dict[tuple, str] = field(default_factory=dict)
    gone: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["dataset", "case"]))
    notes: list[str] = field(default_factory=list)

    @property
    def dropped(self) -> list[tuple[str, str]]:
        """(dataset, case) of the vanished cases, as plain tuples."""
        return list(self.gone.itertuples(index=False, name=None))

    def drop(self, store: ResultsStore) -> int:
        """Delete the vanished cases' rows (inside the run: call from ``run_step``'s ``start``)."""
        return drop_vanished(store, self.step, list(self.tables), self.gone)

    def lines(self, jobs: str, verb: str) -> list[str]:
        """What the step prints about resumption (:func:`resume_lines`), then the notes."""
        return resume_lines(jobs, self.changed, self.dropped, verb) + self.notes

    def counts(self) -> dict[str, int]:
        """The run summary's ``changed`` and ``dropped_cases`` counts."""
        return {"changed": len(self.changed), "dropped_cases": len(self.gone)}


def plan_resume(store: ResultsStore, step: str, key_columns: list[str], tables: Iterable[str],
                done: Iterable[tuple], files: pd.DataFrame, roles: tuple[str, ...], datasets: Iterable[str],
                fingerprint: str = "edge",
                reads: Callable[[tuple, list[Input]], list[Input]] | None = None) -> ResumePlan:
    """The :class:`ResumePlan` of a step: which of its ``done`` jobs changed, which cases vanished.

    Parameters
    ----------
    store:
        The run's store (fingerprints and rows of earlier runs).
    step, key_columns, tables:
        The step, its job key (starting with ``dataset, case``) and the tables it owns.
    done:
        Keys of the jobs stored by runs with the same settings (the caller removes ``plan.changed`` from them).
    files:
        Discovery's files frame now; ``roles``: the roles of the files a job reads.
    datasets:
        The datasets the run covers (only their vanished cases are dropped).
    fingerprint:
        ``"edge"`` or ``"full"`` (see :func:`stale_jobs`).
    reads:
        ``reads(key, case_files)`` -> the files of that job, when a job reads only part of its case's files
        (evaluate: the ground truth and its own model's prediction); default all of them.
    """
    by_case = case_inputs(files, roles)
    current: dict[tuple, list[Input]] = {}
    for key in done:
        case_files = by_case.get((str(key[0]), str(key[1])))
        if case_files is not None:
            current[key] = reads(key, case_files) if reads else case_files
    stale = stale_jobs(store, step, key_columns, current, fingerprint)
    gone, notes = vanished_cases(store, step, list(tables), present_cases(files, datasets))
    return ResumePlan(step, tuple(tables), stale.changed, gone, notes)


@dataclass
class CaseRows:
    """One case's output of a per-case step (prompt, attribute): rows, error rows and input fingerprints.

    ``rows`` are the step's table rows; :meth:`write` replaces all three in one transaction.
    """

    dataset: str
    case: str
    rows: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    inputs: list[dict] = field(default_factory=list)

    def write(self, store: ResultsStore, table: str, step: str, run_id: str) -> None:
        """Replace this case's rows of ``table``, errors and inputs for ``step`` (:func:`replace_case_rows`)."""
        replace_case_rows(store, table, step, self.dataset, self.case, self.rows, self.errors, self.inputs, run_id)


def replace_case_rows(store: ResultsStore, table: str, step: str, dataset: str, case: str, rows: list[dict],
                      errors: list[dict], inputs: list[dict], run_id: str) -> None:
    """Replace one case's rows of ``table``, its ``errors`` and its ``inputs`` for ``step`` in one transaction.

    The shape of a per-case step's write: every row, error and input row gets the run id; error and input rows
    also get the step, dataset and case (inputs with an empty model, as steps without models record them).
    """
    keys = pd.DataFrame([(dataset, case)], columns=["dataset", "case"])
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["run_id"] = run_id
    errs = pd.DataFrame([{"step": step, "dataset": dataset, "case": case, **e, "run_id": run_id} for e in errors])
    ins = inputs_frame([{"step": step, "dataset": dataset, "case": case, "model": "", **i, "run_id": run_id}
                        for i in inputs])
    store.replace_keyed({table: frame, "errors": errs, "inputs": ins}, keys, step=step)
