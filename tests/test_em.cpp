// EM behaviour: monotone log-likelihood, recovery of a known mixture, the
// model's queries against float64 references, save/load.
#include <faiss_gmm/SyntheticData.h>
#include <faiss_gmm/impl/CpuEStep.h>
#include <faiss_gmm/utils/Interrupt.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>

#include "TestUtils.h"

using namespace faiss_gmm;
using namespace faiss_gmm::test;

namespace {


class EmMonotone : public testing::TestWithParam<CovarianceType> {};

TEST_P(EmMonotone, LogLikelihoodNeverDecreases) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    SyntheticMixtureParameters sp;
    sp.d = 11;
    sp.n_clusters = 9;
    sp.anisotropic = true;
    sp.seed = seed;
    SyntheticMixture mix(sp);
    const int64_t n = 3001;
    std::vector<float> x(n * sp.d);
    mix.sample(n, seed + 1, x.data());
    GaussianMixtureParameters p;
    p.covariance_type = GetParam();
    p.niter = 30;
    p.tol = 0;
    // Plain EM: regularisation breaks the monotonicity guarantee. Random-row
    // starts can leave components on a handful of rows whose near-zero
    // variances cost float32 log-densities ~1e-4: start from k-means.
    p.reg_covar = 1e-6;
    p.init = InitMethod::KMeans;
    p.max_points_per_component = 0;  // every row, so score() sees the same data
    p.seed = int(seed % 100000);
    GaussianMixture g(sp.d, sp.n_clusters, p);
    g.fit(n, x.data());
    ASSERT_EQ(g.iteration_stats.size(), 30u);
    for (size_t i = 1; i < g.iteration_stats.size(); i++) {
        // A re-seed (split of the heaviest component) is not an EM step.
        if (g.iteration_stats[i - 1].n_reseeded) continue;
        double a = g.iteration_stats[i - 1].log_likelihood, b = g.iteration_stats[i].log_likelihood;
        // Once converged, changes are at the float32 rounding of the
        // log-densities (~1e-7 of terms in the hundreds): allow 5e-5.
        EXPECT_GE(b, a - 1e-5 * std::abs(a) - 5e-5) << "iteration " << i;
    }
    // The stats' log-likelihood is the model's score on the data.
    EXPECT_GT(g.score(n, x.data()), g.iteration_stats.back().log_likelihood - 5e-5);
}

INSTANTIATE_TEST_SUITE_P(Cov, EmMonotone,
                         testing::Values(CovarianceType::Spherical, CovarianceType::Diagonal));

TEST(Em, RecoversKnownMixture) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    SyntheticMixtureParameters sp;
    sp.d = 6;
    sp.n_clusters = 5;
    sp.center_scale = 6;  // well separated
    sp.spread_min = 0.3;
    sp.spread_max = 0.8;
    sp.size_skew = 0.7;
    sp.anisotropic = true;
    sp.seed = seed;
    SyntheticMixture mix(sp);
    const int64_t n = 40000;
    std::vector<float> x(n * sp.d);
    mix.sample(n, seed + 7, x.data());

    GaussianMixtureParameters p;
    p.covariance_type = CovarianceType::Diagonal;
    p.niter = 100;
    p.tol = 1e-7;
    p.reg_covar = 1e-6;
    p.init = InitMethod::KMeansPlusPlus;
    p.max_points_per_component = 0;  // every row: standard errors below assume n rows
    // EM finds a local optimum: keep the best of several initialisations
    // (as sklearn's n_init / FAISS's nredo). Ten: with five, seed
    // 8556250678679322126 still merged two true components in every redo.
    GaussianMixture g;
    for (int redo = 0; redo < 10; redo++) {
        p.seed = int(seed % 1000) + 17 * redo;
        GaussianMixture h(sp.d, sp.n_clusters, p);
        h.fit(n, x.data());
        if (redo == 0 ||
            h.iteration_stats.back().log_likelihood > g.iteration_stats.back().log_likelihood)
            g = h;
    }
    for (int c = 0; c < sp.n_clusters; c++) {
        // The fitted component nearest to true component c.
        int best = -1;
        double bd = INFINITY;
        for (int f = 0; f < g.k; f++) {
            double s = 0;
            for (int j = 0; j < sp.d; j++)
                s += std::pow(g.means[f * sp.d + j] - mix.centers[c * sp.d + j], 2);
            if (s < bd) bd = s, best = f;
        }
        SCOPED_TRACE("component " + std::to_string(c));
        double nc = n * mix.weights[c];
        for (int j = 0; j < sp.d; j++) {
            double sd = mix.stddevs[c * sp.d + j];
            // Means within 6 standard errors, deviations within 10%.
            EXPECT_NEAR(g.means[best * sp.d + j], mix.centers[c * sp.d + j],
                        6 * sd / std::sqrt(nc));
            EXPECT_NEAR(std::sqrt(g.variances[best * sp.d + j]), sd, 0.1 * sd);
        }
        EXPECT_NEAR(g.weights[best], mix.weights[c], 6 * std::sqrt(mix.weights[c] / n) + 1e-3);
    }
}

