"""Agreement between segmentations when there is no ground truth: pairs, consensus, STAPLE, leave-one-out.

Without a reference, models can still be judged against each other. Everything here is a pure function of
label maps (or of binary masks) that share one voxel grid:

- :func:`structures` - the labels and regions scored, each distinct set of label values once;
- :func:`majority_vote` - the label-wise plurality vote of several label maps (ties: smallest label value);
- :func:`binary_majority` - the strict-majority vote of binary masks (ties: background);
- :func:`staple` - Warfield's STAPLE (binary, per label/region), with each rater's sensitivity and specificity;
- :func:`leave_one_out_consensus` - for each model, the consensus of the *other* models, so that no model is
  judged against a consensus it voted in;
- :func:`agreement_rows` - all of the above for one case, as long rows, with Dice and HD95 computed by
  :func:`segaudit.metrics.evaluate.evaluate_pair` (the same definitions and empty-case policy as ``evaluate``);
- :func:`volume_spread` and :func:`outlier_model` - the spread of the models' volumes and the documented
  outlier rule.

Every agreement metric name starts with :data:`AGREEMENT_PREFIX` (``agree_``), so a row is never mistaken for
a ground-truth metric (``dice`` against a reference) in the shared long ``metrics`` table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations

import numpy as np

from segaudit.metrics.evaluate import EvaluationOptions, evaluate_pair
from segaudit.metrics.overlap import values_mask
from segaudit.metrics.surface import bounding_box

AGREEMENT_PREFIX = "agree_"
CONSENSUS_METHODS = ("majority", "staple")
#: Separator of the two models of a pair row (``"A~B"``) and prefix of the consensus rows (``"~staple"``).
PAIR_SEPARATOR = "~"
MAJORITY_MODEL = "~majority"
STAPLE_MODEL = "~staple"


def is_agreement_metric(name: str) -> bool:
    """True for the metric names this module writes (they all start with ``agree_``)."""
    return str(name).startswith(AGREEMENT_PREFIX)


def pair_name(a: str, b: str) -> str:
    """The model field of a pair row: the two names sorted, joined by ``~`` (so each pair is stored once)."""
    x, y = sorted((a, b))
    return f"{x}{PAIR_SEPARATOR}{y}"


def structures(labels: Mapping[str, int], regions: Mapping[str, Sequence[int]] | None = None
               ) -> dict[str, tuple[int, ...]]:
    """The labels and regions to score, name -> label values, each distinct set of values once.

    Labels come first, then regions; a region whose value set equals an earlier label's or region's (BraTS
    ``ET`` = the enhancing-tumour label) is dropped, so a value is never stored twice under two names.
    """
    out: dict[str, tuple[int, ...]] = {}
    seen: set[frozenset] = set()
    items: list[tuple[str, tuple[int, ...]]] = [(n, (int(v),)) for n, v in labels.items()]
    items += [(n, tuple(sorted({int(v) for v in vals}))) for n, vals in (regions or {}).items()]
    for name, vals in items:
        key = frozenset(vals)
        if key in seen or name in out:
            continue
        seen.add(key)
        out[str(name)] = vals
    return out


def _stack_check(arrays: Sequence[np.ndarray], what: str) -> list[np.ndarray]:
    arrs = [np.asarray(a) for a in arrays]
    if not arrs:
        raise ValueError(f"{what}: at least one rater is needed")
    shape = arrs[0].shape
    for a in arrs[1:]:
        if a.shape != shape:
            raise ValueError(f"{what}: raters differ in shape ({shape} vs {a.shape})")
    return arrs


def majority_vote(label_maps: Sequence[np.ndarray], values: Sequence[int] | None = None) -> np.ndarray:
    """Label-wise plurality vote: each voxel gets the label value most raters gave it.

    Parameters
    ----------
    label_maps:
        Integer label maps of one shape (one per rater).
    values:
        Label values that can win (background 0 is always one). ``None``: every value present. A voxel value
        not listed votes for background.

    Returns
    -------
    numpy.ndarray
        The consensus label map (dtype of the first map). Ties are resolved to the tied value that is
        *smallest*: a tie with background is background (a voxel is foreground only when more raters say so
        than say background), and a tie between two labels goes to the lower value. One rater: its own map.

    Examples
    --------
    >>> import numpy as np
    >>> a, b, c = np.array([[1, 1, 2, 0]]), np.array([[1, 2, 2, 0]]), np.array([[2, 0, 2, 1]])
    >>> majority_vote([a, b, c])  # column 1: one vote each for 1, 2 and 0 -> the smallest, background
    array([[1, 0, 2, 0]])
    """
    maps = _stack_check(label_maps, "majority_vote")
    if values is None:
        present: set[int] = set()
        for m in maps:
            present |= {int(v) for v in np.unique(m)}
        values = sorted(present | {0})
    else:
        values = sorted({int(v) for v in values} | {0})
    listed = np.asarray(values)
    best_count = np.full(maps[0].shape, -1, dtype=np.int32)
    best_value = np.zeros(maps[0].shape, dtype=maps[0].dtype)
    for v in values:  # ascending: a later (larger) value must beat, not tie, the count so far
        if v == 0:
            count = sum((~np.isin(m, listed[listed != 0])).astype(np.int32) for m in maps)
        else:
            count = sum((m == v).astype(np.int32) for m in maps)
        assert isinstance(count, np.ndarray)  # a sum of at least one array
        better = count > best_count
        best_value[better] = v
        best_count[better] = count[better]
    return best_value


def binary_majority(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Strict-majority vote of binary masks: voxels that more than half of the raters mark.

    A tie (as many raters for as against, with an even number of raters) is background, the same rule as
    :func:`majority_vote` on 0/1 maps. One rater: its own mask. All masks empty: empty.

    Examples
    --------
    >>> import numpy as np
    >>> binary_majority([np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]), np.array([1, 1, 1, 0])])
    array([ True,  True,  True, False])
    >>> binary_majority([np.array([1, 0]), np.array([0, 0])])  # one of two raters: a tie, background
    array([False, False])
    """
    ms = _stack_check(masks, "binary_majority")
    votes = sum(np.asarray(m, dtype=bool).astype(np.int32) for m in ms)
    assert isinstance(votes, np.ndarray)  # _stack_check refuses an empty list
    return 2 * votes > len(ms)


