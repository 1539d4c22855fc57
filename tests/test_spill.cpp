// The spill rules of multi-assignment (SpillRule::Tempered, SpillRule::Soar,
// PrimaryList::MostProbable) against float64 references written from their
// definitions, on fresh random inputs; and their errors.
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/index_factory.h>
#include <faiss_gmm/IVFEvaluation.h>
#include <faiss_gmm/IVFMixture.h>
#include <faiss_gmm/IndexIVFTraining.h>
#include <faiss_gmm/SyntheticData.h>
#include <faiss_gmm/impl/Spill.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "TestUtils.h"

using namespace faiss_gmm;
using namespace faiss_gmm::test;

namespace {

/// Float64 softmax of lp / T.
std::vector<double> softmax(std::vector<double> lp, double T) {
    double mx = -INFINITY, s = 0;
    for (double& v : lp) mx = std::max(mx, v /= T);
    for (double v : lp) s += std::exp(v - mx);
    for (double& v : lp) v = std::exp(v - mx) / s;
    return lp;
}

TEST(Spill, TemperedMixtureHasTheTemperedResponsibilities) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    for (auto cov : {CovarianceType::Spherical, CovarianceType::Diagonal})
        for (double T : {0.5, 1.0, 3.0, 17.0}) {
            const int d = 23, k = 13;
            auto x = random_rows(101, d, false, rng);
            GaussianMixture m = random_model(d, k, cov, x, rng);
            const GaussianMixture t = tempered_mixture(m, T);
            std::vector<double> lp, lt;
            for (int i = 0; i < 101; i++) {
                naive_log_prob_row(m, x.data() + size_t(i) * d, lp);
                naive_log_prob_row(t, x.data() + size_t(i) * d, lt);
                const auto want = softmax(lp, T), got = softmax(lt, 1.0);
                for (int c = 0; c < k; c++)
                    ASSERT_NEAR(got[c], want[c], 1e-5 + 1e-4 * want[c])
                        << "T " << T << " row " << i << " component " << c;
            }
        }
    GaussianMixture m =
        random_model(3, 2, CovarianceType::Spherical, random_rows(10, 3, false, rng), rng);
    EXPECT_THROW(tempered_mixture(m, 0.0), Error);
    EXPECT_THROW(tempered_mixture(m, -1.0), Error);
}

/// SOAR's score of centroid c for x after the lists in row[0..p), float64.
double soar_score(const float* x, const float* cent, int d, const idx_t* row, int p, double lambda,
                  idx_t c) {
    double s = 0;
    for (int j = 0; j < d; j++) s += std::pow(double(x[j]) - cent[c * d + j], 2);
    for (int q = 0; q < p; q++) {
        double dot = 0, nn = 0;
        for (int j = 0; j < d; j++) {
            const double r = double(x[j]) - cent[row[q] * d + j];
            dot += r * (double(x[j]) - cent[c * d + j]);
            nn += r * r;
        }
        if (nn > 0) s += lambda * dot * dot / nn;
    }
    return s;
}

TEST(Spill, SoarListsMinimiseTheSoarScore) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    for (int d : {3, 100})
        for (float lambda : {0.f, 1.f, 4.f})
            for (int m : {2, 3}) {
                const idx_t k = 37, n = 1003;
                auto cent = random_rows(k, d, true, rng);
                auto x = random_rows(n, d, true, rng);
                std::vector<idx_t> lists(size_t(n) * m, -7);
                std::uniform_int_distribution<idx_t> pick(0, k - 1);
                for (idx_t i = 0; i < n; i++) lists[size_t(i) * m] = pick(rng);  // any primary
                soar_lists(d, k, cent.data(), n, x.data(), lambda, m, lists.data());
                for (idx_t i = 0; i < n; i++) {
                    const idx_t* row = lists.data() + size_t(i) * m;
                    const float* xi = x.data() + size_t(i) * d;
                    for (int p = 1; p < m; p++) {
                        ASSERT_TRUE(row[p] >= 0 && row[p] < k);
                        for (int q = 0; q < p; q++) ASSERT_NE(row[p], row[q]) << "row " << i;
                        double best = INFINITY;
                        for (idx_t c = 0; c < k; c++)
                            if (std::find(row, row + p, c) == row + p)
                                best = std::min(best,
                                                soar_score(xi, cent.data(), d, row, p, lambda, c));
                        const double got = soar_score(xi, cent.data(), d, row, p, lambda, row[p]);
                        // fp32 expansion ||x||^2 - 2 x.c + ||c||^2: near ties either way.
                        double scale = 0;
                        for (int j = 0; j < d; j++) scale += double(xi[j]) * xi[j];
                        EXPECT_LE(got, best + 1e-5 * (1 + lambda) * (scale + best))
                            << "row " << i << " list " << p;
                    }
                }
            }
}

/// A k-means IVF-Flat (FAISS's own training) over clustered data.
std::unique_ptr<faiss::Index> kmeans_ivf(int d, int nlist, idx_t n, const float* x) {
    std::unique_ptr<faiss::Index> index(
        faiss::index_factory(d, ("IVF" + std::to_string(nlist) + ",Flat").c_str()));
    index->train(n, x);
    return index;
}