TEST(Em, QueriesMatchFloat64Reference) {
    std::mt19937_64 rng(fresh_seed());
    for (auto cov : {CovarianceType::Spherical, CovarianceType::Diagonal}) {
        const int d = 13, k = 17;
        const int64_t n = 777;
        auto x = random_rows(n, d, true, rng);
        GaussianMixture m = random_model(d, k, cov, x, rng);
        m.params.max_block_bytes = 4096;  // several blocks
        NaiveStats ref = naive_estep(m, n, x.data());
        std::vector<float> s(n);
        m.score_samples(n, x.data(), s.data());
        EXPECT_LT(rel_err(s, ref.log_norm), 1e-5);
        const int t = 3;
        std::vector<idx_t> lab(n * t);
        std::vector<float> resp(n * t);
        m.top_components(n, x.data(), t, lab.data(), resp.data());
        std::vector<idx_t> pred(n);
        m.predict(n, x.data(), pred.data());
        std::vector<double> lp;
        int disagreements = 0;
        for (int64_t i = 0; i < n; i++) {
            naive_log_prob_row(m, x.data() + i * d, lp);
            std::vector<int> order(k);
            for (int c = 0; c < k; c++) order[c] = c;
            std::sort(order.begin(), order.end(), [&](int a, int b) { return lp[a] > lp[b]; });
            EXPECT_EQ(pred[i], lab[i * t]);
            // Ties within float rounding may swap; count real disagreements.
            if (lab[i * t] != order[0] && lp[order[0]] - lp[lab[i * t]] > 1e-3) disagreements++;
            for (int j = 0; j < t; j++) {
                double r = std::exp(lp[lab[i * t + j]] - ref.log_norm[i]);
                EXPECT_NEAR(resp[i * t + j], r, 1e-4);
                if (j) EXPECT_LE(resp[i * t + j], resp[i * t + j - 1] + 1e-6);
            }
        }
        EXPECT_EQ(disagreements, 0);
        double bic = m.bic(n, x.data());
        double p = (k - 1) + k * d + (cov == CovarianceType::Spherical ? k : k * d);
        EXPECT_NEAR(bic, -2 * ref.sum_log_norm + p * std::log(double(n)),
                    1e-5 * std::abs(ref.sum_log_norm));
    }
}

