"""Request understanding: an instruction -> (task, target) by nearest neighbours in the MiniLM sentence space.

Method (one MiniLM forward pass over at most three short texts; one text when the target is a known synonym):

1. **Task.** The instruction's embedding (as written, and with its target words replaced by "structure";
   the higher similarity counts) is compared with every phrasing of the template bank
   (``instruct_templates.yaml``; ``{target}`` filled with the neutral word "structure") and with the off-task
   phrasings; the task is the one whose three nearest phrasings have the highest mean cosine similarity.
2. **Target.** The words of the instruction that are not task words (the template bank's own words, image and
   modality nouns, a short list of function words) are the *target phrase*; it is embedded and compared with every
   synonym and alias of every concept the index knows (the project's labels plus the ontology's other entries).
   An exact (normalised) match scores 1.
   A synonym (or its plural) that occurs as a word n-gram of the phrase is an exact match too.
3. **Clarify.** Below :data:`TARGET_SIMILARITY` (cosine 0.62, set a priori, before the evaluation; its effect is
   what ``segaudit ask-eval`` measures) the target is unknown and the answer is ``clarify``.
   An off-task request is refused whatever its target; with no known target, an off-task score of at least
   :data:`OFFTASK_SIMILARITY` (0.4) is off-task rather than ``clarify``.
4. **Off-task intent.** Independently of the embeddings, :data:`OFFTASK_RULES` (prognosis, diagnosis, treatment,
   billing, legal keywords) make a request off-task even when it names a known target ("is this cancer curable?"
   is not a request to segment the tumour); the category is returned as ``intent`` and named in the refusal.

Everything the model needs (the template and synonym embeddings) is computed once, when the index is built.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np

from segaudit.instruct.language import Ontology, Template

#: Cosine similarity of the target phrase to the nearest synonym below which the request is ``clarify``.
TARGET_SIMILARITY = 0.62
#: With no known target, an off-task score (mean cosine of the 3 nearest off-task phrasings) at or above this
#: makes the request off-task (refused) rather than ``clarify``.
OFFTASK_SIMILARITY = 0.4
#: Tasks the ask front door answers (``offtask`` is refused).
ASK_TASKS = ("segment", "detect", "count", "measure", "describe", "offtask")

#: Function words and image nouns that never name a target.
STOPWORDS = frozenset("""
a an the this that these those here there please kindly can could would will you me my our us i we it its is are
be been being of in on at to for from with within by and or all any every each some show give tell find mark
image picture photo photograph scan slide tile view frame shown visible present there's what's where's how
many much which what where do does did just now only also so then please, any? one ones number amount total
""".split())

#: Intent rules read before any target matching: a request matching one is off-task whatever it names
#: (so "is this cancer curable?" is not routed to a tumour target). Category -> regular expression over the
#: normalised instruction (lower case, words joined by single spaces).
OFFTASK_RULES: dict[str, re.Pattern[str]] = {k: re.compile(v) for k, v in {
    "prognosis": r"\b(curable|cure[ds]?|incurable|prognos\w*|surviv\w*|life expectancy|die|dying|death|fatal|"
                 r"terminal|how long (will|does|do|has|have) \w+( \w+)? (live|left|have)|(left|years|months) to live|"
                 r"how many (years|months)|recover\w*|outcome)\b",
    "diagnosis": r"\b(diagnos\w*|what disease|which disease|what condition|does (he|she|the patient|this patient|"
                 r"this person) have|is (this|it|that) (cancer|cancerous|malignant|benign|serious|normal)|"
                 r"malignan\w*|benign)\b",
    "treatment": r"\b(treat\w*|therap\w*|chemo\w*|radiotherap\w*|surgery|surgical|operat(e|ion)|medication\w*|"
                 r"medicine|prescri\w*|drugs?|dos(e|es|age)|antibiotic\w*|"
                 r"regimen|admit\w*|hospitali[sz]\w*|discharge\w*|refer(ral)?)\b",
    "billing": r"\b(bill\w*|icd( \d+)?|cpt|insurance|insurer|reimburs\w*|invoice|price|costs?|fees?|payment)\b",
    "legal": r"\b(legal\w*|lawsuit|su(e|ed|es|ing)|liab\w*|malpractice|negligen\w*|court|lawyer|attorney|consent)\b",
}.items()}

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def words(text: str) -> list[str]:
    """Lower-case word tokens of a text (hyphenated words kept whole)."""
    return _WORD.findall(text.lower())


def normalise(text: str) -> str:
    """Lower case, words joined by single spaces (punctuation dropped)."""
    return " ".join(words(text))


def offtask_intent(instruction: str, span: tuple[str, ...] = ()) -> str | None:
    """The off-task category (:data:`OFFTASK_RULES`) an instruction asks for, or None.

    ``span``: the words of a known target's name, left out first (so "segment the surgical cavity" is not
    read as a question about surgery).

    >>> offtask_intent("is this cancer curable?"), offtask_intent("outline the lungs")
    ('prognosis', None)
    """
    text = normalise(instruction)
    if span:
        text = f" {text} ".replace(f" {' '.join(span)} ", " ").strip()
    for category, rule in OFFTASK_RULES.items():
        if rule.search(text):
            return category
    return None


@dataclass(frozen=True)
class Request:
    """What was understood: task and target with their similarities, and the time it took.

    ``target`` is a concept name of the ontology (``None`` when nothing matched above the threshold);
    ``phrase`` the words read as the target; ``alternatives`` the next-best concepts with their similarity.
    """

    instruction: str
    task: str
    task_similarity: float
    target: str | None
    target_similarity: float
    phrase: str
    alternatives: tuple[tuple[str, float], ...] = ()
    seconds: float = 0.0
    intent: str | None = None

    @property
    def known(self) -> bool:
        """Whether the target matched a known concept at or above :data:`TARGET_SIMILARITY`."""
        return self.target is not None and self.target_similarity >= TARGET_SIMILARITY


def task_exemplars(bank: dict[str, list[Template]], extra_offtask: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(task, text) for every phrasing of the bank, placeholders filled with neutral words."""
    out = []
    for task, templates in bank.items():
        for t in templates:
            out.append((task, t.text.format(target="structure", targets="structures", modality="image",
                                            image="image")))
    out.extend(("offtask", text) for text in extra_offtask)
    return out


