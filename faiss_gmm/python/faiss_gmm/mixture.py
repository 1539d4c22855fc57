"""faiss_gmm.GaussianMixture: scikit-learn's GaussianMixture over faiss-gmm's EM."""

import os

import numpy as np

from . import _core
from ._arrays import NotFittedError, as_rows, is_path

_COVARIANCE = {"spherical": "spherical", "diag": "diagonal", "full": "full"}
_INIT = {"kmeans": "kmeans", "k-means++": "kmeans++", "random_from_data": "random"}


class GaussianMixture:
    """A Gaussian mixture fitted by EM, with scikit-learn's names.

    Parameters are scikit-learn's, with these differences:

    - ``covariance_type``: 'spherical' (the default: one variance per
      component, the closest to k-means), 'diag' or 'full' (a d x d
      covariance per component; the GPU E-step takes d <= 128, wider rows
      need device='cpu'). 'tied' is not offered.
    - ``reg_covar``: added to every variance, in units of the training
      data's mean per-dimension variance (so one value suits SIFT's 0..255
      as well as unit vectors). 1e-6, scikit-learn's default, by default.
    - ``init_params``: 'kmeans' (FAISS's k-means on the sample; on the GPU
      our GPU k-means), 'k-means++' or 'random_from_data'.
    - ``random_state``: an int seed; None means the fixed seed 1234, so two
      fits are the same (faiss's convention).

    And ours:

    - ``device``: 'auto' (a GPU when one is present and built in), 'cpu', 'gpu'.
    - ``precision``: the GPU E-step's class, 'fp32', 'tf32', 'bf16' or
      'fast' (single bf16 products).
    - ``max_points_per_component``: fit on a sample of at most
      n_components * this many rows, as faiss's k-means does
      (max_points_per_centroid). None (the default) fits on every row; with
      a file, every EM iteration then streams the whole file.
    - ``checkpoint``: a path written (atomically) after every iteration;
      ``resume=True`` continues from it.

    X may be float32 or uint8, C-contiguous, and is then read in place (no
    copy); any other real array is converted to float32. ``fit`` also takes
    the path of a vector file (fvecs, bvecs, fbin, u8bin, npy), read in
    blocks from disk. ``verbose`` prints one progress line per EM iteration
    on stderr. The GIL is released while the C++ core works, and Ctrl-C
    stops a fit between iterations with KeyboardInterrupt (the model is then
    left unfitted; a checkpoint file is always whole).
    """

    def __init__(self, n_components=1, *, covariance_type="spherical", tol=1e-3,
                 reg_covar=1e-6, max_iter=100, init_params="kmeans", means_init=None,
                 random_state=None, verbose=0, device="auto", precision="fp32",
                 max_points_per_component=None, checkpoint=None, resume=False):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.init_params = init_params
        self.means_init = means_init
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.precision = precision
        self.max_points_per_component = max_points_per_component
        self.checkpoint = checkpoint
        self.resume = resume
        self._model = None

    # ---- parameters

    def _parameters(self):
        """The C++ parameters; ValueError names the first bad one."""
        k = self.n_components
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"n_components must be a positive integer, got {k!r}")
        if self.covariance_type not in _COVARIANCE:
            raise ValueError(f"covariance_type must be 'spherical', 'diag' or 'full', got "
                             f"{self.covariance_type!r}")
        if self.init_params not in _INIT:
            raise ValueError(f"init_params must be one of {sorted(_INIT)}, got "
                             f"{self.init_params!r}")
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        for name in ("tol", "reg_covar"):
            v = getattr(self, name)
            if not (np.isscalar(v) and np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        mpc = self.max_points_per_component
        if mpc is not None and not (isinstance(mpc, (int, np.integer)) and mpc >= 1):
            raise ValueError(f"max_points_per_component must be None or an integer >= 1, "
                             f"got {mpc!r}")
        p = _core.Parameters()
        p.covariance_type = _COVARIANCE[self.covariance_type]
        p.init = _INIT[self.init_params]
        p.device = self.device          # the core names a bad value
        p.precision = self.precision
        p.niter = int(self.max_iter)
        p.tol = float(self.tol)
        p.reg_covar = float(self.reg_covar)
        p.seed = 1234 if self.random_state is None else int(self.random_state)
        p.max_points_per_component = 0 if mpc is None else int(mpc)
        p.verbose = bool(self.verbose)
        p.checkpoint_path = "" if self.checkpoint is None else os.fspath(self.checkpoint)
        p.resume = bool(self.resume)
        return p

    # ---- fitting

    def fit(self, X, y=None, sample_weight=None):
        """Fit on X (n_samples, n_features) or on a vector file's rows; returns self.

        sample_weight (n_samples,) weights the rows (in-memory float data only).
        """
        params = self._parameters()
        if is_path(X):
            if self.means_init is not None or sample_weight is not None:
                raise ValueError("means_init and sample_weight need X in memory, not a file")
            path = os.fspath(X)
            model = _core.Model(_core.source_dim(path), int(self.n_components), params)
            model.fit_source(path)
        else:
            X = as_rows(X, allow_uint8=self.means_init is None and sample_weight is None)
            model = _core.Model(X.shape[1], int(self.n_components), params)
            w = None if sample_weight is None else \
                np.ascontiguousarray(sample_weight, dtype=np.float32)
            if self.means_init is not None:
                mu = as_rows(self.means_init, "means_init", d=X.shape[1])
                model.fit_from_means(X, mu, w)
            else:
                model.fit(X, w)
        self._model = model
        return self

    def fit_predict(self, X, y=None):
        """fit(X), then predict(X)."""
        return self.fit(X).predict(X)

    # ---- inference

    def _fitted(self):
        if self._model is None:
            raise NotFittedError("this GaussianMixture is not fitted yet: call fit first")
        return self._model

    def _rows(self, X):
        return as_rows(X, d=self._fitted().d)

    def score_samples(self, X):
        """log p(x) of each row (n_samples,), float64 as scikit-learn returns."""
        return self._fitted().score_samples(self._rows(X)).astype(np.float64)

    def score(self, X, y=None):
        """Mean log-likelihood per row."""
        return float(np.mean(self.score_samples(X)))

    def predict(self, X):
        """The most responsible component of each row (n_samples,) int64."""
        return self._fitted().predict(self._rows(X))

    def predict_proba(self, X, top=None):
        """Responsibilities of each component for each row.

        top=None: the dense (n_samples, n_components) array, as scikit-learn.
        top=t: a scipy.sparse CSR matrix holding only each row's t largest
        responsibilities (never n_samples x n_components in memory).
        """
        m = self._fitted()
        X = self._rows(X)
        t = m.k if top is None else top
        if not (isinstance(t, (int, np.integer)) and 1 <= t <= m.k):
            raise ValueError(f"top must be None or an integer in [1, n_components], got {top!r}")
        labels, resp = m.top_components(X, int(t))
        if top is None:
            out = np.zeros((X.shape[0], m.k), dtype=np.float64)
            np.put_along_axis(out, labels, resp, axis=1)
            return out
        import scipy.sparse
        n = X.shape[0]
        return scipy.sparse.csr_matrix(
            (resp.ravel(), labels.ravel(), np.arange(0, n * t + 1, t)), shape=(n, m.k))

    def bic(self, X):
        """Bayesian information criterion: -2 log L + p log n (lower is better)."""
        return self._fitted().bic(self._rows(X))

    def aic(self, X):
        """Akaike information criterion: -2 log L + 2 p (lower is better)."""
        m, X = self._fitted(), self._rows(X)
        p = m.n_parameters()
        return m.bic(X) - p * np.log(X.shape[0]) + 2.0 * p  # one pass over X

    # ---- persistence

    def save(self, path):
        """Write the model (faiss-gmm's file, as `faiss-gmm train --out`), atomically."""
        self._fitted().save(os.fspath(path))

    @classmethod
    def load(cls, path):
        """A fitted GaussianMixture read from a file written by save() or the CLI."""
        return cls._from_core(_core.Model.load(os.fspath(path)))

    @classmethod
    def _from_core(cls, model):
        p = model.params
        cov = {v: k for k, v in _COVARIANCE.items()}[model.covariance_type]
        init = {v: k for k, v in _INIT.items()}.get(p.init, "kmeans")
        g = cls(model.k, covariance_type=cov, tol=p.tol, reg_covar=p.reg_covar,
                max_iter=p.niter, init_params=init, random_state=p.seed, device=p.device,
                precision=p.precision,
                max_points_per_component=p.max_points_per_component or None)
        g._model = model
        return g

    # ---- fitted attributes (scikit-learn's names)

    @property
    def means_(self):
        """(n_components, n_features) component means."""
        return self._fitted().means

    @property
    def covariances_(self):
        """(n_components,) variances for 'spherical', (n_components, n_features) for 'diag',
        (n_components, n_features, n_features) covariances for 'full'."""
        return self._fitted().variances

    @property
    def precisions_cholesky_(self):
        """scikit-learn's: the Cholesky factor of each precision (1 / sqrt(variance) for
        'spherical' and 'diag'; for 'full' the upper-triangular P with P P^T = S^-1)."""
        cov = np.asarray(self.covariances_, np.float64)
        if cov.ndim < 3:
            return 1.0 / np.sqrt(cov)
        eye = np.eye(cov.shape[1])
        return np.stack([np.linalg.solve(np.linalg.cholesky(s), eye).T for s in cov])

    @property
    def weights_(self):
        """(n_components,) mixing weights, summing to 1."""
        return self._fitted().weights

    @property
    def converged_(self):
        """Whether EM met tol before max_iter."""
        return bool(self._fitted().converged)

    @property
    def n_iter_(self):
        """EM iterations the fit ran."""
        return len(self._fitted().log_likelihoods)

    @property
    def lower_bound_(self):
        """Mean log-likelihood per row at the last iteration's E-step."""
        ll = self._fitted().log_likelihoods
        return ll[-1] if ll else float("nan")

    @property
    def n_features_in_(self):
        """Dimension of the rows the model was fitted on."""
        return self._fitted().d

    def __repr__(self):
        return (f"GaussianMixture(n_components={self.n_components}, "
                f"covariance_type={self.covariance_type!r}, max_iter={self.max_iter})")

