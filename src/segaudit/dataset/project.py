r"""The project file: datasets declared by path templates, labels, regions and metadata.

Example (``segaudit.yaml``)::

    datasets:
      BraTS2020:
        root: data/BraTS2020                 # relative paths are relative to this file
        images: "{root}/BraTS2020_images/{case}/{case}_{sequence}.nii.gz"
        sequences: [t1, t1ce, t2, flair]
        ground_truth: "{root}/BraTS2020_images/{case}/{case}_seg.nii.gz"
        predictions: "{root}/BraTS2020_seg/{model}/{case}/{case}_pred.nii.gz"
        label_convention: audit              # or labels: {ENH: 1, NEC: 2, EDE: 3} + regions
        metadata: {path: clinical.csv, id_column: case}
        longitudinal: {pattern: "(?P<subject>.+)-week-(?P<timepoint>\d+)"}

``images`` is either one template with ``{sequence}`` or a mapping sequence -> template;
``predictions`` is one template with ``{model}``, a list of such templates, or a mapping model -> template.
``mask_encoding`` / ``prediction_encoding`` say how 2D masks are drawn (see
:class:`segaudit.io.MaskEncoding`); ``instances`` is a template of ground-truth instance maps (H&E nuclei) and
``prediction_encoding: {kind: instances}`` (per dataset or per model) declares predictions that are instance
maps, scored with PQ, AJI and AJI+ against them. ``geometry`` (``strict``, ``resample_nearest`` or
``ignore_affine``) says what ``evaluate`` and ``features`` do with a mask whose grid (shape, spacing, origin,
direction) differs from its reference's (see :mod:`segaudit.io.geometry`). Unknown keys are errors, so a typo
never silently disables a check.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from segaudit.base.types import Spacing
from segaudit.dataset.labels import LabelMap
from segaudit.dataset.templates import template_fields, validate_template
from segaudit.dataset.values import BOOLEAN, CONNECTIVITIES, ValueCheck, choice, integer, number
from segaudit.errors import ConfigError, check_keys
from segaudit.io.geometry import GEOMETRY_MODES
from segaudit.io.masks import MaskEncoding

DATASET_KEYS = {
    "root", "images", "sequences", "ground_truth", "instances", "predictions", "models", "labels",
    "label_convention", "regions", "mask_encoding", "prediction_encoding", "spacing", "metadata",
    "longitudinal", "description", "ground_truth_region", "prediction_region", "geometry", "subset_predictions",
}
TOP_KEYS = {"datasets", "version", "name", "qc", "evaluate", "features"}
METADATA_KEYS = {"path", "id_column", "sheet", "split_column", "covariates"}
LONGITUDINAL_KEYS = {"pattern"}
#: Keys of one ``subset_predictions`` entry (predictions made with subsets of the sequences, see
#: :class:`SubsetPredictions`).
SUBSET_PREDICTION_KEYS = {"model", "subsets", "sequences", "encoding"}
#: The project-file format this segaudit reads and ``segaudit init`` writes (``version: 1``).
PROJECT_FILE_VERSION = 1
#: The option sections of the project file; their keys and values are checked against :data:`PROJECT_KEYS`.
OPTION_SECTIONS = ("qc", "evaluate", "features")
#: ``evaluate.policy``: the empty-case policy as a sub-mapping (its keys may also be given under ``evaluate``).
POLICY_KEYS = ("both_empty", "distance_both_empty", "distance_one_empty", "penalty")


@dataclass(frozen=True)
class ProjectKey:
    """One documented key of the project file (the README's key table is generated from these)."""

    key: str
    type: str
    default: str
    example: str
    description: str
    #: The values an option-section key takes (checked at load time and, for its flag, by the command line).
    check: ValueCheck | None = None


#: Every key a project file may hold: top level, ``datasets.<name>.*`` (written ``<dataset>.key``) and the
#: sub-keys of the option sections. ``tests/dataset/test_project_keys.py`` checks that this table names exactly
#: the keys the parsers accept and that the README's table is :func:`project_keys_markdown` verbatim.
PROJECT_KEYS: tuple[ProjectKey, ...] = (
    ProjectKey("name", "text", "''", "name: my-audit", "project name shown in reports"),
    ProjectKey("version", "1", "1", "version: 1",
               "format version of the project file (`segaudit init` writes it); missing means 1, others are refused"),
    ProjectKey("datasets", "mapping", "required", "datasets: {BraTS2020: {...}}", "dataset name -> its settings"),
    ProjectKey("<dataset>.root", "path", "required", "root: data/BraTS2020",
               "folder the templates start from (`{root}`); relative to the project file; must exist"),
    ProjectKey("<dataset>.description", "text", "''", "description: BraTS 2020 training cases", "free text"),
    ProjectKey("<dataset>.images", "template or mapping", "none",
               "images: \"{root}/{case}/{case}_{sequence}.nii.gz\"",
               "one template with `{sequence}`, one template per case (2D), or sequence -> template"),
    ProjectKey("<dataset>.sequences", "list", "from images", "sequences: [t1, t1ce, t2, flair]",
               "values of `{sequence}`"),
    ProjectKey("<dataset>.ground_truth", "template", "none", "ground_truth: \"{root}/{case}/{case}_seg.nii.gz\"",
               "reference mask per case; without it `evaluate` has nothing to score"),
    ProjectKey("<dataset>.ground_truth_region", "region name", "none", "ground_truth_region: WT",
               "the ground truth is a binary mask of this region (e.g. whole tumour): only it is scored"),
    ProjectKey("<dataset>.instances", "template", "none", "instances: \"{root}/inst/{case}.png\"",
               "instance map per case (lesion/nucleus ids) used instead of connected components"),
    ProjectKey("<dataset>.predictions", "template, list or mapping", "none",
               "predictions: \"{root}/seg/{model}/{case}/{case}_pred.nii.gz\"",
               "template(s) with `{model}`, or model -> template"),
    ProjectKey("<dataset>.prediction_region", "region name or mapping", "none",
               "prediction_region: {fusion: WT}",
               "predictions are binary masks of this region (all models, or model -> region): only it is scored"),
    ProjectKey("<dataset>.models", "list", "from the files", "models: [nnUnet, SegResNet]",
               "values of `{model}` (default: every folder/file name found)"),
    ProjectKey("<dataset>.label_convention", "name", "none", "label_convention: brats2020",
               "preset labels and regions: audit, brats2020, brats2023, binary, consep"),
    ProjectKey("<dataset>.labels", "mapping", "from the convention", "labels: {ENH: 1, NEC: 2, EDE: 3}",
               "label name -> value in the masks"),
    ProjectKey("<dataset>.regions", "mapping", "from the convention", "regions: {WT: [ENH, NEC, EDE]}",
               "region name -> labels scored together"),
    ProjectKey("<dataset>.mask_encoding", "mapping", "{kind: labels}", "mask_encoding: {kind: binary, threshold: 127}",
               "how ground-truth values are stored: kind labels/binary/probability, channel, threshold, foreground "
               "(predictions also kind instances: instance maps, scored with PQ/AJI)"),
    ProjectKey("<dataset>.prediction_encoding", "mapping, or model -> mapping", "the mask_encoding",
               "prediction_encoding: {nnUnet: {kind: probability}, unet: {kind: binary, channel: green}}",
               "how predictions are stored, for all models or per model"),
    ProjectKey("<dataset>.spacing", "list of numbers", "from the header (NIfTI mm; photos: px)",
               "spacing: [0.01, 0.01]",
               "pixel/voxel size in mm per array axis; makes distances of PNG/JPEG/TIFF data mm instead of px"),
    ProjectKey("<dataset>.metadata", "path or mapping", "none", "metadata: {path: clinical.csv, id_column: case}",
               "per-case table (CSV, TSV, XLSX) joined on a case-id column"),
    ProjectKey("<dataset>.metadata.path", "path", "required", "path: clinical.xlsx", "the table"),
    ProjectKey("<dataset>.metadata.id_column", "column", "first column", "id_column: case", "column holding case ids"),
    ProjectKey("<dataset>.metadata.sheet", "name or index", "first", "sheet: 0", "XLSX sheet"),
    ProjectKey("<dataset>.metadata.split_column", "column", "split", "split_column: fold",
               "column naming each case's split"),
    ProjectKey("<dataset>.metadata.covariates", "list of columns", "columns that look like covariates",
               "covariates: [sex, site]", "metadata columns used as bias subgroups"),
    ProjectKey("<dataset>.geometry", "strict, resample_nearest or ignore_affine", "strict",
               "geometry: ignore_affine",
               "what evaluate and features do with a mask on another grid than its reference"),
    ProjectKey("<dataset>.longitudinal", "mapping or regex", "none",
               "longitudinal: {pattern: \"(?P<subject>.+)-week-(?P<timepoint>\\\\d+)\"}",
               "regex on case ids with groups `subject` and `timepoint`"),
    ProjectKey("<dataset>.subset_predictions", "mapping or list of mappings", "none",
               "subset_predictions: {model: dropout, subsets: {\"t1ce+flair\": \"{root}/tf/{case}.nii.gz\"}}",
               "one model's predictions made with subsets of the sequences (modality dropout): `segaudit "
               "attribute --from-predictions` scores them and gives exact Shapley values per sequence"),
    ProjectKey("<dataset>.subset_predictions.model", "name", "required", "model: dropout",
               "the model's name (stored as the attributions' model)"),
    ProjectKey("<dataset>.subset_predictions.subsets", "mapping", "required",
               "subsets: {\"t1ce+flair\": \"{root}/tf/{case}.nii.gz\", flair: \"{root}/f/{case}.nii.gz\"}",
               "subset (declared sequences joined by `+`; `\"\"` the empty set) -> prediction template; an "
               "undeclared empty set predicts nothing"),
    ProjectKey("<dataset>.subset_predictions.sequences", "list", "the sequences the subsets name",
               "sequences: [t1ce, t2, flair]", "the sequences attributed (Shapley needs all 2^k subsets of them)"),
    ProjectKey("<dataset>.subset_predictions.encoding", "mapping", "the model's prediction encoding",
               "encoding: {kind: probability, threshold: 0.5}", "how these prediction files are stored"),
    ProjectKey("qc.spacing_tol", "number", "0.001", "qc: {spacing_tol: 0.01}", "relative spacing tolerance",
               check=number(0)),
    ProjectKey("qc.origin_tol", "number", "0.01", "qc: {origin_tol: 0.5}", "origin tolerance in mm",
               check=number(0)),
    ProjectKey("qc.direction_tol", "number", "0.001", "qc: {direction_tol: 0.01}", "direction-cosine tolerance",
               check=number(0)),
    ProjectKey("evaluate.surface", "surfel or voxel", "surfel", "evaluate: {surface: voxel}", "surface definition",
               check=choice("surfel", "voxel")),
    ProjectKey("evaluate.tolerances", "list of numbers", "[1]", "evaluate: {tolerances: [1, 2]}",
               "NSD tolerances (mm; px without physical spacing)",
               check=ValueCheck("numbers", 0)),
    ProjectKey("evaluate.percentile", "number", "95", "evaluate: {percentile: 95}", "robust Hausdorff percentile",
               check=number(0, 100, low_open=True)),
    ProjectKey("evaluate.lesion_matching", "brats, hungarian or none", "brats", "evaluate: {lesion_matching: none}",
               "lesion-wise matching rule",
               check=choice("brats", "hungarian", "none")),
    ProjectKey("evaluate.dilation", "integer", "3", "evaluate: {dilation: 1}", "ground-truth dilation (voxels)",
               check=integer(0)),
    ProjectKey("evaluate.min_lesion_volume", "number", "0", "evaluate: {min_lesion_volume: 10}",
               "lesions of this volume or less are not counted",
               check=number(0)),
    ProjectKey("evaluate.iou_threshold", "number", "0.5", "evaluate: {iou_threshold: 0.5}",
               "IoU a hungarian match must exceed",
               check=number(0, 1, high_open=True)),
    ProjectKey("evaluate.connectivity", "integer", "full", "evaluate: {connectivity: 6}", "component connectivity",
               check=integer(choices=CONNECTIVITIES, optional=True)),
    ProjectKey("evaluate.unknown_labels", "background or error", "background", "evaluate: {unknown_labels: error}",
               "mask values not in the label map",
               check=choice("background", "error")),
    ProjectKey("evaluate.distances", "boolean", "true", "evaluate: {distances: false}", "surface-distance metrics",
               check=BOOLEAN),
    ProjectKey("evaluate.policy", "mapping", "{}", "evaluate: {policy: {both_empty: nan}}",
               "the empty-case policy (its keys may also be given directly under evaluate)"),
    ProjectKey("evaluate.both_empty", "1 or nan", "1", "evaluate: {both_empty: nan}",
               "similarity metrics when both masks are empty",
               check=number(choices=(0, 1), nan=True)),
    ProjectKey("evaluate.distance_both_empty", "number", "0", "evaluate: {distance_both_empty: 0}",
               "distance metrics when both masks are empty",
               check=number(0)),
    ProjectKey("evaluate.distance_one_empty", "penalty, nan or inf", "penalty", "evaluate: {distance_one_empty: nan}",
               "distance metrics when exactly one mask is empty",
               check=choice("penalty", "nan", "inf")),
    ProjectKey("evaluate.penalty", "number", "largest image diagonal of the dataset", "evaluate: {penalty: 374}",
               "the one penalty distance of every case (mm; px without physical spacing)",
               check=number(0, low_open=True, optional=True)),
    ProjectKey("features.groups", "list", "all", "features: {groups: [intensity, spatial]}", "feature groups",
               check=ValueCheck("choices", choices=("spatial", "intensity", "texture", "lesion", "multimodal"))),
    ProjectKey("features.bin_count", "integer", "32", "features: {bin_count: 64}", "texture quantisation bins",
               check=integer(1, optional=True)),
    ProjectKey("features.bin_width", "number", "none", "features: {bin_width: 25}", "fixed bin width instead",
               check=number(0, low_open=True, optional=True)),
    ProjectKey("features.histogram_bins", "integer", "64", "features: {histogram_bins: 128}",
               "bins of the intensity histogram",
               check=integer(1)),
    ProjectKey("features.foreground", "auto, nonzero or positive", "auto", "features: {foreground: positive}",
               "brain/foreground definition",
               check=choice("auto", "nonzero", "positive")),
    ProjectKey("features.connectivity", "integer", "full", "features: {connectivity: 6}", "lesion connectivity",
               check=integer(choices=CONNECTIVITIES, optional=True)),
    ProjectKey("features.shape", "boolean", "true", "features: {shape: false}", "mesh shape descriptors",
               check=BOOLEAN),
    ProjectKey("features.label_texture", "boolean", "true", "features: {label_texture: false}",
               "texture inside each label",
               check=BOOLEAN),
)


def project_keys_markdown() -> str:
    """The README's table of project-file keys (a Markdown table generated from :data:`PROJECT_KEYS`)."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| key | type | default | example | meaning |", "|---|---|---|---|---|"]
    lines += [f"| `{k.key}` | {cell(k.type)} | {cell(k.default)} | `{cell(k.example)}` | {cell(k.description)} |"
              for k in PROJECT_KEYS]
    return "\n".join(lines) + "\n"


@dataclass
class MetadataSpec:
    """A table of per-case information (CSV, TSV or XLSX) joined on a case-id column."""

    path: Path
    id_column: str | None = None
    sheet: str | int | None = None
    #: The column naming each case's split (train/validation/test); ``split`` when the table has one.
    split_column: str = "split"
    #: Columns to use as bias subgroups (``covariates: [sex, site]``); None: columns that look like covariates
    #: (see :func:`segaudit.analysis.bias.covariate_columns`).
    covariates: list[str] | None = None


@dataclass
class SubsetPredictions:
    """One model's predictions made with subsets of a dataset's sequences (``subset_predictions:``).

    As a model trained with modality dropout produces them: one prediction per case for each declared subset.
    ``sequences`` are the players of the attribution (the declared ``sequences:``, else every sequence a subset
    names), in the dataset's order; ``subsets`` maps each subset (a frozenset of them) to its prediction template.
    The empty set needs no file: undeclared, it is the empty prediction (see :mod:`segaudit.pipeline.attribute`).
    """

    model: str
    sequences: list[str]
    subsets: dict[frozenset[str], str]
    encoding: MaskEncoding | None = None

    def name(self, subset: frozenset[str]) -> str:
        """A subset's name: its sequences in :attr:`sequences` order joined by ``+`` (``''`` for the empty set)."""
        return "+".join(s for s in self.sequences if s in subset)


@dataclass
class DatasetConfig:
    """One dataset of a project.

    ``images`` maps sequence -> template (a single ``{sequence}`` template is stored under the key ``"*"``);
    ``predictions`` maps model -> template (``"*"`` for templates with a ``{model}`` field, possibly several).
    """

    name: str
    root: Path
    images: dict[str, str] = field(default_factory=dict)
    sequences: list[str] = field(default_factory=list)
    ground_truth: str | None = None
    instances: str | None = None
    predictions: list[tuple[str, str]] = field(default_factory=list)  # (model or "*", template)
    models: list[str] = field(default_factory=list)
    label_map: LabelMap = field(default_factory=LabelMap)
    mask_encoding: MaskEncoding = field(default_factory=MaskEncoding)
    prediction_encoding: MaskEncoding | None = None
    model_encodings: dict[str, MaskEncoding] = field(default_factory=dict)
    spacing: Spacing | None = None
    metadata: MetadataSpec | None = None
    longitudinal: re.Pattern | None = None
    description: str = ""
    #: How masks on another grid are used (:data:`segaudit.io.geometry.GEOMETRY_MODES`): ``strict`` refuses them.
    geometry: str = "strict"
    #: The ground truth is a binary mask of this region (whole tumour...): only this region is scored.
    ground_truth_region: str | None = None
    #: Model -> region whose binary mask that model's prediction is ("*" for every model).
    prediction_regions: dict[str, str] = field(default_factory=dict)
    #: Predictions made with subsets of the sequences (``subset_predictions:``), one entry per model.
    subset_predictions: list[SubsetPredictions] = field(default_factory=list)

    def prediction_region(self, model: str) -> str | None:
        """The region a model's prediction is a binary mask of, or None (a label map)."""
        return self.prediction_regions.get(model) or self.prediction_regions.get("*")

    def scored_region(self, model: str) -> str | None:
        """The only region scored for a model when its ground truth or prediction is a region mask, else None."""
        return self.ground_truth_region or self.prediction_region(model)

    def region_values(self, region: str) -> tuple[int, ...]:
        """Label values of a region (or of a label of that name) in this dataset's label map."""
        if region in self.label_map.regions:
            return tuple(self.label_map.regions[region])
        if region in self.label_map.labels:
            return (self.label_map.labels[region],)
        raise KeyError(region)

    @property
    def pred_encoding(self) -> MaskEncoding:
        """Encoding of prediction files (defaults to the ground truth's)."""
        return self.prediction_encoding or self.mask_encoding

    def encoding_for(self, model: str) -> MaskEncoding:
        """Encoding of one model's predictions: its own entry, else the dataset's prediction encoding."""
        return self.model_encodings.get(model) or self.pred_encoding


@dataclass
class ProjectConfig:
    """A whole project: its datasets, where the file lives, and a hash of its content for provenance."""

    datasets: list[DatasetConfig]
    path: Path | None = None
    raw: dict = field(default_factory=dict)
    name: str = ""

    @property
    def config_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the canonical JSON of the project file's content."""
        return self.settings_hash()

    def settings_hash(self, **settings) -> str:
        """Like :attr:`config_hash`, over ``{"project": raw, **settings}`` when a step's settings are given.

        The key under which a step's results are reused on a re-run (``settings``: JSON-able values).
        """
        data = {"project": self.raw, **settings} if settings else self.raw
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def section(self, name: str) -> dict:
        """The project file's ``qc``, ``evaluate`` or ``features`` mapping as written.

        Validated at load time; ``{}`` when absent.
        """
        return dict(self.raw.get(name) or {}) if self.raw else {}

    def dataset(self, name: str) -> DatasetConfig:
        """The dataset called ``name``; KeyError when the project has none."""
        for ds in self.datasets:
            if ds.name == name:
                return ds
        raise KeyError(name)


def _where(path: Path | None, ds: str | None = None) -> str:
    loc = str(path) if path else "project"
    return f"{loc}: dataset {ds!r}" if ds else loc


def parse_dataset(name: str, data: dict, base_dir: Path, where_file: Path | None = None) -> DatasetConfig:
    """Validate and build one dataset entry; ``base_dir`` resolves a relative ``root``."""
    where = _where(where_file, name)
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a mapping of settings")
    check_keys(data, DATASET_KEYS, where)
    if "root" not in data:
        raise ConfigError(f"{where}: 'root' is required (the folder the templates start from)")
    root = Path(str(data["root"])).expanduser()
    if not root.is_absolute():
        root = (base_dir / root).resolve()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise ConfigError(f"{where}: root {root} {what} (given as {data['root']!r}"
                          + (f", relative to {base_dir}" if not Path(str(data["root"])).expanduser().is_absolute()
                             else "") + ")")
    ds = DatasetConfig(name=str(name), root=root, description=str(data.get("description", "")))

    seqs = data.get("sequences") or []
    if not isinstance(seqs, list):
        raise ConfigError(f"{where}: sequences must be a list")
    ds.sequences = [str(s) for s in seqs]
    images = data.get("images")
    if isinstance(images, str):
        validate_template(images, f"{where}: images")
        if "sequence" not in template_fields(images):
            # One image per case: a single-channel dataset (x-ray, fundus, H&E).
            ds.images = {(ds.sequences[0] if ds.sequences else "image"): images}
        else:
            ds.images = {"*": images}
    elif isinstance(images, dict):
        for seq, tpl in images.items():
            validate_template(tpl, f"{where}: images.{seq}")
            ds.images[str(seq)] = tpl
        if not ds.sequences:
            ds.sequences = list(ds.images)
    elif images is not None:
        raise ConfigError(f"{where}: images must be a template string or a mapping sequence -> template")
    if ds.images and not ds.sequences and "*" not in ds.images:
        ds.sequences = list(ds.images)

    for role in ("ground_truth", "instances"):
        tpl = data.get(role)
        if tpl is not None:
            validate_template(tpl, f"{where}: {role}")
            setattr(ds, role, tpl)

    preds = data.get("predictions")
    models = data.get("models") or []
    if not isinstance(models, list):
        raise ConfigError(f"{where}: models must be a list")
    ds.models = [str(m) for m in models]
    if isinstance(preds, str):
        preds = [preds]
    if isinstance(preds, list):
        for tpl in preds:
            validate_template(tpl, f"{where}: predictions")
            if "model" not in template_fields(tpl):
                raise ConfigError(f"{where}: prediction template {tpl!r} has no {{model}} field; use a "
                                  "mapping model -> template instead")
            ds.predictions.append(("*", tpl))
    elif isinstance(preds, dict):
        for model, tpl in preds.items():
            validate_template(tpl, f"{where}: predictions.{model}")
            ds.predictions.append((str(model), tpl))
    elif preds is not None:
        raise ConfigError(f"{where}: predictions must be a template, a list of templates or a mapping")

    ds.label_map = LabelMap.from_config(data.get("labels"), data.get("regions"), data.get("label_convention"),
                                        where)
    try:
        _check_encoding_keys(data, where)
        ds.mask_encoding = MaskEncoding.from_dict(data.get("mask_encoding"))
        if ds.mask_encoding.kind == "instances":
            raise ValueError("mask_encoding kind 'instances' is for predictions only; declare a ground-truth "
                             "instance map with the 'instances' template")
        pe = data.get("prediction_encoding")
        enc_keys = set(MaskEncoding.__dataclass_fields__)
        if isinstance(pe, dict) and pe and all(isinstance(v, dict) for v in pe.values()) and not set(pe) & enc_keys:
            # A mapping model -> encoding (e.g. one model writes probability maps).
            ds.model_encodings = {str(m): MaskEncoding.from_dict(e) for m, e in pe.items()}
        elif pe is not None:
            ds.prediction_encoding = MaskEncoding.from_dict(pe)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc

    _parse_region_masks(ds, data, where)

    if data.get("spacing") is not None:
        sp = data["spacing"]
        if not isinstance(sp, list) or not all(isinstance(v, int | float) and v > 0 for v in sp):
            raise ConfigError(f"{where}: spacing must be a list of positive numbers, one per array axis")
        ds.spacing = tuple(float(v) for v in sp)

    meta = data.get("metadata")
    if meta is not None:
        if isinstance(meta, str):
            meta = {"path": meta}
        if not isinstance(meta, dict) or "path" not in meta:
            raise ConfigError(f"{where}: metadata must be a path or a mapping with 'path'")
        check_keys(meta, METADATA_KEYS, f"{where}: metadata")
        mpath = Path(str(meta["path"])).expanduser()
        if not mpath.is_absolute():
            mpath = (base_dir / mpath).resolve()
        ds.metadata = MetadataSpec(mpath, meta.get("id_column"), meta.get("sheet"), meta.get("split_column", "split"))
        cov = meta.get("covariates")
        if cov is not None:
            if not isinstance(cov, list) or not all(isinstance(c, str) for c in cov):
                raise ConfigError(f"{where}: metadata covariates must be a list of column names")
            ds.metadata.covariates = list(cov)

    lon = data.get("longitudinal")
    if lon is not None:
        if isinstance(lon, dict):
            check_keys(lon, LONGITUDINAL_KEYS, f"{where}: longitudinal")
        pattern = lon.get("pattern") if isinstance(lon, dict) else lon
        try:
            rx = re.compile(str(pattern))
        except re.error as exc:
            raise ConfigError(f"{where}: longitudinal pattern {pattern!r} is not a valid regex: {exc}") from exc
        if not {"subject", "timepoint"} <= set(rx.groupindex):
            raise ConfigError(f"{where}: longitudinal pattern must have named groups (?P<subject>...) and "
                              "(?P<timepoint>...)")
        ds.longitudinal = rx

    ds.subset_predictions = _parse_subset_predictions(ds, data.get("subset_predictions"), where)

    geometry = data.get("geometry", "strict")
    if geometry not in GEOMETRY_MODES:
        raise ConfigError(f"{where}: geometry must be one of {', '.join(GEOMETRY_MODES)}, not {geometry!r}")
    ds.geometry = str(geometry)

    if not (ds.images or ds.ground_truth or ds.predictions or ds.instances):
        raise ConfigError(f"{where}: declares no files (give images, ground_truth or predictions)")
    return ds


def _parse_subset_predictions(ds: DatasetConfig, value, where: str) -> list[SubsetPredictions]:
    """``subset_predictions``: one mapping (or a list of them) ``{model, subsets, sequences?, encoding?}``.

    Every subset is a set of the dataset's declared sequences written joined by ``+`` (``"t1ce+flair"``; the
    order does not matter; ``""`` is the empty set); an unknown sequence, a subset given twice (in another
    order) or a template without ``{case}`` is a :class:`ConfigError` naming the file, the dataset and the key.
    """
    if value is None:
        return []
    entries = value if isinstance(value, list) else [value]
    out: list[SubsetPredictions] = []
    for i, entry in enumerate(entries):
        at = f"{where}: subset_predictions" + (f"[{i}]" if isinstance(value, list) else "")
        if not isinstance(entry, dict):
            raise ConfigError(f"{at}: must be a mapping {{model: NAME, subsets: {{SUBSET: TEMPLATE}}}}")
        check_keys(entry, SUBSET_PREDICTION_KEYS, at)
        model = entry.get("model")
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"{at}: 'model' (the model's name) is required")
        if any(m.model == model for m in out):
            raise ConfigError(f"{at}: model {model!r} is declared twice")
        if not ds.sequences:
            raise ConfigError(f"{at}: the dataset declares no sequences, so no subset of them can be named")
        subsets = entry.get("subsets")
        if not isinstance(subsets, dict) or not subsets:
            raise ConfigError(f"{at}: 'subsets' must map subsets of the sequences (joined by '+') to prediction "
                              "templates")
        parsed: dict[frozenset[str], tuple[str, str]] = {}
        for name, tpl in subsets.items():
            text = "" if name is None else str(name)
            parts = [p.strip() for p in text.split("+")] if text.strip() else []
            if any(not p for p in parts):
                raise ConfigError(f"{at}: subsets: {text!r} has an empty sequence name (write names joined by '+')")
            unknown = [p for p in parts if p not in ds.sequences]
            if unknown:
                raise ConfigError(f"{at}: subsets: {text!r} names unknown sequence(s) {', '.join(unknown)} (the "
                                  f"dataset's sequences: {', '.join(ds.sequences)})")
            if len(set(parts)) != len(parts):
                raise ConfigError(f"{at}: subsets: {text!r} names a sequence twice")
            key = frozenset(parts)
            if key in parsed:
                raise ConfigError(f"{at}: subsets {parsed[key][0]!r} and {text!r} are the same set")
            validate_template(tpl, f"{at}: subsets.{text or chr(34) * 2}")
            parsed[key] = (text, str(tpl))
        named = set().union(*parsed)
        seqs = entry.get("sequences")
        if seqs is None:
            players = [s for s in ds.sequences if s in named]
        else:
            if not isinstance(seqs, list) or not all(isinstance(s, str) for s in seqs):
                raise ConfigError(f"{at}: sequences must be a list of the dataset's sequences")
            unknown = [s for s in seqs if s not in ds.sequences]
            if unknown:
                raise ConfigError(f"{at}: sequences: unknown sequence(s) {', '.join(unknown)} (the dataset's "
                                  f"sequences: {', '.join(ds.sequences)})")
            outside = sorted(named - set(seqs))
            if outside:
                raise ConfigError(f"{at}: subsets name sequence(s) {', '.join(outside)} outside 'sequences'")
            players = [s for s in ds.sequences if s in seqs]
        if not players:
            raise ConfigError(f"{at}: no sequence to attribute (every subset is empty)")
        enc = None
        if entry.get("encoding") is not None:
            if not isinstance(entry["encoding"], dict):
                raise ConfigError(f"{at}: encoding must be a mapping (as prediction_encoding)")
            check_keys(entry["encoding"], set(MaskEncoding.__dataclass_fields__), f"{at}: encoding")
            try:
                enc = MaskEncoding.from_dict(entry["encoding"])
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{at}: encoding: {exc}") from exc
        out.append(SubsetPredictions(model.strip(), players, {k: t for k, (_, t) in parsed.items()}, enc))
    return out


