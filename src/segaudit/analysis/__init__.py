"""Analysis of stored results: summaries, failures, comparisons, ranking, bias, cohorts and training logs.

Every function takes tidy DataFrames (the store's long tables) and returns a tidy DataFrame or a typed result
(:mod:`segaudit.analysis.results`: :class:`PairedTest`, :class:`FlipTable`, :class:`Trend`, :class:`GroupTest`,
:class:`Friedman`, :class:`Ranking`), each also readable as a dict.
"""

from segaudit.analysis.bias import covariate_columns, lowess, metric_by_group, metric_vs_feature, subgroup_tests
from segaudit.analysis.cohorts import longitudinal_volumes, split_leakage, split_overview
from segaudit.analysis.compare import (
    compare_models,
    flip_table,
    holm,
    mcnemar_exact,
    paired_test,
    set_apart_both_empty,
    sign_test,
)
from segaudit.analysis.coverage import MISSING_POLICIES, coverage, expected_cases, failure_list, fill_missing
from segaudit.analysis.error_matrix import error_matrix, matrix_with_background_row, over_segmentation
from segaudit.analysis.failures import (
    failed_lesion_sizes,
    failure_counts,
    failure_taxonomy,
    quality_band,
    worst_best,
)
from segaudit.analysis.flips import read_outcomes, run_flips
from segaudit.analysis.ranking import (
    nemenyi_critical_difference,
    rank_mean_disagreement,
    rank_models,
    ranking_table,
)
from segaudit.analysis.results import FlipTable, Friedman, GroupTest, PairedTest, Ranking, Trend
from segaudit.analysis.summary import (
    bootstrap_ci,
    cluster_bootstrap_ci,
    drop_both_empty,
    subject_of,
    summarize,
    with_empty_flags,
)
from segaudit.analysis.training import read_training_log, training_summary

__all__ = ["bootstrap_ci", "cluster_bootstrap_ci", "compare_models", "covariate_columns", "error_matrix",
           "matrix_with_background_row", "over_segmentation", "subgroup_tests", "subject_of", "failed_lesion_sizes",
           "failure_counts",
           "failure_taxonomy", "flip_table", "holm", "longitudinal_volumes", "lowess", "mcnemar_exact",
           "metric_by_group", "metric_vs_feature", "nemenyi_critical_difference", "paired_test", "quality_band",
           "rank_models",
           "rank_mean_disagreement", "read_outcomes", "read_training_log", "run_flips", "split_leakage",
           "split_overview",
           "summarize", "training_summary", "with_empty_flags", "worst_best", "MISSING_POLICIES", "coverage",
           "expected_cases", "failure_list", "fill_missing", "set_apart_both_empty", "sign_test", "ranking_table",
           "drop_both_empty", "FlipTable", "Friedman", "GroupTest", "PairedTest", "Ranking", "Trend"]
