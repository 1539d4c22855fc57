// k-means++ seeding (kmeans_plus_plus on every backend) and the t most
// probable components on the GPU (t argmax passes): against float64
// references, the D^2 law itself, and the CPU path. The GPU tests skip
// without a GPU (CI).
#include <faiss_gmm/EStep.h>
#include <faiss_gmm/KMeans.h>
#include <faiss_gmm/SyntheticData.h>
#include <faiss_gmm/impl/CpuEStep.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <set>

#include "TestUtils.h"

using namespace faiss_gmm;
using namespace faiss_gmm::test;

namespace {

/// Index of the row of x (n x d) equal to c, or -1.
int64_t row_of(const float* c, const float* x, int64_t n, int d) {
    for (int64_t i = 0; i < n; i++)
        if (std::memcmp(c, x + size_t(i) * d, sizeof(float) * d) == 0) return i;
    return -1;
}

// The second centre follows the D^2 law: P(i) = w_i d_i^2 / sum w d^2 from
// the first, computed here in float64; empirical frequencies over seeds.
TEST(Seeding, SecondCentreFollowsTheSquaredDistanceLaw) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const int d = 3;
    const int64_t n = 7;
    auto x = random_rows(n, d, false, rng);
    std::vector<float> w(n);
    std::uniform_real_distribution<float> u(0.2f, 2.f);
    for (auto& v : w) v = u(rng);
    w[4] = 0;  // never drawn
    CpuEStep cpu;
    const int trials = 6000;
    std::vector<std::vector<double>> count(n, std::vector<double>(n, 0));
    std::vector<double> first(n, 0);
    for (int t = 0; t < trials; t++) {
        const auto mu = kmeans_plus_plus(cpu, d, 2, n, x.data(), w.data(), seed + t);
        const int64_t a = row_of(mu.data(), x.data(), n, d),
                      b = row_of(mu.data() + d, x.data(), n, d);
        ASSERT_GE(a, 0);
        ASSERT_GE(b, 0);
        ASSERT_NE(b, 4) << "a row of weight zero was drawn";
        first[a]++;
        count[a][b]++;
    }
    for (int64_t a = 0; a < n; a++) {
        EXPECT_NEAR(first[a] / trials, 1.0 / n, 4 * std::sqrt(1.0 / n / trials)) << "first " << a;
        if (first[a] < 300) continue;
        double tot = 0;
        std::vector<double> p(n);
        for (int64_t i = 0; i < n; i++) {
            double s = 0;
            for (int j = 0; j < d; j++) s += std::pow(double(x[i * d + j]) - x[a * d + j], 2);
            tot += p[i] = w[i] * s;
        }
        for (int64_t i = 0; i < n; i++) {
            const double pe = p[i] / tot, f = count[a][i] / first[a];
            EXPECT_NEAR(f, pe, 5 * std::sqrt(pe * (1 - pe) / first[a]) + 1e-9)
                << "first " << a << ", second " << i;
        }
    }
}

// Clusters 10^4 spreads apart: every centre lands in a different cluster.
TEST(Seeding, OneCentrePerSeparatedCluster) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const int d = 5, k = 9;
    const int64_t per = 211, n = per * k;
    std::vector<float> x(size_t(n) * d);
    std::normal_distribution<float> g(0, 1e-3f);
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            x[i * d + j] = (j == (i / per) % d ? 10.f * (i / per + 1) : 0.f) + g(rng);
    CpuEStep cpu;
    const auto mu = kmeans_plus_plus(cpu, d, k, n, x.data(), nullptr, seed);
    std::set<int64_t> clusters;
    for (int c = 0; c < k; c++)
        clusters.insert(row_of(mu.data() + size_t(c) * d, x.data(), n, d) / per);
    EXPECT_EQ(clusters.size(), size_t(k));
}

// Shares in row order draw the rows one backend draws.
TEST(Seeding, ShardedDrawsTheSameRows) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const int d = 11, k = 40;
    const int64_t n = 3001;
    auto x = random_rows(n, d, true, rng);
    CpuEStep one;
    std::vector<std::unique_ptr<EStepBackend>> w;
    for (int i = 0; i < 3; i++) w.push_back(std::make_unique<CpuEStep>());
    ShardedEStep three(std::move(w));
    EXPECT_EQ(kmeans_plus_plus(one, d, k, n, x.data(), nullptr, seed),
              kmeans_plus_plus(three, d, k, n, x.data(), nullptr, seed));
}

// ---- GPU ----

struct SeedShape {
    int d, k;
    int64_t n;
    bool weighted, pinned, sharded;
};

class GpuSeedingShapes : public testing::TestWithParam<SeedShape> {};