def task_vocabulary(bank: dict[str, list[Template]], ontology: Ontology) -> frozenset[str]:
    """Words that belong to the phrasing, not to the target: the bank's own words and the modality nouns.

    Words of any concept synonym are removed again, so a target word that a template happens to use
    ("tumour grade") still reaches the target phrase.
    """
    vocab = set(STOPWORDS)
    for task, templates in bank.items():
        if task == "offtask":
            continue
        for t in templates:
            vocab.update(words(re.sub(r"\{[a-z]+\}", " ", t.text)))
    for name, desc in ontology.modalities.items():
        vocab.update(words(name))
        for v in desc.values():
            vocab.update(words(str(v)))
    target_words = {w for c in ontology.concepts.values() for s in (c.name, *c.synonyms, *c.aliases)
                    for w in words(s)}
    return frozenset(STOPWORDS | (vocab - target_words))


def target_phrase(instruction: str, vocabulary: frozenset[str]) -> str:
    """The instruction's words outside ``vocabulary`` (in order): the words that name the target."""
    return " ".join(w for w in words(instruction) if w not in vocabulary)


def neutral_form(instruction: str, vocabulary: frozenset[str], span: tuple[str, ...] = ()) -> str:
    """The instruction with its target words replaced by "structure" (the exemplars' filler).

    ``span``: the words of an exact synonym match; only they are replaced (so "give me a tally of the nuclei"
    keeps "tally", which tells the task). Without one, every run of non-vocabulary words is replaced.
    """
    ws = words(instruction)
    if span:
        n = len(span)
        for i in range(len(ws) - n + 1):
            if tuple(ws[i:i + n]) == span:
                return " ".join([*ws[:i], "structure", *ws[i + n:]])
    out: list[str] = []
    for w in ws:
        if w in vocabulary:
            out.append(w)
        elif not out or out[-1] != "structure":
            out.append("structure")
    return " ".join(out)


