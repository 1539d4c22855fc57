// Multi-assignment and posterior probing (faiss_gmm/IVFMixture.h) against
// float64 naive posteriors, brute force, and FAISS itself.
#include <faiss/IVFlib.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/VectorTransform.h>
#include <faiss/index_factory.h>
#include <faiss/clone_index.h>
#include <faiss/index_io.h>
#include <faiss_gmm/IVFEvaluation.h>
#include <faiss_gmm/IVFMixture.h>
#include <faiss_gmm/IndexIVFTraining.h>
#include <faiss_gmm/SyntheticData.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <numeric>
#include <set>

#include "TestUtils.h"

using namespace faiss_gmm;
using namespace faiss_gmm::test;

namespace {

/// A GMM-trained IVF-Flat over mixture data with soft borders (wide
/// spreads, so that many vectors have a second component above tau).
struct Fixture {
    int d;
    int64_t n, nq;
    std::vector<float> xb, xq;
    GaussianMixture model;
    std::unique_ptr<faiss::Index> index;

    Fixture(uint64_t seed, int d_, int64_t n_, int nlist, CovarianceType cov,
            const char* encoding = "Flat")
        : d(d_), n(n_), nq(97) {
        SyntheticMixtureParameters sp;
        sp.d = d;
        sp.n_clusters = 2 * nlist;
        sp.spread_min = 0.5;
        sp.spread_max = 1.0;
        sp.seed = seed;
        SyntheticMixture mix(sp);
        xb.resize(size_t(n) * d);
        xq.resize(size_t(nq) * d);
        mix.sample(n, 1, xb.data());
        mix.sample(nq, 2, xq.data());
        GaussianMixtureParameters p;
        p.covariance_type = cov;
        p.niter = 5;
        p.kmeans_niter = 4;
        p.seed = int(seed % 100000);
        p.device = Device::Cpu;
        index.reset(index_factory_gmm(d, "IVF" + std::to_string(nlist) + "," + encoding, n,
                                      xb.data(), p, faiss::METRIC_L2, &model));
    }
    faiss::IndexIVF* ivf() const { return faiss::ivflib::extract_index_ivf(index.get()); }
};

/// Float64 responsibilities of every component for one row.
std::vector<double> naive_resp(const GaussianMixture& m, const float* x) {
    std::vector<double> lp;
    naive_log_prob_row(m, x, lp);
    const double mx = *std::max_element(lp.begin(), lp.end());
    double s = 0;
    for (double v : lp) s += std::exp(v - mx);
    for (double& v : lp) v = std::exp(v - mx) / s;
    return lp;
}

/// Components by decreasing float64 responsibility.
std::vector<int> by_resp(const std::vector<double>& r) {
    std::vector<int> idx(r.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return r[a] > r[b]; });
    return idx;
}

/// The nearest mean of x (float64).
int nearest_mean(const GaussianMixture& m, const float* x) {
    int best = 0;
    double bd = INFINITY;
    for (int c = 0; c < m.k; c++) {
        double dd = 0;
        for (int j = 0; j < m.d; j++) dd += std::pow(double(x[j]) - m.means[size_t(c) * m.d + j], 2);
        if (dd < bd) bd = dd, best = c;
    }
    return best;
}

double fvec_l2(const GaussianMixture& m, const float* x, int c) {
    double dd = 0;
    for (int j = 0; j < m.d; j++) dd += std::pow(double(x[j]) - m.means[size_t(c) * m.d + j], 2);
    return dd;
}

/// Ids in each list of the IVF.
std::vector<std::vector<int64_t>> list_ids(const faiss::IndexIVF* ivf) {
    std::vector<std::vector<int64_t>> out(ivf->nlist);
    for (size_t l = 0; l < ivf->nlist; l++) {
        const size_t ls = ivf->invlists->list_size(l);
        faiss::InvertedLists::ScopedIds ids(ivf->invlists, l);
        out[l].assign(ids.get(), ids.get() + ls);
    }
    return out;
}