@dataclass
class StapleResult:
    """What :func:`staple` estimated for one binary structure.

    Attributes
    ----------
    probability:
        ``W``: posterior probability that each voxel is foreground (float64, the raters' shape).
    sensitivity, specificity:
        Each rater's estimated true-positive rate ``p`` and true-negative rate ``q`` (in the raters' order).
        Specificity is over the whole image, so the background makes it close to 1 for any plausible rater.
    prior:
        The prior foreground probability used (the mean vote fraction over all voxels unless one was given).
    iterations:
        EM iterations performed.
    converged:
        Whether every ``p`` and ``q`` changed by at most the tolerance in the last iteration.
    """

    probability: np.ndarray
    sensitivity: np.ndarray
    specificity: np.ndarray
    prior: float
    iterations: int
    converged: bool

    @property
    def consensus(self) -> np.ndarray:
        """The thresholded consensus: voxels with ``probability > 0.5``."""
        return self.probability > 0.5


def staple(masks: Sequence[np.ndarray], prior: float | None = None, tolerance: float = 1e-7,
           max_iterations: int = 1000, background_voxels: int = 0) -> StapleResult:
    """STAPLE (Warfield, Zou and Wells, IEEE TMI 2004): the binary truth estimate from several raters' masks.

    Each rater ``j`` has a sensitivity ``p_j = P(D_j = 1 | T = 1)`` and a specificity
    ``q_j = P(D_j = 0 | T = 0)``. Expectation-maximisation alternates

    - M-step: ``p_j = sum_i W_i D_ij / sum_i W_i`` and ``q_j = sum_i (1 - W_i)(1 - D_ij) / sum_i (1 - W_i)``;
    - E-step: ``W_i = g a_i / (g a_i + (1 - g) b_i)`` with ``a_i = prod_j p_j^D_ij (1 - p_j)^(1 - D_ij)`` and
      ``b_i = prod_j q_j^(1 - D_ij) (1 - q_j)^D_ij``,

    starting from ``W`` = the fraction of raters marking each voxel, with the prior ``g`` fixed at the mean of
    that starting ``W`` over all voxels. This is the convention of ITK's ``STAPLEImageFilter`` (SimpleITK) with
    ``ConfidenceWeight = 1``; so is the stopping rule (every ``p_j`` and ``q_j`` changes by at most
    ``tolerance``; ITK: squared change <= 1e-14, i.e. tolerance 1e-7).

    STAPLE depends on a voxel only through its vote pattern, so the EM runs over the distinct patterns (at most
    ``2 ** raters``, weighted by their voxel counts): exact, and independent of the image size.

    Parameters
    ----------
    masks:
        Binary masks of one shape, one per rater (non-zero = foreground); at most 62 raters.
    prior:
        Prior foreground probability ``g`` in (0, 1); ``None``: estimated from the data as above.
    tolerance:
        Convergence tolerance on the absolute change of every ``p_j`` and ``q_j``.
    max_iterations:
        Upper bound on EM iterations.
    background_voxels:
        Voxels of the image outside the given arrays, background for every rater (when the masks are a crop of
        the image): counted in the empty vote pattern, so a crop gives the whole image's p, q and prior.

    Returns
    -------
    StapleResult
        Edge cases: every mask empty: ``W = 0`` everywhere, sensitivities NaN (no foreground to find),
        specificities 1, no iteration. Every mask full: ``W = 1``, sensitivities 1, specificities NaN. One
        rater: ``W`` is its mask, ``p = q = 1``. A vote pattern whose posterior is 0/0 (possible only with
        degenerate ``p``/``q`` of 0 or 1) gets the prior.
    """
    ms = [np.asarray(m) != 0 for m in _stack_check(masks, "staple")]
    r = len(ms)
    if r > 62:
        raise ValueError(f"staple: at most 62 raters are supported, not {r}")
    if prior is not None and not 0 < prior < 1:
        raise ValueError(f"staple: prior must be in (0, 1), not {prior}")
    shape = ms[0].shape
    # Voxels outside the bounding box of every rater's foreground all have the empty pattern: count them
    # without visiting them.
    box = bounding_box(np.logical_or.reduce(ms), 0)
    box = box if box is not None else tuple(slice(0, 0) for _ in shape)
    codes = np.zeros(ms[0][box].shape, dtype=np.int64)
    for j, m in enumerate(ms):
        codes |= m[box].astype(np.int64) << j
    patterns, inverse, counts = np.unique(np.concatenate([[0], codes.ravel()]), return_inverse=True,
                                          return_counts=True)
    # Pattern 0 sorts first; the extra 0 above made it present.
    counts[0] += int(np.prod(shape)) - codes.size - 1 + int(background_voxels)
    votes = ((patterns[:, None] >> np.arange(r)) & 1).astype(bool)  # (patterns, raters)
    n = counts.astype(np.float64)
    w = votes.mean(axis=1)
    g_est = float((n * w).sum() / n.sum())
    if g_est == 0.0 or g_est == 1.0:  # every rater empty (or full) everywhere: nothing to estimate
        p = np.full(r, np.nan if g_est == 0.0 else 1.0)
        q = np.full(r, 1.0 if g_est == 0.0 else np.nan)
        return StapleResult(np.full(shape, g_est), p, q, g_est if prior is None else float(prior), 0, True)
    g = g_est if prior is None else float(prior)
    last_p = last_q = None
    converged = False
    iterations = 0
    p = q = np.zeros(r)
    while iterations < max_iterations:
        iterations += 1
        nw, nv = n * w, n * (1.0 - w)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = (nw @ votes) / nw.sum()
            q = (nv @ ~votes) / nv.sum()
            a = np.prod(np.where(votes, p, 1.0 - p), axis=1)
            b = np.prod(np.where(votes, 1.0 - q, q), axis=1)
            den = g * a + (1.0 - g) * b
            w = np.where(den > 0, g * a / np.where(den > 0, den, 1.0), g)
        if last_p is not None and np.all(np.abs(p - last_p) <= tolerance) and np.all(np.abs(q - last_q) <= tolerance):
            converged = True
            break
        last_p, last_q = p, q
    prob = np.full(shape, w[0])  # outside the box: the empty pattern
    prob[box] = w[inverse[1:]].reshape(codes.shape)
    return StapleResult(prob, p, q, g, iterations, converged)


