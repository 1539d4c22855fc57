/** Helpers shared by the tests: fresh random inputs and float64 references. */
#pragma once

#include <faiss_gmm/EStep.h>
#include <faiss_gmm/GaussianMixture.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

/// First line of a GPU test: skips cleanly where no GPU is visible (CI).
#define SKIP_WITHOUT_GPU()                     \
    if (!::faiss_gmm::gpu_backend_available()) \
    GTEST_SKIP() << "no GPU visible (or built without CUDA)"

namespace faiss_gmm {
namespace test {

/// A fresh seed per call (tests draw new inputs every run), printed on failure by the caller;
/// FAISS_GMM_TEST_SEED=<seed> replays a printed one.
inline uint64_t fresh_seed() {
    if (const char* s = std::getenv("FAISS_GMM_TEST_SEED")) return std::strtoull(s, nullptr, 10);
    static std::random_device rd;
    return (uint64_t(rd()) << 32) ^ rd();
}

/// n x d rows: standard normal, or SIFT-like (integers 0..180, skewed towards small values).
inline std::vector<float> random_rows(int64_t n, int d, bool sift_like, std::mt19937_64& rng) {
    std::vector<float> x(size_t(n) * d);
    std::normal_distribution<float> g(0, 1);
    std::gamma_distribution<float> gam(0.7f, 30.f);
    for (auto& v : x) v = sift_like ? std::min(180.f, std::floor(gam(rng))) : g(rng);
    return x;
}

/// A random but plausible model on data x: means near random rows,
/// variances of the data's scale, unequal weights.
inline GaussianMixture random_model(int d, int k, CovarianceType cov, const std::vector<float>& x,
                                    std::mt19937_64& rng) {
    GaussianMixtureParameters p;
    p.covariance_type = cov;
    GaussianMixture m(d, k, p);
    int64_t n = int64_t(x.size() / d);
    std::vector<double> mean(d, 0), var(d, 0);
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) mean[j] += x[i * d + j] / double(n);
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) var[j] += std::pow(x[i * d + j] - mean[j], 2) / double(n);
    double mvar = 0;
    for (double v : var) mvar += v / d;
    std::uniform_real_distribution<double> u(0.3, 1.5);
    std::normal_distribution<double> g(0, 1);
    std::uniform_int_distribution<int64_t> row(0, n - 1);
    m.weights.resize(k);
    double tot = 0;
    for (auto& w : m.weights) tot += w = float(u(rng));
    for (auto& w : m.weights) w = float(w / tot);
    m.means.resize(size_t(k) * d);
    for (int c = 0; c < k; c++) {
        int64_t r = row(rng);
        for (int j = 0; j < d; j++)
            m.means[size_t(c) * d + j] =
                float(x[r * d + j] + 0.3 * std::sqrt(var[j] + 1e-12) * g(rng));
    }
    m.variances.resize(m.n_variances());
    for (size_t i = 0; i < m.variances.size(); i++) {
        double base = cov == CovarianceType::Spherical ? mvar : var[i % d];
        m.variances[i] = float(std::max(base, 1e-3 * mvar + 1e-6) * u(rng) * 2.0);
    }
    return m;
}

/// Float64 naive E-step on absolute coordinates.
struct NaiveStats {
    std::vector<double> log_norm, nk, sum_x, sum_x2;
    std::vector<double> sum_abs_x;  ///< sum w r |x|: the scale of sum_x's rounding
    double sum_log_norm = 0;
};

/// log pi_k + log N(x_i | mu_k, S_k) in float64, directly from (x - mu)^2.
inline void naive_log_prob_row(const GaussianMixture& m, const float* xi, std::vector<double>& lp) {
    const int d = m.d;
    const bool sph = m.params.covariance_type == CovarianceType::Spherical;
    lp.resize(m.k);
    for (int c = 0; c < m.k; c++) {
        double q = 0, ld = 0;
        for (int j = 0; j < d; j++) {
            double var = sph ? m.variances[c] : m.variances[size_t(c) * d + j];
            double v = double(xi[j]) - m.means[size_t(c) * d + j];
            q += v * v / var;
            ld += std::log(2 * M_PI * var);
        }
        lp[c] = std::log(double(m.weights[c])) - 0.5 * (ld + q);
    }
}

