"""The ``segaudit`` command line: a thin shell over the Python API.

Verbs: ``init``, ``scan``, ``evaluate``, ``agree``, ``features``, ``prompt``, ``attribute``, ``compare``, ``flips``,
``report``, ``metrics``, ``export``, ``import-audit``, ``slices``, ``demo``, ``ask``, ``ask-eval``.
Errors print as one line (``segaudit: error: ...``) and exit with status 2; ``--debug`` shows the traceback instead.
Option values are checked by the parser (status 2 before anything runs); a step whose every job failed exits 1.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from segaudit import __version__
from segaudit.cli.analysis import cmd_compare, cmd_flips, cmd_metrics
from segaudit.cli.app import cmd_app
from segaudit.cli.ask import cmd_ask, cmd_ask_eval
from segaudit.cli.demo import cmd_demo
from segaudit.cli.export import cmd_export, cmd_import_audit, cmd_report
from segaudit.cli.instruct import cmd_instruct_export
from segaudit.cli.project import cmd_init, cmd_scan, cmd_slices
from segaudit.cli.prompt import cmd_attribute, cmd_prompt
from segaudit.cli.steps import cmd_agree, cmd_evaluate, cmd_features
from segaudit.dataset.values import ValueCheck, integer, number
from segaudit.errors import SegauditError


def _checked(check: ValueCheck) -> Callable[[str], Any]:
    """An argparse ``type`` that converts a flag's word and checks it with a :class:`ValueCheck`."""
    def parse(text: str) -> Any:
        try:
            return check.parse_text(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = check.describe()  # argparse names the type in its own messages
    return parse


def _quota_word(text: str) -> str:
    """An argparse ``type`` checking an ``instruct export --quota`` word (kept as text for the command)."""
    from segaudit.instruct.sampling import parse_quota  # noqa: PLC0415 - only for this flag

    try:
        parse_quota(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _like(key: str) -> Callable[[str], Any]:
    """The argparse ``type`` of the flag that overrides the project-file entry ``key`` (``evaluate.dilation``).

    The very check the project file's value passes at load time.
    """
    from segaudit.dataset.project import section_checks

    section, name = key.split(".")
    check = section_checks(section)[name]
    assert check is not None, key  # only evaluate.policy has no check, and it has no flag
    # One value per flag (--tolerance repeats), and no YAML null on a command line.
    return _checked(replace(check, optional=False, kind="number" if check.kind == "numbers" else check.kind))


def _add_geometry_arguments(s, what: str) -> None:
    s.add_argument("--resample-nearest", action="store_true",
                   help=f"resample {what} on another grid (shape, spacing, origin or direction) into the reference's "
                        "physical space, nearest neighbour through the affines (default: an error row)")
    s.add_argument("--ignore-affine", action="store_true",
                   help=f"use same-shape {what} voxel by voxel whatever their headers say, recorded as a warning "
                        "(for data known to carry wrong headers, e.g. AUDIT ground truths at origin 0)")


def _add_step_arguments(s: argparse.ArgumentParser, force_help: str) -> None:
    """Arguments every per-case step shares: target, store, parallelism, resumption, dataset filter, progress."""
    s.add_argument("target", help="project file (.yaml) or a data folder")
    s.add_argument("--out", required=True, help="results directory (DuckDB store)")
    s.add_argument("--workers", type=_checked(integer(1)), default=1,
                   help="parallel workers (> 1: a local Dask cluster)")
    s.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://host:8786")
    s.add_argument("--executor", choices=["auto", "processes", "dask"], default="auto",
                   help="how --workers run (auto: Dask when installed, else processes)")
    s.add_argument("--force", action="store_true", help=force_help)
    s.add_argument("--full-hash", action="store_true",
                   help="recognise unchanged input files on a re-run by a hash of every byte (default: size, "
                        "modification time and a hash of the first and last 64 KiB)")
    s.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    s.add_argument("--no-progress", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    """The ``segaudit`` argument parser: one sub-command per verb, flags checked at parse time."""
    from segaudit.features.case import GROUPS

    p = argparse.ArgumentParser(prog="segaudit", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"segaudit {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("init", help="propose a project file for a data folder")
    s.add_argument("data_dir")
    s.add_argument("--out", default="segaudit.yaml", help="project file to write (default ./segaudit.yaml)")
    s.add_argument("--force", action="store_true", help="overwrite an existing file")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("scan", help="discover files, run QC, store the results")
    s.add_argument("target", help="project file (.yaml) or a data folder (layout auto-detected)")
    s.add_argument("--out", help="results directory (DuckDB store); omit to only print")
    s.add_argument("--workers", type=_checked(integer(1)), default=1, help="processes reading cases (default 1)")
    s.add_argument("--max-findings", type=_checked(integer(0)), default=25, help="QC lines printed (default 25)")
    s.add_argument("--show-all", action="store_true", help="print every finding, informational ones included")
    s.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    s.set_defaults(func=cmd_scan)

    s = sub.add_parser("evaluate", help="score every case-model: overlap, surface, lesion-wise metrics")
    _add_step_arguments(s, "re-score case-models already in the store")
    s.add_argument("--surface", choices=["surfel", "voxel"], help="surface definition (default surfel)")
    s.add_argument("--tolerance", type=_like("evaluate.tolerances"), action="append",
                   help="NSD tolerance in mm (repeatable; default 1)")
    s.add_argument("--percentile", type=_like("evaluate.percentile"), help="robust Hausdorff percentile (default 95)")
    s.add_argument("--lesion-matching", choices=["brats", "hungarian", "none"], help="default brats")
    s.add_argument("--dilation", type=_like("evaluate.dilation"),
                   help="ground-truth dilation of the brats rule, voxels >= 0 (default 3)")
    s.add_argument("--min-lesion-volume", type=_like("evaluate.min_lesion_volume"),
                   help="lesions <= this volume (mm3) are not counted")
    s.add_argument("--iou-threshold", type=_like("evaluate.iou_threshold"),
                   help="IoU a hungarian match must exceed, in [0, 1) (default 0.5)")
    s.add_argument("--connectivity", type=_like("evaluate.connectivity"),
                   help="component connectivity: 6/18/26 (3D), 4/8 (2D)")
    s.add_argument("--empty-both", choices=["1", "nan"], help="similarity metrics when both masks are empty")
    s.add_argument("--empty-distance", choices=["penalty", "nan", "inf"],
                   help="distance metrics when one mask is empty (default penalty)")
    s.add_argument("--penalty", type=_like("evaluate.penalty"), help="penalty distance > 0 in mm (px for photos "
                   "without a declared spacing); default: the largest image diagonal of the dataset")
    s.add_argument("--unknown-labels", choices=["background", "error"], help="values not in the label map")
    s.add_argument("--no-distances", action="store_true", help="skip surface-distance metrics")
    s.add_argument("--missing-as-empty", action="store_true", help="score a missing prediction as empty")
    _add_geometry_arguments(s, "predictions")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("agree", help="agreement between models, no ground truth needed: pairs, STAPLE, consensus")
    _add_step_arguments(s, "redo cases already compared in the store")
    s.add_argument("--consensus", choices=["majority", "staple"], default="majority",
                   help="consensus of the other models in the leave-one-out scores (default majority)")
    s.add_argument("--surface", choices=["surfel", "voxel"], help="surface definition (default surfel)")
    s.add_argument("--percentile", type=_like("evaluate.percentile"), help="robust Hausdorff percentile (default 95)")
    s.add_argument("--empty-both", choices=["1", "nan"], help="Dice when both models are empty (default 1)")
    s.add_argument("--empty-distance", choices=["penalty", "nan", "inf"],
                   help="distance when one model is empty (default penalty)")
    s.add_argument("--penalty", type=_like("evaluate.penalty"),
                   help="penalty distance > 0 in mm (default: the image diagonal)")
    s.set_defaults(func=cmd_agree, tolerance=None, no_distances=False)

    s = sub.add_parser("features", help="extract intensity, texture, spatial, lesion and multimodal features")
    _add_step_arguments(s, "re-extract cases already in the store")
    s.add_argument("--groups", nargs="+", choices=list(GROUPS), help="feature groups (default all)")
    s.add_argument("--bin-count", type=_like("features.bin_count"),
                   help="texture quantisation: fixed bin count >= 1 (default 32)")
    s.add_argument("--bin-width", type=_like("features.bin_width"),
                   help="texture quantisation: fixed bin width > 0 instead")
    s.add_argument("--foreground", choices=["auto", "nonzero", "positive"],
                   help="brain/foreground: auto (differs from the corner value, holes filled), nonzero (!= 0) or "
                        "positive (> 0, AUDIT's intensity region)")
    s.add_argument("--no-shape", action="store_true", help="skip mesh shape descriptors of labels")
    _add_geometry_arguments(s, "masks")
    s.set_defaults(func=cmd_features)

    s = sub.add_parser("prompt", help="run LiteMedSAM with prompts simulated from the ground truth (2D images; 3D "
                       "multi-sequence volumes by box propagation); score its masks as models litemedsam/<kind> "
                       "(extra sam)")
    _add_step_arguments(s, "re-prompt and re-score cases already in the store")
    s.add_argument("--model", choices=["litemedsam"], default="litemedsam")
    s.add_argument("--prompts", help="comma-separated prompt kinds: on 2D images box, box-all, box-jitter, "
                   "box-jitter-frac, box-expand, point, points, point-neg, clicks, auto; on 3D multi-sequence volumes "
                   "box-3d (the ground truth's box on its largest slice, propagated slice by slice over its extent) "
                   "(default box,box-jitter,point,clicks,box-3d)")
    s.add_argument("--sequences", help="3D datasets: up to three comma-separated sequences stacked as the channels "
                   "(default flair when present, else the first sequence)")
    s.add_argument("--robustness", help="comma-separated robustness settings re-run on 2D images on top (prompts "
                   "table only): filter=area, filter=bilinear-antialias, scaling=divide255, jitter=5px, jitter=10px, "
                   "jitter=20px, jitter=10%%, expand=10px, points=3, noise=F (the default box on the image plus "
                   "Gaussian noise of F times its intensity range, e.g. noise=0.05 or noise=5%%; seeded per case)")
    s.add_argument("--seed", type=_checked(integer(0)), default=0, help="seed of the prompt simulators")
    s.add_argument("--max-clicks", type=_checked(integer(1)), default=5, help="refinement clicks per object")
    s.add_argument("--shift-px", type=_checked(integer(0)), default=20, help="box-jitter shift in pixels")
    s.add_argument("--auto-grid", type=_checked(integer(1)), default=4,
                   help="automatic mode (--prompts auto): the grid's size, N windows or points per side (default 4)")
    s.add_argument("--auto-prompts", choices=["boxes", "points"], default="boxes",
                   help="automatic mode: a multi-scale grid of boxes (default; LiteMedSAM was trained with boxes) "
                        "or an N x N grid of positive points (SAM's automatic mask generator)")
    s.add_argument("--auto-iou", type=float, default=0.8,
                   help="automatic mode: the predicted IoU a grid mask needs to be kept (default 0.8; 0 keeps all)")
    s.add_argument("--auto-stability", type=float, default=0.9,
                   help="automatic mode: the stability score a grid mask needs to be kept (default 0.9; 0 keeps all)")
    s.add_argument("--tile", type=_checked(integer(16)),
                   help="prompt images larger than N pixels tile by tile (N x N windows holding ground truth; "
                        "e.g. 512 for 4288-px fundus photos)")
    s.add_argument("--filter", choices=["bilinear", "area"], default="bilinear", help="resize filter (default "
                   "bilinear: the area filter flips some 2000-px x-rays, see --robustness filter=area)")
    s.add_argument("--cache-dir", help="weights copy and embedding cache folder (default $SEGAUDIT_CACHE_DIR, "
                   "else ~/.cache/segaudit)")
    s.add_argument("--no-embedding-cache", action="store_true", help="do not keep image embeddings on disk")
    s.add_argument("--no-distances", action="store_true", help="score overlap only (no surface distances)")
    s.set_defaults(func=cmd_prompt, surface=None, percentile=None, lesion_matching=None, dilation=None,
                   min_lesion_volume=None, iou_threshold=None, connectivity=None, unknown_labels=None,
                   empty_both=None, empty_distance=None, penalty=None, tolerance=None)

    s = sub.add_parser("attribute", help="which MRI sequences an answer relies on: Dice of every subset, exact "
                       "Shapley values, drop-one (LiteMedSAM live, extra sam; or --from-predictions)")
    s.add_argument("target", help="project file (.yaml) or a data folder")
    s.add_argument("--out", required=True, help="results directory (DuckDB store)")
    s.add_argument("--sequences", help="up to three comma-separated sequences as the channels (default t1ce,t2,flair "
                   "when present)")
    s.add_argument("--fill", choices=["zero", "mean"], default="zero", help="what replaces a removed sequence")
    s.add_argument("--limit", type=_checked(integer(1)), help="at most N cases per dataset (8 encodings each)")
    s.add_argument("--cache-dir", help="weights copy folder (default $SEGAUDIT_CACHE_DIR, else ~/.cache/segaudit)")
    s.add_argument("--workers", type=_checked(integer(1)), default=1)
    s.add_argument("--executor", choices=["auto", "processes", "dask"], default="auto")
    s.add_argument("--force", action="store_true", help="redo cases already attributed")
    s.add_argument("--from-predictions", action="store_true",
                   help="attribute from the project file's subset_predictions (one prediction per subset of the "
                   "sequences, scored by evaluate) instead of removing sequences from LiteMedSAM's input")
    s.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_attribute)

    s = sub.add_parser("flips", help="flip analysis of two predictors' per-item outcomes (any CSV)")
    s.add_argument("outcomes", help="CSV with one row per item")
    s.add_argument("--baseline", required=True, help="column of the baseline's outcome (or answer)")
    s.add_argument("--candidate", required=True, help="column of the candidate's outcome (or answer)")
    s.add_argument("--truth", help="column of the true answer (outcome = answer equals truth)")
    s.add_argument("--id-column", help="column of the item ids (default: the first column)")
    s.add_argument("--sample", type=_checked(integer(0)), default=5, help="ids listed per group")
    s.add_argument("--out", help="folder for flips.csv and flips.png")
    s.set_defaults(func=cmd_flips)

    s = sub.add_parser("compare", help="paired comparison of two models in a results store")
    s.add_argument("results", help="results directory (DuckDB store)")
    s.add_argument("--baseline", required=True)
    s.add_argument("--candidate", required=True)
    s.add_argument("--metric", default="dice")
    s.add_argument("--region", action="append", help="region(s) to compare (repeatable; default all)")
    s.add_argument("--aggregate", choices=["per-region", "mean-over-regions"], default="per-region")
    s.add_argument("--dataset", help="only this dataset")
    s.add_argument("--threshold", type=_checked(number()), help="pass/fail threshold of the flip table, in the "
                   "metric's units (default 0.5 for Dice-like metrics on 0-1; required for distances such as hd95)")
    s.add_argument("--cases", help="comma-separated case ids to list")
    s.add_argument("--missing", choices=["worst", "exclude"], default="worst",
                   help="a case one model lacks (missing or failed prediction): 'worst' scores it as an empty "
                        "prediction, as BraTS does (default); 'exclude' pairs on the cases both models have")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser("report", help="write a self-contained HTML report of a results store")
    s.add_argument("results", help="results directory (DuckDB store)")
    s.add_argument("--out", default="report.html", help="HTML file to write (default report.html)")
    s.add_argument("--project", help="project file, for image panels of the worst and best cases")
    s.add_argument("--force", action="store_true", help="replace an existing segaudit report at --out (never "
                                                        "any other file)")
    s.add_argument("--training-log", action="append", metavar="[MODEL=]CSV",
                   help="training log (epoch, train_*, val_* columns) to plot; repeatable")
    s.add_argument("--compare", action="append", metavar="BASELINE:CANDIDATE",
                   help="model pair to compare (repeatable; default: every pair up to 4 models, else the "
                        "top-ranked against each other)")
    s.add_argument("--region", help="region the worst/best panels show (default: each dataset's worst)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("metrics", help="explain the metrics: definitions, units, empty-case values")
    s.add_argument("--explain", action="store_true", help="print the table")
    s.add_argument("--results", help="results directory: also print the unit each stored metric has")
    s.set_defaults(func=cmd_metrics)

    s = sub.add_parser("import-audit", help="read AUDIT metric/feature CSVs into a results store")
    s.add_argument("--metrics", nargs="+", help="AUDIT metric CSV(s)")
    s.add_argument("--features", nargs="+", help="AUDIT feature CSV(s)")
    s.add_argument("--dataset", help="dataset name (default: from each file name)")
    s.add_argument("--out", required=True, help="results directory")
    s.set_defaults(func=cmd_import_audit)

    s = sub.add_parser("export", help="write every table of a results store to CSV/Parquet, or AUDIT metric CSVs")
    s.add_argument("results", help="results directory")
    s.add_argument("--format", choices=["csv", "parquet", "audit", "wide"], default="csv",
                   help="csv/parquet: every table; audit: AUDIT metric CSVs; wide: per_case_wide.csv, one row "
                        "per case and model")
    s.add_argument("--out", help="output folder (default RESULTS/export)")
    s.add_argument("--force", action="store_true", help="replace an earlier export of the same kind in --out (a "
                   "file segaudit did not export is never overwritten)")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("slices", help="export normalised image/mask slices (PNG or .npz) for training")
    s.add_argument("target", help="project file (.yaml) or a data folder")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--axis", type=_checked(integer(0)), default=2, help="array axis to slice along (default 2)")
    s.add_argument("--norm", choices=["zscore", "minmax", "percentile", "none"], default="zscore")
    s.add_argument("--format", choices=["npz", "png"], default="npz")
    s.add_argument("--nonempty", action="store_true", help="only slices with ground-truth foreground")
    s.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_slices)

    s = sub.add_parser("instruct", help="instruction-response data for vision-language models from the annotations")
    isub = s.add_subparsers(dest="instruct_command", required=True)
    s = isub.add_parser("export", help="write grounded instruction records (segment, detect, count, measure, "
                        "describe, negatives) in one or more formats")
    s.add_argument("target", help="project file (.yaml), a run folder holding one, or a data folder")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--format", action="append", choices=["jsonl", "llava", "lisa", "sa2va", "glamm", "biomedparse",
                                                         "all"], help="repeatable (default jsonl)")
    s.add_argument("--per-image", type=_checked(integer(1)), default=4, help="records per image or slice")
    s.add_argument("--negatives", type=_checked(number(0.0, 1.0)), default=0.25,
                   help="share of negatives: absent target, other modality, off-task (default 0.25)")
    s.add_argument("--seed", type=_checked(integer(0)), default=0)
    s.add_argument("--axis", type=_checked(integer(0, 2)), default=2, help="slice axis of 3D volumes")
    s.add_argument("--lesion-slices", type=_checked(integer(0)), default=3)
    s.add_argument("--empty-slices", type=_checked(integer(0)), default=1)
    s.add_argument("--no-model", action="store_true", help="no MiniLM: near-duplicates are equal normalised text")
    s.add_argument("--ontology", action="append", help="extra ontology YAML (repeatable)")
    s.add_argument("--templates", action="append", help="extra template YAML (repeatable)")
    s.add_argument("--images", choices=["png", "jpeg"],
                   help="also write each record's image under OUT/images (volume slices windowed) and point the "
                        "records at them (default: the original files)")
    s.add_argument("--rle", choices=["compressed", "uncompressed"], default="compressed",
                   help="COCO RLE form of every mask (default compressed, pycocotools' string form)")
    s.add_argument("--quota", action="append", type=_quota_word, metavar="KEY=N|KEY:VALUE=N",
                   help="at most N records per value of a stratum (dataset, modality, task, class, size, negative, "
                        "slice or a metadata column), rare strata first; repeatable")
    s.set_defaults(func=cmd_instruct_export)

    s = sub.add_parser("ask", help="answer an instruction about a 2D image (mask, boxes, count, sentence) or refuse")
    s.add_argument("image", nargs="?", help="2D image file")
    s.add_argument("instruction", nargs="?", help='free text, e.g. "outline the lungs"')
    s.add_argument("--project", required=True, help="project file: its annotated 2D images are the reference")
    s.add_argument("--out", help="folder for the answer's mask PNG (never the image's folder; default: no file)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--index", action="store_true", help="only build (or check) the cached index of the project")
    s.add_argument("--index-dir", help="cache folder of the index (default $SEGAUDIT_CACHE_DIR or ~/.cache/segaudit)")
    s.add_argument("--rebuild-index", action="store_true", help="rebuild the index even when its key matches")
    s.add_argument("--run", help="results folder: 'what did model M predict' on a project case answers from it")
    s.set_defaults(func=cmd_ask)

    s = sub.add_parser("ask-eval", help="holdout evaluation of segaudit ask: router, refusals, plausibility, Dice")
    s.add_argument("project", help="project file")
    s.add_argument("--out", required=True, help="results directory (the table goes to its segaudit.duckdb)")
    s.add_argument("--holdout", type=_checked(number(0.01, 0.99)), default=0.3, help="share of images held out")
    s.add_argument("--seed", type=_checked(integer(0)), default=0)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_ask_eval)

    s = sub.add_parser("app", help="the dashboard over a results store (needs the app extra)")
    s.add_argument("results", help="results directory (holds segaudit.duckdb)")
    s.add_argument("--project", help="project file: gives the case viewer its images (without it: no images)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other address "
                   "makes the data reachable by others, and says so)")
    s.add_argument("--port", type=_checked(integer(1)), default=8501, help="port (default 8501)")
    s.set_defaults(func=cmd_app)

    s = sub.add_parser("demo", help="run segaudit on the bundled sample data")
    s.add_argument("--out", default="segaudit-demo", help="results directory (default ./segaudit-demo)")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_demo)
    return p


_INTERRUPTED = threading.Event()


def _on_sigint(signum, frame) -> None:
    # Remember the Ctrl-C: DuckDB turns one that lands inside a query into its own error ("Query interrupted").
    _INTERRUPTED.set()
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``segaudit`` command: parse ``argv`` and run the verb; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _INTERRUPTED.clear()
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, _on_sigint)
    else:  # pragma: no cover - signals can only be set from the main thread
        previous = None
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("segaudit: interrupted", file=sys.stderr)
        return 130
    except (SegauditError, OSError) as exc:
        if _INTERRUPTED.is_set():
            print("segaudit: interrupted", file=sys.stderr)
            return 130
        if args.debug:
            raise
        print(f"segaudit: error: {exc}", file=sys.stderr)
        return 2
    except Exception:
        if _INTERRUPTED.is_set():  # an interrupted query or worker, not a bug
            print("segaudit: interrupted", file=sys.stderr)
            return 130
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
