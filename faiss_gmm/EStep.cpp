#include <faiss/IndexFlat.h>
#include <faiss_gmm/DataSource.h>
#include <faiss_gmm/EStep.h>
#include <faiss_gmm/impl/CpuEStep.h>
#include <faiss_gmm/utils/Device.h>
#ifdef FAISS_GMM_WITH_CUDA
#include <faiss_gmm/gpu/GpuEStep.h>
#endif

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>

namespace faiss_gmm {

void SufficientStatistics::reset(int d_, int k_, CovarianceType c,
                                 const std::vector<double>& shift_) {
    FAISS_GMM_CHECK(int(shift_.size()) == d_, "shift has the wrong dimension");
    d = d_;
    k = k_;
    covariance_type = c;
    shift = shift_;
    nk.assign(k, 0.0);
    sum_x.assign(size_t(k) * d, 0.0);
    sum_x2.assign(c == CovarianceType::Spherical  ? size_t(k)
                  : c == CovarianceType::Diagonal ? size_t(k) * d
                                                  : size_t(k) * d * d,
                  0.0);
    sum_log_norm = 0;
    sum_weights = 0;
}

void SufficientStatistics::merge(const SufficientStatistics& o) {
    FAISS_GMM_CHECK(
        o.d == d && o.k == k && o.covariance_type == covariance_type && o.shift == shift,
        "merging statistics of different shapes or shifts");
    for (size_t i = 0; i < nk.size(); i++) nk[i] += o.nk[i];
    for (size_t i = 0; i < sum_x.size(); i++) sum_x[i] += o.sum_x[i];
    for (size_t i = 0; i < sum_x2.size(); i++) sum_x2[i] += o.sum_x2[i];
    sum_log_norm += o.sum_log_norm;
    sum_weights += o.sum_weights;
}

std::vector<double> mixture_center(const GaussianMixture& m) {
    std::vector<double> c(m.d, 0.0);
    double tot = 0;
    for (int i = 0; i < m.k; i++) tot += m.weights[i];
    for (int i = 0; i < m.k; i++)
        for (int j = 0; j < m.d; j++)
            c[j] += double(m.weights[i]) / tot * m.means[size_t(i) * m.d + j];
    return c;
}

bool gpu_backend_available() {
#ifdef FAISS_GMM_WITH_CUDA
    return cuda_device_count() > 0;
#else
    return false;
#endif
}

std::unique_ptr<EStepBackend> make_estep_backend(const GaussianMixtureParameters& p) {
    if (p.device == Device::Gpu) {
        FAISS_GMM_CHECK(gpu_backend_available(),
                        std::string("device=gpu was asked for but no GPU E-step is available (") +
                            std::to_string(cuda_device_count()) + " CUDA device(s) visible" +
#ifdef FAISS_GMM_WITH_CUDA
                            ")"
#else
                            "; this build has no CUDA support)"
#endif
        );
    }
#ifdef FAISS_GMM_WITH_CUDA
    if (p.device != Device::Cpu && gpu_backend_available()) {
        std::vector<int> devices = p.gpu_devices;
        if (devices.empty() && p.gpu_device >= 0) devices.push_back(p.gpu_device);
        if (devices.empty())
            for (int g = 0; g < cuda_device_count(); g++) devices.push_back(g);
        for (int g : devices)
            FAISS_GMM_CHECK(g >= 0 && g < cuda_device_count(),
                            "GPU " + std::to_string(g) + " asked for but " +
                                std::to_string(cuda_device_count()) + " visible");
        if (devices.size() == 1)
            return std::make_unique<gpu::GpuEStep>(devices[0], gpu::GpuEStep::kDefaultBlockBytes,
                                                   p.precision, p.gpu_cache_bytes);
        std::vector<std::unique_ptr<EStepBackend>> workers;
        for (int g : devices)
            workers.push_back(std::make_unique<gpu::GpuEStep>(g, gpu::GpuEStep::kDefaultBlockBytes,
                                                              p.precision, p.gpu_cache_bytes));
        return std::make_unique<ShardedEStep>(std::move(workers));
    }
#endif
    return std::make_unique<CpuEStep>(p.max_block_bytes);
}

void EStepBackend::accumulate_source(const GaussianMixture& model, const DataSource& src, idx_t i0,
                                     idx_t n, SufficientStatistics& stats) {
    FAISS_GMM_CHECK_ARG(src.d() == model.d, "data has dimension " + std::to_string(src.d()) +
                                                " but the model " + std::to_string(model.d));
    FAISS_GMM_CHECK(i0 >= 0 && n >= 0 && i0 + n <= src.n(), "row range outside the data");
    const int d = model.d;
    const idx_t bs = std::max<idx_t>(1, std::min<idx_t>(n, idx_t(block_bytes() / (4 * size_t(d)))));
    std::vector<float> buf(size_t(bs) * d);
    for (idx_t b0 = 0; b0 < n; b0 += bs) {
        const idx_t nb = std::min(bs, n - b0);
        src.read_float(i0 + b0, nb, buf.data());
        check_finite_source_rows(src, i0 + b0, nb, buf.data());
        accumulate(model, nb, buf.data(), nullptr, nullptr, stats);
    }
}

GaussianMixture nearest_mean_model(int d, int k, const float* means) {
    GaussianMixtureParameters p;
    p.covariance_type = CovarianceType::Spherical;
    GaussianMixture m(d, k, p);
    m.weights.assign(k, 1.0f / k);
    m.means.assign(means, means + size_t(k) * d);
    m.variances.assign(k, 1.0f);
    return m;
}

void EStepBackend::assign(const GaussianMixture& model, HardAssign how, idx_t n, const float* x,
                          const float* w, const AssignOutputs& out) {
    const int d = model.d, k = model.k;
    std::vector<idx_t> lab(out.labels ? 0 : n);
    idx_t* labels = out.labels ? out.labels : lab.data();
    std::vector<float> dis;
    if (how == HardAssign::NearestMean) {
        // FAISS's exact search: what faiss::Clustering assigns with.
        faiss::IndexFlatL2 index(d);
        index.add(k, model.means.data());
        dis.resize(n);
        std::vector<faiss::Index::idx_t> fl(n);
        index.search(n, x, 1, dis.data(), fl.data());
        for (idx_t i = 0; i < n; i++) labels[i] = idx_t(fl[i]);
    } else {
        std::vector<float> r(out.resp ? 0 : n);
        cpu_top_components(model, n, x, 1, labels, out.resp ? out.resp : r.data());
    }
    if (out.objective && !dis.empty())
        for (idx_t i = 0; i < n; i++) *out.objective += dis[i];  // unweighted, as FAISS
    if (!out.stats) return;
    SufficientStatistics& st = *out.stats;
    FAISS_GMM_CHECK(st.d == d && st.k == k, "statistics were reset for another model shape");
    const bool spherical = st.covariance_type == CovarianceType::Spherical;
    const bool full = st.covariance_type == CovarianceType::Full;
    std::vector<double> v(d);
    for (idx_t i = 0; i < n; i++) {
        const int c = int(labels[i]);
        const double wi = w ? w[i] : 1.0;
        st.nk[c] += wi;
        st.sum_weights += wi;
        for (int j = 0; j < d; j++) {
            v[j] = double(x[size_t(i) * d + j]) - st.shift[j];
            st.sum_x[size_t(c) * d + j] += wi * v[j];
            if (spherical)
                st.sum_x2[c] += wi * v[j] * v[j];
            else if (!full)
                st.sum_x2[size_t(c) * d + j] += wi * v[j] * v[j];
        }
        if (full) {
            double* s = st.sum_x2.data() + size_t(c) * d * d;
            for (int j = 0; j < d; j++)
                for (int l = 0; l < d; l++) s[size_t(j) * d + l] += wi * v[j] * v[l];
        }
    }
}

namespace {

/// Run f(i) for i in [0, count), one host thread each; rethrows the first error.
template <class F>
void run_in_threads(size_t count, F&& f) {
    std::vector<std::thread> threads;
    std::exception_ptr first;
    std::mutex mu;
    for (size_t i = 0; i < count; i++)
        threads.emplace_back([&, i] {
            try {
                f(i);
            } catch (...) {
                std::lock_guard<std::mutex> lock(mu);
                if (!first) first = std::current_exception();
            }
        });
    for (auto& t : threads) t.join();
    if (first) std::rethrow_exception(first);
}

/// k-means++'s distances on the host (the CPU backend's).
class HostSeedingDistances : public SeedingDistances {
   public:
    HostSeedingDistances(idx_t n, int d, const float* x, const float* w)
        : n_(n), d_(d), x_(x), w_(w), dist_(size_t(n), std::numeric_limits<double>::infinity()) {}