def _parse_region_masks(ds: DatasetConfig, data: dict, where: str) -> None:
    """``ground_truth_region`` / ``prediction_region``: files that are binary masks of one region.

    When one side is a label map, the region must be one the label map defines (so the label map can be reduced
    to it); when both sides are region masks, any name will do.
    """
    gtr = data.get("ground_truth_region")
    pr = data.get("prediction_region")
    if gtr is not None:
        if not isinstance(gtr, str) or not gtr:
            raise ConfigError(f"{where}: ground_truth_region must be a region name (e.g. WT)")
        ds.ground_truth_region = gtr
    if isinstance(pr, str):
        ds.prediction_regions = {"*": pr}
    elif isinstance(pr, dict):
        ds.prediction_regions = {str(m): str(r) for m, r in pr.items()}
    elif pr is not None:
        raise ConfigError(f"{where}: prediction_region must be a region name or a mapping model -> region")
    names = set(ds.label_map.regions) | set(ds.label_map.labels)
    if gtr is not None and pr is None and gtr not in names:
        raise ConfigError(f"{where}: ground_truth_region {gtr!r} is not a region or label of the predictions' "
                          f"label map ({', '.join(sorted(names)) or 'none declared'}); declare labels/regions or "
                          "label_convention")
    for model, region in ds.prediction_regions.items():
        if gtr is not None and region != gtr:
            raise ConfigError(f"{where}: prediction_region {region!r} differs from ground_truth_region {gtr!r}")
        if gtr is None and region not in names:
            raise ConfigError(f"{where}: prediction_region {region!r} (model {model}) is not a region or label of "
                              f"the ground truth's label map ({', '.join(sorted(names)) or 'none declared'})")


