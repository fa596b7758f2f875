"""Case viewer.

Slices of a case's image with its ground truth and a model's prediction drawn over it (outline or fill, opacity,
TP/FP/FN colouring for one label or region), window/level, axial/coronal/sagittal views with the physical aspect ratio,
zoom to the lesions in 2D, the lesion table with jump-to-lesion, and the case's metric rows beside the image. Slices are
rendered on the server from volumes read once per session.
"""

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st

from segaudit.app import ui, viewer

run = ui.run_dir()
st.title("Case viewer")
c1, c2, c3 = st.columns(3)
dataset, case = ui.pick_case(c1, c2)
with c3:
    model = ui.select("Model", ["(none)"] + ui.call("models", dataset), "model",
                      default=(ui.call("models", dataset) or ["(none)"])[0])

files = ui.call("case_files", dataset, case)
disp = ui.display(dataset)
metrics = ui.call("case_metrics", dataset, case)
lesions = ui.call("case_lesions", dataset, case)
left, right = st.columns([3, 2])


def _reader(path: str) -> Callable[[], bytes]:
    """A callable that reads the file's bytes when called (a download reads only when clicked)."""

    def read() -> bytes:
        return Path(path).read_bytes()

    return read


@st.cache_resource(show_spinner=False, max_entries=64)
def _window(path: str, mtime: int, preset: str) -> tuple[float, float]:
    return viewer.window_bounds(ui.volume(path).array, preset)


def slice_key(axis: str) -> str:
    return f"slice_{axis}"


@st.fragment
def image_panel(dataset: str, case: str, model: str, files, disp, lesions) -> None:
    """The image and its controls.

    A fragment, so a slice or overlay change reruns only this part (the tables beside it are not re-sent).
    """
    if disp is None:
        st.text("No project file was given (segaudit app RUN --project PROJECT.yaml), or it has no dataset of this "
                "name: images and masks are not shown, the metric rows and lesions are.")
    elif not files.ground_truth and not files.images:
        st.text("The store records no readable file for this case.")
    else:
        seqs = list(files.images)
        v1, v2 = st.columns(2)
        with v1:
            seq = ui.select("Sequence", seqs, "sequence") if seqs else None
        image_path = files.images.get(seq) if seq else None
        ref_path = image_path or files.ground_truth
        image = ui.volume(image_path) if image_path else None
        gt = ui.volume(files.ground_truth, "mask", disp.mask_encoding, ref_path) if files.ground_truth else None
        pred_path = files.predictions.get(model)
        pred = ui.volume(pred_path, "mask", ui.data.model_encoding(disp, model), ref_path) if pred_path else None
        base = next(v for v in (image, gt, pred) if v is not None)
        shape = base.array.shape[: base.ndim]
        mismatch = [n for n, v in (("ground truth", gt), ("prediction", pred))
                    if v is not None and v.array.shape[: v.ndim] != shape]
        if mismatch:
            st.text(f"Not drawn: the {' and '.join(mismatch)} is on another voxel grid than the image.")
            gt = None if "ground truth" in mismatch else gt
            pred = None if "prediction" in mismatch else pred
        with v2:
            if base.ndim == 3:
                axis = st.radio("View", list(viewer.AXES), horizontal=True, key="axis",
                                index=list(viewer.AXES).index(ui.param("axis", "axial"))
                                if ui.param("axis", "axial") in viewer.AXES else 0)
                assert axis is not None  # a radio with a default index always holds one of its options
                st.query_params["axis"] = axis
            else:
                axis = "axial"
        n = viewer.n_slices(base, axis)
        if base.ndim == 3 and slice_key(axis) not in st.session_state:
            start = ui.param("slice")
            if start is not None and start.isdigit():
                st.session_state[slice_key(axis)] = min(int(start), n - 1)
            elif gt is not None and gt.array.any():
                # Open on the slice with the most ground-truth voxels.
                a = viewer.SLICE_AXIS[axis]
                area = (gt.array != 0).sum(axis=tuple(i for i in range(3) if i != a))
                st.session_state[slice_key(axis)] = int(n - 1 - np.argmax(area[::-1]))
            else:
                st.session_state[slice_key(axis)] = n // 2
        # Jump to a lesion: its centroid's slice (before the slider, which then shows the new value).
        mine = lesions[(lesions.source == "gt") & (lesions.model == model)] if model != "(none)" else \
            lesions[lesions.source == "gt"].drop_duplicates(["region", "lesion_id"])
        mine = mine[mine.centroid.notna()]
        if base.ndim == 3 and len(mine):
            names = ["(choose)"] + [f"{r.region} lesion {r.lesion_id}: {r.volume:g} voxels in mm³, "
                                    f"{'matched' if r.matched else 'missed'}" for r in mine.itertuples()]

            def jump() -> None:
                i = names.index(st.session_state["lesion_jump"])
                if i > 0:
                    st.session_state[slice_key(axis)] = viewer.centroid_slice(base, mine.iloc[i - 1].centroid, axis)

            st.selectbox("Jump to lesion", names, key="lesion_jump", on_change=jump)
        if base.ndim == 3:
            def step(delta: int) -> None:
                key = slice_key(axis)
                st.session_state[key] = int(np.clip(st.session_state[key] + delta, 0, n - 1))

            s1, s2, _ = st.columns([1, 1, 1])
            # Buttons as well as the slider: one click is one slice, sent at once (no drag to settle).
            s1.button("Previous slice", key="slice_prev", on_click=step, args=(-1,))
            s2.button("Next slice", key="slice_next", on_click=step, args=(1,))
            index = st.slider("Slice", 0, n - 1, key=slice_key(axis))
            st.query_params["slice"] = str(index)
        else:
            index = 0
        w1, w2, w3, w4 = st.columns(4)
        presets = list(viewer.PERCENTILES) + list(viewer.PRESETS) + ["manual"]
        preset = w1.selectbox("Window", presets, key="window")
        gt_style = w2.selectbox("Ground truth", ["fill", "outline", "off"], key="gt_style")
        pred_style = w3.selectbox("Prediction", ["outline", "fill", "off"], key="pred_style")
        # A selectbox with a default index over fixed options always holds one of them.
        assert preset is not None
        assert gt_style is not None
        assert pred_style is not None
        if preset == "manual" and image is not None:
            assert image_path is not None  # image is read from image_path
            lo0, hi0 = _window(image_path, os.stat(image_path).st_mtime_ns, "full range")
            m1, m2 = st.columns(2)
            level = m1.number_input("Level", value=float((lo0 + hi0) / 2), key="level")
            width = m2.number_input("Width", value=float(hi0 - lo0), min_value=1e-6, key="width")
            window = viewer.window_bounds(image.array, level=level, width=width)
        elif image is not None and not image.is_color:
            assert image_path is not None  # image is read from image_path
            window = _window(image_path, os.stat(image_path).st_mtime_ns, preset)
        else:
            window = None
        opacity = w4.slider("Opacity", 0.0, 1.0, 0.4, 0.05, key="opacity")
        choices = ["labels"] + [f"TP/FP/FN: {k}" for k in {**disp.labels, **disp.regions}]
        colouring = st.selectbox("Colouring", choices, key="colouring")
        assert colouring is not None  # a selectbox with a default index always holds one of its options
        agreement = None
        if colouring != "labels":
            name = colouring.split(": ", 1)[1]
            agreement = disp.regions.get(name) or (disp.labels[name],)
        crop = st.checkbox("Zoom to the lesions", value=False, key="crop") if base.ndim == 2 else False
        img2d, spacing = viewer.take_slice(image, axis, index) if image is not None else (None, None)
        gt2d, sp_gt = viewer.take_slice(gt, axis, index) if gt is not None else (None, None)
        pred2d, sp_pred = viewer.take_slice(pred, axis, index) if pred is not None else (None, None)
        spacing = spacing or sp_gt or sp_pred
        assert spacing is not None  # base (image, ground truth or prediction) is always drawn
        box = viewer.lesion_crop_box(gt2d, pred2d) if crop else None
        rgb = viewer.render_view(img2d, gt2d, pred2d, spacing, viewer.Overlay(gt_style, pred_style, opacity, agreement),
                            window, box)
        st.image(viewer.to_png(rgb), caption=None)
        where = f"{axis} slice {index} (slices 0 to {n - 1})" if base.ndim == 3 else "2D image"
        st.text(f"{case}, {seq or 'no image'}, {model}: {where}" + (" (zoomed to the lesions)" if box else ""))
        st.text("Colours: " + ("green true positive, red false positive, blue false negative" if agreement else
                               f"ground truth by label ({viewer.label_legend(disp.labels)}), prediction cyan"))


