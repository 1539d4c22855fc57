// Full covariance (issue 17) on the CPU: the E-step against an independent
// float64 reference (its own Cholesky, no LAPACK, no BLAS) at awkward
// shapes, a known full-covariance mixture recovered, the log-likelihood
// never decreasing, rank-deficient clusters, files, BIC and the backend choice.
#include <faiss_gmm/EStep.h>
#include <faiss_gmm/GaussianMixture.h>
#include <faiss_gmm/impl/CpuEStep.h>
#include <faiss_gmm/impl/FullCovariance.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "FullReference.h"
#include "TestUtils.h"

using namespace faiss_gmm;
using namespace faiss_gmm::test;

namespace {

struct FShape {
    int d, k;
    bool sift;
};

class FullEStepShapes : public testing::TestWithParam<FShape> {};

TEST_P(FullEStepShapes, MatchesFloat64Reference) {
    const FShape s = GetParam();
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    // Not a multiple of any block; fewer rows where k d^2 is large.
    const int64_t n = s.k * s.d * s.d > 1000000 ? 531 : 3001;
    auto x = random_rows(n, s.d, s.sift, rng);
    GaussianMixture m = random_full_model(s.d, s.k, x, rng);
    SufficientStatistics st;
    st.reset(s.d, s.k, CovarianceType::Full, mixture_center(m));
    std::vector<float> lz(n);
    // Small blocks: several per call, the last one short.
    CpuEStep(size_t(64) << 10).accumulate(m, n, x.data(), nullptr, lz.data(), st);
    const FullRef ref = naive_full_estep(m, n, x.data(), st.shift);
    EXPECT_LT(rel_err(lz, ref.log_norm), 1e-5);
    EXPECT_NEAR(st.sum_log_norm, ref.sum_log_norm, 1e-5 * std::abs(ref.sum_log_norm));
    EXPECT_LT(rel_err(st.nk, ref.nk), 1e-4);
    EXPECT_LT(rel_err(st.sum_x, ref.sum_x), 1e-4);
    EXPECT_LT(rel_err(st.sum_x2, ref.sum_xx), 1e-4);
    EXPECT_EQ(st.sum_weights, double(n));
}

std::vector<FShape> full_shapes() {
    std::vector<FShape> v;
    for (int d : {3, 16, 100, 128})
        for (int k : {1, 7, 1000})
            for (bool sift : {false, true})
                if (k < 1000 || d <= 100) v.push_back({d, k, sift});
    return v;
}

INSTANTIATE_TEST_SUITE_P(AwkwardShapes, FullEStepShapes, testing::ValuesIn(full_shapes()),
                         [](const testing::TestParamInfo<FShape>& i) {
                             return "d" + std::to_string(i.param.d) + "_k" +
                                    std::to_string(i.param.k) +
                                    (i.param.sift ? "_sift" : "_normal");
                         });

/// n rows from k Gaussians with the given means and covariances (Cholesky
/// factors drawn here), weights w; labels out.
std::vector<float> sample_full_mixture(int64_t n, int d, const std::vector<double>& w,
                                       const std::vector<double>& mu, const std::vector<float>& cov,
                                       std::mt19937_64& rng, std::vector<int>& labels) {
    const int k = int(w.size());
    const size_t dd = size_t(d) * d;
    std::vector<std::vector<double>> l(k);
    for (int c = 0; c < k; c++) l[c] = naive_cholesky(d, cov.data() + c * dd);
    std::discrete_distribution<int> pick(w.begin(), w.end());
    std::normal_distribution<double> g(0, 1);
    std::vector<float> x(size_t(n) * d);
    std::vector<double> z(d);
    labels.resize(n);
    for (int64_t i = 0; i < n; i++) {
        const int c = labels[i] = pick(rng);
        for (auto& v : z) v = g(rng);
        for (int a = 0; a < d; a++) {
            double s = mu[size_t(c) * d + a];
            for (int b = 0; b <= a; b++) s += l[c][size_t(a) * d + b] * z[b];
            x[size_t(i) * d + a] = float(s);
        }
    }
    return x;
}

TEST(FullCovariance, RecoversAKnownMixture) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const int d = 5, k = 3;
    const int64_t n = 60013;
    const std::vector<double> w = {0.5, 0.3, 0.2};
    std::vector<double> mu(size_t(k) * d);
    std::normal_distribution<double> g(0, 1);
    for (int c = 0; c < k; c++)
        for (int j = 0; j < d; j++) mu[size_t(c) * d + j] = 20.0 * c + g(rng);  // well apart
    // Strongly correlated covariances: S = A A^T + 0.1 I.
    std::vector<float> cov(size_t(k) * d * d);
    for (int c = 0; c < k; c++) {
        std::vector<double> a(size_t(d) * d);
        for (auto& v : a) v = g(rng);
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) {
                double s = i == j ? 0.1 : 0.0;
                for (int t = 0; t < d; t++) s += a[size_t(i) * d + t] * a[size_t(j) * d + t];
                cov[size_t(c) * d * d + size_t(i) * d + j] = float(s);
            }
    }
    std::vector<int> labels;
    auto x = sample_full_mixture(n, d, w, mu, cov, rng, labels);
    GaussianMixtureParameters p;
    p.covariance_type = CovarianceType::Full;
    p.device = Device::Cpu;
    p.niter = 300;
    p.tol = 1e-6;
    p.reg_covar = 1e-6;
    p.max_points_per_component = 0;
    p.seed = int(seed % 1000);
    // From the true means perturbed (a k-means start can merge two of the
    // three clusters and split the third: a local optimum, not what this
    // test is about).
    std::vector<float> init(size_t(k) * d);
    for (size_t i = 0; i < init.size(); i++) init[i] = float(mu[i] + 0.5 * g(rng));
    GaussianMixture m(d, k, p);
    m.fit_from_means(n, x.data(), init.data());
    // Match each true component to the nearest fitted mean.
    for (int c = 0; c < k; c++) {
        int best = 0;
        double bd = INFINITY;
        for (int e = 0; e < k; e++) {
            double s = 0;
            for (int j = 0; j < d; j++)
                s += std::pow(m.means[size_t(e) * d + j] - mu[size_t(c) * d + j], 2);
            if (s < bd) bd = s, best = e;
        }
        SCOPED_TRACE("component " + std::to_string(c));
        // Five standard errors of the sample mean: sqrt(tr S / (n w)).
        double tr = 0;
        for (int j = 0; j < d; j++) tr += cov[size_t(c) * d * d + size_t(j) * (d + 1)];
        EXPECT_LT(std::sqrt(bd), 5 * std::sqrt(tr / (n * w[c])));
        EXPECT_NEAR(m.weights[best], w[c], 0.01);
        std::vector<double> got(m.variances.begin() + size_t(best) * d * d,
                                m.variances.begin() + size_t(best + 1) * d * d),
            want(cov.begin() + size_t(c) * d * d, cov.begin() + size_t(c + 1) * d * d);
        EXPECT_LT(rel_err(got, want), 0.05);
    }
    // BIC counts d (d + 1) / 2 values per covariance.
    EXPECT_EQ(m.n_parameters(), double(k - 1) + k * d + k * d * (d + 1) / 2.0);
}

