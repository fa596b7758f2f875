"""Instruction records from views: positives per target and task, negatives at a stated share, near-duplicates out.

Per view (one image or slice) ``per_image`` records are drawn: ``negatives`` of them (stochastic rounding of
``per_image * negatives`` with the view's own random stream, so the expected share is exact) are negatives, the
rest positives, round-robin over the tasks (segment, detect, count, measure, describe) in a per-view shuffled
order and over the present targets. A view with no target gets negatives only. Negatives cycle through:

- ``absent``: a label-map entry of the dataset with no pixel in this view (only entries the dataset annotates:
  an unannotated structure such as the optic disc of an exudate dataset may well be visible);
- ``other_modality``: a target of another modality (ontology), answered by naming this image's modality;
- ``offtask``: a diagnosis/treatment/prognosis request, refused with the reason.

Every view draws from ``numpy.random.default_rng([seed, crc32(view id)])``, and templates are drawn among the
least used so far of their task (over the whole export, in view order: the bank is covered before any template
repeats), so the output is fixed by the seed, the data and the options.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from segaudit.instruct.language import Concept, Ontology, Template, agreement, is_mass, plural, singular
from segaudit.instruct.record import Record, Target, View, view_targets
from segaudit.instruct.rle import encode_rle

POSITIVE_TASKS = ("segment", "detect", "count", "measure", "describe")
NEGATIVE_KINDS = ("absent", "other_modality", "offtask")
#: Alternatives asked of a paraphrase plug-in per rendered template.
PARAPHRASES = 3
#: Attempts (template + synonym draws) to find an instruction that is not a near-duplicate in its view.
MAX_ATTEMPTS = 6
REFUSAL_OFFTASK = ("offtask: a diagnosis, prognosis or treatment decision needs clinical information that an "
                   "image and its annotations do not hold")


@dataclass
class GenerationStats:
    """What generation did: views seen, records written, candidates dropped as near-duplicates."""

    views: int = 0
    records: int = 0
    candidates: int = 0
    near_duplicates_removed: int = 0
    dropped_slots: int = 0
    #: Planning passes of the embedding deduper (0 for the text rule); see embed.CachedOnlyDeduper.
    planning_passes: int = 0
    #: Texts the sentence model embedded, and in how many calls (0 for the text rule).
    embedded_texts: int = 0
    model_calls: int = 0
    per_task: dict[str, int] = field(default_factory=dict)


@lru_cache(maxsize=1 << 16)  # the dedup compares each candidate with every kept text of its view
def normalise(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed (the text-only near-duplicate key)."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def view_id(view: View) -> str:
    """Stable id of a view: ``dataset/case`` plus ``/z<slice>`` for slices of a volume."""
    base = f"{view.dataset}/{view.case}"
    return base if view.provenance.slice is None else f"{base}/z{view.provenance.slice}"


def _fmt(x: float) -> str:
    return f"{x:.1f}" if abs(x) < 1000 else f"{x:,.0f}"


def _box_text(boxes: list[list[int]]) -> str:
    return ", ".join(f"[{b[0]}, {b[1]}, {b[2]}, {b[3]}]" for b in boxes)


def _count_phrase(n: int, phrase: str) -> str:
    """'1 lung', '2 lungs' (also from the plural synonym 'lungs'); mass nouns (edema, necrosis) are counted as
    regions: '3 regions of edema'.
    """
    if is_mass(phrase):
        return f"{n} region{'' if n == 1 else 's'} of {phrase}"
    return f"{n} {singular(phrase) if n == 1 else plural(phrase)}"


def size_text(t: Target, view: View) -> str:
    """Area (and largest diameter) of a target with its unit; pixel sizes say that the spacing is unknown."""
    if t.unit == "mm":
        return f"{_fmt(t.area)} mm\u00b2, largest diameter {_fmt(t.diameter)} mm"
    return f"{t.pixels} pixels, largest diameter {_fmt(t.diameter)} px"


def answer_for(task: str, t: Target | None, targets: list[Target], view: View, image: str) -> str:
    """The answer text of a positive record (``[SEG]`` marks each grounded mask, in target order)."""
    if task == "describe":
        parts = [f"<p>{x.phrase}</p> [SEG] ({_count_phrase(x.count, 'part')}, {size_text(x, view)}, "
                 f"{x.position} of the image)" for x in targets]
        return f"This {image} shows " + "; ".join(parts) + "."
    assert t is not None or task not in ("segment", "detect", "count", "measure")  # only describe has no target
    if t is None:
        raise ValueError(f"unknown task {task!r}")
    if task == "segment":
        return f"Here {agreement(t.phrase)['is']} the {t.phrase} [SEG]."
    if task == "detect":
        return f"I found {_count_phrase(t.count, t.phrase)}: {_box_text(t.boxes)}."
    if task == "count":
        verb = "is" if t.count == 1 else "are"
        return f"There {verb} {_count_phrase(t.count, t.phrase)} in this {image} (boxes: {_box_text(t.boxes)})."
    if task == "measure":
        where = "in this slice " if view.provenance.slice is not None else ""
        a = agreement(t.phrase)
        covers = f"cover{a['s']}"
        if t.unit == "mm":
            text = (f"The {t.phrase} {covers} {_fmt(t.area)} mm\u00b2 {where}({t.pixels} pixels); the largest "
                    f"diameter of {a['its']} largest part is {_fmt(t.diameter)} mm.")
        else:
            text = (f"The {t.phrase} {covers} {t.pixels} pixels {where}and the largest diameter of {a['its']} largest "
                    f"part is {_fmt(t.diameter)} px; the pixel spacing of this image is not known, so sizes are in "
                    f"pixels.")
        if t.volume is not None:
            vol = f"{t.volume / 1000:.2f} mL" if t.unit == "mm" else f"{int(t.volume)} voxels"
            text += f" Over the whole volume {'they measure' if a['it'] == 'them' else 'it measures'} {vol}."
        return text
    raise ValueError(f"unknown task {task!r}")


class _ViewGenerator:
    def __init__(self, view: View, ontology: Ontology, bank: dict[str, list[Template]], dedup, seed: int,
                 usage: dict[str, int], paraphraser=None):
        self.view = view
        self.seed = seed
        self.paraphraser = paraphraser
        #: Name of the paraphrase plug-in that wrote the last instruction (None: the template's own text).
        self.last_paraphrase: str | None = None
        self.ontology = ontology
        self.bank = bank
        self.dedup = dedup
        self.rng = np.random.default_rng([seed, zlib.crc32(view_id(view).encode())])
        info = ontology.modalities.get(view.modality, {})
        self.modality = view.modality or "image"
        self.image = info.get("image", "image")
        self.usage = usage
        self.kept: list[str] = []
        self.removed = 0
        self.candidates = 0

    def phrase(self, name: str) -> str:
        c = self.ontology.lookup(name)
        return str(self.rng.choice(c.synonyms)) if c else name.replace("_", " ")

    def instruction(self, task: str, phrase: str | None) -> tuple[Template, str] | None:
        """A template rendering that is no near-duplicate of this view's instructions so far, or None."""
        templates = self.bank[task]
        for _ in range(MAX_ATTEMPTS):
            low = min(self.usage.get(t.id, 0) for t in templates)
            pool = [t for t in templates if self.usage.get(t.id, 0) == low]
            tpl = pool[int(self.rng.integers(len(pool)))]
            p = phrase if phrase is not None else ""
            text = tpl.text.format(**agreement(p), modality=self.modality, image=self.image)
            text = text[0].upper() + text[1:]
            para = None
            if self.paraphraser is not None:
                alts = self.paraphraser.paraphrase(text, task=task, target=phrase, modality=self.modality,
                                                   n=PARAPHRASES, seed=self.seed)
                k = int(self.rng.integers(len(alts) + 1)) if alts else 0
                if k:  # 0: the template's own text stays one of the choices
                    text, para = alts[k - 1][0].upper() + alts[k - 1][1:], self.paraphraser.name
            self.candidates += 1
            if self.dedup.is_near_duplicate(text, self.kept):
                self.removed += 1
                continue
            self.kept.append(text)
            self.usage[tpl.id] = self.usage.get(tpl.id, 0) + 1
            self.last_paraphrase = para
            return tpl, text
        return None


