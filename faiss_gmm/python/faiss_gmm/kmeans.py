"""faiss_gmm.Kmeans: faiss.Kmeans's interface over faiss-gmm's trainers."""

import faiss
import numpy as np

from . import _core
from ._arrays import as_rows
from .mixture import GaussianMixture


class Kmeans:
    """A drop-in for ``faiss.Kmeans(d, k, niter=..., gpu=...)``.

    ``train(x)`` fills ``centroids`` (k, d), ``obj`` (one value per
    iteration) and ``index`` (a faiss IndexFlatL2, or IndexFlatIP when
    spherical, holding the centroids), as faiss.Kmeans does.

    trainer='kmeans' (the default) runs faiss's k-means semantics: FAISS's
    own on the CPU, faiss-gmm's GPU k-means when gpu is set (same
    initialisation and sample as FAISS, the same result up to near ties).
    trainer='gmm' fits a spherical GaussianMixture instead (extra keyword
    arguments go to it) and takes its means; obj is then minus the mean
    log-likelihood per row, lower is better as for k-means.

    gpu: False (CPU), True or -1 (every visible GPU), or a number of GPUs.
    """

    def __init__(self, d, k, *, niter=25, nredo=1, verbose=False, seed=1234,
                 spherical=False, max_points_per_centroid=256, min_points_per_centroid=39,
                 gpu=False, trainer="kmeans", precision="fp32", **gmm_params):
        if trainer not in ("kmeans", "gmm"):
            raise ValueError(f"trainer must be 'kmeans' or 'gmm', got {trainer!r}")
        if trainer == "kmeans" and gmm_params:
            raise ValueError(f"unknown parameters for k-means: {sorted(gmm_params)}")
        self.d, self.k = int(d), int(k)
        self.niter, self.nredo, self.verbose, self.seed = niter, nredo, verbose, seed
        self.spherical = spherical
        self.max_points_per_centroid = max_points_per_centroid
        self.min_points_per_centroid = min_points_per_centroid
        self.gpu, self.trainer, self.precision = gpu, trainer, precision
        self.gmm_params = gmm_params
        self.centroids = None
        self.obj = None
        self.index = None
        self.model = None  #: the fitted GaussianMixture when trainer='gmm'

    def _backend(self):
        p = _core.Parameters()
        p.precision = self.precision
        if self.gpu is False or self.gpu == 0:
            p.device = "cpu"
        else:
            p.device = "gpu"
            if self.gpu is not True and int(self.gpu) > 0:
                p.gpu_devices = list(range(int(self.gpu)))
        p.verbose = bool(self.verbose)
        return p

    def train(self, x, weights=None, init_centroids=None):
        """Cluster x (n, d); returns the last iteration's objective."""
        x = as_rows(x, "x", d=self.d)
        if self.trainer == "gmm":
            self._train_gmm(x, weights, init_centroids)
        else:
            cp = _core.ClusteringParameters()
            cp.niter, cp.nredo, cp.seed = int(self.niter), int(self.nredo), int(self.seed)
            cp.spherical, cp.verbose = bool(self.spherical), bool(self.verbose)
            cp.max_points_per_centroid = int(self.max_points_per_centroid)
            cp.min_points_per_centroid = int(self.min_points_per_centroid)
            if weights is not None:
                raise ValueError("weights are not supported by trainer='kmeans'")
            init = None if init_centroids is None else \
                as_rows(init_centroids, "init_centroids", d=self.d)
            self.centroids, obj = _core.kmeans(x, self.k, cp, self._backend(), init)
            self.obj = np.array(obj)
        self.index = faiss.IndexFlatIP(self.d) if self.spherical else faiss.IndexFlatL2(self.d)
        self.index.add(self.centroids)
        return float(self.obj[-1]) if len(self.obj) else 0.0

    def _train_gmm(self, x, weights, init_centroids):
        b = self._backend()
        g = GaussianMixture(self.k, max_iter=self.niter, random_state=self.seed,
                            verbose=self.verbose, device=b.device, precision=self.precision,
                            max_points_per_component=self.max_points_per_centroid,
                            means_init=init_centroids, **self.gmm_params)
        g.fit(x, sample_weight=weights)
        self.model = g
        self.centroids = g.means_
        if self.spherical:
            self.centroids /= np.linalg.norm(self.centroids, axis=1, keepdims=True)
        self.obj = -np.array(g._model.log_likelihoods)

    def assign(self, x):
        """(distances, labels) of each row's nearest centroid, as faiss.Kmeans.assign."""
        if self.index is None:
            raise ValueError("Kmeans is not trained: call train first")
        D, I = self.index.search(as_rows(x, "x", d=self.d), 1)
        return D.ravel(), I.ravel()