/// Exact k nearest (float64 distances, ids ascending on ties) among candidates.
std::vector<int64_t> exact_knn(const float* q, const std::vector<float>& xb, int d,
                               const std::set<int64_t>& cand, size_t k) {
    std::vector<std::pair<double, int64_t>> v;
    for (int64_t id : cand) {
        double dd = 0;
        for (int j = 0; j < d; j++) dd += std::pow(double(q[j]) - xb[size_t(id) * d + j], 2);
        v.push_back({dd, id});
    }
    std::sort(v.begin(), v.end());
    std::vector<int64_t> out;
    for (size_t i = 0; i < std::min(k, v.size()); i++) out.push_back(v[i].second);
    return out;
}

/// Ranks of a query's float64 ids vs ours may swap on near-ties: count how
/// many of ours are in the reference set.
size_t overlap(const std::vector<int64_t>& ref, const idx_t* got, size_t k) {
    std::set<int64_t> r(ref.begin(), ref.end());
    size_t h = 0;
    for (size_t i = 0; i < k; i++) h += r.count(got[i]);
    return h;
}

struct Shape {
    int d;
    int64_t n;
    int nlist;
    CovarianceType cov;
};

class MultiAssign : public testing::TestWithParam<Shape> {};

TEST_P(MultiAssign, ListsFollowNearestThenResponsibilities) {
    const Shape s = GetParam();
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    Fixture f(seed, s.d, s.n, s.nlist, s.cov);
    for (int m : {2, 3}) {
        const float tau = m == 2 ? 0.1f : 0.05f;
        MultiAssignParameters p;
        p.tau = tau;
        p.max_lists = m;
        std::vector<idx_t> lists(size_t(f.n) * m);
        assign_multi(f.index.get(), f.model, f.n, f.xb.data(), p, lists.data());
        int64_t checked = 0, extra = 0;
        for (int64_t i = 0; i < f.n; i++) {
            const float* x = f.xb.data() + size_t(i) * f.d;
            const auto r = naive_resp(f.model, x);
            const idx_t* row = lists.data() + size_t(i) * m;
            // Near-ties (of tau, or of two means' distances) may go either way
            // between float and float64: skip those rows.
            bool tie = false;
            for (double v : r) tie |= std::abs(v - tau) < 1e-3;
            const int nn = nearest_mean(f.model, x);
            if (tie || row[0] != nn) {
                EXPECT_TRUE(tie || std::abs(fvec_l2(f.model, x, int(row[0])) -
                                            fvec_l2(f.model, x, nn)) <
                                       1e-4 * (1 + fvec_l2(f.model, x, nn)))
                    << "row " << i << ": nearest list " << row[0] << ", float64 says " << nn;
                continue;
            }
            std::vector<int64_t> want;
            for (int c : by_resp(r))
                if (c != nn && r[c] >= tau && int(want.size()) < m - 1) want.push_back(c);
            std::vector<int64_t> got;
            for (int j = 1; j < m && row[j] >= 0; j++) got.push_back(row[j]);
            for (int j = int(got.size()) + 1; j < m; j++) ASSERT_EQ(row[j], -1);
            EXPECT_EQ(std::set<int64_t>(got.begin(), got.end()),
                      std::set<int64_t>(want.begin(), want.end()))
                << "row " << i << " m " << m;
            checked++;
            extra += int64_t(got.size());
        }
        EXPECT_GT(checked, f.n * 9 / 10);
        EXPECT_GT(extra, 0) << "the fixture should have border vectors";

        // select_lists on more candidates than m (as the tuning benchmark
        // computes them once for every m) gives assign_multi's lists.
        const int t = m + 2;
        std::vector<idx_t> nearest(f.n), top(size_t(f.n) * t), again(lists.size());
        std::vector<float> ndis(f.n), resp(size_t(f.n) * t);
        faiss::ivflib::extract_index_ivf(f.index.get())
            ->quantizer->search(f.n, f.xb.data(), 1, ndis.data(), nearest.data());
        f.model.top_components(f.n, f.xb.data(), t, top.data(), resp.data());
        select_lists(f.n, nearest.data(), t, top.data(), resp.data(), p, again.data());
        EXPECT_EQ(again, lists) << "m " << m;
    }
}

