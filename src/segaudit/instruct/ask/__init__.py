"""``segaudit ask``: image + free-text instruction -> mask, boxes, count and a sentence, or a reasoned refusal.

:func:`ask` runs the verify-then-act procedure (:mod:`.core`) against an :class:`AskIndex` built once from the
project's annotated 2D images (:func:`build_index`, cached by content with :func:`cached_index`). The parts:
request understanding (:mod:`.understand`), the modality classifier (:mod:`.modality`), the plausibility model
(:mod:`.plausibility`) and the tools (:mod:`.tools`: prototype-prompted LiteMedSAM, a classical nuclei segmenter).
"""

from segaudit.instruct.ask.core import VERDICTS, AskResult, ask, read_picture, write_mask_png
from segaudit.instruct.ask.index import (
    AskIndex,
    TargetInfo,
    build_index,
    cached_index,
    index_key,
    load_index,
    save_index,
)
from segaudit.instruct.ask.modality import ImageContentError, ModalityClassifier, ModalityGuess, image_features
from segaudit.instruct.ask.plausibility import Plausibility, Reference, mask_statistics
from segaudit.instruct.ask.tools import Prototype, fit_prototype, prototype_segment, segment_nuclei
from segaudit.instruct.ask.understand import TARGET_SIMILARITY, Request, Understander

__all__ = [
    "TARGET_SIMILARITY",
    "VERDICTS",
    "AskIndex",
    "AskResult",
    "ImageContentError",
    "ModalityClassifier",
    "ModalityGuess",
    "Plausibility",
    "Prototype",
    "Reference",
    "Request",
    "TargetInfo",
    "Understander",
    "ask",
    "build_index",
    "cached_index",
    "fit_prototype",
    "image_features",
    "index_key",
    "load_index",
    "mask_statistics",
    "prototype_segment",
    "read_picture",
    "save_index",
    "segment_nuclei",
    "write_mask_png",
]
