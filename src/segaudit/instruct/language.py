"""The words of instruction data: the ontology (label -> synonyms, parent, modality, site) and the template bank.

Both ship as YAML package data (``segaudit/data/instruct_ontology.yaml``, ``instruct_templates.yaml``) and are
user-extendable: :func:`load_ontology` and :func:`load_templates` merge extra YAML files of the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import yaml

from segaudit.errors import ConfigError

TASKS = ("segment", "detect", "count", "measure", "describe", "offtask")
REGISTERS = ("clinical", "lay")
FORMS = ("question", "imperative")


@dataclass(frozen=True)
class Concept:
    """One ontology entry: a canonical name, the label names it matches, its phrasings and context."""

    name: str
    aliases: tuple[str, ...]
    synonyms: tuple[str, ...]
    parent: str
    modality: str
    site: str


@dataclass
class Ontology:
    """Concepts by canonical name, plus the modalities' descriptions (article, lay name, image noun)."""

    concepts: dict[str, Concept]
    modalities: dict[str, dict[str, str]]
    _alias: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for c in self.concepts.values():
            for a in (c.name, *c.aliases):
                self._alias.setdefault(a.lower(), c.name)

    def lookup(self, label: str) -> Concept | None:
        """The concept a label or region name (case-insensitive, alias or canonical) stands for, or None."""
        key = self._alias.get(str(label).lower())
        return self.concepts.get(key) if key else None

    def of_modality(self, modality: str) -> list[Concept]:
        """Concepts of one modality, in file order."""
        return [c for c in self.concepts.values() if c.modality == modality]


class TemplateText(str):
    """A template's text: ``format`` fills the agreement placeholders a caller does not pass ({is}, {it}, {each},
    ...) from ``target``, so callers that know only {target}, {targets}, {modality} and {image} keep working.

    >>> TemplateText("Where {is} the {target}?").format(target="lungs", targets="lungs", modality="m", image="i")
    'Where are the lungs?'
    """

    __slots__ = ()

    def format(self, *args: object, **kwargs: object) -> str:
        """``str.format`` with the missing agreement words taken from :func:`agreement` of ``target``."""
        words = agreement(str(kwargs.get("target", "")))
        return str.format(str(self), *args, **{**{k: v for k, v in words.items() if k != "targets"}, **kwargs})


@dataclass(frozen=True)
class Template:
    """One phrasing: a stable id (``<task>-<nn>``), its task, register, form and text with placeholders
    (:func:`agreement` lists them).
    """

    id: str
    task: str
    register: str
    form: str
    text: str


def _read_yaml(path: Path | str, what: str) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the {what} must be a YAML mapping")
    return data


def _package_yaml(name: str) -> Path:
    return Path(str(files("segaudit").joinpath(f"data/{name}")))


def load_ontology(extra: list[str | Path] | None = None) -> Ontology:
    """The shipped ontology, with the entries of ``extra`` YAML files added (a key already present is replaced).

    Raises
    ------
    ConfigError
        An unreadable file, an entry without synonyms or with a modality not declared under ``modalities``.
    """
    modalities: dict[str, dict[str, str]] = {}
    labels: dict[str, dict] = {}
    for path in [_package_yaml("instruct_ontology.yaml"), *(extra or [])]:
        data = _read_yaml(path, "instruction ontology")
        modalities.update(data.get("modalities") or {})
        labels.update(data.get("labels") or {})
    concepts = {}
    for name, entry in labels.items():
        entry = entry or {}
        syn = tuple(entry.get("synonyms") or ())
        if not syn:
            raise ConfigError(f"ontology entry {name!r} has no synonyms")
        modality = entry.get("modality", "")
        if modality not in modalities:
            raise ConfigError(f"ontology entry {name!r}: modality {modality!r} is not declared under 'modalities' "
                              f"({', '.join(modalities)})")
        concepts[name] = Concept(name, tuple(entry.get("aliases") or ()), syn, str(entry.get("parent", "")),
                                 modality, str(entry.get("site", "")))
    return Ontology(concepts, modalities)


def load_templates(extra: list[str | Path] | None = None) -> dict[str, list[Template]]:
    """Template bank: task -> templates (shipped ones first, then those of ``extra`` files, appended).

    Raises
    ------
    ConfigError
        An unknown task, register or form, or a placeholder other than {target}, {targets}, {each}, {modality},
        {image} and the agreement words of :func:`agreement` ({is}, {it}, ...).
    """
    bank: dict[str, list[Template]] = {t: [] for t in TASKS}
    for path in [_package_yaml("instruct_templates.yaml"), *(extra or [])]:
        data = _read_yaml(path, "template bank")
        for task, by_register in data.items():
            if task not in bank:
                raise ConfigError(f"{path}: unknown task {task!r} (one of {', '.join(TASKS)})")
            for register, by_form in (by_register or {}).items():
                if register not in REGISTERS:
                    raise ConfigError(f"{path}: {task}: unknown register {register!r}")
                for form, texts in (by_form or {}).items():
                    if form not in FORMS:
                        raise ConfigError(f"{path}: {task}.{register}: unknown form {form!r}")
                    for text in texts or ():
                        try:
                            str(text).format(**agreement("t"), modality="m", image="i")
                        except (KeyError, IndexError, ValueError) as exc:
                            raise ConfigError(f"{path}: template {text!r}: bad placeholder {exc}") from exc
                        n = len(bank[task]) + 1
                        bank[task].append(Template(f"{task}-{n:02d}", task, register, form,
                                                   TemplateText(str(text))))
    return bank


