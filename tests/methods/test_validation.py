"""Bad input gets a clear one-line error naming the problem."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hdfm_bench.methods import ConfigError, Objective, get_path, validation
from tests.helpers import data, make_path


@pytest.mark.parametrize("call,match", [
    (lambda: get_path("nope"), "unknown path 'nope'; known: noise_fm, hdfm"),
    (lambda: get_path("hdfm", b=1.0), "path 'hdfm' has no parameter 'b'; parameters: .*noise_scale.*a, t_min"),
    (lambda: get_path("hdfm", a=-1.0), "a must be >= 0"),
    (lambda: get_path("hdfm", a="fast"), "parameter 'a' expects float, got 'fast'"),
    (lambda: get_path("ihdm", K=2.5), "parameter 'K' expects int"),
    (lambda: get_path("ihdm", K=1), "K must be an integer >= 2"),
    (lambda: get_path("noise_fm", noise_scale=0), "noise_scale must be > 0"),
    (lambda: get_path("cold_blur", schedule="linear"), "unknown schedule 'linear'"),
    (lambda: get_path("blurring_diffusion", d_min=2.0), "d_min must lie in"),
    (lambda: Objective(get_path("hdfm"), "score"), "unknown target 'score'"),
    (lambda: Objective(get_path("hdfm"), "x", "x", "huber"), "unknown loss norm 'huber'"),
    (lambda: get_path("hdfm", a=float("inf")), "path 'hdfm': parameter 'a' must be a finite number, got inf"),
    (lambda: get_path("noise_fm", noise_scale="nan"), "parameter 'noise_scale' must be a finite number, got nan"),
    (lambda: get_path("blurring_diffusion", sigma_blur_max=float("inf")), "'sigma_blur_max' must be a finite"),
    (lambda: get_path("ihdm", noise_std=float("-inf")), "'noise_std' must be a finite number"),
])
def test_bad_configuration(call, match):
    with pytest.raises(ConfigError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_cli_style_string_parameters_are_coerced():
    p = get_path("ihdm", K="12", sigma_blur_max="8", delta="0.01")
    assert (p.K, p.sigma_blur_max, p.delta) == (12, 8.0, 0.01)
    assert get_path("cold_blur", final_mean="false").final_mean is False


@pytest.mark.parametrize("backend", [np.asarray, torch.as_tensor])
def test_bad_arrays(backend):
    path = get_path("hdfm")
    x, eps = data((3, 1, 4, 4))
    t = np.array([0.1, 0.5, 0.9])
    cases = [
        ((x[0], eps[0], t), "x has shape \\(1, 4, 4\\); expected \\(B, C, H, W\\) images or \\(B, D\\) signals"),
        ((x, eps[:, :, :2], t), "eps has shape \\(3, 1, 2, 4\\) but x has shape \\(3, 1, 4, 4\\)"),
        ((x, eps, t[:2]), "t has shape \\(2,\\); expected \\(3,\\)"),
        ((x, eps, t[:, None]), "t has shape \\(3, 1\\)"),
        ((x, eps, np.array([0.1, 1.5, 0.2])), "t must lie in \\[0, 1\\].*got values in \\[0.1, 1.5\\]"),
        ((np.where(x > 0.5, np.nan, x), eps, t), "x contains NaN or Inf"),
        ((x, np.where(eps > 1, np.inf, eps), t), "eps contains NaN or Inf"),
        ((x, eps, np.array([0.1, np.nan, 0.2])), "t contains NaN or Inf"),
        (((x * 10).astype(np.int64), eps, t), "x has dtype .*int64.*expected a real floating dtype"),
    ]
    for args, match in cases:
        with pytest.raises(ValueError, match=match):
            path.corrupt(*(backend(a) for a in args))


def test_validation_can_be_switched_off_for_hot_loops():
    path = get_path("noise_fm")
    x, eps = data((2, 4))
    x[0, 0] = np.nan
    with validation(False):
        z = path.corrupt(x, eps, np.array([0.5, 0.5]))
    assert np.isnan(z[0, 0])
    with pytest.raises(ValueError, match="NaN"):
        path.corrupt(x, eps, np.array([0.5, 0.5]))


def test_method_specific_refusals():
    x, eps = data((2, 1, 4, 4))
    with pytest.raises(ConfigError, match="cold_blur' is a deterministic operator path"):
        get_path("cold_blur").velocity(x, eps, np.array([0.5, 0.5]))
    with pytest.raises(ConfigError, match="data-dependent prior"):
        make_path("ihdm").prior(eps)
    with pytest.raises(ConfigError, match="data-dependent prior"):
        get_path("cold_blur").prior(eps)
    with pytest.raises(ValueError, match="data has shape"):
        make_path("ihdm").prior(eps, x[:1])


def test_api_misuse_is_named_not_a_bare_python_error():
    """A scalar t, arrays of two libraries, and a network output of the wrong shape or library."""
    path = get_path("hdfm")
    x, eps, t = torch.zeros(2, 1, 8, 8), torch.randn(2, 1, 8, 8), torch.full((2,), 0.5)
    with pytest.raises(ValueError, match=r"t must be a \(B,\) array with one time per sample, got float 0.5"):
        path.corrupt(x, eps, 0.5)
    with pytest.raises(ValueError, match="eps is a torch.Tensor but x is a numpy.ndarray; pass arrays of one library"):
        path.corrupt(x.numpy(), eps, t.numpy())
    z = path.corrupt(x, eps, t)
    obj = Objective(path)
    with pytest.raises(ValueError, match=r"network output has shape \(2, 1, 4, 4\); expected \(2, 1, 8, 8\)"):
        obj.loss(torch.zeros(2, 1, 4, 4), x, eps, t, z)
    with pytest.raises(ValueError, match="network output is a numpy.ndarray but z is a torch.Tensor"):
        path.convert(z.numpy(), "x", "v", z, t)
    assert path.convert(z, "x", "v", z, t).shape == z.shape  # the right call still works
