"""Typed results of the analyses: dataclasses with one attribute per reported quantity.

Each record is also a read-only mapping (``res["p"]``, ``res.get("note")``, ``{**res}``, ``dict(res)``), so code
written against the former plain dicts keeps working; new code reads attributes (``res.p``). Field order is the
order of the former dicts' keys, so tables built from ``{**res}`` keep their columns.
"""


from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

import pandas as pd


class MappingRecord(Mapping[str, Any]):
    """Mapping view of a dataclass's fields (read-only: records are results, not scratch space)."""

    def __getitem__(self, key: str) -> Any:
        if isinstance(key, str) and key in self._names():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def _names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the fields, in field order."""
        return {k: getattr(self, k) for k in self._names()}


@dataclass(eq=False)
class PairedTest(MappingRecord):
    """A paired comparison of two vectors of per-case values (:func:`~segaudit.analysis.compare.paired_test`).

    Differences are candidate - baseline; ``improvement`` is in the metric's good direction;
    ``relative_improvement_pct`` is of the baseline mean; ``ci_low``/``ci_high`` the t-based CI of the mean
    difference (NaN below ``MIN_BOOTSTRAP_CI`` pairs, ``ci_note`` says why); ``test`` is ``"paired t-test"``,
    ``"wilcoxon"`` or ``"none"``, ``p`` its p-value and ``reason`` the choice in words.
    """

    n: int
    n_dropped: int
    mean_baseline: float
    mean_candidate: float
    mean_diff: float
    median_diff: float
    improvement: float
    relative_improvement_pct: float
    ratio: float
    ci_low: float
    ci_high: float
    ci_note: str
    cohens_dz: float
    rank_biserial: float
    shapiro_p: float
    t_p: float
    wilcoxon_p: float
    test: str
    p: float
    reason: str


@dataclass(eq=False)
class FlipTable(MappingRecord):
    """Per-case outcome flips between two predictors (:func:`~segaudit.analysis.compare.flip_table`).

    ``groups``: one row per group (``flip_to_correct``, ``flip_to_incorrect``, ``correct_correct``,
    ``incorrect_incorrect``) with n, percent and sample ids; accuracies in [0, 1]; ``p`` the exact McNemar p.
    """

    groups: pd.DataFrame
    n: int
    baseline_accuracy: float
    candidate_accuracy: float
    p: float


@dataclass(eq=False)
class Trend(MappingRecord):
    """Spearman correlation of a metric with a feature (:func:`~segaudit.analysis.bias.metric_vs_feature`).

    ``p`` tests rho = 0 (a monotone trend); ``ci_low``/``ci_high`` a percentile bootstrap CI (over cases, or
    subjects when ``resampled`` is ``"subjects"``); ``trend`` the LOWESS curve (columns x, fitted; empty when
    there is no estimate); ``note``/``ci_note``: '' or why there is no estimate / CI.
    """

    n: int
    n_dropped: int
    resampled: str
    n_clusters: int
    ci_note: str
    spearman_rho: float
    p: float
    ci_low: float
    ci_high: float
    trend: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"x": [], "fitted": []}))
    note: str = ""


@dataclass(eq=False)
class GroupTest(MappingRecord):
    """Kruskal–Wallis test of a metric across groups (:func:`~segaudit.analysis.bias.metric_by_group`).

    ``groups``: groups tested (at least ``min_group`` units each); ``groups_too_small``: groups left out;
    ``unit``: ``"cases"`` or ``"subjects"``; ``note``: '' or why there is no test.
    """

    groups: int
    groups_too_small: int
    overall_mean: float
    statistic: float
    p: float
    note: str
    unit: str


@dataclass(eq=False)
class Friedman(MappingRecord):
    """Friedman test over k models on n complete cases, with the Nemenyi critical difference of mean ranks.

    ``note``: '' or why there is no test ("n too small (n=5 < 10)": statistic, p and critical difference NaN).
    """

    n: int
    k: int
    statistic: float
    p: float
    note: str
    critical_difference: float


class Ranking(NamedTuple):
    """Model ranking (:func:`~segaudit.analysis.ranking.rank_models`); unpacks as ``ranks, friedman, posthoc``."""

    ranks: pd.DataFrame
    friedman: Friedman
    posthoc: pd.DataFrame
