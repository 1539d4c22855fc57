// The streaming E-step against the copy bound, and one EM iteration over a
// billion generated vectors (Google Benchmark; GPU only: skipped without).
//   PinnedCopy:   cudaMemcpyAsync page-locked host -> device, 1 GiB: the bound.
//   StreamEStep:  GpuEStep::accumulate_source over N rows of D = 128 in
//                 page-locked memory (float32 or uint8), K components;
//                 counters: input GB/s, rows/s, and the fraction of the
//                 PinnedCopy bandwidth measured in the same process.
//   BillionIteration: GaussianMixture::fit with full data, niter EM
//                 iterations, over SyntheticSource "1e9 x 128 uint8, 1024
//                 Gaussians": the first iteration makes the rows on the device
//                 (bit-identical to the host's) into the device cache (128 GB),
//                 the later ones read it; time = the mean later iteration
//                 (E-step + M-step), first_s the first; peak = the E-step's
//                 device buffers at the end of the fit (they only grow), and
//                 the process's device memory in use (cudaMemGetInfo).
#include <benchmark/benchmark.h>
#include <faiss_gmm/DataSource.h>
#include <faiss_gmm/EStep.h>
#include <faiss_gmm/utils/Utils.h>
#include <omp.h>

#include <cstdio>
#include <cstring>
#include <random>
#ifdef FAISS_GMM_WITH_CUDA
#include <faiss_gmm/gpu/GpuEStep.h>
#endif

using namespace faiss_gmm;

#ifdef FAISS_GMM_WITH_CUDA
namespace {

constexpr int kDim = 128;

double g_copy_gbps = 0;  // PinnedCopy's measurement, for the fraction

double measure_pinned_copy(size_t bytes, int reps) {
    gpu::PinnedBuffer<uint8_t> h;
    gpu::DeviceBuffer<uint8_t> dv;
    h.reserve(bytes);
    dv.reserve(bytes);
    std::memset(h.data(), 1, bytes);
    cudaStream_t s;
    FAISS_GMM_CUDA_CHECK(cudaStreamCreate(&s));
    FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(dv.data(), h.data(), bytes, cudaMemcpyHostToDevice, s));
    FAISS_GMM_CUDA_CHECK(cudaStreamSynchronize(s));
    const double t0 = wall_seconds();
    for (int r = 0; r < reps; r++)
        FAISS_GMM_CUDA_CHECK(
            cudaMemcpyAsync(dv.data(), h.data(), bytes, cudaMemcpyHostToDevice, s));
    FAISS_GMM_CUDA_CHECK(cudaStreamSynchronize(s));
    const double t = wall_seconds() - t0;
    cudaStreamDestroy(s);
    return double(bytes) * reps / t / 1e9;
}

void BM_PinnedCopy(benchmark::State& state) {
    if (!gpu_backend_available()) return state.SkipWithError("no GPU");
    for (auto _ : state) {
        g_copy_gbps = measure_pinned_copy(size_t(1) << 30, 8);
        state.SetIterationTime(8.0 * (size_t(1) << 30) / 1e9 / g_copy_gbps);
    }
    state.counters["GB/s"] = g_copy_gbps;
    state.SetLabel("pinned host->device copy");
}