with left:
    image_panel(dataset, case, model, files, disp, lesions)

with right:
    st.subheader("Metrics")
    if metrics.empty:
        st.text("No metric rows for this case.")
    else:
        m = metrics[metrics.model == model] if model != "(none)" else metrics
        m = m[~m.metric.isin(["gt_empty", "pred_empty"])]
        st.dataframe(m.pivot_table(index="metric", columns="region", values="value", aggfunc="first"),
                     width="stretch", key="case_metrics")
    st.subheader("Lesions")
    if lesions.empty:
        st.text("No lesion rows (evaluate with lesion matching).")
    else:
        t = lesions[lesions.model == model] if model != "(none)" else lesions
        st.dataframe(t.drop(columns=["centroid"]), hide_index=True, width="stretch", key="case_lesions")
    st.subheader("Files")
    named = [*((f"image {k}" if k != "image" else "image", v) for k, v in files.images.items()),
             *((["ground truth", files.ground_truth],) if files.ground_truth else ()),
             *((f"prediction {k}", v) for k, v in files.predictions.items())]
    if not named:
        st.text("The store records no readable file for this case.")
    for i, (what, path) in enumerate(named):
        # Only paths the store's files table names; read when clicked, not on every rerun.
        st.download_button(f"Download {what}", _reader(path), file_name=Path(path).name, key=f"file_{i}")
    itksnap = shutil.which("itksnap")
    if itksnap and files.ground_truth and st.button("Open in ITK-SNAP", key="itksnap"):
        main_image = next(iter(files.images.values()), files.ground_truth)
        subprocess.Popen([itksnap, "-g", main_image, "-s", files.ground_truth])  # noqa: S603 - store paths only
