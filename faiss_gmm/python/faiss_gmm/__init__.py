"""faiss-gmm for FAISS's Python users.

GaussianMixture (scikit-learn's names), Kmeans (faiss.Kmeans's), and IVF
indexes of the installed faiss package trained by a mixture
(index_factory), filled with multi-assignment (add_multi_assign) and
searched by the mixture (search_mixture). See README.md, "Python".
"""

from . import _core
from ._arrays import NotFittedError
from .ivf import add_multi_assign, count_max_copies, index_factory, search_mixture
from .kmeans import Kmeans
from .mixture import GaussianMixture


def read_vectors(path, max_rows=0):
    """A vector file (fvecs, bvecs, fbin, u8bin, npy) as an (n, d) float32 array."""
    import os
    return _core.read_vectors(os.fspath(path), int(max_rows))


__all__ = ["GaussianMixture", "Kmeans", "NotFittedError", "index_factory",
           "add_multi_assign", "search_mixture", "count_max_copies", "read_vectors"]