/// The streaming E-step over N rows of D = 128 (state args N, K, u8,
/// precision) in blocks of block_bytes: rows in page-locked host memory
/// (they cross the link every call), or made on the device by the
/// synthetic source itself (no link: what the pipeline costs without it).
void stream_estep(benchmark::State& state, size_t block_bytes, bool device_rows) {
    if (!gpu_backend_available()) return state.SkipWithError("no GPU");
    if (g_copy_gbps == 0) g_copy_gbps = measure_pinned_copy(size_t(1) << 30, 8);
    const idx_t n = state.range(0);
    const int k = int(state.range(1));
    const ElementType t = state.range(2) ? ElementType::UInt8 : ElementType::Float32;
    const Precision prec = Precision(state.range(3));
    SyntheticMixtureParameters mp;
    mp.d = kDim;
    mp.n_clusters = k;
    SyntheticSource gen(SyntheticMixture(mp), n, 1, t, t == ElementType::UInt8 ? 32.f : 1.f,
                        t == ElementType::UInt8 ? 128.f : 0.f);
    gpu::PinnedBuffer<uint8_t> rows;
    if (!device_rows) {
        rows.reserve(size_t(n) * gen.row_bytes());
        gen.read_raw(0, n, rows.data());
    }
    ArraySource pinned(device_rows ? 0 : n, kDim, t, device_rows ? nullptr : rows.data());
    const DataSource& src = device_rows ? static_cast<const DataSource&>(gen) : pinned;
    GaussianMixtureParameters p;
    GaussianMixture m(kDim, k, p);
    m.weights.assign(k, 1.f / k);
    m.means.resize(size_t(k) * kDim);
    gen.read_float(0, k, m.means.data());                           // means on data rows
    m.variances.assign(k, t == ElementType::UInt8 ? 100.f : 0.1f);  // the data's scale
    gpu::GpuEStep g(0, block_bytes, prec);
    SufficientStatistics st;
    st.reset(kDim, k, p.covariance_type, mixture_center(m));
    g.accumulate_source(m, src, 0, n, st);  // warm-up: buffers, model terms
    for (auto _ : state) {
        st.reset(kDim, k, p.covariance_type, mixture_center(m));
        const double t0 = wall_seconds();
        g.accumulate_source(m, src, 0, n, st);
        state.SetIterationTime(wall_seconds() - t0);
    }
    const double bytes = double(n) * src.row_bytes();
    state.counters["GB/s"] =
        benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["Mrows/s"] =
        benchmark::Counter(double(n) / 1e6, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["copy_GB/s"] = g_copy_gbps;
    state.SetLabel(std::string(to_string(t)) + " " + to_string(prec));
}

/// args: N, K, type (0 float32, 1 uint8), precision
void BM_StreamEStep(benchmark::State& state) {
    stream_estep(state, gpu::GpuEStep::kDefaultBlockBytes, false);
}

/// args: N, K, u8, precision, block MB, rows (0 page-locked host, 1 made on
/// the device): where the streaming path's time goes (issue 16, item 5).
void BM_PipelineEStep(benchmark::State& state) {
    stream_estep(state, size_t(state.range(4)) << 20, state.range(5) != 0);
}

/// args: N, K, precision, niter. Iteration 1 makes the rows on the device
/// (DeviceRowGenerator) into the device cache; the later ones read the cache.
void BM_BillionIteration(benchmark::State& state) {
    if (!gpu_backend_available()) return state.SkipWithError("no GPU");
    const idx_t n = state.range(0);
    const int k = int(state.range(1));
    const Precision prec = Precision(state.range(2));
    const int niter = int(state.range(3));
    auto src = open_data_source("synthetic:" + std::to_string(n) + "x" + std::to_string(kDim) +
                                ",k=" + std::to_string(k) + ",seed=1,uint8");
    GaussianMixtureParameters p;
    p.max_points_per_component = 0;  // every row
    p.niter = niter;
    p.tol = 0;
    p.device = Device::Gpu;
    p.precision = prec;
    p.gpu_cache_bytes = size_t(n) * src->row_bytes();
    p.verbose = true;
    double peak_mb = 0, used_mb = 0, first_s = 0, later_s = 0, later_estep_s = 0;
    for (auto _ : state) {
        GaussianMixture g(kDim, k, p);
        g.fit(*src);
        peak_mb = double(g.estep_device_bytes) / 1e6;
        size_t free_b = 0, total_b = 0;
        FAISS_GMM_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
        used_mb = double(total_b - free_b) / 1e6;  // the whole process, cache included
        const auto& its = g.iteration_stats;
        first_s = its.at(0).time;
        later_s = later_estep_s = 0;
        for (size_t i = 1; i < its.size(); i++) {
            later_s += its[i].time / double(its.size() - 1);
            later_estep_s += its[i].time_estep / double(its.size() - 1);
        }
        state.SetIterationTime(its.size() > 1 ? later_s : first_s);
    }
    state.counters["rows"] = double(n);
    state.counters["first_s"] = first_s;
    state.counters["later_s"] = later_s;
    state.counters["later_estep_s"] = later_estep_s;
    state.counters["peak_device_MB"] = peak_mb;
    state.counters["device_used_MB"] = used_mb;
    state.SetLabel(std::string("uint8 ") + to_string(prec));
}

}  // namespace

BENCHMARK(BM_PinnedCopy)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StreamEStep)
    ->ArgNames({"N", "K", "u8", "prec"})
    ->Args({8 << 20, 256, 0, 2})
    ->Args({8 << 20, 1024, 0, 2})
    ->Args({8 << 20, 1024, 0, 0})
    ->Args({8 << 20, 256, 1, 2})
    ->Args({8 << 20, 1024, 1, 2})
    ->Args({8 << 20, 1024, 1, 0})
    ->Args({8 << 20, 1024, 0, 3})
    ->Args({8 << 20, 1024, 1, 3})
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PipelineEStep)
    ->ArgNames({"N", "K", "u8", "prec", "blockMB", "devrows"})
    ->ArgsProduct({{8 << 20}, {1024}, {1}, {3}, {64, 256}, {0, 1}})
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BillionIteration)
    ->ArgNames({"N", "K", "prec", "niter"})
    ->Args({1000000000, 1024, 3, 3})
    ->Args({1000000000, 1024, 2, 2})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kSecond);
#endif

BENCHMARK_MAIN();
