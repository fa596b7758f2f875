"""Label maps, regions and the label conventions of the field.

A *label map* names the integer values of a mask (``{"ENH": 1, "NEC": 2, "EDE": 3}``); a *region* is a set of
label values evaluated together (BraTS whole tumour = all tumour labels). Conventions differ between
challenges and a wrong one silently swaps structures, so the presets below are spelled out with their
sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from segaudit.errors import ConfigError


@dataclass(frozen=True)
class LabelConvention:
    """A named label map with its regions (region name -> label values)."""

    name: str
    labels: dict[str, int]
    regions: dict[str, tuple[int, ...]]
    description: str = ""


LABEL_CONVENTIONS: dict[str, LabelConvention] = {
    "audit": LabelConvention(
        "audit",
        {"ENH": 1, "NEC": 2, "EDE": 3},
        {"WT": (1, 2, 3), "TC": (1, 2), "ET": (1,)},
        "AUDIT (github caumente/AUDIT): 1 enhancing tumour, 2 necrosis, 3 edema.",
    ),
    "brats2020": LabelConvention(
        "brats2020",
        {"NCR_NET": 1, "ED": 2, "ET": 4},
        {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)},
        "BraTS 2017-2021: 1 necrotic/non-enhancing core, 2 peritumoral edema, 4 enhancing tumour (no 3).",
    ),
    "brats2023": LabelConvention(
        "brats2023",
        {"NETC": 1, "SNFH": 2, "ET": 3, "RC": 4},
        {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)},
        "BraTS 2023+: 1 non-enhancing tumour core, 2 surrounding FLAIR hyperintensity, 3 enhancing tumour, "
        "4 resection cavity (BraTS 2024 post-treatment; not part of WT/TC).",
    ),
    "consep": LabelConvention(
        "consep",
        {"other": 1, "inflammatory": 2, "epithelial": 3, "spindle_shaped": 4},
        {"nuclei": (1, 2, 3, 4)},
        "CoNSeP (Graham et al., HoVer-Net 2019) nucleus types as evaluated, its 7 annotated types merged into 4: "
        "1 other, 2 inflammatory, 3 epithelial (healthy + malignant/dysplastic), 4 spindle-shaped (fibroblast, "
        "muscle, endothelial). Region nuclei = every nucleus (where instance metrics are stored).",
    ),
    "binary": LabelConvention("binary", {"foreground": 1}, {}, "One foreground label (value 1)."),
}


def unique_regions(labels: dict[str, int], regions: dict[str, tuple[int, ...]],
                   where: str = "label map") -> dict[str, tuple[int, ...]]:
    """Regions whose name is not already a label's name, so every name is scored (and stored) once.

    BraTS 2020/2023 name a label ``ET`` and a region ``ET`` of that one label: the region is dropped, since its
    rows would duplicate the label's under the same name (and count every case twice in any summary). A region
    that shares a label's name but not its value is a contradiction and raises :class:`ConfigError`.
    """
    out: dict[str, tuple[int, ...]] = {}
    for name, vals in regions.items():
        if name in labels:
            if tuple(sorted(set(vals))) != (labels[name],):
                raise ConfigError(f"{where}: region {name!r} has the name of label {name!r} (value "
                                  f"{labels[name]}) but other values {list(vals)}; rename one of them")
            continue
        out[name] = tuple(vals)
    return out


@dataclass
class LabelMap:
    """The labels and regions of one dataset.

    Attributes
    ----------
    labels:
        Label name -> integer value. Background (0) is implicit and never listed.
    regions:
        Region name -> tuple of label values (a region may coincide with one label).
    convention:
        Name of the preset it came from, if any.
    """

    labels: dict[str, int] = field(default_factory=dict)
    regions: dict[str, tuple[int, ...]] = field(default_factory=dict)
    convention: str = ""

    @property
    def values(self) -> set[int]:
        """All declared label values (background excluded)."""
        return set(self.labels.values())

    def name_of(self, value: int) -> str:
        """The name of a label value, or ``'label_<value>'`` when it is not declared."""
        for k, v in self.labels.items():
            if v == value:
                return k
        return f"label_{value}"

    @classmethod
    def from_config(cls, labels: dict | None, regions: dict | None, convention: str | None,
                    where: str) -> LabelMap:
        """Build from a dataset's ``labels``/``regions``/``label_convention`` entries.

        Explicit ``labels`` or ``regions`` override the convention's. Region members may be label names or
        values. ``where`` names the dataset in error messages.
        """
        base = LabelMap()
        if convention:
            key = convention.lower().replace(" ", "").replace("-", "").replace("+", "")
            if key not in LABEL_CONVENTIONS:
                raise ConfigError(f"{where}: unknown label_convention {convention!r}; "
                                  f"choose one of {', '.join(LABEL_CONVENTIONS)}")
            conv = LABEL_CONVENTIONS[key]
            base = LabelMap(dict(conv.labels), dict(conv.regions), conv.name)
        if labels is not None:
            if not isinstance(labels, dict):
                raise ConfigError(f"{where}: labels must be a mapping name -> value")
            parsed: dict[str, int] = {}
            for name, value in labels.items():
                if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                    raise ConfigError(f"{where}: label {name!r} must have a positive integer value, "
                                      f"not {value!r} (0 is background)")
                parsed[str(name)] = value
            if len(set(parsed.values())) != len(parsed):
                raise ConfigError(f"{where}: two labels share one value in {parsed}")
            base.labels = parsed
            if regions is None and convention is None:
                base.regions = {}
        if regions is not None:
            if not isinstance(regions, dict):
                raise ConfigError(f"{where}: regions must be a mapping name -> list of labels")
            parsed_regions: dict[str, tuple[int, ...]] = {}
            for rname, members in regions.items():
                if not isinstance(members, list | tuple) or not members:
                    raise ConfigError(f"{where}: region {rname!r} must list one or more labels")
                vals: list[int] = []
                for m in members:
                    if isinstance(m, int) and not isinstance(m, bool):
                        vals.append(m)
                    elif str(m) in base.labels:
                        vals.append(base.labels[str(m)])
                    else:
                        raise ConfigError(f"{where}: region {rname!r} names unknown label {m!r} "
                                          f"(labels: {', '.join(base.labels) or 'none'})")
                parsed_regions[str(rname)] = tuple(sorted(set(vals)))
            base.regions = parsed_regions
        base.regions = unique_regions(base.labels, base.regions, where)
        return base

    def to_config(self) -> dict:
        """Entries for a project file (names, not values, in regions where possible)."""
        out: dict = {}
        if self.convention:
            out["label_convention"] = self.convention
        out["labels"] = dict(self.labels)
        if self.regions:
            out["regions"] = {r: [self.name_of(v) for v in vals] for r, vals in self.regions.items()}
        return out
