"""Minimum sample sizes below which segaudit reports no statistic, only "n too small".

Every interval, test and curve of :mod:`segaudit.analysis` checks its sample size against one of these
constants. Below the minimum the result is NaN and carries a reason string made by :func:`too_small`
(``"n too small (n=3 < 10)"``); the report and the CLI print that text instead of a number. When cases share a
subject (slices of one patient, time points) the sample size that counts is the number of subjects, because
that is the number of independent units (see :mod:`segaudit.analysis.summary`).

The numbers are conventions, not theorems; each is chosen so that the reported number means what its name says.
"""

from __future__ import annotations

#: Bootstrap confidence interval of a mean (percentile or BCa). With fewer than 10 independent values the
#: bootstrap distribution has only a handful of distinct means (n = 3 gives 10 distinct resamples), the BCa
#: acceleration and bias corrections are estimated from as many jackknife values, and the interval
#: under-covers badly (coverage of a nominal 95 % percentile interval is about 80-85 % at n = 5 for skewed data;
#: Efron & Tibshirani 1993, ch. 13-14). Ten is the usual lower limit quoted for bootstrap intervals.
MIN_BOOTSTRAP_CI = 10

#: Shapiro–Wilk normality test of the paired differences. Below 8 values the test has almost no power (it
#: rejects clearly skewed Dice differences less than one time in five), so "not rejected" would read as "normal"
#: without evidence. With 6-7 pairs the paired comparison uses the Wilcoxon signed-rank test by default
#: (it does not assume normality) instead of choosing by a test that cannot reject.
MIN_SHAPIRO = 8

#: Any paired test (t-test, Wilcoxon) between two models. The exact two-sided Wilcoxon signed-rank test
#: cannot reach p < 0.05 with fewer than 6 pairs (its smallest p is 2 / 2**n = 0.0625 at n = 5), so a test on
#: fewer pairs can only ever say "no difference"; none is reported.
MIN_PAIRED_TEST = 6

#: Spearman correlation (with its bootstrap CI) and the LOWESS trend of a metric against a feature. Below 10
#: points a rank correlation's CI spans most of [-1, 1] and a local regression with the default span fits
#: 2/3 of 6 points, i.e. a straight line through noise.
MIN_CORRELATION = 10

#: Kruskal–Wallis across groups: each group needs at least 5 cases (the chi-square approximation of the H
#: statistic is the one scipy uses; it is adequate only with >= 5 observations per group, Kruskal & Wallis
#: 1952). Smaller groups are listed with "n too small" and left out of the test. Also the minimum size of any
#: metadata group used as a bias subgroup.
MIN_GROUP = 5

#: Friedman test, Nemenyi critical difference and rank stability of k models: at least 10 complete cases
#: (the chi-square approximation of the Friedman statistic needs "N > 10" as a rule of thumb, Demšar 2006,
#: JMLR 7:1-30); with fewer cases the ranks are reported but not tested.
MIN_RANKING = 10


def too_small(n: int, minimum: int, unit: str = "") -> str | None:
    """The reason string for a statistic that needs ``minimum`` values but has ``n``; None when ``n`` suffices.

    ``unit`` names what is counted when it is not cases (``"subjects"``, ``"pairs"``), e.g.
    ``"n too small (n=3 subjects < 10)"``.
    """
    if n >= minimum:
        return None
    what = f" {unit}" if unit else ""
    return f"n too small (n={n}{what} < {minimum})"