TEST(FullCovariance, LogLikelihoodNeverDecreases) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    for (bool sift : {false, true}) {
        const int d = 12, k = 9;
        const int64_t n = 8009;
        auto x = random_rows(n, d, sift, rng);
        GaussianMixtureParameters p;
        p.covariance_type = CovarianceType::Full;
        p.device = Device::Cpu;
        p.niter = 40;
        p.tol = 0;
        p.max_points_per_component = 0;
        p.seed = int(seed % 1000);
        GaussianMixture m(d, k, p);
        m.fit(n, x.data());
        ASSERT_GE(m.iteration_stats.size(), 2u);
        for (size_t i = 1; i < m.iteration_stats.size(); i++) {
            if (m.iteration_stats[i].n_reseeded || m.iteration_stats[i - 1].n_reseeded) continue;
            const double a = m.iteration_stats[i - 1].log_likelihood,
                         b = m.iteration_stats[i].log_likelihood;
            EXPECT_GE(b, a - 1e-6 * std::abs(a)) << "iteration " << i << (sift ? " sift" : "");
        }
    }
}

TEST(FullCovariance, RankDeficientClusterStaysFinite) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const int d = 6, k = 3;
    const int64_t n = 6007;
    std::normal_distribution<float> g(0, 1);
    std::vector<float> x(size_t(n) * d);
    for (int64_t i = 0; i < n; i++) {
        const int c = int(i % 3);
        const float t = g(rng);
        for (int j = 0; j < d; j++) {
            float& v = x[size_t(i) * d + j];
            if (c == 0)
                v = 20.f + t * float(j + 1);  // all rows of cluster 0 on one line
            else
                v = 40.f * c + g(rng);
        }
    }
    for (double reg : {1e-3, 0.0}) {
        SCOPED_TRACE("reg_covar " + std::to_string(reg));
        GaussianMixtureParameters p;
        p.covariance_type = CovarianceType::Full;
        p.device = Device::Cpu;
        p.niter = 15;
        p.tol = 0;
        p.reg_covar = reg;
        p.max_points_per_component = 0;
        p.seed = int(seed % 1000);
        GaussianMixture m(d, k, p);
        m.fit(n, x.data());
        m.check_model();
        for (float v : m.means) EXPECT_TRUE(std::isfinite(v));
        for (float v : m.variances) EXPECT_TRUE(std::isfinite(v));
        int reseeded = 0;
        for (const auto& it : m.iteration_stats) {
            EXPECT_TRUE(std::isfinite(it.log_likelihood));
            reseeded += it.n_reseeded;
        }
        printf("reg_covar %g: %d re-seedings over %zu iterations\n", reg, reseeded,
               m.iteration_stats.size());
        // Every covariance the model keeps factors (the E-step would throw).
        SufficientStatistics st;
        st.reset(d, k, CovarianceType::Full, mixture_center(m));
        CpuEStep().accumulate(m, n, x.data(), nullptr, nullptr, st);
        EXPECT_TRUE(std::isfinite(st.sum_log_norm));
    }
}

