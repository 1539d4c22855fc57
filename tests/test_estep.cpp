// CPU E-step against a float64 naive reference at awkward shapes.
#include <faiss_gmm/impl/CpuEStep.h>
#include <gtest/gtest.h>

#include "TestUtils.h"

using namespace faiss_gmm;
using namespace faiss_gmm::test;

namespace {

struct Shape {
    int d, k;
    CovarianceType cov;
    bool sift_like;
};

std::string shape_name(const testing::TestParamInfo<Shape>& i) {
    return "d" + std::to_string(i.param.d) + "_k" + std::to_string(i.param.k) + "_" +
           to_string(i.param.cov) + (i.param.sift_like ? "_sift" : "_normal");
}

class EStepShapes : public testing::TestWithParam<Shape> {};

TEST_P(EStepShapes, MatchesFloat64Reference) {
    const Shape s = GetParam();
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    // n is prime-ish and the block budget small, so blocks end mid-way.
    const int64_t n = s.k >= 1024 ? 613 : 1237;
    auto x = random_rows(n, s.d, s.sift_like, rng);
    GaussianMixture m = random_model(s.d, s.k, s.cov, x, rng);
    std::vector<float> w(n);
    std::uniform_real_distribution<float> uw(0.5f, 2.f);
    for (auto& v : w) v = uw(rng);

    CpuEStep backend(sizeof(float) * (size_t(s.k) * s.d + 97 * (s.k + 2 * s.d + 2)));
    ASSERT_EQ(backend.block_rows(s.d, s.k), 97);
    SufficientStatistics st;
    st.reset(s.d, s.k, s.cov, mixture_center(m));
    std::vector<float> log_norm(n, NAN);  // poisoned: every row must be written
    backend.accumulate(m, n, x.data(), w.data(), log_norm.data(), st);

    NaiveStats ref = naive_estep(m, n, x.data(), w.data());
    NaiveStats got = to_absolute(st);
    // float32 expansion: log-densities carry ~1e-7 x their magnitude (hundreds
    // on SIFT-like data), which moves borderline responsibilities by ~1e-5.
    const double tol = (s.sift_like ? 1e-4 : 5e-5) * (s.d >= 700 ? 4 : 1);
    EXPECT_LT(rel_err(log_norm, ref.log_norm), tol);
    EXPECT_LT(rel_err(got.nk, ref.nk), tol);
    EXPECT_LT(rel_err_scaled(got.sum_x, ref.sum_x, ref.sum_abs_x), tol);
    EXPECT_LT(rel_err(got.sum_x2, ref.sum_x2), tol);
    EXPECT_NEAR(st.sum_log_norm, ref.sum_log_norm, 1e-5 * std::abs(ref.sum_log_norm) + 1e-3);
    double wsum = 0;
    for (float v : w) wsum += v;
    EXPECT_NEAR(st.sum_weights, wsum, 1e-6 * wsum);
}

std::vector<Shape> all_shapes() {
    std::vector<Shape> v;
    for (int d : {1, 3, 96, 100, 128, 200, 784})
        for (int k : {1, 7, 1024})
            for (auto cov : {CovarianceType::Spherical, CovarianceType::Diagonal})
                for (bool sift : {false, true}) v.push_back({d, k, cov, sift});
    return v;
}

INSTANTIATE_TEST_SUITE_P(AwkwardShapes, EStepShapes, testing::ValuesIn(all_shapes()), shape_name);

TEST(EStep, StatisticsDoNotDependOnBlockSize) {
    std::mt19937_64 rng(fresh_seed());
    const int d = 37, k = 19;
    const int64_t n = 2003;
    auto x = random_rows(n, d, true, rng);
    GaussianMixture m = random_model(d, k, CovarianceType::Diagonal, x, rng);
    SufficientStatistics a, b;
    a.reset(d, k, m.params.covariance_type, mixture_center(m));
    b.reset(d, k, m.params.covariance_type, mixture_center(m));
    CpuEStep(1).accumulate(m, n, x.data(), nullptr, nullptr, a);  // one row per block
    CpuEStep(size_t(1) << 30).accumulate(m, n, x.data(), nullptr, nullptr, b);
    EXPECT_LT(rel_err(a.nk, b.nk), 1e-5);
    EXPECT_LT(rel_err(a.sum_x, b.sum_x), 1e-5);
    EXPECT_LT(rel_err(a.sum_x2, b.sum_x2), 1e-5);
}

TEST(EStep, MergeAddsStatistics) {
    std::mt19937_64 rng(fresh_seed());
    const int d = 5, k = 3;
    auto x = random_rows(301, d, false, rng);
    GaussianMixture m = random_model(d, k, CovarianceType::Spherical, x, rng);
    SufficientStatistics all, a, b;
    for (auto* s : {&all, &a, &b}) s->reset(d, k, m.params.covariance_type, mixture_center(m));
    CpuEStep be;
    be.accumulate(m, 301, x.data(), nullptr, nullptr, all);
    be.accumulate(m, 100, x.data(), nullptr, nullptr, a);
    be.accumulate(m, 201, x.data() + 100 * d, nullptr, nullptr, b);
    a.merge(b);
    EXPECT_LT(rel_err(a.sum_x2, all.sum_x2), 1e-6);
    EXPECT_NEAR(a.sum_log_norm, all.sum_log_norm, 1e-6 * std::abs(all.sum_log_norm));
}

TEST(EStep, DeviceSelection) {
    GaussianMixtureParameters p;
    p.device = Device::Cpu;
    EXPECT_EQ(make_estep_backend(p)->name(), "cpu");
    p.device = Device::Gpu;
    if (!gpu_backend_available()) EXPECT_THROW(make_estep_backend(p), Error);
}

}  // namespace