TEST_P(MultiAssign, IndexHoldsEachVectorInItsListsAndSearchDeduplicates) {
    const Shape s = GetParam();
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    Fixture f(seed, s.d, s.n, s.nlist, s.cov);
    MultiAssignParameters p;
    p.tau = 0.1f;
    p.max_lists = 3;
    std::vector<idx_t> lists(size_t(f.n) * p.max_lists);
    assign_multi(f.index.get(), f.model, f.n, f.xb.data(), p, lists.data());
    const auto st = add_preassigned(f.index.get(), f.n, f.xb.data(), nullptr, p.max_lists,
                                    lists.data());
    EXPECT_EQ(st.n_vectors, f.n);
    EXPECT_EQ(f.index->ntotal, st.n_entries);
    EXPECT_GT(st.entries_per_vector(), 1.0);

    // Every list holds exactly the vectors assigned to it.
    std::vector<std::set<int64_t>> want(s.nlist);
    int64_t entries = 0;
    for (int64_t i = 0; i < f.n; i++)
        for (int j = 0; j < p.max_lists; j++)
            if (lists[size_t(i) * p.max_lists + j] >= 0) {
                want[lists[size_t(i) * p.max_lists + j]].insert(i);
                entries++;
            }
    EXPECT_EQ(st.n_entries, entries);
    const auto got = list_ids(f.ivf());
    for (int l = 0; l < s.nlist; l++) {
        EXPECT_EQ(got[l].size(), want[l].size()) << "list " << l;
        EXPECT_EQ(std::set<int64_t>(got[l].begin(), got[l].end()), want[l]) << "list " << l;
    }
    int most = 1;
    for (int64_t i = 0; i < f.n; i++) {
        int c = 0;
        for (int j = 0; j < p.max_lists; j++) c += lists[size_t(i) * p.max_lists + j] >= 0;
        most = std::max(most, c);
    }
    EXPECT_EQ(count_max_copies(f.index.get()), most);

    // Probing every list: each id once, the exact k nearest (brute force).
    const int k = 20;
    std::vector<float> dis(size_t(f.nq) * k);
    std::vector<idx_t> ids(size_t(f.nq) * k);
    std::set<int64_t> all;
    for (int64_t i = 0; i < f.n; i++) all.insert(i);
    for (ProbeOrder order : {ProbeOrder::Distance, ProbeOrder::Posterior}) {
        MixtureSearchParameters sp;
        sp.nprobe = s.nlist;
        sp.order = order;
        sp.max_copies = p.max_lists;
        MixtureSearchStats ss;
        search_mixture(f.index.get(), f.model, f.nq, f.xq.data(), k, dis.data(), ids.data(), sp,
                       &ss);
        EXPECT_DOUBLE_EQ(ss.ndis, double(f.nq) * double(st.n_entries));
        for (int64_t q = 0; q < f.nq; q++) {
            const idx_t* row = ids.data() + q * k;
            EXPECT_EQ(std::set<idx_t>(row, row + k).size(), size_t(k)) << "duplicate id, q " << q;
            const auto ref = exact_knn(f.xq.data() + q * f.d, f.xb, f.d, all, k);
            EXPECT_GE(overlap(ref, row, k), size_t(k - 1)) << "query " << q;
            for (int j = 1; j < k; j++) EXPECT_LE(dis[q * k + j - 1], dis[q * k + j]);
        }
    }
    // What plain FAISS returns for the same index: duplicates.
    f.ivf()->nprobe = s.nlist;
    f.index->search(f.nq, f.xq.data(), k, dis.data(), ids.data());
    int64_t dups = 0;
    for (int64_t q = 0; q < f.nq; q++)
        dups += k - int64_t(std::set<idx_t>(ids.data() + q * k, ids.data() + (q + 1) * k).size());
    EXPECT_GT(dups, 0);
}