// The M-step's covariance: S = sum_xx / nk - m m^T + reg I, refused (the
// component is re-seeded and counted) when not positive definite.
TEST(FullCovariance, MomentsToCovariance) {
    std::mt19937_64 rng(fresh_seed());
    std::normal_distribution<double> g(0, 1);
    const int d = 4;
    const double nk = 37.5;
    std::vector<double> u(d), v(d), sx(d), sxx(size_t(d) * d);
    for (auto& e : u) e = g(rng);
    for (auto& e : v) e = g(rng);
    // v orthogonal to u, unit length: S = u u^T - 0.5 v v^T has the
    // eigenvalue -0.5 along v (not positive definite, whatever the rounding);
    // S + reg I is positive definite for reg > 0.5.
    double uv = 0, uu = 0, vv = 0;
    for (int i = 0; i < d; i++) uv += u[i] * v[i], uu += u[i] * u[i];
    for (int i = 0; i < d; i++) v[i] -= uv / uu * u[i];
    for (int i = 0; i < d; i++) vv += v[i] * v[i];
    for (int i = 0; i < d; i++) v[i] /= std::sqrt(vv);
    for (auto& e : sx) e = nk * g(rng);
    auto s_ij = [&](int i, int j) { return u[i] * u[j] - 0.5 * v[i] * v[j]; };
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) sxx[size_t(i) * d + j] = nk * s_ij(i, j) + sx[i] * sx[j] / nk;
    std::vector<float> cov(size_t(d) * d);
    EXPECT_FALSE(covariance_from_moments(d, nk, sx.data(), sxx.data(), 0.0, cov.data()));
    EXPECT_FALSE(covariance_from_moments(d, nk, sx.data(), sxx.data(), 0.4, cov.data()));
    ASSERT_TRUE(covariance_from_moments(d, nk, sx.data(), sxx.data(), 1.0, cov.data()));
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            EXPECT_NEAR(cov[size_t(i) * d + j], s_ij(i, j) + (i == j ? 1.0 : 0.0),
                        1e-5 * (1 + std::abs(s_ij(i, j))));
    // The whitening matrix inverts its Cholesky factor: W S W^T = I.
    std::vector<double> s(cov.begin(), cov.end()), w(size_t(d) * d);
    double hl = 0;
    ASSERT_TRUE(whitening_matrix(d, s.data(), w.data(), &hl));
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double v = 0;
            for (int a = 0; a < d; a++)
                for (int b = 0; b < d; b++)
                    v += w[size_t(i) * d + a] * s[size_t(a) * d + b] * w[size_t(j) * d + b];
            EXPECT_NEAR(v, i == j ? 1.0 : 0.0, 1e-9);
        }
}