def leave_one_out_consensus(masks: Mapping[str, np.ndarray], method: str = "majority") -> dict[str, np.ndarray]:
    """For each model, the consensus of the *other* models' binary masks (never its own vote).

    Parameters
    ----------
    masks:
        Model name -> binary mask (one shape); at least two models.
    method:
        ``"majority"`` (:func:`binary_majority`: strict majority, ties background) or ``"staple"`` (the
        thresholded :func:`staple` consensus, ``W > 0.5``).

    Returns
    -------
    dict
        Model -> boolean consensus of the others. With two models, each one's consensus is the other's mask.
    """
    if method not in CONSENSUS_METHODS:
        raise ValueError(f"consensus method must be one of {CONSENSUS_METHODS}, not {method!r}")
    if len(masks) < 2:
        raise ValueError("leave-one-out consensus needs at least two models")
    out = {}
    for name in masks:
        others = [np.asarray(m, dtype=bool) for k, m in masks.items() if k != name]
        out[name] = binary_majority(others) if method == "majority" else staple(others).consensus
    return out


@dataclass
class AgreementResult:
    """Agreement rows of one case: ``rows`` = (model, region, metric, value); ``staple`` per region."""

    rows: list[tuple[str, str, str, float]] = field(default_factory=list)
    staple: dict[str, StapleResult] = field(default_factory=dict)  # probability maps cover the foreground's box
    notes: list[str] = field(default_factory=list)

    def value(self, model: str, region: str, metric: str) -> float:
        """One value (KeyError when absent)."""
        for mo, r, me, v in self.rows:
            if (mo, r, me) == (model, region, metric):
                return v
        raise KeyError((model, region, metric))


