"""segaudit's stand-ins for the four timm helpers LiteMedSAM's model code imports, against their definitions."""

from __future__ import annotations

import subprocess
import sys

import pytest
from scipy import stats

torch = pytest.importorskip("torch")

from segaudit.models import _timm_compat as tc  # noqa: E402


def test_trunc_normal_matches_scipy_truncnorm_moments_and_bounds():
    torch.manual_seed(0)
    t = tc.trunc_normal_(torch.empty(200_000), mean=0.5, std=2.0, a=-1.0, b=4.0)
    ref = stats.truncnorm((-1.0 - 0.5) / 2.0, (4.0 - 0.5) / 2.0, loc=0.5, scale=2.0)
    x = t.double().numpy()
    assert x.min() >= -1.0
    assert x.max() <= 4.0
    assert abs(x.mean() - ref.mean()) < 0.02
    assert abs(x.std() - ref.std()) < 0.02
    assert stats.kstest(x[:20_000], ref.cdf).pvalue > 1e-3


def test_drop_path_is_identity_in_eval_and_stochastic_depth_in_training():
    x = torch.ones(10_000, 3, 2)
    m = tc.DropPath(0.3)
    m.eval()
    assert torch.equal(m(x), x)
    assert torch.equal(tc.DropPath(None).train()(x), x)
    m.train()
    y = m(x)
    per_sample = y.reshape(10_000, -1)
    # whole samples dropped (all zero) or kept and scaled by 1/(1-p)
    assert torch.all((per_sample == 0).all(dim=1) | torch.isclose(per_sample, torch.tensor(1 / 0.7)).all(dim=1))
    assert abs((per_sample[:, 0] == 0).float().mean().item() - 0.3) < 0.02
    assert "drop_prob=0.300" in repr(m)


def test_to_2tuple_and_register_model():
    assert tc.to_2tuple(7) == (7, 7)
    assert tc.to_2tuple((3, 4)) == (3, 4)
    assert tc.to_2tuple("ab") == ("ab", "ab")

    @tc.register_model
    def tiny():
        return "tiny"

    assert tc.MODEL_REGISTRY["tiny"] is tiny
    assert tiny() == "tiny"


def test_shim_serves_the_timm_names_only_inside_the_block():
    if tc.timm_importable():
        pytest.skip("the real timm imports here: the stand-ins are not used")
    with tc.timm_shim() as used:
        from timm.models.layers import DropPath, to_2tuple, trunc_normal_  # noqa: F401
        from timm.models.registry import register_model  # noqa: F401
        assert used
        assert DropPath is tc.DropPath
    assert not any(name == "timm" or name.startswith("timm.") for name in sys.modules)


def test_importing_segaudit_models_never_imports_torch():
    code = "import sys, segaudit.models, segaudit.models.prompts, segaudit.models.propagate; " \
           "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": ":".join(sys.path)})
    assert out.stdout.strip() == "False"
