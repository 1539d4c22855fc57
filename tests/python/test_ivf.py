"""faiss indexes of the installed faiss package: trained by faiss_gmm, used by faiss."""

import faiss
import numpy as np
import pytest

import faiss_gmm
from conftest import make_mixture, reference_posteriors


def _data(rng, n=6007, d=16, k=24):
    return make_mixture(rng, n, d, k, spread=3.0)[0]


def _lists_of(index):
    """{id: sorted lists holding it} read from a faiss index's inverted lists."""
    ivf = faiss.extract_index_ivf(index)
    out = {}
    for lst in range(ivf.nlist):
        n = ivf.invlists.list_size(lst)
        if n:
            for i in faiss.rev_swig_ptr(ivf.invlists.get_ids(lst), n):
                out.setdefault(int(i), []).append(lst)
    return {i: sorted(v) for i, v in out.items()}


@pytest.mark.parametrize("desc", ["IVF16,Flat", "IVF16,PQ4x4", "IVF16,SQ8", "OPQ4,IVF16,PQ4x4"])
def test_index_factory_gives_a_faiss_index_that_round_trips(rng, tmp_path, desc):
    x = _data(rng)
    index, model = faiss_gmm.index_factory(16, desc, x, return_model=True, max_iter=8)
    assert isinstance(index, faiss.Index) and index.is_trained and index.ntotal == 0
    ivf = faiss.extract_index_ivf(index)
    assert ivf.nlist == 16 and model.n_components == 16
    if not desc.startswith("OPQ"):
        np.testing.assert_array_equal(ivf.quantizer.reconstruct_n(0, 16), model.means_)
    index.add(x)
    ivf.nprobe = 4
    D, I = index.search(x[:50], 10)
    faiss.write_index(index, str(tmp_path / "i.faiss"))
    back = faiss.read_index(str(tmp_path / "i.faiss"))
    faiss.extract_index_ivf(back).nprobe = 4
    D2, I2 = back.search(x[:50], 10)
    np.testing.assert_array_equal(I, I2)
    np.testing.assert_array_equal(D, D2)
    # The vector itself is found (first for Flat; PQ4x4's codes are coarse).
    found = (I == np.arange(50)[:, None]).any(axis=1).mean()
    assert found >= (0.95 if desc.endswith("Flat") else 0.6), found


def test_kmeans_trainer_is_faiss_own_training(rng):
    x = _data(rng)
    ours = faiss_gmm.index_factory(16, "IVF20,Flat", x, trainer="kmeans", device="cpu")
    ref = faiss.index_factory(16, "IVF20,Flat")
    ref.train(x)  # FAISS: 10 iterations, 256 rows per list, seed 1234
    np.testing.assert_allclose(faiss.extract_index_ivf(ours).quantizer.reconstruct_n(0, 20),
                               faiss.extract_index_ivf(ref).quantizer.reconstruct_n(0, 20),
                               rtol=1e-5, atol=1e-5)


def test_kmeans_matches_faiss_kmeans(rng):
    x = _data(rng, n=5003, d=12)
    ours = faiss_gmm.Kmeans(12, 17, niter=15, seed=99)
    ref = faiss.Kmeans(12, 17, niter=15, seed=99)
    assert ours.train(x) == pytest.approx(ref.train(x), rel=1e-5)
    np.testing.assert_allclose(ours.centroids, ref.centroids, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.obj, ref.obj, rtol=1e-5)
    np.testing.assert_array_equal(ours.assign(x[:100])[1], ref.assign(x[:100])[1])
    g = faiss_gmm.Kmeans(12, 17, niter=15, trainer="gmm")
    g.train(x)
    assert g.centroids.shape == (17, 12) and g.index.ntotal == 17
    assert np.all(np.diff(g.obj) <= 1e-4)  # EM never lowers the likelihood


def test_responsibility_spill_puts_vectors_where_the_reference_says(rng):
    x = _data(rng, n=3001)
    index, model = faiss_gmm.index_factory(16, "IVF12,Flat", x, return_model=True)
    st = faiss_gmm.add_multi_assign(index, x, model, max_lists=3, tau=0.05)
    _, resp = reference_posteriors(x, model)
    cent = faiss.extract_index_ivf(index).quantizer.reconstruct_n(0, 12)
    nearest = ((x[:, None, :] - cent[None]) ** 2).sum(-1).argmin(1)
    got = _lists_of(index)
    checked = 0
    for i in range(len(x)):
        others = [c for c in np.argsort(-resp[i]) if c != nearest[i]][:2]
        # Skip rows whose responsibilities sit at tau (float32 vs float64).
        if any(abs(resp[i, c] - 0.05) < 1e-3 for c in others):
            continue
        want = sorted([nearest[i]] + [c for c in others if resp[i, c] >= 0.05])
        assert got[i] == want, (i, got[i], want)
        checked += 1
    assert checked > 0.95 * len(x)
    assert st["n_vectors"] == 3001 and st["n_entries"] == index.ntotal == sum(map(len, got.values()))


