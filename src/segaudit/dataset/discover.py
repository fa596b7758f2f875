"""Discovery: match a dataset's templates against the file system and build a tidy file table.

Every (case, role, sequence/model) the dataset declares gets one :class:`FileRecord`, found or not: a missing
file is a row with ``exists=False``, never an exception, so QC can report it and the rest of the run goes on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from segaudit.dataset.metadata import MetadataIssue, read_metadata
from segaudit.dataset.project import DatasetConfig, ProjectConfig
from segaudit.dataset.templates import Match, format_template, match_template

ROLES = ("image", "ground_truth", "instances", "prediction")


@dataclass
class FileRecord:
    """One expected file of a case. ``key`` is the sequence (images), the model (predictions) or ''."""

    dataset: str
    case: str
    role: str
    key: str
    path: str
    exists: bool


@dataclass
class CaseRecord:
    """One case: its identifiers and the metadata row joined on its id (empty dict when none)."""

    dataset: str
    case: str
    subject: str | None = None
    timepoint: str | None = None
    metadata: dict = field(default_factory=dict)


@dataclass
class Discovery:
    """What discovery found for a project: cases, files and metadata issues."""

    cases: list[CaseRecord]
    files: list[FileRecord]
    issues: list[MetadataIssue]

    def files_frame(self) -> pd.DataFrame:
        """Tidy table: dataset, case, subject, timepoint, role, key, path, exists."""
        cols = ["dataset", "case", "subject", "timepoint", "role", "key", "path", "exists"]
        if not self.files:
            return pd.DataFrame(columns=cols)
        df = pd.DataFrame([asdict(f) for f in self.files])
        ids = pd.DataFrame([{"dataset": c.dataset, "case": c.case, "subject": c.subject,
                             "timepoint": c.timepoint} for c in self.cases])
        return df.merge(ids, on=["dataset", "case"], how="left")[cols]

    def cases_frame(self) -> pd.DataFrame:
        """The discovered cases as a DataFrame (dataset, case, subject, timepoint, metadata)."""
        cols = ["dataset", "case", "subject", "timepoint", "metadata"]
        return pd.DataFrame([asdict(c) for c in self.cases], columns=cols)

    def for_case(self, dataset: str, case: str) -> list[FileRecord]:
        """The file records of one case of one dataset, in discovery order."""
        return [f for f in self.files if f.dataset == dataset and f.case == case]


def _timepoint_sort_key(value: str | None):
    try:
        return (0, float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return (1, value or "")


def discover_dataset(ds: DatasetConfig) -> Discovery:
    """Match all templates of one dataset; see the module docstring."""
    root = ds.root
    found: dict[tuple[str, str], list[Match]] = {}  # (role, template-key) -> matches
    role_specs: list[tuple[str, str, str, str | None]] = []  # role, declared key, template, key field

    for seq, tpl in ds.images.items():
        role_specs.append(("image", seq, tpl, "sequence" if seq == "*" else None))
    if ds.ground_truth:
        role_specs.append(("ground_truth", "", ds.ground_truth, None))
    if ds.instances:
        role_specs.append(("instances", "", ds.instances, None))
    for model, tpl in ds.predictions:
        role_specs.append(("prediction", model, tpl, "model" if model == "*" else None))

    choices = {"sequence": ds.sequences, "model": ds.models}
    cases: set[str] = set()
    seen_keys: dict[str, set[str]] = {"image": set(), "prediction": set()}
    by_case: dict[tuple[str, str, str], str] = {}  # (case, role, key) -> path
    for i, (role, declared, tpl, key_field) in enumerate(role_specs):
        matches = match_template(tpl, root, key_field, choices)
        found[(role, str(i))] = matches
        for m in matches:
            key = m.key if key_field else declared
            cases.add(m.case)
            if role in seen_keys:
                seen_keys[role].add(key)
            by_case.setdefault((m.case, role, key), m.path)

    sequences = ds.sequences or sorted(k for k in seen_keys["image"] if k != "*")
    models = ds.models or sorted(seen_keys["prediction"])
    # Templates per (role, key), for naming the path of a missing file.
    tpl_for: dict[tuple[str, str], tuple[str, str | None]] = {}
    for role, declared, tpl, key_field in role_specs:
        if key_field:
            keys = sequences if role == "image" else models
            for k in keys:
                tpl_for.setdefault((role, k), (tpl, key_field))
        else:
            tpl_for.setdefault((role, declared), (tpl, None))

    files: list[FileRecord] = []
    for case in sorted(cases):
        for (role, key), (tpl, key_field) in tpl_for.items():
            path = by_case.get((case, role, key))
            if path is None:
                path = format_template(tpl, root, case, key_field, key)
            files.append(FileRecord(ds.name, case, role, key, path, (case, role, key) in by_case))

    meta_rows: dict[str, dict] = {}
    issues: list[MetadataIssue] = []
    if ds.metadata is not None:
        meta_rows, issues = read_metadata(ds.metadata, ds.name, sorted(cases))
    records = []
    for case in sorted(cases):
        subject = timepoint = None
        if ds.longitudinal is not None:
            hit = ds.longitudinal.search(case)
            if hit:
                subject, timepoint = hit.group("subject"), hit.group("timepoint")
        records.append(CaseRecord(ds.name, case, subject, timepoint, meta_rows.get(case, {})))
    records.sort(key=lambda r: (r.subject or r.case, _timepoint_sort_key(r.timepoint), r.case))
    return Discovery(records, files, issues)


def discover(project: ProjectConfig) -> Discovery:
    """Discover every dataset of a project and concatenate the results."""
    cases: list[CaseRecord] = []
    files: list[FileRecord] = []
    issues: list[MetadataIssue] = []
    for ds in project.datasets:
        d = discover_dataset(ds)
        cases += d.cases
        files += d.files
        issues += d.issues
    return Discovery(cases, files, issues)