TEST_P(MultiAssign, PosteriorAndAdaptiveProbingMatchAFloat64Reference) {
    const Shape s = GetParam();
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    Fixture f(seed, s.d, s.n, s.nlist, s.cov);
    const auto st = add_multi_assign(f.index.get(), f.model, f.n, f.xb.data());
    const auto lists = list_ids(f.ivf());
    const int k = 10;
    std::vector<float> dis(size_t(f.nq) * k);
    std::vector<idx_t> ids(size_t(f.nq) * k);
    for (double mass : {0.0, 0.9}) {
        for (int nprobe : {1, 3}) {
            MixtureSearchParameters sp;
            sp.nprobe = nprobe;
            sp.mass = mass;
            MixtureSearchStats ss;
            search_mixture(f.index.get(), f.model, f.nq, f.xq.data(), k, dis.data(), ids.data(),
                           sp, &ss);
            double nl = 0, nd = 0;
            int64_t compared = 0;
            for (int64_t q = 0; q < f.nq; q++) {
                const float* xq = f.xq.data() + q * f.d;
                const auto r = naive_resp(f.model, xq);
                const auto order = by_resp(r);
                // Skip queries whose list choice is a near-tie in float.
                bool tie = false;
                for (int j = 0; j + 1 < std::min(nprobe + 1, s.nlist); j++)
                    tie |= r[order[j]] < (1 + 1e-3) * r[order[j + 1]];  // log ratio < 1e-3
                double cum = 0;
                std::set<int64_t> cand;
                int used = 0;
                for (int j = 0; j < nprobe; j++) {
                    cand.insert(lists[order[j]].begin(), lists[order[j]].end());
                    nd += double(lists[order[j]].size());
                    used++;
                    cum += r[order[j]];
                    if (mass > 0 && std::abs(cum - mass) < 1e-4) tie = true;
                    if (mass > 0 && cum >= mass) break;
                }
                nl += used;
                if (tie) continue;
                const auto ref = exact_knn(xq, f.xb, f.d, cand, k);
                const idx_t* row = ids.data() + q * k;
                EXPECT_GE(overlap(ref, row, std::min<size_t>(k, ref.size())),
                          std::min<size_t>(k, ref.size()) - 1)
                    << "query " << q << " nprobe " << nprobe << " mass " << mass;
                compared++;
            }
            EXPECT_GT(compared, f.nq * 8 / 10);
            // Work: within the tie slack of the float64 count.
            EXPECT_NEAR(ss.nlist, nl, 0.05 * nl + 2);
            EXPECT_NEAR(ss.ndis, nd, 0.05 * nd + 2 * double(f.n) / s.nlist);
            if (mass > 0) EXPECT_LE(ss.nlist, double(nprobe) * f.nq);
        }
    }
    (void)st;
}

INSTANTIATE_TEST_SUITE_P(Shapes, MultiAssign,
                         testing::Values(Shape{19, 1537, 23, CovarianceType::Spherical},
                                         Shape{7, 2011, 13, CovarianceType::Diagonal}));

TEST(MultiAssignIndex, SingleAssignmentAndDistanceOrderAreFaissItself) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    Fixture f(seed, 24, 3001, 31, CovarianceType::Spherical);
    std::unique_ptr<faiss::Index> plain(faiss::clone_index(f.index.get()));
    plain->add(f.n, f.xb.data());
    MultiAssignParameters p;
    p.max_lists = 1;
    const auto st = add_multi_assign(f.index.get(), f.model, f.n, f.xb.data(), p);
    EXPECT_EQ(st.n_entries, f.n);
    const int k = 15;
    for (int nprobe : {1, 4, 31}) {
        std::vector<float> d0(size_t(f.nq) * k), d1(d0.size());
        std::vector<idx_t> i0(d0.size()), i1(d0.size());
        faiss::ivflib::extract_index_ivf(plain.get())->nprobe = nprobe;
        plain->search(f.nq, f.xq.data(), k, d0.data(), i0.data());
        MixtureSearchParameters sp;
        sp.nprobe = nprobe;
        sp.order = ProbeOrder::Distance;
        search_mixture(f.index.get(), f.model, f.nq, f.xq.data(), k, d1.data(), i1.data(), sp);
        EXPECT_EQ(i0, i1) << "nprobe " << nprobe;
        EXPECT_EQ(d0, d1) << "nprobe " << nprobe;
    }
}

