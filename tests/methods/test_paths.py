"""Every Gaussian path: velocity = dz/dt, endpoints, conversions, losses; discrete paths."""
from __future__ import annotations

import numpy as np
import pytest

from hdfm_bench.methods import ConfigError, Objective, get_path, list_paths, spectral
from tests.helpers import GAUSSIAN, SMALL, data, make_path

T_MID = np.array([0.2, 0.5, 0.8])  # away from every clamp (t_eps = 0.05, t_min = 1e-4, IHDM's last level)


@pytest.mark.parametrize("name", GAUSSIAN)
def test_velocity_is_time_derivative(name, shape):
    path = make_path(name)
    x, eps = data(shape)
    h = 1e-6
    fd = (path.corrupt(x, eps, T_MID + h) - path.corrupt(x, eps, T_MID - h)) / (2 * h)
    v = path.velocity(x, eps, T_MID)
    np.testing.assert_allclose(v, fd, rtol=1e-4, atol=1e-4 * np.abs(v).max())


@pytest.mark.parametrize("name", [n for n in GAUSSIAN if n != "hdfm_code"])  # its "v" is not ż (§6.4)
def test_conversion_of_true_x_gives_true_eps_and_velocity(name, shape):
    """convert(x, x→eps) = ε and convert(x, x→v) = ż at the true x: ties §2.4 to the path."""
    path = make_path(name)
    x, eps = data(shape, seed=1)
    z = path.corrupt(x, eps, T_MID)
    v = path.convert(x, "x", "v", z, T_MID)
    np.testing.assert_allclose(v, path.velocity(x, eps, T_MID), atol=1e-9 * max(1, np.abs(v).max()))
    if "eps" in path.kinds:
        np.testing.assert_allclose(path.convert(x, "x", "eps", z, T_MID), eps, atol=1e-9)


@pytest.mark.parametrize("name", [n for n in GAUSSIAN if n != "ihdm"])
def test_round_trip_x_eps_v_x(name, shape):
    path = make_path(name)
    x, eps = data(shape, seed=2)
    xhat, _ = data(shape, seed=3)  # any prediction, not the truth
    z = path.corrupt(x, eps, T_MID)
    e = path.convert(xhat, "x", "eps", z, T_MID)
    v = path.convert(e, "eps", "v", z, T_MID)
    back = path.convert(v, "v", "x", z, T_MID)
    np.testing.assert_allclose(back, xhat, atol=1e-7)
    np.testing.assert_allclose(path.convert(v, "v", "eps", z, T_MID), e, atol=1e-7)


@pytest.mark.parametrize("name", GAUSSIAN)
@pytest.mark.parametrize("space", ["x", "eps", "v"])
@pytest.mark.parametrize("target", ["x", "eps", "v"])
def test_loss_equals_error_in_loss_space(name, target, space, shape):
    """JiT's nine combinations: loss = mean |convert(pred → S) − q_S(truth)|² (docs/methods.md §2.5)."""
    path = make_path(name)
    if path.refusal(target, space):
        with pytest.raises(ConfigError):
            Objective(path, target, space)
        return
    obj = Objective(path, target, space)
    x, eps = data(shape, seed=4)
    z = path.corrupt(x, eps, T_MID)
    truth = {"x": x, "eps": eps, "v": path.regression_target("v", x, eps, T_MID, z)}
    pred = truth[target] + 0.1 * data(shape, seed=5)[1]
    got = obj.loss(pred, x, eps, T_MID, z)
    diff = path.convert(pred, target, space, z, T_MID) - truth[space]
    want = (diff**2).reshape(diff.shape[0], -1).mean(axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-8)


def test_jit_v_loss_weight_is_one_over_one_minus_t():
    # JiT (§2.5): v-loss of an x-prediction = x-loss / (1 − t)², clamped at t_eps = 0.05.
    path = get_path("noise_fm")
    x, eps = data((4, 3, 4, 4))
    xhat = x + 0.1 * eps
    t = np.array([0.1, 0.5, 0.9, 0.99])
    xl = Objective(path, "x", "x").loss(xhat, x, eps, t)
    vl = Objective(path, "x", "v").loss(xhat, x, eps, t)
    np.testing.assert_allclose(vl, xl / np.maximum(1 - t, 0.05) ** 2, rtol=1e-10)


