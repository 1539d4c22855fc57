// GaussianMixture's training: the fit entry points (arrays, a DataSource,
// shards over a Communicator), the initialisation of the means (k-means,
// k-means++ or random rows) and the EM loop with its stopping rules. The
// M-step itself is in GaussianMixture.cpp.
#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss_gmm/Communicator.h>
#include <faiss_gmm/DataSource.h>
#include <faiss_gmm/EStep.h>
#include <faiss_gmm/GaussianMixture.h>
#include <faiss_gmm/KMeans.h>
#include <faiss_gmm/impl/CpuEStep.h>
#include <faiss_gmm/impl/FullCovariance.h>
#include <faiss_gmm/utils/Device.h>
#include <faiss_gmm/utils/FileUtils.h>
#include <faiss_gmm/utils/Interrupt.h>
#include <faiss_gmm/utils/Utils.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

namespace faiss_gmm {

namespace {

/// The communicator of a fit that runs in one process.
const Communicator kOneProcess;

}  // namespace

void GaussianMixture::fit(idx_t n, const float* x, const float* w) {
    fit_impl(n, x, nullptr, w, nullptr, 0, kOneProcess);
}

void GaussianMixture::fit_from_means(idx_t n, const float* x, const float* init_mu,
                                     const float* w) {
    fit_impl(n, x, init_mu, w, nullptr, 0, kOneProcess);
}

void GaussianMixture::fit(const DataSource& data) { fit(data, kOneProcess); }

void GaussianMixture::fit(const DataSource& data, const Communicator& comm) {
    FAISS_GMM_CHECK_ARG(data.d() == d, "training data " + data.description() + " has dimension " +
                                           std::to_string(data.d()) + ", the model " +
                                           std::to_string(d));
    // The data is the ranks' shards in rank order: this one holds global
    // rows [first, first + n_local).
    const std::vector<int64_t> sizes = comm.allgather(data.n());
    idx_t n = 0, first = 0;
    for (int r = 0; r < comm.size(); r++) {
        if (r < comm.rank()) first += sizes[r];
        n += sizes[r];
    }
    const idx_t n_local = data.n();
    FAISS_GMM_CHECK_ARG(n > 0, "no training data");
    FAISS_GMM_CHECK_ARG(idx_t(k) <= n, "k=" + std::to_string(k) + " components but only " +
                                           std::to_string(n) + " training rows (need k <= n)");
    // Sampling mode reads only the rows fit() would keep; full-data mode
    // initialises on k * 256 of them (FAISS's default sample) and streams.
    const bool full = params.max_points_per_component <= 0;
    const idx_t m = std::min(n, idx_t(k) * (full ? 256 : params.max_points_per_component));
    if (params.verbose && comm.rank() == 0) {
        const char* what = m == n ? "all " : full ? "initialisation " : "sampled ";
        if (comm.size() > 1)
            fprintf(stderr, "faiss-gmm: reading %lld %srows of %lld from %d ranks' shards\n",
                    (long long)m, what, (long long)n, comm.size());
        else
            fprintf(stderr, "faiss-gmm: reading %lld %srows of %s\n", (long long)m, what,
                    data.description().c_str());
    }
    // Each rank fills the sample rows it holds; the others stay 0, so the
    // sum over ranks is the sample, exactly.
    std::vector<float> xs(size_t(m) * d, 0.f);
    // Name a bad row by its place in this shard, not in the sample.
    auto check_rows = [&](idx_t count, const float* x, const idx_t* local_rows) {
        if (all_finite(int64_t(count) * d, x)) return;  // the first bad row, only then
        for (idx_t i = 0; i < count; i++)
            for (int j = 0; j < d; j++)
                FAISS_GMM_CHECK_ARG(std::isfinite(x[size_t(i) * d + j]),
                                    "row " + std::to_string(local_rows ? local_rows[i] : i) +
                                        " of " + data.description() + " holds a NaN or Inf");
    };
    if (m == n) {
        float* mine = xs.data() + size_t(first) * d;
        data.read_float(0, n_local, mine);
        check_rows(n_local, mine, nullptr);
    } else {
        const std::vector<idx_t> rows = sample_rows(n, m, params.seed + 1);
        if (comm.size() == 1) {
            read_rows(data, rows, xs.data());
            check_rows(m, xs.data(), rows.data());
        } else {
            std::vector<idx_t> local, slot;
            for (idx_t i = 0; i < m; i++)
                if (rows[i] >= first && rows[i] < first + n_local) {
                    local.push_back(rows[i] - first);
                    slot.push_back(i);
                }
            std::vector<float> buf(local.size() * d);
            read_rows(data, local, buf.data());
            check_rows(idx_t(local.size()), buf.data(), local.data());
            for (size_t i = 0; i < local.size(); i++)
                memcpy(xs.data() + size_t(slot[i]) * d, buf.data() + i * d, sizeof(float) * d);
        }
    }
    comm.allreduce_sum(xs.data(), xs.size());
    fit_impl(m, xs.data(), nullptr, nullptr, full && m < n ? &data : nullptr, n, comm);
}

namespace {

/// Refuse what no fit can use (no rows, k > n, NaN/Inf rows, bad weights);
/// warn (the printing rank) when the rows are few for k.
void check_training_rows(idx_t n, int d, int k, const float* x, const float* w,
                         const GaussianMixtureParameters& params, bool lead) {
    FAISS_GMM_CHECK_ARG(n > 0 && x, "no training data");
    FAISS_GMM_CHECK_ARG(idx_t(k) <= n, "k=" + std::to_string(k) + " components but only " +
                                           std::to_string(n) + " training rows (need k <= n)");
    check_finite_rows(n, d, x, "training data");
    if (w) {
        for (idx_t i = 0; i < n; i++)
            FAISS_GMM_CHECK_ARG(
                std::isfinite(w[i]) && w[i] >= 0,
                "sample weight of row " + std::to_string(i) + " is negative or non-finite");
    }
    if (lead && n < idx_t(k) * params.min_points_per_component)
        fprintf(stderr,
                "WARNING faiss-gmm: %lld training rows for %d components: fewer than %d per "
                "component, the model may be poor\n",
                (long long)n, k, params.min_points_per_component);
}

/// Subsample as FAISS does for k-means: the first k * max rows of a seeded
/// random permutation, into xs (and ws); n, x and w then name the sample.
void subsample_rows(int d, int k, const GaussianMixtureParameters& params, bool lead, idx_t& n,
                    const float*& x, const float*& w, std::vector<float>& xs,
                    std::vector<float>& ws) {
    if (params.max_points_per_component <= 0 || n <= idx_t(k) * params.max_points_per_component)
        return;
    idx_t m = idx_t(k) * params.max_points_per_component;
    if (params.verbose && lead)
        fprintf(stderr, "faiss-gmm: sampling %lld / %lld rows for training\n", (long long)m,
                (long long)n);
    const std::vector<idx_t> perm = sample_rows(n, m, params.seed + 1);
    xs.resize(size_t(m) * d);
    if (w) ws.resize(m);
    for (idx_t i = 0; i < m; i++) {
        memcpy(xs.data() + size_t(i) * d, x + size_t(perm[i]) * d, sizeof(float) * d);
        if (w) ws[i] = w[perm[i]];
    }
    n = m;
    x = xs.data();
    w = w ? ws.data() : nullptr;
}

/// The rows' mean (the frame of the initial statistics) and their mean
/// per-dimension variance (the unit of reg_covar; 1 when every row is the
/// same), summed in a fixed number of row chunks added in order: parallel,
/// and the same sums whatever the thread count (MPI ranks must agree bit
/// for bit).
std::vector<double> mean_and_scale(idx_t n, int d, const float* x, double* scale) {
    constexpr int kChunks = 64;
    std::vector<double> part(size_t(kChunks) * d, 0.0);
    auto chunked = [&](auto&& f) {
        std::fill(part.begin(), part.end(), 0.0);
#pragma omp parallel for schedule(dynamic)
        for (int c = 0; c < kChunks; c++) {
            double* acc = part.data() + size_t(c) * d;
            for (idx_t i = n * c / kChunks; i < n * (c + 1) / kChunks; i++)
                f(acc, x + size_t(i) * d);
        }
        std::vector<double> sum(d, 0.0);
        for (int c = 0; c < kChunks; c++)
            for (int j = 0; j < d; j++) sum[j] += part[size_t(c) * d + j];
        return sum;
    };
    std::vector<double> mean = chunked([&](double* acc, const float* r) {
        for (int j = 0; j < d; j++) acc[j] += r[j];
    });
    for (int j = 0; j < d; j++) mean[j] /= n;
    const std::vector<double> sq = chunked([&](double* acc, const float* r) {
        for (int j = 0; j < d; j++) {
            const double v = r[j] - mean[j];
            acc[j] += v * v;
        }
    });
    double tot = 0;
    for (int j = 0; j < d; j++) tot += sq[j] / n;
    *scale = tot / d;
    if (!(*scale > 0)) *scale = 1.0;  // all rows identical: any unit will do
    return mean;
}

}  // namespace

void GaussianMixture::fit_impl(idx_t n, const float* x, const float* init_mu, const float* w,
                               const DataSource* stream, idx_t n_stream, const Communicator& comm) {
    const bool lead = comm.rank() == 0;  // the rank that prints
    check_training_rows(n, d, k, x, w, params, lead);
    std::vector<float> xs, ws;
    subsample_rows(d, k, params, lead, n, x, w, xs, ws);
    double scale = 1;
    const std::vector<double> mean = mean_and_scale(n, d, x, &scale);
    reg_absolute_ = params.reg_covar * scale;
    if (reg_absolute_ <= 0) reg_absolute_ = 1e-12 * scale;

    // One backend for the whole fit: on a GPU the sample goes up once and
    // the initialisation, the initial statistics and (sampling mode) every
    // EM iteration read it there.
    auto backend = fit_backend(comm);
    double t0 = wall_seconds();
    backend->pin_rows(n, d, x, w);
    time_upload = wall_seconds() - t0;
    t0 = wall_seconds();
    double prev = -std::numeric_limits<double>::infinity();
    if (!(params.resume && resume_from_checkpoint(&prev, comm))) {
        std::vector<float> mu;
        if (init_mu) {
            mu.assign(init_mu, init_mu + size_t(k) * d);
            check_finite_rows(k, d, mu.data(), "initial means");
        } else {
            init_means(*backend, n, x, w, mu);
        }
        init_from_hard_assignment(*backend, n, x, w, mu.data(), mean);
        iteration_stats.clear();
        converged = false;
    }
    time_init = wall_seconds() - t0;
    t0 = wall_seconds();
    if (stream) backend->unpin_rows();  // the EM reads the source, not the sample
    // Full-data mode: each rank streams its shard, the statistics are
    // summed over the ranks. Sampling mode: every rank holds the whole
    // sample and runs the same EM on it (no messages, the same result).
    if (stream)
        run_em(*backend, n_stream, prev, comm, [&](EStepBackend& b, SufficientStatistics& st) {
            b.accumulate_source(*this, *stream, 0, stream->n(), st);
            allreduce(st, comm);
        });
    else
        run_em(*backend, n, prev, comm, [&](EStepBackend& b, SufficientStatistics& st) {
            b.accumulate(*this, n, x, w, nullptr, st);
        });
    time_em = wall_seconds() - t0;
}

std::unique_ptr<EStepBackend> GaussianMixture::fit_backend(const Communicator& comm) const {
    GaussianMixtureParameters bp = params;
    if (comm.size() > 1 && bp.gpu_devices.empty() && bp.gpu_device < 0 &&
        bp.device != Device::Cpu) {
        // Ranks sharing a host share its GPUs: one each, round robin.
        const int count = cuda_device_count();
        if (count > 0) bp.gpu_device = comm.local_rank() % count;
    }
    return make_estep_backend(bp);
}

void GaussianMixture::init_means(EStepBackend& backend, idx_t n, const float* x, const float* w,
                                 std::vector<float>& mu) const {
    mu.resize(size_t(k) * d);
    std::mt19937_64 rng(params.seed);
    switch (params.init) {
        case InitMethod::KMeans:
            if (backend.on_gpu()) {
                // FAISS's k-means on the device: its initial rows, its
                // updates and splits (kmeans_iterations).
                mu = kmeans_initial_centroids(d, k, n, x, params.seed);
                if (params.normalize_means) l2_normalize_rows(d, k, mu.data());
                kmeans_iterations(backend, d, k, n, x, w, params.kmeans_niter,
                                  params.normalize_means, mu,
                                  params.verbose && params.kmeans_niter > 0);
                break;
            }
            [[fallthrough]];
        case InitMethod::FaissKMeans: {
            faiss::ClusteringParameters cp;
            cp.niter = params.kmeans_niter;
            cp.seed = params.seed;
            cp.max_points_per_centroid = 1 << 30;  // already subsampled
            cp.min_points_per_centroid = 1;        // already warned
            cp.spherical = params.normalize_means;
            faiss::Clustering clus(d, k, cp);
            faiss::IndexFlatL2 index(d);
            clus.train(n, x, index, w);
            mu = clus.centroids;
            break;
        }
        case InitMethod::RandomRows: {
            std::vector<idx_t> perm(n);
            std::iota(perm.begin(), perm.end(), 0);
            for (int i = 0; i < k; i++) {
                std::uniform_int_distribution<idx_t> u(i, n - 1);
                std::swap(perm[i], perm[u(rng)]);
                memcpy(mu.data() + size_t(i) * d, x + size_t(perm[i]) * d, sizeof(float) * d);
            }
            break;
        }
        case InitMethod::KMeansPlusPlus:
            mu = kmeans_plus_plus(backend, d, k, n, x, w, params.seed);
            break;
    }
}

void GaussianMixture::init_from_hard_assignment(EStepBackend& backend, idx_t n, const float* x,
                                                const float* w, const float* mu,
                                                const std::vector<double>& shift) {
    // Nearest mean (the backend's hard assignment: FAISS's exact search on
    // the CPU, the argmax kernels on a GPU), then the same M-step as EM with
    // one-hot responsibilities: weights, means and variances all consistent.
    SufficientStatistics st;
    st.reset(d, k, params.covariance_type, shift);
    const GaussianMixture terms = nearest_mean_model(d, k, mu);
    AssignOutputs out;
    out.stats = &st;
    backend.assign(terms, HardAssign::NearestMean, n, x, w, out);
    // Start every component from the k-means mean (even if empty).
    means.assign(mu, mu + size_t(k) * d);
    weights.assign(k, 1.0f / k);
    const float v0 = float(reg_absolute_ > 0 ? reg_absolute_ * 1e3 : 1.0);
    variances.assign(n_variances(), params.covariance_type == CovarianceType::Full ? 0.f : v0);
    if (params.covariance_type == CovarianceType::Full)
        for (size_t c = 0; c < size_t(k); c++)
            for (int j = 0; j < d; j++) variances[(c * d + j) * d + j] = v0;  // v0 I
    m_step(st, reg_absolute_);
}

template <class EStepFn>
void GaussianMixture::run_em(EStepBackend& be, idx_t n, double prev, const Communicator& comm,
                             EStepFn&& estep) {
    EStepBackend* backend = &be;
    const int first = int(iteration_stats.size());
    const bool verbose = params.verbose && comm.rank() == 0;
    if (verbose) {
        fprintf(stderr, "faiss-gmm: EM on %lld x %d, k=%d, %s covariance, backend %s%s\n",
                (long long)n, d, k, to_string(params.covariance_type), backend->name().c_str(),
                comm.size() > 1 ? (" on rank 0 of " + std::to_string(comm.size())).c_str() : "");
        if (first > 0)
            fprintf(stderr, "faiss-gmm: resumed from '%s' after iteration %d%s\n",
                    params.checkpoint_path.c_str(), first, converged ? " (converged)" : "");
    }
    double t_run = 0;
    for (int it = first; it < params.niter && !converged; it++) {
        check_interrupted();
        double t0 = wall_seconds();
        SufficientStatistics st;
        st.reset(d, k, params.covariance_type, mixture_center(*this));
        estep(*backend, st);
        double t1 = wall_seconds();
        double ll = st.sum_log_norm / st.sum_weights;
        FAISS_GMM_CHECK(std::isfinite(ll), "the E-step's log-likelihood is not finite (iteration " +
                                               std::to_string(it + 1) + ")");
        double sq = 0;
        for (double v : st.nk) sq += v * v;
        GmmIterationStats s;
        s.log_likelihood = ll;
        s.imbalance_factor = k * sq / (st.sum_weights * st.sum_weights);
        s.n_reseeded = m_step(st, reg_absolute_);
        s.time_estep = t1 - t0;
        s.time = wall_seconds() - t0;
        iteration_stats.push_back(s);
        t_run += s.time;
        if (s.n_reseeded == 0 && std::abs(ll - prev) < params.tol) converged = true;
        prev = ll;
        if (!params.checkpoint_path.empty() && comm.rank() == 0) write_checkpoint(prev);
        if (verbose) {
            const double eta = t_run / (it + 1 - first) * (params.niter - it - 1);
            fprintf(stderr,
                    "  iter %3d/%d  log-lik %.6g  %.3g rows/s  (%.3f s, E-step %.3f s)  ETA %s%s\n",
                    it + 1, params.niter, ll, n / std::max(s.time_estep, 1e-9), s.time,
                    s.time_estep,
                    converged ? "0 s (converged)" : (std::to_string(int(eta + 0.5)) + " s").c_str(),
                    s.n_reseeded ? (" re-seeded " + std::to_string(s.n_reseeded)).c_str() : "");
        }
    }
    estep_device_bytes = backend->device_bytes();
}

}  // namespace faiss_gmm