def _check_encoding_keys(data: dict, where: str) -> None:
    """Unknown keys of ``mask_encoding`` and ``prediction_encoding`` (one mapping, or one per model)."""
    keys = set(MaskEncoding.__dataclass_fields__)
    me = data.get("mask_encoding")
    if isinstance(me, dict):
        check_keys(me, keys, f"{where}: mask_encoding")
    pe = data.get("prediction_encoding")
    if isinstance(pe, dict):
        per_model = pe and all(isinstance(v, dict) for v in pe.values()) and not set(pe) & keys
        for model, enc in (pe.items() if per_model else [("", pe)]):
            check_keys(enc, keys, f"{where}: prediction_encoding" + (f".{model}" if model else ""))


def section_checks(section: str) -> dict[str, ValueCheck | None]:
    """Key -> :class:`ValueCheck` of one option section (``qc``, ``evaluate``, ``features``).

    From :data:`PROJECT_KEYS`; ``evaluate.policy`` (a mapping of the policy keys) maps to None.
    """
    prefix = f"{section}."
    return {k.key.removeprefix(prefix): k.check for k in PROJECT_KEYS if k.key.startswith(prefix)}


def check_option(section: str, key: str, value, where: str):
    """``value`` of ``section.key`` checked by its :class:`ValueCheck`; a :class:`ConfigError` naming the entry."""
    check = section_checks(section)[key]
    try:
        return check(value) if check is not None else value
    except ValueError as exc:
        raise ConfigError(f"{where}: {section}.{key} {exc}") from None