// The device keeps the distances; the draws (host) and the sums (double)
// are the CPU's, so the same rows come out (a sum within rounding of a
// draw could part them: odds ~1e-13 a step).
TEST_P(GpuSeedingShapes, DrawsTheCpuRows) {
    SKIP_WITHOUT_GPU();
    const SeedShape s = GetParam();
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    auto x = random_rows(s.n, s.d, true, rng);
    std::vector<float> w(s.weighted ? s.n : 0);
    std::uniform_real_distribution<float> u(0.f, 3.f);
    for (auto& v : w) v = u(rng);
    const float* wp = s.weighted ? w.data() : nullptr;
    GaussianMixtureParameters p;
    p.device = Device::Gpu;
    if (s.sharded) p.gpu_devices = {0, 0};
    auto gpu = make_estep_backend(p);
    ASSERT_TRUE(gpu->on_gpu());
    if (s.pinned) gpu->pin_rows(s.n, s.d, x.data(), wp);
    CpuEStep cpu;
    const auto ref = kmeans_plus_plus(cpu, s.d, s.k, s.n, x.data(), wp, seed);
    const auto got = kmeans_plus_plus(*gpu, s.d, s.k, s.n, x.data(), wp, seed);
    int first_diff = -1;
    for (int c = 0; c < s.k && first_diff < 0; c++)
        if (std::memcmp(ref.data() + size_t(c) * s.d, got.data() + size_t(c) * s.d,
                        sizeof(float) * s.d))
            first_diff = c;
    EXPECT_EQ(first_diff, -1) << "centres differ from centre " << first_diff;
}

INSTANTIATE_TEST_SUITE_P(AwkwardShapes, GpuSeedingShapes,
                         testing::Values(SeedShape{3, 1, 1001, false, true, false},
                                         SeedShape{3, 7, 3001, true, true, false},
                                         SeedShape{100, 50, 5003, true, false, false},
                                         SeedShape{200, 37, 2999, false, true, true},
                                         SeedShape{128, 1000, 20011, false, true, false},
                                         SeedShape{128, 300, 70001, true, true, true}));

struct TopShape {
    int d, k, t;
    int64_t n;
    CovarianceType cov;
    Precision precision;
};

class GpuTopShapes : public testing::TestWithParam<TopShape> {};

// Each of the t passes finds the next component in float64's order except
// near ties; the t labels of a row are distinct; the responsibilities are
// float64's.
TEST_P(GpuTopShapes, MatchFloat64) {
    SKIP_WITHOUT_GPU();
    const TopShape s = GetParam();
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    auto x = random_rows(s.n, s.d, false, rng);
    GaussianMixture m = random_model(s.d, s.k, s.cov, x, rng);
    m.params.device = Device::Gpu;
    m.params.precision = s.precision;
    std::vector<idx_t> lab(size_t(s.n) * s.t, -1);
    std::vector<float> resp(size_t(s.n) * s.t, -1.f);
    m.top_components(s.n, x.data(), s.t, lab.data(), resp.data());
    const double rel = s.precision == Precision::Fp32 ? 2e-6 : 2e-5;
    std::vector<double> lp;
    int64_t swapped = 0;
    for (int64_t i = 0; i < s.n; i++) {
        naive_log_prob_row(m, x.data() + size_t(i) * s.d, lp);
        std::vector<double> sorted = lp;
        std::sort(sorted.rbegin(), sorted.rend());
        double mx = sorted[0], sum = 0, scale = 0;
        for (double v : lp) sum += std::exp(v - mx), scale = std::max(scale, std::abs(v));
        const double lz = mx + std::log(sum), tol = rel * (scale + s.d);
        std::set<idx_t> seen;
        for (int j = 0; j < s.t; j++) {
            const idx_t c = lab[size_t(i) * s.t + j];
            ASSERT_TRUE(c >= 0 && c < s.k) << "row " << i << " pass " << j;
            ASSERT_TRUE(seen.insert(c).second) << "row " << i << ": component " << c << " twice";
            EXPECT_GE(lp[c], sorted[j] - tol) << "row " << i << " pass " << j;
            if (lp[c] != sorted[j]) swapped++;
            const double r = std::exp(lp[c] - lz);
            // An error e in the log-densities moves r by a factor e^e.
            EXPECT_NEAR(resp[size_t(i) * s.t + j], r, 2e-3 + r * (std::expm1(2 * tol) + 1e-3))
                << "row " << i;
        }
    }
    EXPECT_LE(swapped, s.n * s.t / 100 + 2);
}

INSTANTIATE_TEST_SUITE_P(
    AwkwardShapes, GpuTopShapes,
    testing::Values(TopShape{3, 7, 2, 1001, CovarianceType::Spherical, Precision::Fp32},
                    TopShape{3, 7, 7, 999, CovarianceType::Diagonal, Precision::Fp32},
                    TopShape{100, 1000, 5, 3001, CovarianceType::Spherical, Precision::Fp32},
                    TopShape{100, 1000, 3, 2003, CovarianceType::Diagonal, Precision::Bf16},
                    TopShape{128, 1000, 8, 4099, CovarianceType::Spherical, Precision::Bf16},
                    TopShape{128, 777, 4, 3001, CovarianceType::Diagonal, Precision::Tf32},
                    TopShape{200, 61, 3, 2999, CovarianceType::Diagonal, Precision::Fp32}));

}  // namespace
