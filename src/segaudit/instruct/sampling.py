"""Stratified quotas: at most N records per dataset, modality, class, task, size bin or metadata stratum.

Every record has these strata (:func:`record_strata`): ``dataset``, ``modality``, ``task`` (``absent`` and
``refuse`` included), ``class`` (the target's label/region name; ``a+b`` for a describe record over several;
``offtask`` or the other modality's concept for refusals), ``size`` (``tiny``/``small``/``medium``/``large``,
the smallest bin among its targets for a describe record, or
``absent``/``other_modality``/``offtask`` for negatives), ``negative`` (``none``, ``absent``,
``other_modality``, ``offtask``), ``slice`` (``foreground``/``empty``, volumes only) and the case-metadata
strata (site, scanner...). A quota caps one stratum: ``{"task": 100}`` (every task at most 100 records),
``{"dataset": {"chest": 50}}`` (one value). A record is kept only while every stratum it belongs to is under its
quota.

Selection order, so that rare strata are never crowded out (tiny lesions must appear): records whose rarest
capped stratum value is rarest come first, ties broken by a seeded random order; the kept records are then
written in their original order. ``summary.json`` lists per capped stratum value its quota, the records
available and the records achieved (``quotas``).
"""

from __future__ import annotations

import re

import numpy as np

from segaudit.instruct.record import Record

#: Strata every record has (metadata strata such as ``site`` come on top when the cases have them).
STRATA_KEYS = ("dataset", "modality", "task", "class", "size", "negative", "slice")

Quotas = dict[str, int | dict[str, int]]
_SIZE_ORDER = ("tiny", "small", "medium", "large")


def record_strata(r: Record) -> dict[str, str]:
    """The strata of a record (module docstring)."""
    out = {k: v for k, v in r.strata.items()}
    out.update({"dataset": r.provenance.dataset, "modality": r.modality or "unknown", "task": r.task,
                "negative": r.negative or "none"})
    out.setdefault("class", "")
    if not out.get("size"):  # describe records: the smallest bin among their targets
        bins = [t.size_bin for t in r.targets if t.size_bin in _SIZE_ORDER]
        out["size"] = min(bins, key=_SIZE_ORDER.index) if bins else ""
    return out


def parse_quota(text: str) -> tuple[str, str | None, int]:
    """``KEY=N`` (every value of KEY) or ``KEY:VALUE=N`` (one value) as ``(key, value or None, n)``.

    Raises
    ------
    ValueError
        Another shape or a negative N.

    Examples
    --------
    >>> parse_quota("task=100"), parse_quota("dataset:chest=20")
    (('task', None, 100), ('dataset', 'chest', 20))
    """
    m = re.fullmatch(r"\s*([A-Za-z_][\w-]*)(?::(.+?))?\s*=\s*(\d+)\s*", text)
    if not m:
        raise ValueError(f"quota {text!r}: expected KEY=N or KEY:VALUE=N with N >= 0 (keys: "
                         f"{', '.join(STRATA_KEYS)} or a metadata stratum)")
    return m.group(1).lower(), m.group(2), int(m.group(3))


def parse_quotas(texts: list[str]) -> Quotas:
    """Quotas from ``KEY=N`` / ``KEY:VALUE=N`` words (:func:`parse_quota`); a later word for the same value wins,
    and ``KEY=N`` is kept as the default of that key's other values (``{"task": {"*": 100, "segment": 20}}``).
    """
    out: dict[str, dict[str, int]] = {}
    for text in texts:
        key, value, n = parse_quota(text)
        out.setdefault(key, {})["*" if value is None else value] = n
    return {k: v["*"] if list(v) == ["*"] else v for k, v in out.items()}


def _limit(quotas: Quotas, key: str, value: str) -> int | None:
    q = quotas.get(key)
    if q is None:
        return None
    if isinstance(q, int):
        return q
    return q.get(value, q.get("*"))


def apply_quotas(records: list[Record], quotas: Quotas, seed: int = 0) -> tuple[list[Record], dict]:
    """The records kept under ``quotas`` (original order) and the per-stratum report (module docstring).

    Parameters
    ----------
    records:
        All generated records.
    quotas:
        Stratum key -> N (every value) or {value: N} (``"*"``: the other values).
    seed:
        Breaks ties between equally rare records: the same seed keeps the same records.

    Returns
    -------
    (list of Record, dict)
        Kept records, and ``{key: {value: {"quota": n or None, "available": a, "achieved": k}}}`` for every
        capped key and every value present.
    """
    for key, q in quotas.items():
        vals = [q] if isinstance(q, int) else list(q.values())
        if any(not isinstance(v, int) or v < 0 for v in vals):
            raise ValueError(f"quota for {key!r} must be a count >= 0, got {q!r}")
    strata = [record_strata(r) for r in records]
    available: dict[str, dict[str, int]] = {k: {} for k in quotas}
    for st in strata:
        for k in quotas:
            v = st.get(k, "")
            available[k][v] = available[k].get(v, 0) + 1
    rng = np.random.default_rng([seed, 0x5A3D])
    tie = rng.permutation(len(records))
    rarity = [min((available[k][st.get(k, "")] for k in quotas), default=0) for st in strata]
    order = sorted(range(len(records)), key=lambda i: (rarity[i], tie[i]))
    achieved: dict[str, dict[str, int]] = {k: {} for k in quotas}
    keep = np.zeros(len(records), bool)
    for i in order:
        st = strata[i]
        if all((lim := _limit(quotas, k, st.get(k, ""))) is None or achieved[k].get(st.get(k, ""), 0) < lim
               for k in quotas):
            keep[i] = True
            for k in quotas:
                v = st.get(k, "")
                achieved[k][v] = achieved[k].get(v, 0) + 1
    report = {k: {v: {"quota": _limit(quotas, k, v), "available": n, "achieved": achieved[k].get(v, 0)}
                  for v, n in sorted(available[k].items())} for k in sorted(quotas)}
    return [r for r, ok in zip(records, keep, strict=True) if ok], report
