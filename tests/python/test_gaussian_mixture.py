"""faiss_gmm.GaussianMixture against float64 reference code, scikit-learn and a known mixture."""

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import faiss_gmm
from conftest import make_mixture, reference_posteriors


@pytest.mark.parametrize("cov", ["spherical", "diag", "full"])
def test_inference_matches_float64_reference(rng, cov):
    n, d, k = 1531, 13, 7  # awkward sizes
    x, *_ = make_mixture(rng, n, d, k, diag=cov == "diag")
    g = faiss_gmm.GaussianMixture(k, covariance_type=cov, max_iter=15).fit(x)
    q = (x[:397] + rng.standard_normal((397, d)).astype(np.float32)).astype(np.float32)
    lse, resp = reference_posteriors(q, g)
    np.testing.assert_allclose(g.score_samples(q), lse, rtol=1e-4, atol=1e-3)
    assert g.score(q) == pytest.approx(lse.mean(), abs=1e-3)
    np.testing.assert_allclose(g.predict_proba(q), resp, atol=1e-3)
    # predict: the argmax wherever the top two are not a near tie.
    top2 = np.sort(resp, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-3
    np.testing.assert_array_equal(g.predict(q)[clear], resp.argmax(axis=1)[clear])
    # The sparse form holds the t largest responsibilities of the dense one.
    t = 3
    sp = g.predict_proba(q, top=t)
    assert sp.shape == (397, k) and sp.nnz == 397 * t
    dense = sp.toarray()
    for i in range(0, 397, 37):
        np.testing.assert_allclose(np.sort(dense[i])[-t:], np.sort(resp[i])[-t:], atol=1e-3)
    # bic / aic from the reference log-likelihood and the parameter count.
    p = (k - 1) + k * d + {"spherical": k, "diag": k * d, "full": k * d * (d + 1) // 2}[cov]
    assert g.bic(q) == pytest.approx(-2 * lse.sum() + p * np.log(397), abs=2 * 397 * 1e-3)
    assert g.aic(q) == pytest.approx(-2 * lse.sum() + 2 * p, abs=2 * 397 * 1e-3)


@pytest.mark.parametrize("cov", ["spherical", "diag", "full"])
def test_same_fixed_point_as_sklearn_from_the_same_means(rng, cov):
    n, d, k = 2999, 6, 5
    x, _, means, _, _ = make_mixture(rng, n, d, k, spread=5.0, diag=cov == "diag")
    init = (means + 0.3 * rng.standard_normal(means.shape)).astype(np.float32)
    ours = faiss_gmm.GaussianMixture(k, covariance_type=cov, tol=1e-9, max_iter=300,
                                     reg_covar=0, means_init=init).fit(x)
    sk = SkGaussianMixture(k, covariance_type=cov, tol=1e-9, max_iter=300, reg_covar=1e-9,
                           means_init=init.astype(np.float64)).fit(x.astype(np.float64))
    np.testing.assert_allclose(ours.means_, sk.means_, atol=2e-3)
    np.testing.assert_allclose(ours.weights_, sk.weights_, atol=1e-3)
    # Off-diagonal covariances are near zero on this data: relative to the largest.
    scale = np.abs(sk.covariances_).max() if cov == "full" else 0.0
    np.testing.assert_allclose(ours.covariances_, sk.covariances_, rtol=5e-3, atol=5e-3 * scale)
    pc = np.abs(sk.precisions_cholesky_).max() if cov == "full" else 0.0
    np.testing.assert_allclose(ours.precisions_cholesky_, sk.precisions_cholesky_, rtol=5e-3,
                               atol=5e-3 * pc)
    assert ours.score(x) == pytest.approx(sk.score(x), abs=1e-3)
    assert ours.bic(x) == pytest.approx(sk.bic(x), abs=2 * n * 1e-3)
    assert ours.aic(x) == pytest.approx(sk.aic(x), abs=2 * n * 1e-3)
    assert ours.lower_bound_ == pytest.approx(sk.lower_bound_, abs=1e-3)
    # float32 sums cannot meet tol=1e-9; scikit-learn's default tol they meet.
    loose = faiss_gmm.GaussianMixture(k, covariance_type=cov, means_init=init).fit(x)
    assert loose.converged_ and loose.n_iter_ < loose.max_iter


def test_recovers_a_known_mixture(rng):
    n, d, k = 20011, 8, 6
    x, labels, means, variances, weights = make_mixture(rng, n, d, k, spread=8.0)
    g = faiss_gmm.GaussianMixture(k, max_iter=200, tol=1e-7,
                                  means_init=means + 0.5 * rng.standard_normal(means.shape))
    g.fit(x)
    order = [int(np.argmin(((g.means_ - m) ** 2).sum(1))) for m in means]
    assert sorted(order) == list(range(k))
    # Means to five standard errors sqrt(var / n_k), weights and variances
    # to a few percent.
    se = np.sqrt(variances / (n * weights))[:, None]
    assert np.all(np.abs(g.means_[order] - means) < 5 * se + 1e-3)
    np.testing.assert_allclose(g.weights_[order], weights, atol=0.02)
    np.testing.assert_allclose(g.covariances_[order], variances, rtol=0.05)
    assert (g.predict(x) == np.array(order)[labels]).mean() > 0.99


def test_uint8_rows_fit_as_their_float32_values(rng):
    x = np.clip(make_mixture(rng, 4100, 12, 9, spread=40)[0] + 128, 0, 255).astype(np.uint8)
    a = faiss_gmm.GaussianMixture(9, max_iter=12, max_points_per_component=300).fit(x)
    b = faiss_gmm.GaussianMixture(9, max_iter=12, max_points_per_component=300).fit(
        x.astype(np.float32))
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(a.weights_, b.weights_, atol=1e-5)


def test_other_dtypes_and_layouts_are_converted(rng):
    x64 = make_mixture(rng, 1200, 5, 4)[0].astype(np.float64)
    a = faiss_gmm.GaussianMixture(4, max_iter=8).fit(x64)
    b = faiss_gmm.GaussianMixture(4, max_iter=8).fit(x64.astype(np.float32))
    np.testing.assert_array_equal(a.means_, b.means_)
    strided = np.asfortranarray(x64.astype(np.float32))
    np.testing.assert_allclose(a.score_samples(strided), b.score_samples(x64), rtol=1e-6)
    assert a.predict(x64.tolist()[:10]).shape == (10,)


def test_save_and_load_round_trip(rng, tmp_path):
    x = make_mixture(rng, 900, 7, 3, diag=True)[0]
    g = faiss_gmm.GaussianMixture(3, covariance_type="diag", max_iter=5).fit(x)
    g.save(tmp_path / "m.gmm")
    h = faiss_gmm.GaussianMixture.load(tmp_path / "m.gmm")
    assert h.covariance_type == "diag" and h.n_components == 3
    np.testing.assert_array_equal(h.means_, g.means_)
    np.testing.assert_array_equal(h.covariances_, g.covariances_)
    np.testing.assert_array_equal(h.score_samples(x), g.score_samples(x))
    assert [p.name for p in tmp_path.iterdir()] == ["m.gmm"]  # no temporary left


def test_fit_from_a_file_equals_the_rows_in_memory(rng, tmp_path):
    x = make_mixture(rng, 3001, 9, 5)[0]
    path = tmp_path / "x.fvecs"
    rows = np.hstack([np.full((len(x), 1), 9, np.int32).view(np.float32), x])
    rows.tofile(path)
    kw = dict(max_iter=10, max_points_per_component=400)
    a = faiss_gmm.GaussianMixture(5, **kw).fit(path)
    b = faiss_gmm.GaussianMixture(5, **kw).fit(x)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(faiss_gmm.read_vectors(path), x)


def test_streaming_a_u8bin_file_equals_streaming_the_array(rng, tmp_path):
    x = np.clip(make_mixture(rng, 2503, 10, 4, spread=30)[0] + 128, 0, 255).astype(np.uint8)
    path = tmp_path / "x.u8bin"
    with open(path, "wb") as f:
        np.array([len(x), 10], np.int32).tofile(f)
        x.tofile(f)
    a = faiss_gmm.GaussianMixture(4, max_iter=6).fit(str(path))  # every row, every iteration
    b = faiss_gmm.GaussianMixture(4, max_iter=6).fit(x)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-5, atol=1e-4)
    assert a.n_iter_ == b.n_iter_


def test_progress_lines_when_verbose(rng, capfd):
    x = make_mixture(rng, 800, 4, 3)[0]
    faiss_gmm.GaussianMixture(3, max_iter=4, tol=0, verbose=1).fit(x)
    err = capfd.readouterr().err
    assert err.count("iter") >= 4, err