// Posterior probing orders lists by top_components: for a full model they
// follow the float64 posterior (responsibilities, and the order wherever
// the two compared are not a near tie).
TEST(FullCovariance, TopComponentsFollowTheFloat64Posterior) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const int d = 9, k = 13, t = 4;
    const int64_t n = 501;
    auto x = random_rows(n, d, true, rng);
    GaussianMixture m = random_full_model(d, k, x, rng);
    std::vector<idx_t> lab(size_t(n) * t);
    std::vector<float> resp(size_t(n) * t);
    m.top_components(n, x.data(), t, lab.data(), resp.data());
    for (int64_t i = 0; i < n; i++) {
        // The reference responsibilities of row i alone.
        const FullRef one = naive_full_estep(m, 1, x.data() + i * d, std::vector<double>(d, 0.0));
        std::vector<int> order(k);
        for (int c = 0; c < k; c++) order[c] = c;
        std::sort(order.begin(), order.end(), [&](int a, int b) { return one.nk[a] > one.nk[b]; });
        for (int j = 0; j < t; j++) {
            EXPECT_NEAR(resp[size_t(i) * t + j], one.nk[order[j]], 1e-4) << "row " << i;
            const bool tie = j + 1 < k && one.nk[order[j]] - one.nk[order[j + 1]] < 1e-3;
            if (!tie && (j == 0 || one.nk[order[j - 1]] - one.nk[order[j]] >= 1e-3)) {
                EXPECT_EQ(lab[size_t(i) * t + j], order[j]) << "row " << i << " rank " << j;
            }
        }
    }
}

TEST(FullCovariance, SaveLoadScoreAndRefusals) {
    std::mt19937_64 rng(fresh_seed());
    const int d = 7, k = 4;
    auto x = random_rows(2003, d, false, rng);
    GaussianMixture m = random_full_model(d, k, x, rng);
    TempDir dir;
    m.save(dir / "full.gmm");
    GaussianMixture r = GaussianMixture::load(dir / "full.gmm");
    EXPECT_EQ(r.params.covariance_type, CovarianceType::Full);
    EXPECT_EQ(r.variances, m.variances);
    EXPECT_EQ(r.means, m.means);
    EXPECT_NEAR(r.score(2003, x.data()), m.score(2003, x.data()), 1e-9);
    // A covariance that is not positive definite is named, not a NaN.
    GaussianMixture bad = m;
    bad.variances[size_t(2) * d * d + 1] = bad.variances[size_t(2) * d * d + d] =
        10.f * bad.variances[size_t(2) * d * d];  // |S_01| > sqrt(S_00 S_11)
    try {
        bad.score(2003, x.data());
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("component 2"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("positive definite"), std::string::npos) << e.what();
    }
    EXPECT_EQ(covariance_type_from_string("full"), CovarianceType::Full);
    // device=gpu takes full covariance as every type does: a GPU backend
    // where one is visible, else the error naming the missing GPU.
    GaussianMixtureParameters p;
    p.covariance_type = CovarianceType::Full;
    p.device = Device::Gpu;
    if (gpu_backend_available()) {
        EXPECT_NE(make_estep_backend(p)->name(), "cpu");
    } else {
        try {
            make_estep_backend(p);
            ADD_FAILURE() << "no error";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("device=gpu"), std::string::npos) << e.what();
        }
    }
    p.device = Device::Auto;
    EXPECT_EQ(make_estep_backend(p)->name() == "cpu", !gpu_backend_available());
}

}  // namespace