TEST(Em, SampleWeightsActLikeRepeatedRows) {
    std::mt19937_64 rng(fresh_seed());
    const int d = 4, k = 3;
    const int64_t n = 500;
    auto x = random_rows(n, d, false, rng);
    std::vector<float> w(n, 1.f), xd = x;
    for (int64_t i = 0; i < n; i += 3) {  // every third row counts twice
        w[i] = 2.f;
        xd.insert(xd.end(), x.begin() + i * d, x.begin() + (i + 1) * d);
    }
    const int64_t nd = int64_t(xd.size() / d);
    // One E-step: weighted statistics equal those of the repeated rows.
    GaussianMixture m = random_model(d, k, CovarianceType::Diagonal, x, rng);
    SufficientStatistics sw, sd;
    sw.reset(d, k, CovarianceType::Diagonal, mixture_center(m));
    sd.reset(d, k, CovarianceType::Diagonal, mixture_center(m));
    CpuEStep().accumulate(m, n, x.data(), w.data(), nullptr, sw);
    CpuEStep().accumulate(m, nd, xd.data(), nullptr, nullptr, sd);
    EXPECT_LT(rel_err(sw.nk, sd.nk), 1e-5);
    EXPECT_LT(rel_err(sw.sum_x, sd.sum_x), 1e-5);
    EXPECT_LT(rel_err(sw.sum_x2, sd.sum_x2), 1e-5);
    EXPECT_NEAR(sw.sum_weights, double(nd), 1e-9);
    // A few EM iterations (more would amplify float rounding: EM on
    // overlapping clusters is ill-conditioned).
    GaussianMixtureParameters p;
    p.niter = 3;
    p.tol = 0;
    p.covariance_type = CovarianceType::Diagonal;
    p.max_points_per_component = 0;
    std::vector<float> init(x.begin(), x.begin() + k * d);
    GaussianMixture a(d, k, p), b(d, k, p);
    a.fit_from_means(n, x.data(), init.data(), w.data());
    b.fit_from_means(nd, xd.data(), init.data());
    EXPECT_LT(rel_err(a.means, b.means), 1e-4);
    EXPECT_LT(rel_err(a.variances, b.variances), 1e-4);
    EXPECT_LT(rel_err(a.weights, b.weights), 1e-4);
}

TEST(Em, EmptyComponentIsReseeded) {
    std::mt19937_64 rng(fresh_seed());
    const int d = 3, k = 4;
    const int64_t n = 2000;
    auto x = random_rows(n, d, false, rng);
    std::vector<float> init(x.begin(), x.begin() + k * d);
    for (int j = 0; j < d; j++) init[3 * d + j] = 1e4f;  // far from every row: empty
    GaussianMixtureParameters p;
    p.niter = 5;
    GaussianMixture g(d, k, p);
    g.fit_from_means(n, x.data(), init.data());
    // What re-seeding promises (the empty component is re-seeded by the
    // initial hard-assignment M-step): it moves among the rows, and no
    // component ends with less than min_component_mass rows of weight. A split
    // part may then shrink: a fixed share such as 1% failed on ~2% of draws.
    for (int c = 0; c < k; c++) EXPECT_GE(g.weights[c] * double(n), p.min_component_mass * 0.999);
    for (int j = 0; j < d; j++) EXPECT_LT(std::abs(g.means[3 * d + j]), 10.f);
}

TEST(Em, SubsamplesLikeFaiss) {
    std::mt19937_64 rng(fresh_seed());
    const int d = 2, k = 2;
    auto x = random_rows(1000, d, false, rng);
    GaussianMixtureParameters p;
    p.max_points_per_component = 50;  // 100 of the 1000 rows
    p.niter = 2;
    p.tol = 0;
    GaussianMixture g(d, k, p);
    g.fit(1000, x.data());
    // Two deterministic fits with the same seed agree exactly.
    GaussianMixture h(d, k, p);
    h.fit(1000, x.data());
    EXPECT_EQ(g.means, h.means);
}