def check_section(values, section: str, where: str) -> None:
    """Validate one option section of a project file: its keys, then each value.

    Parameters
    ----------
    values:
        The section's mapping as loaded (``None`` when absent: nothing to check).
    section:
        ``"qc"``, ``"evaluate"`` or ``"features"``.
    where:
        The file, for messages.

    Raises
    ------
    ConfigError
        ``"<file>: evaluate: unknown key(s) 'surfce'; allowed keys: ..."`` or ``"<file>: evaluate.surface must be
        one of surfel, voxel, not 'cube'"``: the file and the entry named, before any step runs.
    """
    if values is None:
        return
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: {section} must be a mapping of options, not {values!r}")
    checks = section_checks(section)
    check_keys(values, checks, f"{where}: {section}")
    for key, value in values.items():
        if section == "evaluate" and key == "policy":
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: evaluate.policy must be a mapping of {', '.join(POLICY_KEYS)}")
            check_keys(value, POLICY_KEYS, f"{where}: evaluate.policy")
            for k, v in value.items():
                check_option("evaluate", k, v, where)
        else:
            check_option(section, key, value, where)


def check_version(version, where: str) -> None:
    """Refuse a project file of another format version than :data:`PROJECT_FILE_VERSION`.

    A file without ``version`` is version 1 (every file written before the key was checked), silently. Only
    the integer 1 is accepted: ``true``, ``"1"`` and ``1.5`` are refused, as is a future ``2`` (a newer
    segaudit's file, whose keys this one might read wrongly).
    """
    if isinstance(version, bool) or version != PROJECT_FILE_VERSION or not isinstance(version, int):
        raise ConfigError(f"{where}: version {version!r} is not a project-file version this segaudit reads (it "
                          f"reads version {PROJECT_FILE_VERSION}; write 'version: {PROJECT_FILE_VERSION}' or "
                          "upgrade segaudit)")