    double add_centre(const float* c) override {
        double total = 0;
#pragma omp parallel for reduction(+ : total)
        for (idx_t i = 0; i < n_; i++) {
            double s = 0;
            for (int j = 0; j < d_; j++) {
                const double v = double(x_[size_t(i) * d_ + j]) - c[j];
                s += v * v;
            }
            dist_[i] = std::min(dist_[i], s);
            total += dist_[i] * (w_ ? w_[i] : 1.0);
        }
        return total;
    }

    idx_t draw(double r) override {
        double acc = 0;
        for (idx_t i = 0; i < n_; i++) {
            const double m = dist_[i] * (w_ ? w_[i] : 1.0);
            acc += m;
            if (m > 0 && acc >= r) return i;
        }
        return -1;
    }

   private:
    idx_t n_;
    int d_;
    const float* x_;
    const float* w_;
    std::vector<double> dist_;
};

/// Each worker's distances over its share of the rows, in row order.
class ShardedSeedingDistances : public SeedingDistances {
   public:
    /// One per worker (null for an empty share), with the first row of each.
    std::vector<std::unique_ptr<SeedingDistances>> parts;
    std::vector<idx_t> begin;
    std::vector<double> totals;  ///< each part's last total

    double add_centre(const float* c) override {
        totals.assign(parts.size(), 0.0);
        run_in_threads(parts.size(), [&](size_t p) {
            if (parts[p]) totals[p] = parts[p]->add_centre(c);
        });
        double total = 0;
        for (double t : totals) total += t;
        return total;
    }