inline NaiveStats naive_estep(const GaussianMixture& m, int64_t n, const float* x,
                              const float* w = nullptr) {
    const int d = m.d, k = m.k;
    const bool sph = m.params.covariance_type == CovarianceType::Spherical;
    NaiveStats s;
    s.log_norm.resize(n);
    s.nk.assign(k, 0);
    s.sum_x.assign(size_t(k) * d, 0);
    s.sum_abs_x.assign(size_t(k) * d, 0);
    s.sum_x2.assign(sph ? k : size_t(k) * d, 0);
    std::vector<double> lp;
    for (int64_t i = 0; i < n; i++) {
        const float* xi = x + i * d;
        naive_log_prob_row(m, xi, lp);
        double mx = -INFINITY;
        for (double v : lp) mx = std::max(mx, v);
        double z = 0;
        for (double v : lp) z += std::exp(v - mx);
        double lz = mx + std::log(z);
        double wi = w ? w[i] : 1.0;
        s.log_norm[i] = lz;
        s.sum_log_norm += wi * lz;
        for (int c = 0; c < k; c++) {
            double r = wi * std::exp(lp[c] - lz);
            s.nk[c] += r;
            double nrm = 0;
            for (int j = 0; j < d; j++) {
                s.sum_x[size_t(c) * d + j] += r * xi[j];
                s.sum_abs_x[size_t(c) * d + j] += r * std::abs(xi[j]);
                if (sph)
                    nrm += double(xi[j]) * xi[j];
                else
                    s.sum_x2[size_t(c) * d + j] += r * double(xi[j]) * xi[j];
            }
            if (sph) s.sum_x2[c] += r * nrm;
        }
    }
    return s;
}

/// Backend statistics (taken about a shift) moved to absolute coordinates.
inline NaiveStats to_absolute(const SufficientStatistics& st) {
    const int d = st.d, k = st.k;
    const bool sph = st.covariance_type == CovarianceType::Spherical;
    NaiveStats a;
    a.nk = st.nk;
    a.sum_log_norm = st.sum_log_norm;
    a.sum_x.resize(size_t(k) * d);
    a.sum_x2.resize(st.sum_x2.size());
    double s2 = 0;
    for (int j = 0; j < d; j++) s2 += st.shift[j] * st.shift[j];
    for (int c = 0; c < k; c++) {
        double cross = 0;
        for (int j = 0; j < d; j++) {
            double sx = st.sum_x[size_t(c) * d + j], sh = st.shift[j];
            a.sum_x[size_t(c) * d + j] = sx + st.nk[c] * sh;
            cross += sh * sx;
            if (!sph)
                a.sum_x2[size_t(c) * d + j] =
                    st.sum_x2[size_t(c) * d + j] + 2 * sh * sx + st.nk[c] * sh * sh;
        }
        if (sph) a.sum_x2[c] = st.sum_x2[c] + 2 * cross + st.nk[c] * s2;
    }
    return a;
}

/// max |got - ref| / max |ref|
template <class A, class B>
double rel_err(const A& got, const B& ref) {
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        double g = got[i];
        if (!std::isfinite(g)) return INFINITY;
        num = std::max(num, std::abs(g - double(ref[i])));
        den = std::max(den, std::abs(double(ref[i])));
    }
    return den > 0 ? num / den : num;
}

/// max |got - ref| / max scale: for sums whose terms cancel (sum r x on
/// zero-mean data), the error relative to the sum of |terms|.
template <class A, class B>
double rel_err_scaled(const A& got, const B& ref, const std::vector<double>& scale) {
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        double g = got[i];
        if (!std::isfinite(g)) return INFINITY;
        num = std::max(num, std::abs(g - double(ref[i])));
        den = std::max(den, scale[i]);
    }
    return den > 0 ? num / den : num;
}

/// A fresh temporary folder, removed by the caller's TempDir.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/faiss_gmm_test_XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
    std::string operator/(const std::string& f) const { return path + "/" + f; }
};

/// Write bytes to path as they are (test inputs, corrupted on purpose).
inline void write_raw(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

/// The bytes of the file at path ("" when it cannot be read).
inline std::string read_raw(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
}

/// EM for exactly `niter` iterations over every row (no sample, no early
/// stop): two fits from the same means differ only by their backends.
inline GaussianMixtureParameters fixed_em(CovarianceType cov, int niter) {
    GaussianMixtureParameters p;
    p.covariance_type = cov;
    p.niter = niter;
    p.tol = 0;
    p.max_points_per_component = 0;
    return p;
}

/// Whether a file (or folder) exists at p.
inline bool file_exists(const std::string& p) {
    struct stat s;
    return stat(p.c_str(), &s) == 0;
}

/// A shell command's exit code and its stdout and stderr, merged.
struct CommandRun {
    int code;
    std::string out;
};

inline CommandRun run_command(const std::string& cmd) {
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return {-1, "popen failed: " + cmd};
    std::string out;
    char buf[4096];
    size_t r;
    while ((r = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, r);
    const int st = pclose(p);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

/// The faiss-gmm executable: FAISS_GMM_CLI in the environment (runs of the
/// carried binaries on another machine), else the build's.
inline std::string cli_path() {
    const char* env = std::getenv("FAISS_GMM_CLI");
    return env ? env : FAISS_GMM_CLI;
}

}  // namespace test
}  // namespace faiss_gmm
