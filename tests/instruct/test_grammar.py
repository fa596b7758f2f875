"""A small grammar lint over every instruction and answer of real exports: number agreement and punctuation joins.

The lint knows the ontology's phrases and their grammatical number; it flags "is the <plural>", "are the
<singular>", "each <plural>", "the <plural> covers", "the <plural> ... it", ":.", double spaces, " ," and the like.
It is checked on known-bad strings first, so an export that passes it has been read by a lint that can fail.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

import pytest
from conftest_instruct import MODALITIES, write_project

from segaudit.instruct import export_instructions, load_ontology
from segaudit.instruct.formats import plain_caption
from segaudit.instruct.language import is_mass, is_plural, plural, singular
from segaudit.pipeline.demo import demo_project_path

SINGULAR_WORDS = {"is", "was", "this", "each", "every", "has", "does"}
PLURAL_WORDS = {"are", "were", "these", "have", "do"}
PUNCTUATION = re.compile(r":\.|\s{2,}| [,.;:?!)]|\.\.|[?!,;:]\.|\(\s|\(\)|,,")


@lru_cache(maxsize=1)
def lexicon() -> list[tuple[str, bool]]:
    """Every phrase form of the ontology (synonyms, their plurals and singulars, 'regions of ...') with
    'is plural', longest first (so 'lung field' is read before 'lung')."""
    forms: dict[str, bool] = {}
    for c in load_ontology().concepts.values():
        for s in c.synonyms:
            if is_mass(s):
                forms.update({s: False, f"region of {s}": False, f"regions of {s}": True})
            else:
                forms.update({s: is_plural(s), singular(s): False, plural(s): True})
    return sorted(forms.items(), key=lambda kv: -len(kv[0]))


def _phrase_at(text: str) -> tuple[str, bool] | None:
    low = text.lower()
    for form, many in lexicon():
        if low.startswith(form.lower()) and not low[len(form):len(form) + 1].isalnum():
            return form, many
    return None


def lint(text: str) -> list[str]:
    """The grammar problems of one sentence-level text (empty: none found)."""
    bad = [f"punctuation {m.group()!r}" for m in PUNCTUATION.finditer(text)]
    if text and not (text[0].isupper() or text[0] in "<0123456789"):
        bad.append("starts in lower case")
    for m in re.finditer(r"\b(\w+)\s+(?:the\s+|no\s+)?", text):
        word = m.group(1).lower()
        if word not in SINGULAR_WORDS | PLURAL_WORDS:
            continue
        found = _phrase_at(text[m.end():])
        if found and (found[1] and word in SINGULAR_WORDS or not found[1] and word in PLURAL_WORDS):
            bad.append(f"{word!r} + {found[0]!r}")
    for sentence in re.split(r"(?<=[.;?!])\s", text):
        for m in re.finditer(r"\b(?:the|no)\s+", sentence, re.I):
            found = _phrase_at(sentence[m.end():])
            if not found:
                continue
            rest = sentence[m.end() + len(found[0]):]
            nxt = rest.split()[0].lower() if rest.split() else ""
            if found[1] and (nxt in {"is", "has", "covers", "does", "was", "measures"}
                             or re.search(r"\b(it|its)\b", sentence)):
                bad.append(f"plural {found[0]!r} with a singular verb or pronoun")
            if not found[1] and not is_mass(found[0]) and (nxt in {"are", "were"}
                                                           or re.search(r"\b(them|their|these)\b", sentence)):
                bad.append(f"singular {found[0]!r} with a plural verb or pronoun")
    return bad


@pytest.mark.parametrize("text", ["Here is the lungs [SEG].", "Point out the lungs by colouring it in.",
                                  "Where are the dead tumor tissue?", "Here is the lungs:.", "Segment  the lung.",
                                  "Detect each lungs.", "The cell nuclei covers 10 pixels.",
                                  "Where are the lung field?", "I found 2 lungs , here.", "segment the lung."])
def test_lint_flags_known_agreement_and_punctuation_errors(text):
    assert lint(text)


@pytest.mark.parametrize("text", ["Here are the lungs.", "Point out the lung by colouring it in.",
                                  "Where are the regions of dead tumor tissue?", "Where is the lung field?",
                                  "The cell nuclei cover 10 px; the largest diameter of their largest part is 2 px.",
                                  "There is no edema in this brain MR image: its mask is empty and the count is 0."])
def test_lint_passes_agreeing_sentences(text):
    assert lint(text) == []


def _texts(out) -> list[tuple[str, str]]:
    """(where, text) of every instruction and answer of every format written to ``out``."""
    texts = []
    for line in (out / "records.jsonl").read_text().splitlines():
        r = json.loads(line)
        texts += [(r["id"], r["instruction"]), (r["id"], r["answer"]), (r["id"], plain_caption(r["answer"])[0])]
    for name in ("llava.json", "lisa.json"):
        for r in json.loads((out / name).read_text()):
            texts += [(f"{name} {r['id']}", c["value"].removeprefix("<image>\n")) for c in r["conversations"]]
    for r in json.loads((out / "sa2va.json").read_text()):
        texts += [(f"sa2va {r['id']}", r["question"]), (f"sa2va {r['id']}", r["answer"])]
    for r in json.loads((out / "glamm.json").read_text()):
        texts += [(f"glamm {r['id']}", r["question"]), (f"glamm {r['id']}", r["caption"])]
    for a in json.loads((out / "biomedparse" / "annotations.json").read_text())["annotations"]:
        texts += [(f"biomedparse {a.get('id')}", s["raw"] if isinstance(s, dict) else s)
                  for s in a.get("sentences", [])]
    return texts


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grammar")
    export_instructions(demo_project_path(), tmp / "demo", format="all", per_image=10, use_model=False)
    export_instructions(write_project(tmp), tmp / "tests", format="all", per_image=10, seed=1, use_model=False,
                        modalities=MODALITIES)
    return [tmp / "demo", tmp / "tests"]


def test_every_instruction_and_answer_of_every_format_passes_the_lint(exports):
    texts = [t for out in exports for t in _texts(out)]
    assert len(texts) > 1000
    problems = [(where, text, p) for where, text in texts for p in lint(text)]
    assert problems == [], "\n".join(map(str, problems[:40]))


def test_the_exports_use_plural_synonyms_so_the_agreement_is_exercised(exports):
    recs = [json.loads(line) for out in exports for line in (out / "records.jsonl").read_text().splitlines()]
    phrases = {t["phrase"] for r in recs for t in r["targets"]}
    assert any(is_plural(p) for p in phrases)
    assert any(is_mass(p) for p in phrases)