def parse_project(data: dict, base_dir: Path, path: Path | None = None) -> ProjectConfig:
    """Validate a project mapping (as loaded from YAML) and build a :class:`ProjectConfig`."""
    where = _where(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the project file must be a mapping with a 'datasets' key")
    check_keys(data, TOP_KEYS, where)
    check_version(data.get("version", PROJECT_FILE_VERSION), where)
    for section in OPTION_SECTIONS:
        check_section(data.get(section), section, where)
    datasets = data.get("datasets")
    if not isinstance(datasets, dict) or not datasets:
        raise ConfigError(f"{where}: 'datasets' must map dataset names to their settings")
    parsed = [parse_dataset(n, d, base_dir, path) for n, d in datasets.items()]
    return ProjectConfig(datasets=parsed, path=path, raw=data, name=str(data.get("name", "")))


def load_project(path: str | Path) -> ProjectConfig:
    """Read and validate a YAML project file.

    Raises
    ------
    ConfigError
        Missing or unreadable file, invalid YAML, unknown keys, templates without ``{case}``, unknown label
        conventions... The message names the file and the offending entry.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: project file not found")
    size = path.stat().st_size
    if size > MAX_PROJECT_BYTES:
        raise ConfigError(f"{path}: {size} bytes is too large for a project file (at most {MAX_PROJECT_BYTES})")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save the project file as "
                          "UTF-8") from exc
    try:
        data = yaml.load(text, Loader=_ProjectLoader)  # noqa: S506 - a SafeLoader without aliases
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from exc
    return parse_project(data, path.parent.resolve(), path)


#: Largest project file read (bytes): a project file is a page of settings, never megabytes.
MAX_PROJECT_BYTES = 1_000_000


class _ProjectLoader(yaml.SafeLoader):
    """YAML's safe loader (no ``!!python`` tags) that refuses aliases (``*name``).

    A 399-byte file of nested aliases expands to billions of nodes (the "billion laughs"); a project file has
    no need of them, so any alias is an error naming it, before anything is expanded.
    """

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"aliases are not allowed in project files (*{event.anchor} at line "
                                 f"{event.start_mark.line + 1}); write the value out")
        return super().compose_node(parent, index)


def dump_project(raw: dict) -> str:
    """YAML text of a project mapping, keys in the order given."""
    return yaml.safe_dump(raw, sort_keys=False, default_flow_style=None, width=110)
