"""faiss indexes of the installed faiss Python package, trained and used with a mixture.

The C++ core links its own copy of FAISS; python3-faiss carries another, and
C++ objects of one must never reach the other. So a trained index crosses
as faiss.write_index bytes, read back by faiss.deserialize_index (a copy of
nlist x d centroids plus codebooks: cheap next to training), and work on a
Python index (multi-assignment, mixture search) sends arrays both ways: the
core decides lists, the index's own add_core / search_preassigned does the
rest, in place, in the user's faiss.
"""

import os

import faiss
import numpy as np

from . import _core
from ._arrays import as_rows, is_path
from .mixture import GaussianMixture

_QUERY_BLOCK = 4096  # queries per search_preassigned call: bounds the over-fetch


def index_factory(d, description, x, metric="l2", trainer="gmm", return_model=False, **params):
    """A trained, empty faiss.Index of the installed faiss package.

    As ``faiss.index_factory(d, description, metric)`` followed by train(x),
    with the coarse quantizer trained by a GaussianMixture (trainer='gmm';
    params are GaussianMixture's: covariance_type, max_iter, tol,
    reg_covar, init_params, random_state, verbose, device, precision,
    max_points_per_component) or by k-means (trainer='kmeans', FAISS's
    semantics; on the GPU with device='gpu'). Everything else in the
    description (OPQ, PQ, SQ codebooks) trains as FAISS trains it.
    max_iter defaults to 10 and max_points_per_component to 256, FAISS's
    values for an IVF's own training. x may also be a vector file's path.
    With return_model, returns (index, GaussianMixture) (model None for k-means).
    """
    names = {"l2": "l2", "ip": "ip", faiss.METRIC_L2: "l2", faiss.METRIC_INNER_PRODUCT: "ip"}
    if metric not in names:
        raise ValueError(f"metric must be 'l2' or 'ip', got {metric!r}")
    metric = names[metric]
    if is_path(x):
        x = _core.read_vectors(os.fspath(x))
    x = as_rows(x, "x", d=d)
    params.setdefault("max_iter", 10)
    params.setdefault("max_points_per_component", 256)
    p = GaussianMixture(1, **params)._parameters()
    blob, model = _core.train_index(int(d), description, metric, x, p, trainer)
    index = faiss.deserialize_index(np.frombuffer(blob, dtype=np.uint8))
    if return_model:
        return index, (GaussianMixture._from_core(model) if model is not None else None)
    return index


def _ivf_space(index, x):
    """(the IndexIVF, x in its space): an IndexPreTransform's chain applied."""
    ivf = faiss.extract_index_ivf(index)
    x = as_rows(x, "x", d=index.d)
    outer = faiss.downcast_index(index)
    if isinstance(outer, faiss.IndexPreTransform):
        for i in range(outer.chain.size()):
            x = np.ascontiguousarray(outer.chain.at(i).apply_py(x), dtype=np.float32)
    return ivf, x


def _centroids(ivf):
    return np.ascontiguousarray(ivf.quantizer.reconstruct_n(0, ivf.nlist), dtype=np.float32)


def _is_ip(ivf):
    return ivf.metric_type == faiss.METRIC_INNER_PRODUCT


def add_multi_assign(index, x, model=None, *, max_lists=2, rule="responsibility", tau=0.1,
                     temperature=1.0, lambda_=1.0, primary="nearest", ids=None):
    """Add x to a trained faiss IVF index, each vector into up to max_lists lists.

    The first list is the nearest centroid (primary='nearest', what
    index.add does) or the most probable component ('most_probable'); the
    others by rule: 'responsibility' (every list with r_ik >= tau),
    'tempered' (the same at temperature T), or 'soar' (SOAR's spill, weight
    lambda_; needs no model, so k-means indexes can use it). The index stays
    a standard faiss index; its ntotal then counts list entries. ids
    (int64, one per row) are required when the index is not empty.
    Returns {'n_vectors', 'n_entries'}.
    """
    ivf, xt = _ivf_space(index, x)
    n = xt.shape[0]
    if ids is None:
        if index.ntotal != 0:
            raise ValueError("give ids when adding to a non-empty index (its ntotal counts "
                             "list entries, not vectors, once vectors have several)")
        ids = np.arange(n, dtype=np.int64)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if ids.shape != (n,):
        raise ValueError(f"ids must hold one int64 per vector ({n}), got shape {ids.shape}")
    if not ivf.is_trained:
        raise ValueError("add_multi_assign: the index is not trained")
    p = _core.MultiAssignParameters()
    p.max_lists, p.tau, p.temperature, p.lambda_ = int(max_lists), tau, temperature, lambda_
    p.rule, p.primary = rule, primary
    core_model = None if model is None else model._fitted()
    lists = _core.assign_lists(_centroids(ivf), _is_ip(ivf), core_model, xt, p)
    entries = 0
    for j in range(lists.shape[1]):
        sel = np.flatnonzero(lists[:, j] >= 0)
        if sel.size == 0:
            continue
        xs = np.ascontiguousarray(xt[sel])
        ids_j = np.ascontiguousarray(ids[sel])
        lists_j = np.ascontiguousarray(lists[sel, j])
        ivf.add_core(sel.size, faiss.swig_ptr(xs), faiss.swig_ptr(ids_j),
                     faiss.swig_ptr(lists_j))
        entries += sel.size
    index.ntotal = ivf.ntotal
    return {"n_vectors": n, "n_entries": entries}