@dataclass
class Understander:
    """Nearest-neighbour task and target recognition over precomputed embeddings (see the module docstring).

    ``embed`` maps a list of texts to unit-norm vectors (the bundled MiniLM, :class:`segaudit.instruct.embed.MiniLM`).
    """

    embed: object
    tasks: list[str]
    task_vectors: np.ndarray
    concepts: list[str]
    synonym_texts: list[str]
    synonym_vectors: np.ndarray
    vocabulary: frozenset[str]
    threshold: float = TARGET_SIMILARITY
    task_texts: list[str] = field(default_factory=list)
    _exact: dict[str, str] = field(default_factory=dict, repr=False)
    _task_rows: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _exact_row: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        from segaudit.instruct.language import plural

        for row, (concept, text) in enumerate(zip(self.concepts, self.synonym_texts, strict=True)):
            for key in (normalise(text), normalise(plural(text))):
                self._exact.setdefault(key, concept)
                self._exact_row.setdefault(key, row)
        # per-task rows of the exemplar matrix, computed once (not per request)
        self._task_rows = {t: np.flatnonzero(np.asarray(self.tasks) == t) for t in dict.fromkeys(self.tasks)}
        remember = getattr(self.embed, "remember", None)
        if remember is not None:  # a phrase that is a synonym costs no forward pass
            remember(list(self.synonym_texts), self.synonym_vectors)
            if len(self.task_texts) == len(self.task_vectors):  # a neutral form that is an exemplar: the same
                remember(list(self.task_texts), self.task_vectors)

    def exact_match(self, phrase: str) -> tuple[str | None, tuple[str, ...]]:
        """(concept, matched words): the synonym (or its plural) that is the longest word n-gram of ``phrase``.

        So "paint over hard exudates" is an exact "hard exudates" although "paint over" are not template words.
        (None, ()) when no n-gram is a synonym.
        """
        ws = phrase.split()
        for n in range(len(ws), 0, -1):
            for i in range(len(ws) - n + 1):
                hit = self._exact.get(" ".join(ws[i:i + n]))
                if hit is not None:
                    return hit, tuple(ws[i:i + n])
        return None, ()

    def understand(self, instruction: str) -> Request:
        """Task and target of one instruction (see the module docstring); empty text is ``clarify`` material."""
        start = time.perf_counter()
        phrase = target_phrase(instruction, self.vocabulary)
        # the task is read twice: from the instruction as written (off-task questions keep their words) and with
        # the target words replaced by the exemplars' neutral "structure" (so the target does not pull the task)
        exact, span = self.exact_match(phrase) if phrase else (None, ())
        neutral = neutral_form(instruction, self.vocabulary, span)
        if exact is not None:
            # the target is a known synonym: the neutral form alone tells the task (the off-task rule has read
            # the words as written), and the synonym's stored vector stands for the phrase -- one forward pass
            vecs = np.asarray(self.embed([neutral]), dtype=np.float32)  # type: ignore[operator]
            sims = self.task_vectors @ vecs[0]
            vecs = np.stack([vecs[0], vecs[0], self.synonym_vectors[self._exact_row[" ".join(span)]]])
        else:
            texts = [instruction, neutral] + ([phrase] if phrase else [])
            vecs = np.asarray(self.embed(texts), dtype=np.float32)  # type: ignore[operator]
            sims = np.maximum(self.task_vectors @ vecs[0], self.task_vectors @ vecs[1])
        best_task, best_score = "describe", -1.0
        scores: dict[str, float] = {}
        for task in dict.fromkeys(self.tasks):
            s = np.sort(sims[self._task_rows[task]])[::-1][:3]
            scores[task] = score = float(s.mean()) if s.size else -1.0
            if score > best_score:
                best_task, best_score = task, score
        target: str | None = None
        tsim = 0.0
        alts: tuple[tuple[str, float], ...] = ()
        if phrase:
            per_concept: dict[str, float] = {}
            csims = self.synonym_vectors @ vecs[2]
            for concept, s in zip(self.concepts, csims, strict=True):
                per_concept[concept] = max(per_concept.get(concept, -1.0), float(s))
            if exact is not None:
                per_concept[exact] = 1.0
            ranked = sorted(per_concept.items(), key=lambda kv: -kv[1])
            target, tsim = ranked[0]
            if tsim < self.threshold:  # the nearest ones are suggestions, not an answer
                target, alts = None, tuple((c, round(s, 3)) for c, s in ranked[:3])
            else:
                alts = tuple((c, round(s, 3)) for c, s in ranked[1:4])
        intent = offtask_intent(instruction, span)
        if intent is not None:  # the rule wins over any target: a clinical question is not a segmentation
            best_task, best_score = "offtask", max(scores.get("offtask", 0.0), 1.0)
        elif (target is None or tsim < self.threshold) and scores.get("offtask", -1.0) >= OFFTASK_SIMILARITY:
            best_task, best_score = "offtask", scores["offtask"]
        return Request(instruction, best_task, round(best_score, 4), target, round(float(tsim), 4), phrase, alts,
                       time.perf_counter() - start, intent)