def agreement_rows(label_maps: Mapping[str, np.ndarray], spacing, labels: Mapping[str, int],
                   regions: Mapping[str, Sequence[int]] | None = None, options: EvaluationOptions | None = None,
                   consensus: str = "majority") -> AgreementResult:
    """Every agreement measure of one case, as long rows (model, region, metric, value).

    Parameters
    ----------
    label_maps:
        Model name -> integer label map, all on one grid; at least two models. Names may not contain ``~``.
    spacing:
        Voxel size in mm per array axis (volumes in mm³, mm² in 2D; distances in mm).
    labels, regions:
        The label map and regions, as for :func:`evaluate_pair`; scored as :func:`structures` lists them.
    options:
        Distance settings (surface definition, percentile, empty-case policy); lesion matching is never run.
    consensus:
        Consensus of the others in the leave-one-out scores: ``"majority"`` (default) or ``"staple"``.

    Returns
    -------
    AgreementResult
        Rows, per label/region ``s`` (``hd95`` below is ``options.hd_name``):

        - model ``"A~B"`` (each unordered pair once, names sorted): ``agree_dice``, ``agree_hd95`` between A
          and B (symmetric; empty-case values of ``options.policy``, e.g. Dice 1 / HD95 0 when both are
          empty, Dice 0 / HD95 = penalty when one is);
        - model ``"A"``: ``agree_loo_dice``, ``agree_loo_hd95`` (A against the consensus of the others),
          ``agree_staple_sensitivity``, ``agree_staple_specificity`` (STAPLE over all models), ``agree_volume``
          (mm³);
        - models ``"~majority"`` and ``"~staple"``: ``agree_volume`` of the strict-majority and of the STAPLE
          consensus of all models; ``"~staple"`` also ``agree_staple_prior``.
    """
    if len(label_maps) < 2:
        raise ValueError("agreement needs at least two models")
    bad = [m for m in label_maps if PAIR_SEPARATOR in m]
    if bad:
        raise ValueError(f"model names may not contain {PAIR_SEPARATOR!r}: {bad}")
    base = options or EvaluationOptions()
    spacing = tuple(float(s) for s in spacing)
    arrays = {m: np.asarray(a) for m, a in label_maps.items()}
    shape = next(iter(arrays.values())).shape
    if any(a.shape != shape for a in arrays.values()):
        raise ValueError(f"label maps differ in shape: {sorted({a.shape for a in arrays.values()})}")
    # Everything is computed on the bounding box of all models' foreground plus one voxel (the margin evaluate_pair
    # crops with itself), so results equal the whole image's; the two whole-image quantities are passed on: the
    # empty-mask penalty distance (the full image's diagonal) and, for STAPLE, the voxels cut away.
    penalty = base.policy.penalty_for(shape, spacing)
    opts = base.with_changes(lesion_matching="none", distances=True,
                             policy=replace(base.policy, penalty=penalty))
    box = bounding_box(np.logical_or.reduce([a != 0 for a in arrays.values()]), 1) or tuple(
        slice(0, 1) for _ in shape)
    label_maps = {m: a[box] for m, a in arrays.items()}
    outside = int(np.prod(shape)) - int(np.prod(next(iter(label_maps.values())).shape))
    hd = opts.hd_name
    voxel = float(np.prod(spacing))
    structs = structures(labels, regions)
    names = sorted(label_maps)
    res = AgreementResult()
    reg = {n: v for n, v in structs.items() if n not in labels}  # regions equal to a label are left out

    # Pairwise: one evaluate_pair per pair scores every label and region from one confusion matrix.
    for a, b in combinations(names, 2):
        pr = evaluate_pair(label_maps[a], label_maps[b], spacing, dict(labels), reg, opts)
        res.notes += [f"{a} vs {b}: {note}" for note in pr.notes]
        for s in structs:
            res.rows.append((pair_name(a, b), s, "agree_dice", pr.value(s, "dice")))
            res.rows.append((pair_name(a, b), s, f"agree_{hd}", pr.value(s, hd)))

    for s, vals in structs.items():
        masks = {m: values_mask(np.asarray(label_maps[m]), vals) for m in names}
        for m in names:
            res.rows.append((m, s, "agree_volume", float(np.count_nonzero(masks[m])) * voxel))
        st = staple([masks[m] for m in names], background_voxels=outside)
        res.staple[s] = st
        for j, m in enumerate(names):
            res.rows.append((m, s, "agree_staple_sensitivity", float(st.sensitivity[j])))
            res.rows.append((m, s, "agree_staple_specificity", float(st.specificity[j])))
        res.rows.append((STAPLE_MODEL, s, "agree_volume", float(np.count_nonzero(st.consensus)) * voxel))
        res.rows.append((STAPLE_MODEL, s, "agree_staple_prior", float(st.prior)))
        res.rows.append((MAJORITY_MODEL, s, "agree_volume",
                         float(np.count_nonzero(binary_majority(list(masks.values())))) * voxel))
        for m, cons in leave_one_out_consensus(masks, consensus).items():
            pr = evaluate_pair(cons.astype(np.uint8), masks[m].astype(np.uint8), spacing, {s: 1}, {}, opts)
            res.rows.append((m, s, "agree_loo_dice", pr.value(s, "dice")))
            res.rows.append((m, s, f"agree_loo_{hd}", pr.value(s, hd)))
    return res