_IRREGULAR = {"nucleus": "nuclei", "metastasis": "metastases", "nuclei": "nuclei", "lungs": "lungs",
              "metastases": "metastases", "edema": "edema", "oedema": "oedema", "necrosis": "necrosis",
              "cell": "cells", "deposit": "deposits", "tissue": "tissue", "focus": "foci", "foci": "foci"}
#: Last words that are plural without ending in a plain 's' (or that end in 's' and are plural anyway).
_PLURAL_WORDS = {"nuclei": "nucleus", "metastases": "metastasis", "cells": "cell", "deposits": "deposit",
                 "foci": "focus"}
#: Uncountable last words: singular agreement, counted as "regions of ...".
MASS_NOUNS = frozenset({"edema", "oedema", "necrosis", "tissue", "swelling", "hyperintensity", "parenchyma", "bed",
                        "extent", "epithelium"})
#: Agreement words of the template bank: placeholder -> (singular form, plural form).
AGREEMENT = {"is": ("is", "are"), "was": ("was", "were"), "has": ("has", "have"), "does": ("does", "do"),
             "it": ("it", "them"), "its": ("its", "their"), "this": ("this", "these"), "s": ("s", "")}


def is_plural(phrase: str) -> bool:
    """Grammatical number of a noun phrase, from its last word: 'lungs', 'cell nuclei', 'hard exudates' are plural.

    A last word in 's' is plural unless it ends in 'ss', 'us' or 'is' (metastasis, necrosis, the 'mass' nouns).

    >>> [is_plural(p) for p in ("lung", "lungs", "cell nuclei", "necrosis", "hard exudates", "dead tumor tissue")]
    [False, True, True, False, True, False]
    """
    last = phrase.split(" ")[-1].lower()
    if last in _PLURAL_WORDS:
        return True
    return last.endswith("s") and not last.endswith(("ss", "us", "is"))


def singular(phrase: str) -> str:
    """The singular of a noun phrase (its last word): lungs -> lung, cell nuclei -> cell nucleus; singular stays.

    >>> singular("cell nuclei"), singular("hard exudates"), singular("lung field"), singular("metastatic foci")
    ('cell nucleus', 'hard exudate', 'lung field', 'metastatic focus')
    """
    if not is_plural(phrase):
        return phrase
    words = phrase.split(" ")
    last = words[-1]
    words[-1] = _PLURAL_WORDS.get(last.lower(), last[:-1])
    return " ".join(words)


def is_mass(phrase: str) -> bool:
    """True for an uncountable phrase (edema, necrosis, dead tumor tissue): counted as 'regions of ...'."""
    return phrase.split(" ")[-1].lower() in MASS_NOUNS


def agreement(phrase: str) -> dict[str, str]:
    """Template placeholders for one target phrase, each agreeing in number with it.

    ``target``: the phrase as drawn; ``targets``: its countable plural ('lungs', 'regions of edema');
    ``each``: its countable singular ('lung', 'region of edema', for "each {each}"); and the words of
    :data:`AGREEMENT` ({is}: is/are, {it}: it/them, {its}: its/their, {this}: this/these, {has}, {does}, {was},
    {s}: the verb ending, "cover{s}") in the number of ``target``.

    >>> a = agreement("lungs"); a["is"], a["it"], a["each"], a["targets"]
    ('are', 'them', 'lung', 'lungs')
    >>> a = agreement("dead tumor tissue"); a["is"], a["each"], a["targets"]
    ('is', 'region of dead tumor tissue', 'regions of dead tumor tissue')
    """
    many = is_plural(phrase)
    words = {k: v[int(many)] for k, v in AGREEMENT.items()}
    if is_mass(phrase):
        one, more = f"region of {phrase}", f"regions of {phrase}"
    else:
        one, more = singular(phrase), plural(phrase)
    return {"target": phrase, "targets": more, "each": one, **words}


def plural(phrase: str) -> str:
    """English plural of a noun phrase (its last word): nucleus -> nuclei, metastasis -> metastases, lung -> lungs.

    A few mass nouns (edema, necrosis, tissue) stay as they are; a phrase that is already plural is kept.
    """
    if is_plural(phrase):
        return phrase
    words = phrase.split(" ")
    last = words[-1]
    if last.lower() in _IRREGULAR:
        words[-1] = _IRREGULAR[last.lower()]
    elif last.endswith("is"):
        words[-1] = last[:-2] + "es"
    elif last.endswith("s") or last.endswith("x"):
        words[-1] = last if last.endswith("s") else last + "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        words[-1] = last[:-1] + "ies"
    else:
        words[-1] = last + "s"
    return " ".join(words)
