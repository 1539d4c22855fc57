// One GPU against several on the same EM iteration (Google Benchmark; GPU
// only: a case needing more GPUs than are visible is skipped).
//   PinnedCopyAll: page-locked host -> device, 1 GiB x 8 to each of G GPUs at
//                  once (a thread and a stream per GPU): the host-streamed bound.
//   Iteration:     GaussianMixture::fit, full data, K = 1024, D = 128,
//                  spherical, 3 EM iterations; time = the mean of iterations
//                  2 and 3 (E-step + M-step). Rows split over G GPUs
//                  (ShardedEStep). resident = 1: SyntheticSource float32
//                  rows (1024 Gaussians), generated once in iteration 1 into
//                  each GPU's device cache (gpu_cache_bytes); iterations 2-3
//                  read device memory only. resident = 0: the same rows
//                  generated once into page-locked host memory (ArraySource),
//                  copied to the GPUs every iteration.
//   Counters: rows/s, input GB/s, and for G > 1 the relative difference of
//   the means from the G = 1 run of the same case (same data, same init).
// FAISS_GMM_BENCH_SCALE (default 1) scales N (e.g. 0.1 for a quick check).
#include <benchmark/benchmark.h>
#include <faiss_gmm/DataSource.h>
#include <faiss_gmm/EStep.h>
#include <faiss_gmm/utils/Device.h>
#include <faiss_gmm/utils/Utils.h>
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>
#ifdef FAISS_GMM_WITH_CUDA
#include <faiss_gmm/gpu/GpuEStep.h>
#endif

using namespace faiss_gmm;