def _record(g: _ViewGenerator, n: int, task: str, tpl: Template, text: str, answer: str,
            targets: list[Target], strata: dict[str, str], **extra) -> Record:
    v = g.view
    h, w = v.labels.shape
    return Record(id=f"{view_id(v)}/{n:02d}", task=task, instruction=text, answer=answer, template=tpl.id,
                  register=tpl.register, form=tpl.form, modality=v.modality, height=int(h), width=int(w),
                  provenance=v.provenance, targets=targets, strata={**v.strata, **strata},
                  paraphrase=g.last_paraphrase, **extra)


def _other_modality_concepts(view: View, ontology: Ontology) -> list[Concept]:
    own = {n.lower() for n in view.label_map}
    return [c for c in ontology.concepts.values()
            if view.modality and c.modality != view.modality and not own & {a.lower() for a in (c.name, *c.aliases)}]


def view_records(view: View, ontology: Ontology, bank: dict[str, list[Template]], dedup, per_image: int,
                 negatives: float, seed: int,
                 usage: dict[str, int] | None = None,
                 targets: tuple[list[Target], list[str]] | None = None,
                 paraphraser=None) -> tuple[list[Record], _ViewGenerator]:
    """The records of one view (module docstring's rules); ``usage`` (template id -> uses) is updated.

    ``targets``: the view's (present, absent) targets when already computed (:func:`view_targets`).
    ``paraphraser``: an optional plug-in (:mod:`segaudit.instruct.paraphrase`), already cached.
    """
    g = _ViewGenerator(view, ontology, bank, dedup, seed, {} if usage is None else usage, paraphraser)
    present, absent = targets if targets is not None else view_targets(view)
    rng = g.rng
    n_neg = int(np.floor(per_image * negatives + rng.random())) if present else per_image
    n_neg = min(n_neg, per_image)
    records: list[Record] = []
    # positives: tasks round-robin in a shuffled order, targets cycled within each task
    order = [POSITIVE_TASKS[i] for i in rng.permutation(len(POSITIVE_TASKS))]
    cycles = {task: [int(i) for i in rng.permutation(len(present))] for task in POSITIVE_TASKS} if present else {}
    label_like = [t for t in present if len(t.values) == 1] or present
    for i in range(per_image - n_neg):
        task = order[i % len(order)]
        if task == "describe":
            grounded = [Target(**{**t.__dict__, "phrase": g.phrase(t.name)}) for t in label_like]
            made = g.instruction(task, None)
            if made:
                records.append(_record(g, len(records), task, *made,
                                       answer_for(task, None, grounded, view, g.image), grounded,
                                       {"class": "+".join(t.name for t in grounded)}, asked_task=task))
            continue
        base = present[cycles[task][(i // len(order)) % len(present)]]
        t = Target(**{**base.__dict__, "phrase": g.phrase(base.name)})
        made = g.instruction(task, t.phrase)
        if made:
            records.append(_record(g, len(records), task, *made, answer_for(task, t, [t], view, g.image), [t],
                                   {"class": t.name, "size": t.size_bin}, asked_task=task))
    # negatives
    others = _other_modality_concepts(view, ontology)
    kinds = [k for k in NEGATIVE_KINDS if (k != "absent" or absent) and (k != "other_modality" or others)]
    kinds = [kinds[i] for i in rng.permutation(len(kinds))]
    h, w = view.labels.shape
    for i in range(n_neg):
        kind = kinds[i % len(kinds)]
        if kind == "absent":
            name = absent[int(rng.integers(len(absent)))]
            asked = ("segment", "detect", "count", "measure")[int(rng.integers(4))]
            phrase = g.phrase(name)
            made = g.instruction(asked, phrase)
            if not made:
                continue
            empty = Target(name=name, phrase=phrase, values=list(view.label_map[name]),
                           rle=encode_rle(np.zeros((h, w), bool)), unit="mm" if view.physical else "px")
            a = agreement(phrase)
            answer = (f"There {a['is']} no {phrase} in this {g.image}: {a['its']} mask is empty and the count is "
                      f"0.")
            records.append(_record(g, len(records), "absent", *made, answer, [empty],
                                   {"class": name, "size": "absent"}, asked_task=asked, negative="absent",
                                   refusal_reason=f"absent: no {name} pixel is annotated in this image"))
        elif kind == "other_modality":
            c = others[int(rng.integers(len(others)))]
            phrase = str(rng.choice(c.synonyms))
            asked = ("segment", "detect", "count")[int(rng.integers(3))]
            made = g.instruction(asked, phrase)
            if not made:
                continue
            own = ontology.modalities.get(view.modality, {})
            other = ontology.modalities.get(c.modality, {})
            a_other = f"{other.get('article', 'a')} {c.modality}"
            answer = (f"I cannot find the {phrase} here: this is {own.get('article', 'a')} {view.modality}, not "
                      f"{a_other}, and the {phrase} {agreement(phrase)['is']} only seen on {a_other}.")
            records.append(_record(g, len(records), "refuse", *made, answer, [],
                                   {"class": c.name, "size": "other_modality"}, asked_task=asked,
                                   negative="other_modality",
                                   refusal_reason=f"other_modality: {c.name} is a target of {c.modality} images"))
        else:
            made = g.instruction("offtask", None)
            if not made:
                continue
            answer = ("I cannot answer that from this image: a diagnosis, prognosis or treatment decision needs "
                      "clinical information and a qualified clinician. I can segment, count or measure the "
                      "annotated structures instead.")
            records.append(_record(g, len(records), "refuse", *made, answer, [], {"class": "offtask",
                                   "size": "offtask"}, asked_task="offtask", negative="offtask",
                                   refusal_reason=REFUSAL_OFFTASK))
    return records, g