TEST(Spill, SoarOnAKMeansIndexNeedsNoModel) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const int d = 16, nlist = 20;
    const idx_t n = 2011;
    auto x = random_rows(n, d, false, rng);
    auto index = kmeans_ivf(d, nlist, n, x.data());
    auto* ivf = dynamic_cast<faiss::IndexIVF*>(index.get());
    MultiAssignParameters p;
    p.rule = SpillRule::Soar;
    p.max_lists = 2;
    const GaussianMixture none;
    std::vector<idx_t> lists(size_t(n) * 2);
    assign_multi(index.get(), none, n, x.data(), p, lists.data());
    std::vector<float> cent(size_t(nlist) * d);
    ivf->quantizer->reconstruct_n(0, nlist, cent.data());
    for (idx_t i = 0; i < n; i++) {
        // The first list is FAISS's own assignment; SOAR always spills.
        faiss::Index::idx_t near;
        float dist;
        ivf->quantizer->search(1, x.data() + size_t(i) * d, 1, &dist, &near);
        const idx_t* row = lists.data() + size_t(i) * 2;
        double dn = 0, dr = 0;
        for (int j = 0; j < d; j++) {
            dn += std::pow(double(x[i * d + j]) - cent[near * d + j], 2);
            dr += std::pow(double(x[i * d + j]) - cent[row[0] * d + j], 2);
        }
        EXPECT_LE(dr, dn + 1e-4 * (1 + dn)) << "row " << i;
        EXPECT_TRUE(row[1] >= 0 && row[1] != row[0]) << "row " << i;
    }
    const auto st = add_multi_assign(index.get(), none, n, x.data(), p);
    EXPECT_EQ(st.n_entries, 2 * n);
    EXPECT_EQ(ivf->ntotal, 2 * n);
    // Searched by distance without a model: every list probed is exact
    // search, each id once.
    const idx_t nq = 17, kk = 10;
    std::vector<float> dis(nq * kk);
    std::vector<idx_t> ids(nq * kk);
    MixtureSearchParameters sp;
    sp.order = ProbeOrder::Distance;
    sp.nprobe = nlist;
    search_mixture(index.get(), none, nq, x.data(), kk, dis.data(), ids.data(), sp);
    faiss::IndexFlatL2 flat(d);
    flat.add(n, x.data());
    std::vector<float> fd(nq * kk);
    std::vector<faiss::Index::idx_t> fi(nq * kk);
    flat.search(nq, x.data(), kk, fd.data(), fi.data());
    for (idx_t q = 0; q < nq; q++)
        for (idx_t j = 0; j < kk; j++)
            EXPECT_NEAR(dis[q * kk + j], fd[q * kk + j], 1e-4 * (1 + fd[q * kk + j]))
                << "query " << q << " rank " << j;
    // A returned id counts once in the recall, however often it comes back.
    std::vector<int32_t> gt(nq * kk);
    for (idx_t i = 0; i < nq * kk; i++) gt[i] = int32_t(fi[i]);
    std::vector<faiss::Index::idx_t> twice(fi);
    for (idx_t q = 0; q < nq; q++) twice[q * kk + 1] = twice[q * kk];
    EXPECT_NEAR(k_recall_at_k(nq, twice.data(), int(kk), gt.data(), int(kk), int(kk)), 0.9, 1e-9);
    // The other rules read the mixture: without one they are refused.
    p.rule = SpillRule::Responsibility;
    EXPECT_THROW(assign_multi(index.get(), none, n, x.data(), p, lists.data()), Error);
}

TEST(Spill, MostProbablePrimaryAndTemperatureOnAGmmIndex) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    SyntheticMixtureParameters sp;
    sp.d = 12;
    sp.n_clusters = 24;
    sp.spread_min = 0.5;
    sp.spread_max = 1.0;
    sp.seed = seed;
    SyntheticMixture mix(sp);
    const idx_t n = 3001;
    std::vector<float> x(size_t(n) * sp.d);
    mix.sample(n, 1, x.data());
    GaussianMixtureParameters gp;
    gp.niter = 4;
    gp.kmeans_niter = 3;
    gp.device = Device::Cpu;
    gp.covariance_type = CovarianceType::Diagonal;
    GaussianMixture model;
    std::unique_ptr<faiss::Index> index(
        index_factory_gmm(sp.d, "IVF16,Flat", n, x.data(), gp, faiss::METRIC_L2, &model));
    MultiAssignParameters p;
    p.max_lists = 2;
    p.primary = PrimaryList::MostProbable;
    p.rule = SpillRule::Tempered;
    p.temperature = 4.0;
    p.tau = 0.2f;
    std::vector<idx_t> lists(size_t(n) * 2);
    assign_multi(index.get(), model, n, x.data(), p, lists.data());
    std::vector<double> lp;
    int64_t spilled = 0, ties = 0;
    for (idx_t i = 0; i < n; i++) {
        naive_log_prob_row(model, x.data() + size_t(i) * sp.d, lp);
        const auto r = softmax(lp, p.temperature);
        std::vector<int> order(model.k);
        for (int c = 0; c < model.k; c++) order[c] = c;
        std::sort(order.begin(), order.end(), [&](int a, int b) { return r[a] > r[b]; });
        const idx_t* row = lists.data() + size_t(i) * 2;
        if (std::abs(r[order[0]] - r[order[1]]) < 1e-4 || std::abs(r[order[1]] - p.tau) < 1e-4) {
            ties++;
            continue;
        }
        EXPECT_EQ(row[0], order[0]) << "row " << i << ": the most probable component first";
        EXPECT_EQ(row[1], r[order[1]] >= p.tau ? order[1] : -1) << "row " << i;
        spilled += row[1] >= 0;
    }
    EXPECT_LE(ties, n / 100);
    EXPECT_GT(spilled, 0);  // T = 4 spreads the posterior past tau somewhere
    p.temperature = 0;
    EXPECT_THROW(assign_multi(index.get(), model, n, x.data(), p, lists.data()), Error);
    p.temperature = 1;
    p.rule = SpillRule::Soar;
    p.lambda = -1;
    EXPECT_THROW(assign_multi(index.get(), model, n, x.data(), p, lists.data()), Error);
}

}  // namespace