def test_soar_spill_matches_its_formula_on_a_kmeans_index(rng):
    x = _data(rng, n=2003)
    index = faiss_gmm.index_factory(16, "IVF10,Flat", x, trainer="kmeans")
    ids = np.arange(100, 100 + len(x), dtype=np.int64)
    faiss_gmm.add_multi_assign(index, x, rule="soar", lambda_=1.0, ids=ids)
    c = faiss.extract_index_ivf(index).quantizer.reconstruct_n(0, 10).astype(np.float64)
    xd = x.astype(np.float64)
    d2 = ((xd[:, None] - c[None]) ** 2).sum(-1)
    first = d2.argmin(1)
    r = xd - c[first]
    par = (((xd[:, None] - c[None]) * r[:, None]).sum(-1)) ** 2 / (r * r).sum(1, keepdims=True)
    cost = d2 + par
    cost[np.arange(len(x)), first] = np.inf
    second = cost.argmin(1)
    srt = np.sort(cost, 1)
    got = _lists_of(index)
    clear = srt[:, 1] - srt[:, 0] > 1e-3 * srt[:, 0]
    for i in np.flatnonzero(clear):
        assert got[100 + i] == sorted([first[i], second[i]])


def _brute_force(x, lists_of_id, probed, q, k):
    """Exact top-k distinct ids among the vectors in the probed lists (float64)."""
    cand = [i for i, ls in lists_of_id.items() if set(ls) & set(probed)]
    d = ((x[cand].astype(np.float64) - q) ** 2).sum(1)
    return [cand[j] for j in np.argsort(d)[:k]]


@pytest.mark.parametrize("order", ["distance", "posterior"])
def test_search_mixture_returns_exact_distinct_results_of_the_probed_lists(rng, order):
    x = _data(rng, n=4001)
    index, model = faiss_gmm.index_factory(16, "IVF16,Flat", x, return_model=True)
    faiss_gmm.add_multi_assign(index, x, model, max_lists=2, tau=0.02)
    assert faiss_gmm.count_max_copies(index) == 2
    q = x[:40] + 0.3 * rng.standard_normal((40, 16)).astype(np.float32)
    D, I = faiss_gmm.search_mixture(index, q, 10, model, nprobe=3, order=order)
    cent = faiss.extract_index_ivf(index).quantizer.reconstruct_n(0, 16)
    lp = np.log(model.predict_proba(q) + 1e-300)
    got = _lists_of(index)
    for j in range(40):
        if order == "distance":
            probed = np.argsort(((cent - q[j]) ** 2).sum(1))[:3]
        else:
            probed = np.argsort(-lp[j])[:3]
        want = _brute_force(x, got, probed, q[j].astype(np.float64), 10)
        assert len(set(I[j])) == 10
        assert (np.isin(I[j], want)).mean() >= 0.9  # ties at float32 aside
        np.testing.assert_allclose(D[j], ((x[I[j]] - q[j]) ** 2).sum(1), rtol=1e-4, atol=1e-3)


def test_search_mixture_with_mass_probes_fewer_lists(rng):
    x = _data(rng, n=3001)
    index, model = faiss_gmm.index_factory(16, "IVF16,Flat", x, return_model=True)
    index.add(x)
    stats = faiss.cvar.indexIVF_stats
    stats.reset()
    faiss_gmm.search_mixture(index, x[:200], 5, model, nprobe=8)
    full = stats.nlist
    stats.reset()
    D, I = faiss_gmm.search_mixture(index, x[:200], 5, model, nprobe=8, mass=0.9)
    assert 200 <= stats.nlist < full
    assert (I[:, 0] == np.arange(200)).mean() > 0.9


def test_opq_chain_multi_assign_and_search(rng):
    x = _data(rng, n=3001)
    index, model = faiss_gmm.index_factory(16, "OPQ4,IVF8,PQ4x4", x, return_model=True)
    st = faiss_gmm.add_multi_assign(index, x, model, rule="soar")
    assert st["n_entries"] == 2 * 3001 == index.ntotal
    D, I = faiss_gmm.search_mixture(index, x[:30], 5, nprobe=2, order="distance")
    assert all(len(set(r)) == 5 for r in I)


def test_ivf_bad_inputs(rng):
    x = _data(rng, n=500)
    with pytest.raises(ValueError, match="holds no IVF"):
        faiss_gmm.index_factory(16, "Flat", x)
    with pytest.raises(ValueError, match="bad factory string"):
        faiss_gmm.index_factory(16, "IVF16,Nonsense", x)
    with pytest.raises(ValueError, match="nlist=1000"):
        faiss_gmm.index_factory(16, "IVF1000,Flat", x)
    with pytest.raises(ValueError, match="features"):
        faiss_gmm.index_factory(8, "IVF4,Flat", x)
    with pytest.raises(ValueError, match="trainer"):
        faiss_gmm.index_factory(16, "IVF4,Flat", x, trainer="hnsw")
    bad = x.copy()
    bad[3, 3] = np.inf
    with pytest.raises(ValueError, match="row 3"):
        faiss_gmm.index_factory(16, "IVF4,Flat", bad)
    index, model = faiss_gmm.index_factory(16, "IVF4,Flat", x, return_model=True)
    other = faiss_gmm.GaussianMixture(5, max_iter=2).fit(x)
    with pytest.raises(ValueError, match="does not match"):
        faiss_gmm.search_mixture(index, x[:3], 2, other, nprobe=2)
    with pytest.raises(ValueError, match="needs the model"):
        faiss_gmm.search_mixture(index, x[:3], 2, nprobe=2)
    with pytest.raises(ValueError, match="spill rule"):
        faiss_gmm.add_multi_assign(index, x, model, rule="nearest")
    with pytest.raises(ValueError, match="queries"):
        faiss_gmm.search_mixture(index, bad, 2, model)
    index.add(x)
    with pytest.raises(ValueError, match="give ids"):
        faiss_gmm.add_multi_assign(index, x, model)
