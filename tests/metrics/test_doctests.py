"""The ``Examples`` sections of the metric modules run as doctests (issue 14, item 8).

Every value in those examples is computed by hand in the example's comment (tiny synthetic arrays), so a
doctest failing here is a metric that changed, or an example that no longer says the truth.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import segaudit.base as base_pkg
import segaudit.metrics as metrics_pkg

MODULES = sorted([m.name for m in pkgutil.iter_modules(metrics_pkg.__path__, prefix="segaudit.metrics.")]
                 + [m.name for m in pkgutil.iter_modules(base_pkg.__path__, prefix="segaudit.base.")])

#: The public metric functions that must carry a runnable example.
WITH_EXAMPLES = {
    "segaudit.metrics.overlap": ("counts", "dice", "iou", "precision", "sensitivity", "specificity", "accuracy",
                                 "volumes", "overlap_metrics"),
    "segaudit.metrics.surface": ("surface_distances", "hausdorff", "assd", "masd", "nsd"),
    "segaudit.metrics.lesions": ("lesion_metrics",),
    "segaudit.base.masks": ("connected_components",),
    "segaudit.metrics.instance": ("panoptic_quality", "aggregated_jaccard_index", "aggregated_jaccard_index_plus",
                                  "per_class_pq", "instance_metrics"),
    "segaudit.metrics.probability": ("pearson", "roc_auc", "average_precision", "brier", "probability_metrics"),
    "segaudit.metrics.evaluate": ("evaluate_pair", "metric_names"),
    "segaudit.metrics.policy": ("EmptyPolicy", "image_diagonal", "hd_name", "lesion_hd_name", "nsd_name",
                                "registry_key"),
    "segaudit.metrics.agreement": ("majority_vote", "binary_majority", "volume_spread", "outlier_model"),
    "segaudit.metrics.units": ("metric_unit",),
}


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests_pass(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest example(s) of {name} failed"


@pytest.mark.parametrize("name", sorted(WITH_EXAMPLES))
def test_public_metric_functions_have_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(recurse=False)
    for func in WITH_EXAMPLES[name]:
        obj = getattr(module, func)
        tests = finder.find(obj, func, module=module)
        assert tests, f"{name}.{func} has no runnable Examples section"
        assert tests[0].examples, f"{name}.{func} has no runnable Examples section"
        assert "Examples\n" in obj.__doc__, f"{name}.{func}: examples belong in a numpydoc Examples section"


def test_every_metric_module_is_collected():
    # A new module of segaudit.metrics is run by the doctest test above without being listed.
    assert {"segaudit.metrics.overlap", "segaudit.metrics.surface", "segaudit.metrics.lesions",
            "segaudit.metrics.instance", "segaudit.metrics.evaluate"} <= set(MODULES)
