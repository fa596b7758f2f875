"""Instruction data from annotations: grounded instruction-response records in the common VLM formats.

``export_instructions(project, out_dir, format=..., per_image=..., negatives=0.25, seed=0)`` builds one internal
:class:`Record` per instruction (segment, detect, count, measure, describe, absent, refuse) from a project's
ground truth and writes it as jsonl, LLaVA, LISA, Sa2VA, GLaMM or BiomedParse (COCO-refer) data.
"""

from segaudit.instruct.export import ExportResult, distinct_n, diversity_summary, export_instructions, generate_records
from segaudit.instruct.formats import FORMATS, write_format
from segaudit.instruct.images import IMAGE_FORMATS, export_images
from segaudit.instruct.language import load_ontology, load_templates
from segaudit.instruct.paraphrase import Paraphraser, accept_paraphrase
from segaudit.instruct.record import TASK_TYPES, Provenance, Record, Target
from segaudit.instruct.rle import decode_rle, encode_rle
from segaudit.instruct.sampling import apply_quotas, parse_quotas
from segaudit.instruct.views import SliceOptions

__all__ = [
    "FORMATS",
    "IMAGE_FORMATS",
    "Paraphraser",
    "TASK_TYPES",
    "ExportResult",
    "Provenance",
    "Record",
    "SliceOptions",
    "Target",
    "accept_paraphrase",
    "apply_quotas",
    "decode_rle",
    "diversity_summary",
    "distinct_n",
    "encode_rle",
    "export_images",
    "export_instructions",
    "generate_records",
    "load_ontology",
    "load_templates",
    "parse_quotas",
    "write_format",
]