def test_hdfm_code_target_uses_its_laplacian_coefficient():
    """Code target = ż − (c − a)Δu_t (docs/methods.md §6.4); exact when c = a."""
    x, eps = data((2, 1, 8, 8))
    t = np.array([0.3, 0.7])
    exact = get_path("hdfm")
    code = get_path("hdfm_code")
    z = exact.corrupt(x, eps, t)
    u = spectral.heat_blur(x, exact.heat_time(t))
    lap = spectral.laplacian(u)
    v_code = code.regression_target("v", x, eps, t, z)
    np.testing.assert_allclose(v_code, exact.velocity(x, eps, t) - 0.5 * lap, atol=1e-10)
    same = get_path("hdfm_code", target_laplacian=0.5)
    np.testing.assert_allclose(same.regression_target("v", x, eps, t, z), exact.velocity(x, eps, t), atol=1e-10)
    # The split form b − aℓ is the exact velocity at the true x.
    b, ell = exact.split_velocity(x, z, t)
    np.testing.assert_allclose(b - 0.5 * ell, exact.velocity(x, eps, t), atol=1e-10)


def test_hdfm_gain_is_t_power():
    path = get_path("hdfm", a=0.5)
    x = np.zeros((2, 1, 8, 8))
    t = np.array([0.3, 0.6])
    lam = spectral.eigenvalues(x)
    np.testing.assert_allclose(path.alpha(t, x)[:, 0], t[:, None, None] ** (1 + 0.5 * lam), rtol=1e-12)


def test_blurring_diffusion_schedule_values():
    # docs/methods.md §5.1 table (τ = 1 − t): τ=0: a = 1.000, σ = 0.0067; τ = 0.5: a = σ = 0.707,
    # σ_B/σ_B,max = 0.5; τ = 1: a = 0.0067. Variance preserving: a² + σ² = 1.
    p = get_path("blurring_diffusion")
    t = np.array([1.0, 0.75, 0.5, 0.0])
    a, s = p.scale(t), p.sigma(t)
    np.testing.assert_allclose(a[[0, 2, 3]], [1.0, 0.7071, 0.0067], atol=1e-4)
    np.testing.assert_allclose(s[[0, 2]], [0.0067, 0.7071], atol=1e-4)
    np.testing.assert_allclose(a[1], 0.923, atol=1e-3)
    np.testing.assert_allclose(a**2 + s**2, 1.0, atol=1e-12)
    np.testing.assert_allclose(p._sigma_blur(np.array([0.5])) / 20, 0.5, atol=1e-12)
    # The frequency floor keeps every gain ≥ a · d_min.
    x = np.zeros((1, 1, 16, 16))
    g = p.alpha(np.array([0.0]), x)
    assert g.min() >= p.scale(np.array([0.0]))[0] * 1e-3 * (1 - 1e-9)


@pytest.mark.parametrize("name", list_paths())
def test_endpoints(name, shape):
    path = make_path(name)
    x, eps = data(shape, seed=6)
    one, zero = np.ones(shape[0]), np.zeros(shape[0])
    z1, z0 = path.corrupt(x, eps, one), path.corrupt(x, eps, zero)
    if name in ("noise_fm", "hdfm", "hdfm_code"):
        np.testing.assert_allclose(z1, x, atol=1e-12)                 # t = 1 is the data
        np.testing.assert_allclose(z0, path.noise_scale * eps, atol=1e-12)  # t = 0 pure source
        np.testing.assert_allclose(path.prior(eps), z0, atol=1e-12)
    elif name == "blurring_diffusion":  # truncated schedule: e^{-5}-close to the endpoints
        assert np.abs(z1 - x).max() <= 0.0068 * np.abs(eps).max() + 1e-4
        assert np.abs(z0 - path.prior(eps)).max() <= 0.0068 * np.abs(x).max() + 1e-4
    elif name == "ihdm":  # constant noise σ; t = 0 is the fully blurred level K
        np.testing.assert_allclose(z1, x + path.noise_std * eps, atol=1e-12)
        blurred = spectral.heat_blur(x, path.sigma_blur_max**2 / 2)
        np.testing.assert_allclose(z0, blurred + path.noise_std * eps, atol=1e-12)
        np.testing.assert_allclose(path.prior(eps, x), blurred + path.delta * eps, atol=1e-12)
    elif name == "cold_blur":  # deterministic; level T is the per-channel mean
        np.testing.assert_allclose(z1, x, atol=1e-12)
        sp = tuple(range(x.ndim - spectral.spatial_axes(x), x.ndim))
        np.testing.assert_allclose(z0, np.broadcast_to(x.mean(axis=sp, keepdims=True), x.shape), atol=1e-12)
    else:  # a new path needs its own endpoint check here
        pytest.fail(f"no endpoint check for path '{name}'")


