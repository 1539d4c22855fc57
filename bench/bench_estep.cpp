// E-step throughput of each backend (Google Benchmark).
// Counters: effective TFLOP/s at the 4*N*K*D floor (distance GEMM +
// accumulation GEMM) and the scratch bytes one call allocates.
#include <benchmark/benchmark.h>
#include <faiss_gmm/impl/CpuEStep.h>

#include <random>
#ifdef FAISS_GMM_WITH_CUDA
#include <faiss_gmm/gpu/GpuEStep.h>
#endif

using namespace faiss_gmm;

namespace {

/// Means on the first k rows, variances u in [0.5, 1.5] times var_scale
/// (full: u var_scale I).
GaussianMixture make_model(int d, int k, CovarianceType cov, const std::vector<float>& x,
                           float var_scale = 1.f) {
    GaussianMixtureParameters p;
    p.covariance_type = cov;
    GaussianMixture m(d, k, p);
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<float> u(0.5f, 1.5f);
    m.weights.assign(k, 1.0f / k);
    m.means.assign(x.begin(), x.begin() + size_t(k) * d);
    m.variances.assign(m.n_variances(), 0.f);
    if (cov == CovarianceType::Full) {  // u I: positive definite
        for (size_t c = 0; c < size_t(k); c++)
            for (int j = 0; j < d; j++) m.variances[(c * d + j) * d + j] = var_scale * u(rng);
    } else {
        for (auto& v : m.variances) v = var_scale * u(rng);
    }
    return m;
}

/// count i.i.d. standard normal floats, in parallel (one stream per 64k block).
std::vector<float> normal_values(size_t count, uint64_t seed) {
    std::vector<float> h(count);
#pragma omp parallel for
    for (int64_t c = 0; c < int64_t((count + 65535) / 65536); c++) {
        std::mt19937_64 rng(seed + c);
        std::normal_distribution<float> g;
        for (size_t i = size_t(c) * 65536; i < std::min(count, size_t(c + 1) * 65536); i++)
            h[i] = g(rng);
    }
    return h;
}

/// The benchmark arguments: N, K, D, diag (0/1) and, for GPU rows, prec
/// (faiss_gmm::Precision).
struct EStepArgs {
    int64_t n;
    int k, d;
    CovarianceType cov;
    Precision precision;
    EStepArgs(const benchmark::State& state, bool has_precision)
        : n(state.range(0)),
          k(int(state.range(1))),
          d(int(state.range(2))),
          cov(CovarianceType(state.range(3))),  // 0 spherical, 1 diagonal, 2 full
          precision(has_precision ? Precision(state.range(4)) : Precision::Fp32) {}
};

/// Zeroed statistics for m about its mixture centre, as each EM iteration starts.
SufficientStatistics fresh_stats(const GaussianMixture& m) {
    SufficientStatistics st;
    st.reset(m.d, m.k, m.params.covariance_type, mixture_center(m));
    return st;
}

/// Times one E-step per benchmark iteration (`estep` fills fresh statistics
/// over n rows) and sets the TFLOP/s counter at the 4*N*K*D floor (8 for
/// diagonal).
template <class EStepCall>
void time_estep(benchmark::State& state, const GaussianMixture& m, int64_t n, EStepCall&& estep) {
    for (auto _ : state) {
        SufficientStatistics st = fresh_stats(m);
        estep(st);
        benchmark::DoNotOptimize(st.sum_log_norm);
    }
    // Full: two passes of 2 N K D^2 (whitening, then sum r x x^T).
    const CovarianceType c = m.params.covariance_type;
    const double flops = c == CovarianceType::Full
                             ? 4.0 * n * m.k * m.d * m.d
                             : 4.0 * n * m.k * m.d * (c == CovarianceType::Diagonal ? 2 : 1);
    state.counters["TFLOP/s"] =
        benchmark::Counter(flops * state.iterations() / 1e12, benchmark::Counter::kIsRate);
}

void BM_CpuEStep(benchmark::State& state) {
    const EStepArgs a(state, false);
    const int64_t n = a.n;
    const int k = a.k, d = a.d;
    const auto cov = a.cov;
    const std::vector<float> x = normal_values(size_t(n) * d, 1);
    GaussianMixture m = make_model(d, k, cov, x);
    CpuEStep backend;
    time_estep(state, m, n, [&](SufficientStatistics& st) {
        backend.accumulate(m, n, x.data(), nullptr, nullptr, st);
    });
    const idx_t rows = std::min<idx_t>(n, backend.block_rows(d, k));
    // Full: also the whitening matrices (k d^2), the whitened block (2 rows d) and d^2.
    const double full = cov == CovarianceType::Full
                            ? double(size_t(k) * d * d + 2 * size_t(rows) * d + size_t(d) * d)
                            : 0.0;
    state.counters["scratch_MB"] =
        4.0 * (double(size_t(rows) * (k + 2 * d + 2) + size_t(k) * d) + full) / 1e6;
    state.SetLabel(std::string(to_string(cov)) + " fp32 cpu");
}

#ifdef FAISS_GMM_WITH_CUDA
/// Marks the benchmark skipped when no GPU is visible.
bool skip_without_gpu(benchmark::State& state) {
    if (gpu_backend_available()) return false;
    state.SkipWithError("no GPU");
    return true;
}

/// Device-resident E-step: rows already on the GPU (i.i.d. normal, made on
/// the host), the model's variances scaled by var_scale.
void gpu_estep_device(benchmark::State& state, const EStepArgs& a, float var_scale) {
    const int64_t n = a.n;
    const int k = a.k, d = a.d;
    const auto cov = a.cov;
    const auto precision = a.precision;
    // One device buffer of i.i.d. normal values, filled once; any prefix of
    // it is an i.i.d. n x d matrix.
    static gpu::DeviceBuffer<float> x;
    static size_t x_len = 0;
    const size_t need = size_t(n) * d;
    if (x_len < need) {
        std::vector<float> h = normal_values(need, 1234);
        x.reserve(need);
        FAISS_GMM_CUDA_CHECK(cudaMemcpy(x.data(), h.data(), need * 4, cudaMemcpyHostToDevice));
        x_len = need;
    }
    gpu::DeviceBuffer<float> lz;
    lz.reserve(size_t(n));
    std::vector<float> host_means(size_t(k) * d);
    FAISS_GMM_CUDA_CHECK(
        cudaMemcpy(host_means.data(), x.data(), host_means.size() * 4, cudaMemcpyDeviceToHost));
    GaussianMixture m = make_model(d, k, cov, host_means, var_scale);
    gpu::GpuEStep backend(-1, size_t(256) << 20, precision);
    cudaStream_t stream;
    FAISS_GMM_CUDA_CHECK(cudaStreamCreate(&stream));
    size_t free0, total;
    FAISS_GMM_CUDA_CHECK(cudaMemGetInfo(&free0, &total));
    time_estep(state, m, n, [&](SufficientStatistics& st) {
        backend.accumulate_device(m, n, x.data(), nullptr, lz.data(), st, stream);
    });
    size_t free1;
    FAISS_GMM_CUDA_CHECK(cudaMemGetInfo(&free1, &total));
    FAISS_GMM_CUDA_CHECK(cudaStreamDestroy(stream));
    // Extra memory: log Z (N floats, the caller's) + what the backend allocated.
    state.counters["scratch_MB"] = (4.0 * n + double(free0 - free1)) / 1e6;
    state.SetLabel(std::string(to_string(cov)) + " " + to_string(precision) + " gpu");
}

void BM_GpuEStep(benchmark::State& state) {
    if (skip_without_gpu(state)) return;
    gpu_estep_device(state, EStepArgs(state, true), 1.f);
}

/// Full covariance (cov 2): soft 0 is the table's model (variances ~1 on
/// unit data); soft 1 scales the variances by 16, for far softer
/// responsibilities (pass 2 skips a row tile whose responsibilities all
/// underflow: the two bound that skip from both sides).
void BM_GpuEStepFull(benchmark::State& state) {
    if (skip_without_gpu(state)) return;
    gpu_estep_device(state, EStepArgs(state, true), state.range(5) ? 16.f : 1.f);
}

/// Host-pointer E-step: rows in (pageable) host memory, copied in two
/// double-buffered blocks; the time includes packing and the PCIe copies.
void BM_GpuEStepHost(benchmark::State& state) {
    if (skip_without_gpu(state)) return;
    const EStepArgs a(state, true);
    const int64_t n = a.n;
    const int k = a.k, d = a.d;
    const auto cov = a.cov;
    const auto precision = a.precision;
    const std::vector<float> x = normal_values(size_t(n) * d, 99);
    GaussianMixture m = make_model(d, k, cov, x);
    gpu::GpuEStep backend(-1, gpu::GpuEStep::kDefaultBlockBytes, precision);
    {  // untimed warm-up: page-locked and device buffers are allocated once
        SufficientStatistics st = fresh_stats(m);
        backend.accumulate(m, std::min<int64_t>(n, 200000), x.data(), nullptr, nullptr, st);
    }
    time_estep(state, m, n, [&](SufficientStatistics& st) {
        backend.accumulate(m, n, x.data(), nullptr, nullptr, st);
    });
    state.counters["host_GB/s"] =
        benchmark::Counter(4.0 * n * d * state.iterations() / 1e9, benchmark::Counter::kIsRate);
    // Two row blocks (rows and log Z) on the device, as GpuEStep sizes them.
    const double bs =
        std::min<double>(n, double(gpu::GpuEStep::kDefaultBlockBytes) / (4.0 * (d + 2)));
    state.counters["scratch_MB"] = 2.0 * bs * 4.0 * (d + 1) / 1e6;
    state.SetLabel(std::string(to_string(cov)) + " " + to_string(precision) + " gpu-host");
}
#endif

}  // namespace

