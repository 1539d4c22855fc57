// Training from data sources: the sampled mode against the in-memory fit,
// full-data streaming EM against a float64 EM, row splitting over several
// backends, checkpoints and resuming (in process and after a SIGKILL).
#include <faiss_gmm/DataSource.h>
#include <faiss_gmm/EStep.h>
#include <faiss_gmm/impl/CpuEStep.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <thread>

#include "TestUtils.h"

using namespace faiss_gmm;
using namespace faiss_gmm::test;

namespace {

/// One float64 EM iteration (naive E-step, M-step without re-seeding).
void naive_em_iteration(GaussianMixture& m, int64_t n, const float* x, double reg) {
    const NaiveStats s = naive_estep(m, n, x);
    const int d = m.d;
    const bool sph = m.params.covariance_type == CovarianceType::Spherical;
    double total = 0;
    for (double v : s.nk) total += v;
    for (int c = 0; c < m.k; c++) {
        ASSERT_GT(s.nk[c], 1.0) << "the reference has no re-seeding: component " << c;
        m.weights[c] = float(s.nk[c] / total);
        double msq = 0;
        std::vector<double> mu(d);
        for (int j = 0; j < d; j++) {
            mu[j] = s.sum_x[size_t(c) * d + j] / s.nk[c];
            m.means[size_t(c) * d + j] = float(mu[j]);
            msq += mu[j] * mu[j];
        }
        if (sph)
            m.variances[c] = float((s.sum_x2[c] / s.nk[c] - msq) / d + reg);
        else
            for (int j = 0; j < d; j++)
                m.variances[size_t(c) * d + j] =
                    float(s.sum_x2[size_t(c) * d + j] / s.nk[c] - mu[j] * mu[j] + reg);
    }
}

SyntheticMixture small_mixture(uint64_t seed, int d, int k) {
    SyntheticMixtureParameters p;
    p.d = d;
    p.n_clusters = k;
    p.seed = seed;
    p.spread_min = 0.3;
    p.spread_max = 0.6;
    return SyntheticMixture(p);
}

}  // namespace

TEST(StreamingFit, SampledModeReadsTheRowsTheInMemoryFitKeeps) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    const int d = 11, k = 13;
    const idx_t n = 4007;
    SyntheticSource src(small_mixture(seed, d, k), n, seed, ElementType::UInt8, 30.f, 120.f);
    std::vector<float> x(size_t(n) * d);
    src.read_float(0, n, x.data());
    for (CovarianceType cov : {CovarianceType::Spherical, CovarianceType::Diagonal}) {
        GaussianMixtureParameters p;
        p.covariance_type = cov;
        p.max_points_per_component = 40;  // 520 of the 4007 rows
        p.niter = 4;
        p.device = Device::Cpu;
        p.seed = int(seed % 1000);
        GaussianMixture a(d, k, p), b(d, k, p);
        a.fit(n, x.data());
        b.fit(src);  // uint8 rows, converted as read
        EXPECT_EQ(a.means, b.means);
        EXPECT_EQ(a.variances, b.variances);
        EXPECT_EQ(a.weights, b.weights);
    }
}

TEST(StreamingFit, FullDataEmMatchesFloat64Em) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    const int d = 9, k = 6;
    const idx_t n = 30011;  // > k * 256: the initialisation sees a sample only
    for (CovarianceType cov : {CovarianceType::Spherical, CovarianceType::Diagonal}) {
        SyntheticSource src(small_mixture(seed, d, k), n, seed + 7);
        GaussianMixtureParameters p;
        p.covariance_type = cov;
        p.max_points_per_component = 0;  // full data
        p.max_block_bytes = 40000;       // many blocks
        p.reg_covar = 0;
        p.tol = 0;
        p.device = Device::Cpu;
        p.seed = int(seed % 1000);
        p.niter = 0;
        GaussianMixture ref(d, k, p);
        ref.fit(src);  // initialisation only
        p.niter = 2;
        GaussianMixture got(d, k, p);
        got.fit(src);
        ASSERT_EQ(got.iteration_stats.size(), 2u);
        std::vector<float> x(size_t(n) * d);
        src.read_float(0, n, x.data());
        for (int it = 0; it < 2; it++) naive_em_iteration(ref, n, x.data(), 0.0);
        EXPECT_LT(rel_err(got.means, ref.means), 1e-5);
        EXPECT_LT(rel_err(got.variances, ref.variances), 1e-4);
        EXPECT_LT(rel_err(got.weights, ref.weights), 1e-4);
    }
}