@dataclass(frozen=True)
class VolumeSpread:
    """Spread of one structure's volume across models (mm³, mm² in 2D).

    ``std`` is the sample standard deviation (ddof 1); ``cv`` = std / mean. Fewer than two volumes: std and cv
    NaN; mean 0 (every model empty): cv NaN.
    """

    n: int
    min: float
    max: float
    mean: float
    median: float
    std: float
    cv: float


def volume_spread(volumes: Sequence[float]) -> VolumeSpread:
    """Min, max, mean, median, sample standard deviation and coefficient of variation of volumes.

    NaN volumes (a model that failed) are left out and not counted in ``n``; no volume at all: everything NaN.

    Examples
    --------
    >>> s = volume_spread([10.0, 20.0, 30.0, float("nan")])
    >>> s.n, s.mean, s.std, s.cv  # sample std of 10, 20, 30 is 10
    (3, 20.0, 10.0, 0.5)
    """
    v = np.asarray([x for x in volumes if np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return VolumeSpread(0, *(np.nan,) * 6)
    std = float(np.std(v, ddof=1)) if v.size > 1 else np.nan
    mean = float(v.mean())
    cv = std / mean if mean > 0 and np.isfinite(std) else np.nan
    return VolumeSpread(int(v.size), float(v.min()), float(v.max()), mean, float(np.median(v)), std, cv)


#: Default margin of :func:`outlier_model`, in Dice: inter-model differences smaller than this are ordinary spread.
OUTLIER_MARGIN = 0.05


def outlier_model(scores: Mapping[str, float], margin: float = OUTLIER_MARGIN) -> str | None:
    """The outlier rule: the model that agrees least with the others, if it stands apart.

    Parameters
    ----------
    scores:
        Model -> its mean leave-one-out Dice (against the consensus of the other models, averaged over cases
        and labels/regions). NaN scores are left out.
    margin:
        Dice by which the lowest score must fall below the median of all scores to be an outlier (default
        :data:`OUTLIER_MARGIN`, 0.05).

    Returns
    -------
    str or None
        The model with the lowest score when ``score < median(scores) - margin``; ``None`` when no score stands
        apart, on a tie for the lowest score, or with fewer than three scores (with two models each one's
        leave-one-out score is their common pairwise Dice, so neither can be singled out).

    Examples
    --------
    >>> outlier_model({"A": 0.90, "B": 0.88, "C": 0.70})  # 0.70 < median 0.88 - 0.05
    'C'
    >>> outlier_model({"A": 0.90, "B": 0.88, "C": 0.86}) is None
    True
    """
    s = {m: float(v) for m, v in scores.items() if np.isfinite(v)}
    if len(s) < 3:
        return None
    values = np.array(list(s.values()))
    low = values.min()
    if np.count_nonzero(values == low) > 1:
        return None
    if low < np.median(values) - margin:
        return min(s, key=s.__getitem__)
    return None