TEST(Em, BadInputsGiveClearErrors) {
    std::mt19937_64 rng(fresh_seed());
    auto x = random_rows(50, 4, false, rng);
    GaussianMixture g(4, 60);
    try {
        g.fit(50, x.data());
        FAIL() << "k > n accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("k=60"), std::string::npos) << e.what();
    }
    x[17 * 4 + 2] = NAN;
    GaussianMixture h(4, 3);
    try {
        h.fit(50, x.data());
        FAIL() << "NaN accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("row 17"), std::string::npos) << e.what();
    }
    x[17 * 4 + 2] = INFINITY;
    EXPECT_THROW(h.fit(50, x.data()), Error);
    EXPECT_THROW(GaussianMixture(0, 3), Error);
    std::vector<float> s(1);
    EXPECT_THROW(GaussianMixture(4, 3).score_samples(1, x.data(), s.data()), Error);  // not fitted
}

TEST(Em, SaveLoadRoundTripAndBadFiles) {
    std::mt19937_64 rng(fresh_seed());
    TempDir dir;
    auto x = random_rows(300, 7, false, rng);
    GaussianMixture m = random_model(7, 5, CovarianceType::Diagonal, x, rng);
    m.save(dir / "m.gmm");
    GaussianMixture r = GaussianMixture::load(dir / "m.gmm");
    EXPECT_EQ(r.d, 7);
    EXPECT_EQ(r.k, 5);
    EXPECT_EQ(r.params.covariance_type, CovarianceType::Diagonal);
    EXPECT_EQ(r.means, m.means);
    EXPECT_EQ(r.variances, m.variances);
    EXPECT_EQ(r.weights, m.weights);

    // Truncated copy.
    std::ifstream in(dir / "m.gmm", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(dir / "t.gmm", std::ios::binary).write(bytes.data(), bytes.size() - 5);
    EXPECT_THROW(GaussianMixture::load(dir / "t.gmm"), Error);
    std::ofstream(dir / "junk.gmm") << "not a model";
    EXPECT_THROW(GaussianMixture::load(dir / "junk.gmm"), Error);
    EXPECT_THROW(GaussianMixture::load(dir / "missing.gmm"), Error);
    // Unwritable path: a clear error, nothing left behind.
    std::ofstream(dir / "file") << "x";
    EXPECT_THROW(m.save(dir / "file/sub.gmm"), Error);
}

}  // namespace

// The interrupt hook (the Python binding's Ctrl-C) stops a fit between
// iterations with Interrupted, after the iterations already done.
TEST(GaussianMixture, InterruptHookStopsBetweenIterations) {
    const int n = 2000, d = 7, k = 5;
    std::mt19937 gen(std::random_device{}());
    std::normal_distribution<float> nd;
    std::vector<float> x(size_t(n) * d);
    for (float& v : x) v = nd(gen);
    faiss_gmm::GaussianMixtureParameters p;
    p.niter = 50;
    p.tol = 0;
    p.device = faiss_gmm::Device::Cpu;
    faiss_gmm::GaussianMixture g(d, k, p);
    int polls = 0;
    faiss_gmm::set_interrupt_callback([&] { return ++polls > 3; });
    EXPECT_THROW(g.fit(n, x.data()), faiss_gmm::Interrupted);
    faiss_gmm::set_interrupt_callback({});
    EXPECT_EQ(g.iteration_stats.size(), 3u);
    EXPECT_NO_THROW(g.fit(n, x.data()));
    EXPECT_EQ(g.iteration_stats.size(), 50u);
}

// Bad input is an InvalidArgument (the binding's ValueError), still an Error.
TEST(GaussianMixture, BadInputIsInvalidArgument) {
    std::vector<float> x(30, 1.f);
    x[17] = std::nanf("");
    faiss_gmm::GaussianMixture g(3, 2);
    EXPECT_THROW(g.fit(10, x.data()), faiss_gmm::InvalidArgument);
    faiss_gmm::GaussianMixture big(3, 20);
    x[17] = 0;
    EXPECT_THROW(big.fit(10, x.data()), faiss_gmm::InvalidArgument);
    EXPECT_THROW(faiss_gmm::GaussianMixture::load("/nonexistent/m.gmm"), faiss_gmm::Error);
}