TEST(StreamingFit, BadRowsAndShapesAreNamed) {
    TempDir dir;
    const int d = 4, k = 3;
    const idx_t n = 3000;
    std::mt19937_64 rng(fresh_seed());
    auto x = random_rows(n, d, false, rng);
    x[size_t(2345) * d + 2] = NAN;
    write_vectors(dir.path + "/x.npy", n, d, x.data());
    FileSource src(dir.path + "/x.npy");
    GaussianMixtureParameters p;
    p.max_points_per_component = 0;
    p.device = Device::Cpu;
    GaussianMixture g(d, k, p);
    try {
        g.fit(src);
        FAIL() << "a NaN row was accepted";
    } catch (const Error& e) {
        SCOPED_TRACE(e.what());
        EXPECT_NE(std::string(e.what()).find("row 2345"), std::string::npos) << e.what();
    }
    GaussianMixture wrong_d(d + 1, k, p);
    EXPECT_THROW(wrong_d.fit(src), Error);
    GaussianMixture too_many(d, int(n) + 1, p);
    EXPECT_THROW(too_many.fit(src), Error);
}

TEST(ShardedEStep, SplitRowsMatchFloat64Reference) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    // n = 2: a worker with no rows; the others end mid-block.
    for (idx_t n : {idx_t(2), idx_t(1000), idx_t(7919)}) {
        const int d = 17, k = 29;
        auto x = random_rows(n, d, true, rng);
        const auto cov = n % 2 ? CovarianceType::Diagonal : CovarianceType::Spherical;
        GaussianMixture m = random_model(d, k, cov, x, rng);
        std::vector<float> w(n);
        for (float& v : w) v = 0.5f + float(rng() % 4) * 0.5f;
        std::vector<std::unique_ptr<EStepBackend>> workers;
        for (int i = 0; i < 3; i++) workers.push_back(std::make_unique<CpuEStep>(1 << 14));
        ShardedEStep sharded(std::move(workers));
        SufficientStatistics st;
        st.reset(d, k, cov, mixture_center(m));
        std::vector<float> lz(n, NAN);  // poisoned: every row must be written
        sharded.accumulate(m, n, x.data(), w.data(), lz.data(), st);
        const NaiveStats ref = naive_estep(m, n, x.data(), w.data());
        const NaiveStats got = to_absolute(st);
        EXPECT_LT(rel_err(lz, ref.log_norm), 1e-4) << n;
        EXPECT_LT(rel_err(got.nk, ref.nk), 1e-4) << n;
        EXPECT_LT(rel_err_scaled(got.sum_x, ref.sum_x, ref.sum_abs_x), 1e-4) << n;
        EXPECT_LT(rel_err(got.sum_x2, ref.sum_x2), 1e-4) << n;
        double wsum = 0;
        for (float v : w) wsum += v;
        EXPECT_EQ(st.sum_weights, wsum) << "a row lost or counted twice, n " << n;
        // The same rows through a source (unweighted).
        SufficientStatistics ss;
        ss.reset(d, k, cov, mixture_center(m));
        ArraySource src(n, d, x.data());
        sharded.accumulate_source(m, src, 0, n, ss);
        const NaiveStats ref1 = naive_estep(m, n, x.data());
        const NaiveStats got1 = to_absolute(ss);
        EXPECT_LT(rel_err(got1.nk, ref1.nk), 1e-4) << n;
        EXPECT_LT(rel_err_scaled(got1.sum_x, ref1.sum_x, ref1.sum_abs_x), 1e-4) << n;
        EXPECT_EQ(ss.sum_weights, double(n));
    }
}

