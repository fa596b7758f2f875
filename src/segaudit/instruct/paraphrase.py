"""Optional paraphrase plug-in: a local or remote LLM may rephrase the template instructions. Never required.

segaudit ships no paraphraser and never calls a model here; without one (the default) instructions come from
the template bank alone. A plug-in is any object with a ``name`` and a ``paraphrase`` method
(:class:`Paraphraser`); pass it as ``export_instructions(..., paraphraser=obj)``. For each rendered template
the generator asks for up to ``n`` alternatives, drops those that fail :func:`accept_paraphrase` (the grounded
target phrase must survive, no mask or image tokens, bounded length), and draws one among the template text
and the accepted alternatives with the view's own random stream; the near-duplicate rule then applies as
usual. A record written from a paraphrase has ``paraphrase`` set to the plug-in's name (its ``template`` is
still the template it came from). Example of a plug-in (any client library; not part of segaudit)::

    class MyLLM:
        name = "my-llm-v1"

        def paraphrase(self, text, *, task, target, modality, n, seed):
            prompt = f"Rephrase {n} ways, keep the words '{target}': {text}"
            return call_my_model(prompt, seed=seed)[:n]   # list of strings

Determinism: the same seed gives the same output only if the plug-in returns the same list for the same
arguments (pass ``seed`` to the model; the generator caches answers per argument set within one export, so
each distinct request is sent once even though generation runs several planning passes).
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

#: Longest paraphrase accepted (characters).
MAX_PARAPHRASE_CHARS = 300
_FORBIDDEN = re.compile(r"\[SEG\]|<image>|</?p>", re.IGNORECASE)


@runtime_checkable
class Paraphraser(Protocol):
    """The plug-in interface (module docstring): a name and one method."""

    #: Short stable identifier, recorded in each paraphrased record (``Record.paraphrase``).
    name: str

    def paraphrase(self, text: str, *, task: str, target: str | None, modality: str, n: int,
                   seed: int) -> list[str]:
        """Up to ``n`` rephrasings of ``text``, an instruction of ``task`` about ``target`` (None for off-task
        requests) on a ``modality`` image; the same arguments should give the same list.
        """
        ...


def accept_paraphrase(candidate: object, original: str, target: str | None) -> bool:
    """Whether a plug-in's candidate may replace ``original``.

    Accepted: a non-empty string of at most :data:`MAX_PARAPHRASE_CHARS` characters, different from the
    original, without ``[SEG]``, ``<image>`` or ``<p>`` tokens (the formats add those), that still names the
    target phrase (case-insensitive; the record's masks are grounded on it).

    Examples
    --------
    >>> accept_paraphrase("Please outline the left lung.", "Segment the left lung.", "left lung")
    True
    >>> accept_paraphrase("Please outline it.", "Segment the left lung.", "left lung")
    False
    """
    if not isinstance(candidate, str):
        return False
    text = candidate.strip()
    if not text or len(text) > MAX_PARAPHRASE_CHARS or text == original.strip() or _FORBIDDEN.search(text):
        return False
    return target is None or target.lower() in text.lower()


class CachedParaphraser:
    """One answer per distinct request within an export (generation runs several passes over the views)."""

    def __init__(self, plugin: Paraphraser):
        self.plugin = plugin
        self.name = str(plugin.name)
        self.cache: dict[tuple, list[str]] = {}

    def paraphrase(self, text: str, *, task: str, target: str | None, modality: str, n: int,
                   seed: int) -> list[str]:
        key = (text, task, target, modality, n, seed)
        if key not in self.cache:
            got = self.plugin.paraphrase(text, task=task, target=target, modality=modality, n=n, seed=seed)
            self.cache[key] = [c.strip() for c in (got or [])[:n] if accept_paraphrase(c, text, target)]
        return self.cache[key]