#ifdef FAISS_GMM_WITH_CUDA
// prec: 0 fp32, 1 tf32, 2 bf16, 3 fast (faiss_gmm::Precision).
BENCHMARK(BM_GpuEStep)
    ->ArgNames({"N", "K", "D", "diag", "prec"})
    ->ArgsProduct(
        {{10000, 100000, 1000000, 10000000}, {256, 1024, 4096}, {96, 128}, {0, 1}, {0, 1, 2, 3}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
// Billion-scale IVF's K (extra device memory stays O(K D + N)).
BENCHMARK(BM_GpuEStep)
    ->Name("BM_GpuEStepLargeK")
    ->ArgNames({"N", "K", "D", "diag", "prec"})
    ->ArgsProduct({{1000000}, {16384, 65536}, {96, 128}, {0, 1}, {0, 2, 3}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
#endif

#ifdef FAISS_GMM_WITH_CUDA
BENCHMARK(BM_GpuEStepFull)
    ->ArgNames({"N", "K", "D", "cov", "prec", "soft"})
    ->ArgsProduct({{100000, 1000000}, {1024}, {96, 128}, {2}, {0, 2, 3}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_GpuEStepHost)
    ->ArgNames({"N", "K", "D", "diag", "prec"})
    ->ArgsProduct({{1000000, 4000000}, {1024}, {128}, {0, 1}, {0, 1, 2, 3}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
#endif

// N x K x D x covariance (0 spherical, 1 diagonal): CPU rows at smaller N.
BENCHMARK(BM_CpuEStep)
    ->ArgNames({"N", "K", "D", "diag"})
    ->ArgsProduct({{10000, 100000}, {256, 1024}, {96, 128}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
// Full covariance on the CPU (2 N K D^2 flops a pass): smaller N and K.
BENCHMARK(BM_CpuEStep)
    ->Name("BM_CpuEStepFull")
    ->ArgNames({"N", "K", "D", "cov"})
    ->ArgsProduct({{10000}, {64, 256}, {96, 128}, {2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