TEST(MultiAssignIndex, OpqPqChainRoundTripsThroughFaissFiles) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    const int d = 32, nlist = 16;
    SyntheticMixtureParameters sp;
    sp.d = d;
    sp.n_clusters = 40;
    sp.spread_min = 0.5;
    sp.spread_max = 1.0;
    sp.seed = seed;
    SyntheticMixture mix(sp);
    const int64_t n = 4003, nq = 61;
    std::vector<float> xb(n * d), xq(nq * d);
    mix.sample(n, 1, xb.data());
    mix.sample(nq, 2, xq.data());
    std::unique_ptr<faiss::Index> index(faiss::index_factory(d, "OPQ8,IVF16,PQ8"));
    faiss::ivflib::extract_index_ivf(index.get());
    dynamic_cast<faiss::IndexIVFPQ*>(faiss::ivflib::extract_index_ivf(index.get()))
        ->do_polysemous_training = false;
    dynamic_cast<faiss::OPQMatrix*>(dynamic_cast<faiss::IndexPreTransform*>(index.get())->chain[0])
        ->niter = 3;
    GaussianMixtureParameters gp;
    gp.niter = 4;
    gp.kmeans_niter = 3;
    gp.device = Device::Cpu;
    GaussianMixture model;
    train_index_gmm(index.get(), n, xb.data(), gp, &model);
    ASSERT_EQ(model.k, nlist);
    MultiAssignParameters p;
    p.tau = 0.05f;
    p.max_lists = 2;
    std::vector<idx_t> xids(n);
    for (int64_t i = 0; i < n; i++) xids[i] = 1000 + 3 * i;
    const auto st = add_multi_assign(index.get(), model, n, xb.data(), p, xids.data());
    EXPECT_GT(st.entries_per_vector(), 1.0);
    EXPECT_EQ(index->ntotal, st.n_entries);

    char path[] = "/tmp/faiss_gmm_mixXXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    close(fd);
    faiss::write_index(index.get(), path);
    std::unique_ptr<faiss::Index> back(faiss::read_index(path));
    unlink(path);
    EXPECT_EQ(back->ntotal, index->ntotal);

    const int k = 10;
    for (double mass : {0.0, 0.95}) {
        std::vector<float> d0(nq * k), d1(nq * k);
        std::vector<idx_t> i0(nq * k), i1(nq * k);
        MixtureSearchParameters sq;
        sq.nprobe = 4;
        sq.mass = mass;
        search_mixture(index.get(), model, nq, xq.data(), k, d0.data(), i0.data(), sq);
        search_mixture(back.get(), model, nq, xq.data(), k, d1.data(), i1.data(), sq);
        EXPECT_EQ(i0, i1);
        EXPECT_EQ(d0, d1);
        for (int64_t q = 0; q < nq; q++) {
            std::set<idx_t> seen;
            for (int j = 0; j < k; j++) {
                const idx_t id = i0[q * k + j];
                if (id < 0) continue;
                EXPECT_TRUE(seen.insert(id).second) << "query " << q << " id " << id << " twice";
                EXPECT_TRUE(id >= 1000 && (id - 1000) % 3 == 0 && (id - 1000) / 3 < n);
            }
        }
    }
}