TEST(Checkpoint, ResumingContinuesTheSameRun) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    TempDir dir;
    const int d = 6, k = 5;
    const idx_t n = 3001;
    SyntheticSource src(small_mixture(seed, d, k), n, seed);
    GaussianMixtureParameters p;
    p.device = Device::Cpu;
    p.tol = 0;
    p.max_points_per_component = 0;
    p.max_block_bytes = 1 << 15;
    p.seed = int(seed % 1000);
    // Full covariance too: its k x d x d covariances go through the same file.
    for (CovarianceType cov : {CovarianceType::Full, CovarianceType::Spherical}) {
        SCOPED_TRACE(to_string(cov));
        p.covariance_type = cov;
        p.resume = false;
        p.checkpoint_path.clear();
        p.niter = 6;
        GaussianMixture whole(d, k, p);
        whole.fit(src);
        // Stop after 3 iterations with a checkpoint, then resume to 6.
        p.checkpoint_path = dir.path + "/ckpt_" + to_string(cov);
        p.niter = 3;
        GaussianMixture first(d, k, p);
        first.fit(src);
        GaussianMixture as_model = GaussianMixture::load(p.checkpoint_path);  // a model too
        EXPECT_EQ(as_model.means, first.means);
        EXPECT_EQ(as_model.iteration_stats.size(), 3u);
        p.niter = 6;
        p.resume = true;
        GaussianMixture resumed(d, k, p);
        resumed.fit(src);
        EXPECT_EQ(resumed.means, whole.means);
        EXPECT_EQ(resumed.variances, whole.variances);
        EXPECT_EQ(resumed.weights, whole.weights);
        ASSERT_EQ(resumed.iteration_stats.size(), whole.iteration_stats.size());
        for (size_t i = 0; i < whole.iteration_stats.size(); i++)
            EXPECT_NEAR(resumed.iteration_stats[i].log_likelihood,
                        whole.iteration_stats[i].log_likelihood,
                        1e-12 * std::abs(whole.iteration_stats[i].log_likelihood));
    }
    // A checkpoint of another shape is refused by name; nothing is changed.
    GaussianMixture other(d, k + 1, p);
    try {
        other.fit(src);
        FAIL() << "a checkpoint for k=" << k << " resumed a k=" << k + 1 << " fit";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("k=" + std::to_string(k)), std::string::npos)
            << e.what();
    }
}