def test_ihdm_levels_and_prev_mean_target():
    path = make_path("ihdm")
    K = path.levels
    assert path.t_of_level(0) == 1.0 and path.t_of_level(K) == 0.0
    k = np.arange(K + 1)
    np.testing.assert_array_equal(path.level_of_t(1.0 - k / K), k)
    # σ_B log-spaced from σ_min at level 1 to σ_max at level K, 0 at level 0.
    sb = path._sigma_blur(1.0 - k / K)
    assert sb[0] == 0
    np.testing.assert_allclose(sb[1:], np.geomspace(0.5, path.sigma_blur_max, K), rtol=1e-10)
    # Training levels are k ∈ {1..K−1} (IHDM never trains level K).
    t = path.sample_t(np.linspace(0, 0.999999, 1000))
    assert set(np.round((1 - t) * K).astype(int)) == set(range(1, K))
    # prev_mean target: B_{k-1} x − z (residual on the input).
    x, eps = data((3, 1, 8, 8))
    tk = np.array([0.9, 0.5, 0.1])
    z = path.corrupt(x, eps, tk)
    want = path.corrupt(x, 0 * eps, tk + 1 / K) - z
    np.testing.assert_allclose(path.regression_target("prev_mean", x, eps, tk, z), want, atol=1e-12)
    np.testing.assert_allclose(path.convert(x, "x", "prev_mean", z, tk), want, atol=1e-12)


def test_cold_blur_levels_compose_kernels():
    path = get_path("cold_blur", T=4, final_mean=False)
    x, _ = data((1, 1, 16, 16))
    stds = path.step_stds()
    np.testing.assert_allclose(stds, [0.35, 0.36, 0.37, 0.38])
    # D(x, k) = k successive blurs of std s_i (heat time s_i²/2 each).
    y = x
    for k in range(1, 5):
        y = spectral.heat_blur(y, stds[k - 1] ** 2 / 2)
        np.testing.assert_allclose(path.degrade(x, np.array([k])), y, atol=1e-12)
    # Non-grid t snaps to the nearest level.
    np.testing.assert_allclose(path.corrupt(x, x, np.array([0.74])), path.degrade(x, np.array([1])), atol=1e-12)


def test_cold_prior_fits_channel_means():
    path = get_path("cold_blur")
    rng = np.random.default_rng(0)
    offs = np.array([0.5, -0.2, 0.1])
    dat = rng.normal(0, 0.05, (4000, 3, 1, 1)) * np.array([1.0, 2.0, 0.5])[None, :, None, None]
    dat = dat + offs[None, :, None, None] + rng.normal(0, 0.3, (4000, 3, 4, 4))
    eps = rng.standard_normal((4000, 3, 4, 4))
    z = path.prior(eps, dat)
    means = z.mean(axis=(2, 3))
    np.testing.assert_allclose(means.mean(0), dat.mean(axis=(0, 2, 3)), atol=0.01)
    np.testing.assert_allclose(means.std(0), dat.mean(axis=(2, 3)).std(0), rtol=0.06)
    # Within-image variation is only the tiny noise.
    assert abs((z - z.mean(axis=(2, 3), keepdims=True)).std() - path.prior_noise) < 2e-4


@pytest.mark.parametrize("name", ["noise_fm", "hdfm"])
def test_logit_normal_time_sampling(name):
    path = get_path(name)
    u = (np.arange(20000) + 0.5) / 20000
    t = path.sample_t(u)
    logit = np.log(t / (1 - t))
    assert abs(logit.mean() + 0.8) < 1e-3 and abs(logit.std() - 0.8) < 2e-3
    from scipy.special import ndtri

    from hdfm_bench.methods._xp import ndtri as ours
    np.testing.assert_allclose(ours(u), ndtri(u), atol=1e-8)


@pytest.mark.parametrize("name,target,why", [
    ("ihdm", "eps", "divides by"), ("ihdm", "v", "no DC"), ("cold_blur", "eps", "cannot use target"),
    ("cold_blur", "v", "cannot use target"),
])
def test_unsupported_targets_are_refused(name, target, why):
    with pytest.raises(ConfigError, match=why):
        Objective(make_path(name), target)


def test_ihdm_prev_mean_cannot_be_measured_in_x_space():
    with pytest.raises(ConfigError, match="B_\\(k-1\\)"):
        Objective(make_path("ihdm"), "prev_mean", "x")


def test_objective_defaults_are_the_papers_recipes_but_bdm():
    assert Objective(get_path("noise_fm")).describe() == "noise_fm: x-prediction, v-loss (l2)"
    # BDM's default is x-prediction, x-loss (docs/methods.md §12.13); the paper's recipe stays one option away
    assert Objective(get_path("blurring_diffusion")).describe() == "blurring_diffusion: x-prediction, x-loss (l2)"
    assert Objective(get_path("blurring_diffusion"), "eps", "eps").describe() == \
        "blurring_diffusion: eps-prediction, eps-loss (l2)"
    assert Objective(make_path("ihdm")).describe() == "ihdm: prev_mean-prediction, prev_mean-loss (l2)"
    assert Objective(get_path("cold_blur")).describe() == "cold_blur: x-prediction, x-loss (l1)"
    assert set(SMALL) <= set(list_paths())