#ifdef FAISS_GMM_WITH_CUDA
namespace {

constexpr int kDim = 128;
constexpr int kK = 1024;

idx_t scaled(idx_t n) {
    const char* s = std::getenv("FAISS_GMM_BENCH_SCALE");
    return s ? std::max<idx_t>(kK * 256, idx_t(n * std::atof(s))) : n;
}

bool enough_gpus(benchmark::State& state, int g) {
    if (cuda_device_count() >= g) return true;
    state.SkipWithError(("needs " + std::to_string(g) + " GPUs, " +
                         std::to_string(cuda_device_count()) + " visible")
                            .c_str());
    return false;
}

double g_copy_all[9] = {0};  // PinnedCopyAll's aggregate GB/s by GPU count

void BM_PinnedCopyAll(benchmark::State& state) {
    const int gpus = int(state.range(0));
    if (!enough_gpus(state, gpus)) return;
    const size_t bytes = size_t(1) << 30;
    const int reps = 8;
    for (auto _ : state) {
        std::vector<std::thread> th;
        std::vector<double> t(gpus);
        // Allocate and warm up on every GPU first, then copy at once.
        std::vector<gpu::PinnedBuffer<uint8_t>> h(gpus);
        std::vector<gpu::DeviceBuffer<uint8_t>> dv(gpus);
        std::vector<cudaStream_t> st(gpus);
        for (int g = 0; g < gpus; g++) {
            FAISS_GMM_CUDA_CHECK(cudaSetDevice(g));
            h[g].reserve(bytes);
            dv[g].reserve(bytes);
            std::memset(h[g].data(), 1, bytes);
            FAISS_GMM_CUDA_CHECK(cudaStreamCreate(&st[g]));
            FAISS_GMM_CUDA_CHECK(
                cudaMemcpyAsync(dv[g].data(), h[g].data(), bytes, cudaMemcpyHostToDevice, st[g]));
            FAISS_GMM_CUDA_CHECK(cudaStreamSynchronize(st[g]));
        }
        const double t0 = wall_seconds();
        for (int g = 0; g < gpus; g++)
            th.emplace_back([&, g] {
                cudaSetDevice(g);
                for (int r = 0; r < reps; r++)
                    cudaMemcpyAsync(dv[g].data(), h[g].data(), bytes, cudaMemcpyHostToDevice,
                                    st[g]);
                cudaStreamSynchronize(st[g]);
            });
        for (auto& x : th) x.join();
        const double el = wall_seconds() - t0;
        for (int g = 0; g < gpus; g++) {
            FAISS_GMM_CUDA_CHECK(cudaSetDevice(g));
            FAISS_GMM_CUDA_CHECK(cudaGetLastError());
            cudaStreamDestroy(st[g]);
        }
        g_copy_all[gpus] = double(bytes) * reps * gpus / el / 1e9;
        state.SetIterationTime(el);
    }
    state.counters["GB/s"] = g_copy_all[gpus];
    state.SetLabel("page-locked host -> " + std::to_string(gpus) + " GPU(s) at once");
}

/// The rows of the host-streamed case, generated once for every run.
struct PinnedRows {
    gpu::PinnedBuffer<uint8_t> rows;
    idx_t n = 0;
};
PinnedRows g_pinned;

SyntheticSource generator(idx_t n) {
    SyntheticMixtureParameters mp;
    mp.d = kDim;
    mp.n_clusters = kK;
    mp.seed = 1;
    return SyntheticSource(SyntheticMixture(mp), n, 1, ElementType::Float32);
}

std::map<std::string, std::vector<float>> g_one_gpu_means;  // by case, from the G = 1 run

/// args: G (GPUs), resident (0/1), precision, N
void BM_Iteration(benchmark::State& state) {
    const int gpus = int(state.range(0));
    const bool resident = state.range(1) != 0;
    const Precision prec = Precision(state.range(2));
    const idx_t n = scaled(state.range(3));
    if (!enough_gpus(state, gpus)) return;
    const SyntheticSource gen = generator(n);
    std::unique_ptr<DataSource> pinned;
    if (!resident) {
        if (g_pinned.n != n) {
            g_pinned.rows.reserve(size_t(n) * gen.row_bytes());
            const idx_t chunk = 1 << 16;
#pragma omp parallel for schedule(dynamic)
            for (idx_t c0 = 0; c0 < n; c0 += chunk)
                gen.read_raw(c0, std::min(chunk, n - c0),
                             g_pinned.rows.data() + size_t(c0) * gen.row_bytes());
            g_pinned.n = n;
        }
        pinned.reset(new ArraySource(n, kDim, ElementType::Float32, g_pinned.rows.data()));
    }
    const DataSource& src = resident ? static_cast<const DataSource&>(gen) : *pinned;
    GaussianMixtureParameters p;
    p.max_points_per_component = 0;
    p.niter = 3;
    p.tol = 0;
    p.device = Device::Gpu;
    p.precision = prec;
    for (int g = 0; g < gpus; g++) p.gpu_devices.push_back(g);
    if (resident) p.gpu_cache_bytes = size_t(n) * src.row_bytes();  // every share fits
    GaussianMixture m(kDim, kK, p);
    double iter_s = 0, estep_s = 0, first_s = 0;
    for (auto _ : state) {
        m = GaussianMixture(kDim, kK, p);
        m.fit(src);
        const auto& it = m.iteration_stats;
        iter_s = (it.at(1).time + it.at(2).time) / 2;
        estep_s = (it.at(1).time_estep + it.at(2).time_estep) / 2;
        first_s = it.at(0).time;
        state.SetIterationTime(iter_s);
    }
    const std::string key =
        std::to_string(resident) + "/" + to_string(prec) + "/" + std::to_string(n);
    if (gpus == 1) {
        g_one_gpu_means[key] = m.means;
    } else if (g_one_gpu_means.count(key)) {
        const auto& ref = g_one_gpu_means[key];
        double num = 0, den = 0;
        for (size_t i = 0; i < ref.size(); i++) {
            num = std::max(num, double(std::abs(m.means[i] - ref[i])));
            den = std::max(den, double(std::abs(ref[i])));
        }
        state.counters["means_rel_diff_vs_1gpu"] = num / den;
    }
    state.counters["rows"] = double(n);
    state.counters["estep_s"] = estep_s;
    state.counters["first_iter_s"] = first_s;
    state.counters["Mrows/s"] = double(n) / iter_s / 1e6;
    state.counters["GB/s"] = double(n) * src.row_bytes() / iter_s / 1e9;
    state.counters["device_GB"] = double(m.estep_device_bytes) / 1e9;
    state.counters["copy_GB/s"] = g_copy_all[gpus];
    state.SetLabel(std::string(resident ? "device-resident" : "host-streamed") + " " +
                   to_string(prec));
}

}  // namespace

BENCHMARK(BM_PinnedCopyAll)
    ->ArgNames({"G"})
    ->Arg(1)
    ->Arg(2)
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
// Device-resident: 200M rows (102 GB of float32: one H200 holds them);
// host-streamed: 128M rows (66 GB page-locked on the host).
BENCHMARK(BM_Iteration)
    ->ArgNames({"G", "resident", "prec", "N"})
    ->Args({1, 1, 0, 200000000})
    ->Args({2, 1, 0, 200000000})
    ->Args({1, 1, 2, 200000000})
    ->Args({2, 1, 2, 200000000})
    ->Args({1, 0, 2, 128000000})
    ->Args({2, 0, 2, 128000000})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kSecond);
#endif

BENCHMARK_MAIN();
