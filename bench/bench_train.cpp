// Training a coarse quantizer end to end on the GPU (Google Benchmark):
// rows in host memory -> means on the host, D = 128, clustered synthetic
// data (SyntheticSource: K Gaussians) held as float32 or uint8, FAISS's
// sample of 256 * K rows.
//   Gmm:    GaussianMixture::fit, k-means initialisation (10 iterations,
//           the GPU k-means) + 20 EM iterations (tol 0), --precision bf16.
//   KMeans: KMeansClustering (our GPU k-means), 30 iterations.
// Counters (seconds): upload (rows to the device), init (k-means + initial
// statistics), em (the EM iterations), host (the rest: checks, the
// sample's mean and spread, uint8 -> float conversion), and per-iteration
// milliseconds. One run per case: each takes seconds.
#include <benchmark/benchmark.h>
#include <faiss/IndexFlat.h>
#include <faiss_gmm/DataSource.h>
#include <faiss_gmm/EStep.h>
#include <faiss_gmm/KMeans.h>
#include <faiss_gmm/SyntheticData.h>
#include <faiss_gmm/utils/Utils.h>

#include <memory>
#include <vector>

using namespace faiss_gmm;

namespace {

constexpr int kDim = 128;

/// 256 * K rows of K clustered Gaussians, generated once per (K, type).
struct HostRows {
    int k = 0;
    ElementType type = ElementType::Float32;
    std::vector<float> f;
    std::vector<uint8_t> u;
    std::unique_ptr<ArraySource> src;
};

const HostRows& rows_for(int k, bool u8) {
    static HostRows cache;
    const ElementType t = u8 ? ElementType::UInt8 : ElementType::Float32;
    if (cache.k == k && cache.type == t) return cache;
    cache = HostRows();
    SyntheticMixtureParameters sp;
    sp.d = kDim;
    sp.n_clusters = k;
    SyntheticMixture mix(sp);
    const idx_t n = idx_t(k) * 256;
    // uint8: the mixture scaled onto 0..255 as SIFT-like bytes.
    SyntheticSource gen(mix, n, 7, t, u8 ? 40.f : 1.f, u8 ? 128.f : 0.f);
    if (u8) {
        cache.u.resize(size_t(n) * kDim);
        gen.read_raw(0, n, cache.u.data());
        cache.src = std::make_unique<ArraySource>(n, kDim, t, cache.u.data());
    } else {
        cache.f.resize(size_t(n) * kDim);
        gen.read_raw(0, n, cache.f.data());
        cache.src = std::make_unique<ArraySource>(n, kDim, cache.f.data());
    }
    cache.k = k;
    cache.type = t;
    return cache;
}

void BM_TrainGmm(benchmark::State& state) {
    if (!gpu_backend_available()) return state.SkipWithError("no GPU");
    const int k = int(state.range(0));
    const HostRows& r = rows_for(k, state.range(1) != 0);
    GaussianMixtureParameters p;
    p.device = Device::Gpu;
    p.precision = Precision::Bf16;
    p.niter = 20;
    p.tol = 0;
    p.kmeans_niter = 10;
    GaussianMixture g(kDim, k, p);
    for (auto _ : state) {
        const double t0 = wall_seconds();
        g.fit(*r.src);  // FAISS's sample is every row here: all go up once
        const double t = wall_seconds() - t0;
        state.SetIterationTime(t);
        state.counters["upload_s"] = g.time_upload;
        state.counters["init_s"] = g.time_init;
        state.counters["em_s"] = g.time_em;
        state.counters["host_s"] = t - g.time_upload - g.time_init - g.time_em;
        state.counters["em_iter_ms"] =
            1e3 * g.time_em / std::max<size_t>(1, g.iteration_stats.size());
        state.counters["total_s"] = t;
    }
    state.counters["final_ll"] =
        g.iteration_stats.empty() ? 0 : g.iteration_stats.back().log_likelihood;
}

void BM_TrainKMeans(benchmark::State& state) {
    if (!gpu_backend_available()) return state.SkipWithError("no GPU");
    const int k = int(state.range(0));
    const HostRows& r = rows_for(k, state.range(1) != 0);
    const idx_t n = r.src->n();
    for (auto _ : state) {
        const double t0 = wall_seconds();
        std::vector<float> conv;
        const float* x = r.f.data();
        if (r.type != ElementType::Float32) {
            conv.resize(size_t(n) * kDim);
            r.src->read_float(0, n, conv.data());
            x = conv.data();
        }
        faiss::ClusteringParameters cp;
        cp.niter = 30;
        cp.max_points_per_centroid = 256;
        KMeansClustering km(kDim, k, cp);
        km.backend.device = Device::Gpu;
        km.backend.precision = Precision::Bf16;
        faiss::IndexFlatL2 index(kDim);
        km.train(n, x, index);
        const double t = wall_seconds() - t0;
        double assign = 0, iters = 0;
        for (const auto& s : km.iteration_stats) assign += s.time_search, iters += s.time;
        state.SetIterationTime(t);
        state.counters["upload_s"] = km.time_upload;
        state.counters["iters_s"] = iters;
        state.counters["assign_s"] = assign;
        state.counters["host_s"] = t - km.time_upload - iters;
        state.counters["iter_ms"] = 1e3 * iters / std::max<size_t>(1, km.iteration_stats.size());
        state.counters["total_s"] = t;
        state.counters["final_obj"] =
            km.iteration_stats.empty() ? 0 : km.iteration_stats.back().obj;
    }
}

void train_args(benchmark::internal::Benchmark* b) {
    b->ArgNames({"K", "u8"});
    for (int k : {1024, 4096, 16384, 65536})
        for (int u8 : {0, 1}) b->Args({k, u8});
    b->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_TrainKMeans)->Apply(train_args);
BENCHMARK(BM_TrainGmm)->Apply(train_args);
BENCHMARK_MAIN();
