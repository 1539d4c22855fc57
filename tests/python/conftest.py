"""Shared fixtures: float64 reference code and fresh random mixtures."""

import numpy as np
import pytest


def log_gauss(x, means, variances):
    """float64 log N(x_i | mu_k, S_k) for every row and component (n x k): S_k =
    diag(var_k), var_k I, or a full (d x d) covariance."""
    x = np.asarray(x, np.float64)
    mu = np.asarray(means, np.float64)
    var = np.asarray(variances, np.float64)
    d = x.shape[1]
    if var.ndim == 3:
        out = np.empty((x.shape[0], mu.shape[0]))
        for k in range(mu.shape[0]):
            l = np.linalg.cholesky(var[k])
            z = np.linalg.solve(l, (x - mu[k]).T)
            out[:, k] = -0.5 * (d * np.log(2 * np.pi) + (z * z).sum(axis=0)) \
                - np.log(np.diag(l)).sum()
        return out
    if var.ndim == 1:
        var = np.repeat(var[:, None], mu.shape[1], axis=1)
    d = x.shape[1]
    out = np.empty((x.shape[0], mu.shape[0]))
    for k in range(mu.shape[0]):
        diff = x - mu[k]
        out[:, k] = -0.5 * (d * np.log(2 * np.pi) + np.log(var[k]).sum()
                            + (diff * diff / var[k]).sum(axis=1))
    return out


def reference_posteriors(x, g):
    """(log p(x), responsibilities) in float64 from a fitted model's parameters."""
    lp = log_gauss(x, g.means_, g.covariances_) + np.log(np.asarray(g.weights_, np.float64))
    m = lp.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(lp - m).sum(axis=1))
    return lse, np.exp(lp - lse[:, None])


def make_mixture(rng, n, d, k, spread=6.0, diag=False):
    """n rows of a known mixture: (x float32, labels, means, variances, weights)."""
    means = rng.standard_normal((k, d)) * spread
    weights = rng.dirichlet(np.full(k, 5.0))
    if diag:
        variances = rng.uniform(0.5, 2.0, (k, d))
    else:
        variances = rng.uniform(0.5, 2.0, k)
    labels = rng.choice(k, size=n, p=weights)
    sd = np.sqrt(variances[labels] if diag else variances[labels][:, None])
    x = means[labels] + rng.standard_normal((n, d)) * sd
    return x.astype(np.float32), labels, means, variances, weights


@pytest.fixture
def rng(request):
    # Fresh inputs on every run, reproducible from the printed seed.
    seed = np.random.SeedSequence().entropy % (2**32)
    print(f"seed={seed}")
    return np.random.default_rng(seed)