TEST(Checkpoint, KilledCliRunResumesAndLosesAtMostOneIteration) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    TempDir dir;
    // Slow enough iterations to kill one mid-way: 200k streamed rows.
    const std::string data = "synthetic:200000x24,k=64,seed=" + std::to_string(seed % 100000);
    const std::string common = cli_path() + " train --data " + data +
                               " -k 64 --full-data --device cpu --niter 8 --tol 0 --seed 5 ";
    const std::string ckpt = dir.path + "/run.ckpt";
    ASSERT_EQ(0, std::system((common + "--quiet --means-out " + dir.path + "/whole.fvecs > " +
                              dir.path + "/whole.log 2>&1")
                                 .c_str()));
    // A run with checkpoints, killed with SIGKILL once two iterations are on disk.
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        const std::string cmd = "exec " + common + "--checkpoint " + ckpt + " --means-out " +
                                dir.path + "/killed.fvecs > " + dir.path + "/killed.log 2>&1";
        execl("/bin/sh", "sh", "-c", cmd.c_str(), (char*)nullptr);
        _exit(127);
    }
    int done_before_kill = 0;
    for (int wait_ms = 0; wait_ms < 120000; wait_ms += 20) {
        if (file_exists(ckpt)) {
            done_before_kill = int(GaussianMixture::load(ckpt).iteration_stats.size());
            if (done_before_kill >= 2) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it was killed";
    ASSERT_GE(done_before_kill, 2);
    // The checkpoint is whole (atomic writes) and at most one iteration behind.
    const size_t on_disk = GaussianMixture::load(ckpt).iteration_stats.size();
    EXPECT_GE(on_disk, size_t(done_before_kill));
    EXPECT_LT(on_disk, 8u);
    EXPECT_NE(0, access((dir.path + "/killed.fvecs").c_str(), F_OK)) << "a partial output";
    ASSERT_EQ(0, std::system((common + "--checkpoint " + ckpt + " --resume --means-out " +
                              dir.path + "/resumed.fvecs > " + dir.path + "/resumed.log 2>&1")
                                 .c_str()));
    std::ifstream log(dir.path + "/resumed.log");
    const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("resumed from"), std::string::npos) << text;
    EXPECT_NE(text.find("ETA"), std::string::npos) << text;
    idx_t n1, n2;
    int d1, d2;
    const auto whole = read_vectors(dir.path + "/whole.fvecs", &n1, &d1);
    const auto resumed = read_vectors(dir.path + "/resumed.fvecs", &n2, &d2);
    EXPECT_EQ(resumed, whole) << "resumed after " << on_disk << " iterations";
}

namespace {

// More than 2^31 elements (n d) streamed through the CPU path in small
// blocks (issue 18, item 5): a uint8 array of 33.6M x 64 values whose row
// i depends on i % 1009, a one-component model (every responsibility 1), and
// the sums against their closed form: any 32-bit product of an index and
// d, or of a row count and a row's bytes, would misplace rows past 2^31.
TEST(Overflow, StreamingPastTwoToThe31ElementsMatchesTheClosedForm) {
    const int d = 64;
    const idx_t n = (idx_t(1) << 31) / d + 12345;
    ASSERT_GT(double(n) * d, double(INT32_MAX));
    auto value = [](idx_t i, int j) { return uint8_t((int(i % 1009) * 3 + j * 5) % 23); };
    std::vector<uint8_t> x(size_t(n) * d);
#pragma omp parallel for schedule(static)
    for (idx_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) x[size_t(i) * d + j] = value(i, j);
    ArraySource src(n, d, ElementType::UInt8, x.data());
    GaussianMixtureParameters p;
    p.covariance_type = CovarianceType::Spherical;
    GaussianMixture m(d, 1, p);
    m.weights = {1.f};
    m.means.assign(d, 11.f);
    m.variances = {100.f};
    SufficientStatistics st;
    st.reset(d, 1, CovarianceType::Spherical, mixture_center(m));  // the shift is the mean: 11
    CpuEStep(size_t(1) << 20).accumulate_source(m, src, 0, n, st);
    // Closed form over the 1009 residues of i.
    std::vector<double> sx(d, 0.0);
    double sxx = 0;
    for (int q = 0; q < 1009; q++) {
        const double c = double(n / 1009 + (q < n % 1009 ? 1 : 0));
        for (int j = 0; j < d; j++) {
            const double v = double(value(q, j)) - 11.0;
            sx[j] += c * v;
            sxx += c * v * v;
        }
    }
    const double lz_sum = -0.5 * sxx / 100.0 - 0.5 * d * std::log(2 * M_PI * 100.0) * double(n);
    EXPECT_EQ(st.nk[0], double(n));
    EXPECT_EQ(st.sum_weights, double(n));
    for (int j = 0; j < d; j++)
        EXPECT_NEAR(st.sum_x[j], sx[j], 1e-6 * double(n)) << "dimension " << j;
    EXPECT_NEAR(st.sum_x2[0], sxx, 1e-6 * sxx);
    EXPECT_NEAR(st.sum_log_norm, lz_sum, 1e-6 * std::abs(lz_sum));
}

}  // namespace
