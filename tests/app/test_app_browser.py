"""The dashboard in headless Debian Chromium: ``run_app``'s server over real stores on a free port, every page
visited, real content asserted (numbers equal to the store's, case ids, the paired test's p-value), the case
viewer's slice non-blank with the ground-truth colour at a ground-truth voxel, every request to 127.0.0.1, and
one screenshot per page saved (under the test's temporary folder; set SEGAUDIT_SCREENSHOTS=docs/screenshots to
refresh the documentation's copies — a test never writes into the checkout by default)."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

import duckdb
import numpy as np
import pytest
from PIL import Image as PILImage

from app_store import (
    HOSTILE_DATASET,
    HOSTILE_META,
    HOSTILE_MODEL,
    HOSTILE_SUBJECT,
    built_audit_store,
    built_hostile_store,
    built_store,
)
from conftest import CHROMIUM, CHROMIUM_ARGS, chromium_playwright
from segaudit.analysis import paired_test
from segaudit.app import data, ui, viewer
from segaudit.app.launch import start_app

SHOTS = Path(os.environ.get("SEGAUDIT_SCREENSHOTS") or tempfile.mkdtemp(prefix="segaudit-app-shots-"))
SSA, SSA_CASE = "BraTS2024_SSA", "BraTS2024_SSA-00230-000"

pytestmark = pytest.mark.slow  # a store build, two app servers and a browser: about a minute or more


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(run: Path, project: Path | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = start_app(run, project, "127.0.0.1", port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                return proc, base
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    pytest.fail("the app server did not come up in 120 s")


def sql(run: Path, q: str, params=None):
    con = duckdb.connect(str(run / "segaudit.duckdb"), read_only=True)
    try:
        return con.execute(q, params or []).df()
    finally:
        con.close()


def settle(page, text: str, timeout: float = 90_000) -> None:
    """Wait for ``text`` and for Streamlit to finish running the script."""
    page.get_by_text(text, exact=False).first.wait_for(timeout=timeout)
    deadline = time.time() + timeout / 1000
    quiet = 0
    while time.time() < deadline and quiet < 3:
        running = page.locator('[data-testid="stStatusWidget"]').count()
        quiet = quiet + 1 if not running else 0
        time.sleep(0.4)


def shot(page, name: str) -> Path:
    """A full-page screenshot, palette-quantised to stay small."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    # Streamlit scrolls an inner container, not the document: grow the viewport to the content instead.
    height = page.evaluate("Math.max(...[...document.querySelectorAll('[data-testid=stMainBlockContainer]')]"
                           ".map(e => e.scrollHeight), 900)")
    page.set_viewport_size({"width": 1280, "height": min(int(height) + 120, 3600)})
    time.sleep(1.0)
    png = page.screenshot()
    page.set_viewport_size({"width": 1280, "height": 900})
    img = PILImage.open(io.BytesIO(png)).convert("RGB")
    out = SHOTS / f"app-{name}.png"
    img.quantize(colors=128, method=PILImage.Quantize.MEDIANCUT).save(out, optimize=True)
    return out


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    project, run = built_store(tmp_path_factory)
    return project, run, built_audit_store(tmp_path_factory)