def count_max_copies(index):
    """The largest number of entries any one id has in the index's lists."""
    ivf = faiss.extract_index_ivf(index)
    il = ivf.invlists
    parts = []
    for lst in range(ivf.nlist):
        size = il.list_size(lst)
        if size:
            ptr = il.get_ids(lst)
            parts.append(faiss.rev_swig_ptr(ptr, size).copy())
            il.release_ids(lst, ptr)
    if not parts:
        return 0
    return int(np.unique(np.concatenate(parts), return_counts=True)[1].max())


def search_mixture(index, xq, k, model=None, *, nprobe=1, order="posterior", mass=0.0,
                   max_copies=0):
    """Search a faiss IVF index, probing lists by the mixture; each id at most once.

    order='posterior' ranks a query's lists by log pi_k + log N(q | k)
    (needs model); with 0 < mass < 1 it stops once their cumulative
    posterior reaches mass (at most nprobe lists). order='distance' ranks
    by centroid distance, as faiss does, and is what a SOAR- or
    multi-assigned index wants. Results are de-duplicated (an id held in
    several probed lists is returned once, at its best distance), which a
    plain index.search does not do. Returns (D, I), each (nq, k), padded
    with id -1 as faiss pads. The work done adds to faiss.cvar.indexIVF_stats
    (nlist probed, ndis scanned), as index.search's does.
    """
    ivf, qt = _ivf_space(index, xq)
    if order not in ("posterior", "distance"):
        raise ValueError(f"order must be 'posterior' or 'distance', got {order!r}")
    if not (isinstance(k, (int, np.integer)) and k >= 1):
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if not (isinstance(nprobe, (int, np.integer)) and nprobe >= 1):
        raise ValueError(f"nprobe must be an integer >= 1, got {nprobe!r}")
    if not (np.isfinite(mass) and mass >= 0):
        raise ValueError(f"mass must be a finite number >= 0, got {mass!r}")
    if order == "posterior" or mass > 0:
        if model is None:
            raise ValueError("posterior probing (or a mass cut) needs the model")
        if model.n_features_in_ != ivf.d or model._fitted().k != ivf.nlist:
            raise ValueError("the model does not match the index (d and nlist)")
    if not np.isfinite(qt).all():
        raise ValueError("queries hold NaN or Inf")
    nprobe = min(int(nprobe), ivf.nlist)
    ip = _is_ip(ivf)
    copies = max_copies or max(1, count_max_copies(index))
    kk = int(min(k * copies, max(ivf.ntotal, k)))
    sp = faiss.SearchParametersIVF()
    sp.nprobe = nprobe
    centroids = _centroids(ivf) if order == "posterior" else None
    D_out = np.empty((qt.shape[0], k), dtype=np.float32)
    I_out = np.empty((qt.shape[0], k), dtype=np.int64)
    for q0 in range(0, qt.shape[0], _QUERY_BLOCK):
        q = np.ascontiguousarray(qt[q0:q0 + _QUERY_BLOCK])
        if order == "distance":
            cdis, assign = ivf.quantizer.search(q, nprobe)
        else:
            assign, cdis = _core.probe_by_posterior(model._fitted(), centroids, ip, q, nprobe,
                                                    float(mass))
        assign = np.ascontiguousarray(assign, dtype=np.int64)
        cdis = np.ascontiguousarray(cdis, dtype=np.float32)
        D = np.empty((q.shape[0], kk), dtype=np.float32)
        I = np.empty((q.shape[0], kk), dtype=np.int64)
        ivf.search_preassigned(q.shape[0], faiss.swig_ptr(q), kk, faiss.swig_ptr(assign),
                               faiss.swig_ptr(cdis), faiss.swig_ptr(D), faiss.swig_ptr(I),
                               False, sp, faiss.cvar.indexIVF_stats)
        D_out[q0:q0 + q.shape[0]], I_out[q0:q0 + q.shape[0]] = \
            _core.keep_distinct(D, I, int(k), ip)
    return D_out, I_out