    idx_t draw(double r) override {
        double before = 0;
        for (size_t p = 0; p < parts.size(); p++) {
            if (totals[p] > 0 && before + totals[p] >= r) {
                const idx_t i = parts[p]->draw(r - before);
                if (i >= 0) return begin[p] + i;
            }
            before += totals[p];
        }
        return -1;
    }
};

}  // namespace

std::unique_ptr<SeedingDistances> EStepBackend::seeding_distances(idx_t n, int d, const float* x,
                                                                  const float* w) {
    return std::make_unique<HostSeedingDistances>(n, d, x, w);
}

void EStepBackend::top_components(const GaussianMixture& model, idx_t n, const float* x, int t,
                                  idx_t* labels, float* resp) {
    cpu_top_components(model, n, x, t, labels, resp);
}

ShardedEStep::ShardedEStep(std::vector<std::unique_ptr<EStepBackend>> workers)
    : workers_(std::move(workers)) {
    FAISS_GMM_CHECK(!workers_.empty(), "ShardedEStep needs at least one worker");
}

std::string ShardedEStep::name() const {
    std::string s = "sharded[";
    for (size_t w = 0; w < workers_.size(); w++) s += (w ? "," : "") + workers_[w]->name();
    return s + "]";
}

size_t ShardedEStep::device_bytes() const {
    size_t b = 0;
    for (const auto& w : workers_) b += w->device_bytes();
    return b;
}

template <class F>
void ShardedEStep::for_shares(idx_t n, F&& f) {
    const idx_t p = idx_t(workers_.size());
    run_in_threads(workers_.size(), [&](size_t w) {
        const idx_t b = n * idx_t(w) / p, e = n * idx_t(w + 1) / p;
        f(w, b, e - b);
    });
}

void ShardedEStep::accumulate(const GaussianMixture& model, idx_t n, const float* x,
                              const float* weights, float* log_norm, SufficientStatistics& st) {
    std::vector<SufficientStatistics> part(workers_.size());
    for_shares(n, [&](size_t w, idx_t b, idx_t cnt) {
        part[w].reset(st.d, st.k, st.covariance_type, st.shift);
        if (cnt == 0) return;
        workers_[w]->accumulate(model, cnt, x + size_t(b) * model.d,
                                weights ? weights + b : nullptr, log_norm ? log_norm + b : nullptr,
                                part[w]);
    });
    for (const auto& p : part) st.merge(p);  // in worker order: repeatable sums
}

void ShardedEStep::assign(const GaussianMixture& model, HardAssign how, idx_t n, const float* x,
                          const float* w, const AssignOutputs& out) {
    std::vector<SufficientStatistics> part(out.stats ? workers_.size() : 0);
    std::vector<double> obj(workers_.size(), 0.0);
    for_shares(n, [&](size_t wk, idx_t b, idx_t cnt) {
        AssignOutputs o;
        o.labels = out.labels ? out.labels + b : nullptr;
        o.resp = out.resp ? out.resp + b : nullptr;
        if (out.stats) {
            part[wk].reset(out.stats->d, out.stats->k, out.stats->covariance_type,
                           out.stats->shift);
            o.stats = &part[wk];
        }
        o.objective = out.objective ? &obj[wk] : nullptr;
        if (cnt > 0)
            workers_[wk]->assign(model, how, cnt, x + size_t(b) * model.d, w ? w + b : nullptr, o);
    });
    for (const auto& p : part) out.stats->merge(p);
    if (out.objective)
        for (double v : obj) *out.objective += v;
}

void ShardedEStep::top_components(const GaussianMixture& model, idx_t n, const float* x, int t,
                                  idx_t* labels, float* resp) {
    for_shares(n, [&](size_t wk, idx_t b, idx_t cnt) {
        if (cnt > 0)
            workers_[wk]->top_components(model, cnt, x + size_t(b) * model.d, t,
                                         labels + size_t(b) * t, resp + size_t(b) * t);
    });
}

std::unique_ptr<SeedingDistances> ShardedEStep::seeding_distances(idx_t n, int d, const float* x,
                                                                  const float* w) {
    // The shares of pin_rows, so that a GPU worker finds its pinned rows.
    auto s = std::make_unique<ShardedSeedingDistances>();
    s->parts.resize(workers_.size());
    s->begin.resize(workers_.size());
    for_shares(n, [&](size_t wk, idx_t b, idx_t cnt) {
        s->begin[wk] = b;
        if (cnt > 0)
            s->parts[wk] =
                workers_[wk]->seeding_distances(cnt, d, x + size_t(b) * d, w ? w + b : nullptr);
    });
    return s;
}

void ShardedEStep::pin_rows(idx_t n, int d, const float* x, const float* w) {
    // The same shares as accumulate and assign: each worker's calls then
    // find exactly the rows it pinned.
    for_shares(n, [&](size_t wk, idx_t b, idx_t cnt) {
        if (cnt > 0) workers_[wk]->pin_rows(cnt, d, x + size_t(b) * d, w ? w + b : nullptr);
    });
}

void ShardedEStep::unpin_rows() {
    for (auto& wk : workers_) wk->unpin_rows();
}

bool ShardedEStep::on_gpu() const { return workers_.front()->on_gpu(); }

void ShardedEStep::accumulate_source(const GaussianMixture& model, const DataSource& src, idx_t i0,
                                     idx_t n, SufficientStatistics& st) {
    std::vector<SufficientStatistics> part(workers_.size());
    for_shares(n, [&](size_t w, idx_t b, idx_t cnt) {
        part[w].reset(st.d, st.k, st.covariance_type, st.shift);
        if (cnt > 0) workers_[w]->accumulate_source(model, src, i0 + b, cnt, part[w]);
    });
    for (const auto& p : part) st.merge(p);
}

}  // namespace faiss_gmm