def test_every_page_in_chromium(stores):
    project, run, audit_run = stores
    pw = chromium_playwright()
    procs = []
    requests: list[str] = []
    try:
        proc, base = serve(run, project)
        procs.append(proc)
        proc2, base2 = serve(audit_run, None)
        procs.append(proc2)
        with pw.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(90_000)  # a loaded 2-core CI machine: Playwright's 30 s is too short
            page.on("request", lambda r: requests.append(r.url))
            page.on("websocket", lambda ws: requests.append(ws.url))

            # Overview: the counts are the store's.
            page.goto(f"{base}/")  # the default page: Overview
            settle(page, "findings shown")
            page.locator('[data-testid="stMultiSelect"]').nth(2).wait_for(timeout=60_000)
            body = page.inner_text("body")
            n_metrics = len(sql(run, "SELECT * FROM metrics"))
            n_qc = len(sql(run, "SELECT * FROM qc"))
            assert f"{n_metrics}" in body
            assert f"{n_qc} of {n_qc} findings shown" in body
            assert "Run provenance" in body
            shots = [shot(page, "overview")]

            # Performance on LUMIERE: the best mean Dice sentence equals the store's mean.
            page.goto(f"{base}/performance?dataset=LUMIERE&metric=dice")
            settle(page, "Best mean dice")
            page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
            means = sql(run, "SELECT model, region, avg(value) AS m FROM metrics WHERE dataset = 'LUMIERE' AND "
                             "metric = 'dice' GROUP BY model, region ORDER BY m DESC")
            top = means.iloc[0]
            body = page.inner_text("body")
            assert f"Best mean dice: {top.model} on {top.region}, {ui.fmt(top.m, 4)}" in body
            shots.append(shot(page, "performance"))
            # Selecting a case opens it in the viewer, with the state in the URL.
            case = sorted(sql(run, "SELECT \"case\" FROM cases WHERE dataset = 'LUMIERE'")["case"])[0]  # the default
            page.get_by_role("button", name="Open in the case viewer").click()
            page.wait_for_url("**/case_viewer?**", timeout=60_000)
            settle(page, f"{case}, no image")  # LUMIERE has masks only: drawn on black
            assert "dataset=LUMIERE" in page.url
            assert f"case={case}" in page.url

            # Error matrix: the heatmap's cell text is the stored confusion count.
            page.goto(f"{base}/error_matrix?dataset=LUMIERE&model=nnUnet")
            settle(page, "Rows: ground truth")
            page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
            cell = sql(run, "SELECT sum(value) AS v FROM metrics WHERE dataset = 'LUMIERE' AND model = 'nnUnet' "
                            "AND region = 'confusion' AND metric = 'EDE->NEC'").v[0]
            assert str(int(cell)) in page.locator(".js-plotly-plot").first.inner_text()
            # Operate one control: the row-normalised view.
            page.get_by_text("row-normalised", exact=False).first.click()
            settle(page, "Rows: ground truth")
            shots.append(shot(page, "error-matrix"))

            # Compare on the imported AUDIT table: the p-value is analysis.paired_test's.
            page.goto(f"{base2}/compare?dataset=UCSD&baseline=BraTS25_1&candidate=BraTS25_3A&metric=dice")
            settle(page, "Friedman chi-square")
            raw = sql(audit_run, "SELECT \"case\", model, value FROM metrics WHERE metric = 'dice' AND region = 'ET' "
                                 "AND model IN ('BraTS25_1', 'BraTS25_3A')").pivot(index="case", columns="model",
                                                                                    values="value")
            ref = paired_test(raw.BraTS25_1, raw.BraTS25_3A)
            body = page.inner_text("body")
            assert f"ET: {ref['test']}, p = {ui.fmt(ref['p'])}" in body
            assert "BraTS25_1 has the best mean rank but" in body
            assert "Spearman rho = " in body
            shots.append(shot(page, "compare"))

            # Case viewer: open on the axial slice through a ground-truth voxel of label 2.
            files = data.case_files(run, SSA, SSA_CASE)
            disp = data.dataset_display(project, SSA)
            img = viewer.read_cached(files.images["flair"])
            gt_img = viewer.read_cached(files.ground_truth, "mask", disp.mask_encoding)
            vol = viewer.to_view(img)
            gtv = viewer.to_view(gt_img, viewer.orientation_of(img))
            vox = np.argwhere(gt_img.array == 2)
            voxel = tuple(int(v) for v in vox[len(vox) // 2])
            k = viewer.centroid_slice(vol, voxel, "axial")
            g2d, _ = viewer.take_slice(gtv, "axial", k)
            r, c = viewer.display_pixel(vol, "axial", voxel)
            assert g2d[r, c] == 2
            page.goto(f"{base}/case_viewer?dataset={SSA}&case={SSA_CASE}&model=nnUnet&sequence=flair&axis=axial"
                      f"&slice={k}")
            settle(page, "axial slice")
            el = page.locator('[data-testid="stImage"] img').first
            el.wait_for(timeout=60_000)
            src = el.get_attribute("src")
            shown = np.asarray(PILImage.open(io.BytesIO(page.request.get(
                src if src.startswith("http") else base + src).body())).convert("RGB")).astype(int)
            assert shown.std() > 10  # not blank
            sr, sc = shown.shape[0] / g2d.shape[0], shown.shape[1] / g2d.shape[1]
            px = shown[int((r + 0.5) * sr), int((c + 0.5) * sc)]
            # Label 2 is drawn green at 40 % opacity over grey: green dominates at the voxel.
            assert px[1] - px[0] > 40, px
            assert px[1] - px[2] > 40, px
            body = page.inner_text("body")
            assert f"{SSA_CASE}, flair, nnUnet: axial slice {k} (slices 0 to" in body
            shots.append(shot(page, "case-viewer"))
            # The 2D slice dataset, for the screenshot of a photo-like image with its overlays.
            wb = data.worst_best_cases(run, "brainmets_t2w_slices", "dice", 1)
            best = wb[wb.rank_kind == "best"].case.iloc[0]
            page.goto(f"{base}/case_viewer?dataset=brainmets_t2w_slices&case={best}&model=unet")
            settle(page, "2D image")
            page.locator('[data-testid="stImage"] img').first.wait_for(timeout=60_000)
            shots.append(shot(page, "case-viewer-2d"))

            # Dataset explorer: the count sentence is the store's; one control (the ±k SD filter) operated.
            feature = data.feature_name("", "lesion", "metastasis", "volume")
            page.goto(f"{base}/explorer?dataset=brainmets_t2w_slices&view=Univariate&feature={quote(feature)}"
                      "&plot=box%20%2B%20points")
            settle(page, "cases with a value shown")
            page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
            x = sql(run, "SELECT value FROM features WHERE dataset = 'brainmets_t2w_slices' AND model = '' AND "
                         "\"group\" = 'lesion' AND source = 'metastasis' AND feature = 'volume'").value.to_numpy()
            assert f"{len(x)} of {len(x)} cases with a value shown" in page.inner_text("body")
            page.locator('[data-testid="stSelectbox"]').filter(has_text="Outlier filter").click()
            page.get_by_role("option", name="SD", exact=True).click()
            kept = int((np.abs(x - x.mean()) <= 1.5 * x.std(ddof=1)).sum())
            assert kept < len(x)  # the filter removes the largest metastases: the view must change
            settle(page, f"{kept} of {len(x)} cases with a value shown; the filter removed {len(x) - kept}")
            shots.append(shot(page, "explorer"))
            page.goto(f"{base}/explorer?dataset=brainmets_t2w_slices&view=Case%20embeddings&embedding=t-SNE"
                      "&colour=subject")
            settle(page, "t-SNE of 24 cases")
            page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
            shots.append(shot(page, "explorer-embedding"))
            page.goto(f"{base}/explorer?dataset={SSA}&view=One%20case&case={SSA_CASE}")
            settle(page, f"voxels of {SSA_CASE}")
            plots = page.locator(".js-plotly-plot")
            plots.nth(2).wait_for(timeout=60_000)  # Plotly draws its charts after Streamlit settles
            assert plots.count() == 3
            shots.append(shot(page, "explorer-case"))

            # Longitudinal: the week-000 true WT volume is the stored feature.
            page.goto(f"{base}/longitudinal?dataset=LUMIERE&region=WT")
            settle(page, "Patient-002: 3 time point(s)")
            page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
            shots.append(shot(page, "longitudinal"))

            # Subject exploration: the features-against-cohort sentence; the button opens the viewer.
            case = "BraTS-MET-00233-000_1055"
            page.goto(f"{base}/subject?dataset=brainmets_t2w_slices&case={case}")
            settle(page, "features against 24 cases")
            shots.append(shot(page, "subject"))
            page.get_by_role("button", name="Open in the case viewer").click()
            page.wait_for_url("**/case_viewer?**", timeout=60_000)
            settle(page, f"{case}, image, unet")
            browser.close()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
    outside = [u for u in requests if not u.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:"))]
    assert requests
    assert outside == []
    for s in shots:
        assert s.stat().st_size < 400_000, (s, s.stat().st_size)


def test_hostile_names_stay_text_in_chromium(tmp_path_factory):
    """A store whose dataset, model, case ids, subject and metadata are HTML, quotes, ``&`` and ``$``: every page
    shows them literally and no dialog fires (a name rendered as HTML would run its alert)."""
    project, run = built_hostile_store(tmp_path_factory)
    case = f"{HOSTILE_SUBJECT}-week-000"
    pw = chromium_playwright()
    dialogs: list[str] = []
    proc, base = serve(run, project)
    try:
        with pw.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            def on_dialog(dialog) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            ds = {"dataset": HOSTILE_DATASET}
            visits = [
                ("", {}, "findings shown", []),  # the Overview's names are in its tables (drawn on a canvas)
                ("explorer", {**ds, "view": "Univariate", "group": "site", "plot": "box + points"},
                 "cases with a value shown", [HOSTILE_META]),  # a box's group label
                ("explorer", {**ds, "view": "Multivariate", "colour": "site"}, "cases with both values",
                 [HOSTILE_META]),  # the legend
                ("performance", {**ds, "metric": "dice"}, "Best mean dice", [HOSTILE_MODEL]),
                ("compare", {**ds, "baseline": "SegResNet", "candidate": HOSTILE_MODEL}, "Why this test",
                 [f"{HOSTILE_MODEL} vs SegResNet"]),
                ("longitudinal", {**ds, "region": "WT"}, "time point(s)", [f"{HOSTILE_SUBJECT}: 3 time point(s)"]),
                ("subject", {**ds, "case": case}, "features against", [f"Subject {HOSTILE_SUBJECT}: 3 case(s)"]),
                ("case_viewer", {**ds, "case": case, "model": HOSTILE_MODEL}, "axial slice",
                 [f"{case}, no image, {HOSTILE_MODEL}"]),
            ]
            for name, params, marker, literal in visits:
                page.goto(f"{base}/{name}?{urlencode(params)}")
                settle(page, marker)
                page.mouse.move(300, 300)
                body = page.inner_text("body")
                for text in literal:
                    assert text in body, (name, text)
                # Streamlit's own page has one inline script; none may carry a name from the data.
                injected = page.evaluate("document.querySelectorAll('[onerror], [onload], [onmouseover]').length + "
                                         "[...document.scripts].filter(e => e.textContent.includes('alert')).length")
                assert injected == 0, name
                if name == "explorer" and params.get("group") == "site":
                    shot(page, "hostile-explorer")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert dialogs == []
