// Search cost through the mixture against FAISS's own (Google Benchmark):
// IVF1024,Flat over 200,000 x 128 clustered synthetic rows, 2,000 queries,
// k = 10, FAISS's threads (OpenMP) in both.
//   Faiss:         IndexIVF::search.
//   MixtureSearch: search_mixture with the distance order (the winning
//                  configuration's probing; an empty model, one copy per id),
//                  which picks the lists itself and de-duplicates ids.
// Counters: qps, us_per_query, ns_per_entry (time over entries scanned).
// Issue 14's requirement: the mixture search costs no more per entry than
// FAISS's scan plus a small constant per query: compare us_per_query at
// equal nprobe (both scan the same entries).
#include <benchmark/benchmark.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss_gmm/IVFMixture.h>
#include <faiss_gmm/SyntheticData.h>
#include <faiss_gmm/utils/Utils.h>

#include <memory>
#include <vector>

using namespace faiss_gmm;

namespace {

constexpr int kDim = 128, kList = 1024, kK = 10;
constexpr idx_t kBase = 200000, kQueries = 2000;

/// The index and queries, built once for every case.
struct SearchSetup {
    faiss::IndexFlatL2 quantizer{kDim};
    std::unique_ptr<faiss::IndexIVFFlat> index;
    std::vector<float> xq;
    SearchSetup() {
        SyntheticMixtureParameters sp;
        sp.d = kDim;
        sp.n_clusters = 512;
        SyntheticMixture mix(sp);
        std::vector<float> xb(size_t(kBase) * kDim);
        xq.resize(size_t(kQueries) * kDim);
        mix.sample(kBase, 1, xb.data());
        mix.sample(kQueries, 2, xq.data());
        index = std::make_unique<faiss::IndexIVFFlat>(&quantizer, kDim, kList);
        index->cp.niter = 5;  // the partition's quality is not what is measured
        index->train(kBase, xb.data());
        index->add(kBase, xb.data());
    }
};

SearchSetup& setup() {
    static SearchSetup s;
    return s;
}

/// Counters from the totals over every iteration (not the last one alone).
void report(benchmark::State& state, double seconds, double ndis) {
    const double searches = double(state.iterations());
    state.counters["qps"] = searches * kQueries / seconds;
    state.counters["us_per_query"] = 1e6 * seconds / (searches * kQueries);
    state.counters["ns_per_entry"] = 1e9 * seconds / ndis;
}

/// Time `search(nprobe)` (which returns the entries it scanned) per iteration.
template <class Search>
void run_search(benchmark::State& state, Search&& search) {
    double total = 0, ndis = 0;
    for (auto _ : state) {
        const double t0 = wall_seconds();
        ndis += search(int(state.range(0)));
        const double t = wall_seconds() - t0;
        state.SetIterationTime(t);
        total += t;
    }
    report(state, total, ndis);
}

void BM_FaissSearch(benchmark::State& state) {
    auto& s = setup();
    std::vector<float> d(size_t(kQueries) * kK);
    std::vector<faiss::Index::idx_t> l(d.size());
    run_search(state, [&](int nprobe) {
        s.index->nprobe = nprobe;
        faiss::indexIVF_stats.reset();
        s.index->search(kQueries, s.xq.data(), kK, d.data(), l.data());
        return double(faiss::indexIVF_stats.ndis);
    });
}

void BM_MixtureSearch(benchmark::State& state) {
    auto& s = setup();
    std::vector<float> d(size_t(kQueries) * kK);
    std::vector<idx_t> l(d.size());
    MixtureSearchParameters p;
    p.order = ProbeOrder::Distance;
    p.max_copies = 1;
    const GaussianMixture none;
    run_search(state, [&](int nprobe) {
        p.nprobe = nprobe;
        MixtureSearchStats st;
        search_mixture(s.index.get(), none, kQueries, s.xq.data(), kK, d.data(), l.data(), p, &st);
        return st.ndis;
    });
}

}  // namespace

BENCHMARK(BM_FaissSearch)
    ->ArgName("nprobe")
    ->Arg(1)
    ->Arg(8)
    ->Arg(32)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MixtureSearch)
    ->ArgName("nprobe")
    ->Arg(1)
    ->Arg(8)
    ->Arg(32)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