TEST(MultiAssignIndex, ScalarQuantizerCopiesAreFoundOnce) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    // SQ8 residual codes: an id's copies in different lists decode to
    // slightly different vectors, so their distances differ.
    Fixture f(seed, 16, 2500, 12, CovarianceType::Diagonal, "SQ8");
    MultiAssignParameters p;
    p.tau = 0.05f;
    p.max_lists = 3;
    const auto st = add_multi_assign(f.index.get(), f.model, f.n, f.xb.data(), p);
    EXPECT_GT(st.entries_per_vector(), 1.0);
    const int k = 25;
    std::vector<float> dis(size_t(f.nq) * k);
    std::vector<idx_t> ids(size_t(f.nq) * k);
    std::set<int64_t> all;
    for (int64_t i = 0; i < f.n; i++) all.insert(i);
    MixtureSearchParameters sp;
    sp.nprobe = 12;
    sp.order = ProbeOrder::Distance;
    search_mixture(f.index.get(), f.model, f.nq, f.xq.data(), k, dis.data(), ids.data(), sp);
    size_t hits = 0;
    for (int64_t q = 0; q < f.nq; q++) {
        const idx_t* row = ids.data() + q * k;
        EXPECT_EQ(std::set<idx_t>(row, row + k).size(), size_t(k)) << "query " << q;
        hits += overlap(exact_knn(f.xq.data() + q * f.d, f.xb, f.d, all, k), row, k);
    }
    // SQ8 is approximate: most of the exact neighbours, not all.
    EXPECT_GT(double(hits) / (double(f.nq) * k), 0.8);
}

TEST(MultiAssignIndex, BadInputIsRefusedWithAMessage) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    Fixture f(seed, 8, 700, 5, CovarianceType::Spherical);
    auto throws_with = [](auto&& fn, const std::string& what) {
        try {
            fn();
            ADD_FAILURE() << "no error; expected one naming '" << what << "'";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
        }
    };
    GaussianMixture other = f.model;
    other.k = 4;
    other.weights.resize(4);
    other.means.resize(4 * 8);
    other.variances.resize(4);
    double s = 0;
    for (float w : other.weights) s += w;
    for (float& w : other.weights) w = float(w / s);
    throws_with([&] { add_multi_assign(f.index.get(), other, f.n, f.xb.data()); },
                "is not the index's");
    MultiAssignParameters p;
    p.tau = 1.5f;
    throws_with([&] { add_multi_assign(f.index.get(), f.model, f.n, f.xb.data(), p); }, "tau");
    p = {};
    p.max_lists = 0;
    throws_with([&] { add_multi_assign(f.index.get(), f.model, f.n, f.xb.data(), p); },
                "max_lists");
    std::vector<float> bad(f.xb.begin(), f.xb.begin() + 10 * 8);
    bad[37] = NAN;
    throws_with([&] { add_multi_assign(f.index.get(), f.model, 10, bad.data()); }, "non-finite value (nan)");
    std::vector<idx_t> lists(2 * 10, -1);
    for (int i = 0; i < 10; i++) lists[2 * i] = i % 5;
    lists[2 * 9 + 1] = 5;  // nlist is 5
    throws_with([&] { add_preassigned(f.index.get(), 10, f.xb.data(), nullptr, 2, lists.data()); },
                "outside [0, nlist)");
    EXPECT_EQ(f.index->ntotal, 0) << "nothing added on error";
    add_multi_assign(f.index.get(), f.model, f.n, f.xb.data());
    throws_with([&] { add_multi_assign(f.index.get(), f.model, f.n, f.xb.data()); }, "give ids");
    std::vector<float> dis(10), qq(f.xq.begin(), f.xq.begin() + 8);
    std::vector<idx_t> ids(10);
    MixtureSearchParameters sp;
    sp.nprobe = 0;
    throws_with([&] { search_mixture(f.index.get(), f.model, 1, qq.data(), 10, dis.data(), ids.data(), sp); },
                "nprobe");
    qq[3] = INFINITY;
    sp.nprobe = 2;
    throws_with([&] { search_mixture(f.index.get(), f.model, 1, qq.data(), 10, dis.data(), ids.data(), sp); },
                "queries");
    std::unique_ptr<faiss::Index> empty(faiss::clone_index(f.index.get()));
    empty->reset();
    faiss::IndexIDMap idmap(empty.get());
    throws_with([&] { search_mixture(&idmap, f.model, 1, f.xq.data(), 10, dis.data(), ids.data(), sp); },
                "must be an IndexIVF or one IndexPreTransform");
    faiss::IndexFlatL2 flat(8);
    throws_with([&] { search_mixture(&flat, f.model, 1, qq.data(), 10, dis.data(), ids.data(), sp); },
                "no IndexIVF");
}

}  // namespace
