#include <faiss_gmm/SyntheticData.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace faiss_gmm {

SyntheticMixture::SyntheticMixture(const SyntheticMixtureParameters& p) : params(p) {
    FAISS_GMM_CHECK(p.d > 0 && p.n_clusters > 0,
                    "synthetic mixture needs d > 0 and n_clusters > 0");
    FAISS_GMM_CHECK(p.spread_min > 0 && p.spread_max >= p.spread_min, "bad synthetic spreads");
    const int d = p.d, k = p.n_clusters;
    std::mt19937_64 rng(p.seed);
    std::normal_distribution<double> g(0, 1);
    std::uniform_real_distribution<double> u(0, 1);
    weights.resize(k);
    double tot = 0;
    for (int c = 0; c < k; c++) tot += weights[c] = float(1.0 / std::pow(c + 1.0, p.size_skew));
    for (float& w : weights) w = float(w / tot);
    std::shuffle(weights.begin(), weights.end(), rng);  // sizes not ordered by id
    centers.resize(size_t(k) * d);
    for (float& v : centers) v = float(g(rng) * p.center_scale);
    stddevs.resize(size_t(k) * d);
    const double lmin = std::log(p.spread_min), lmax = std::log(p.spread_max);
    for (int c = 0; c < k; c++) {
        double s = std::exp(lmin + (lmax - lmin) * u(rng));
        for (int j = 0; j < d; j++) {
            double f = p.anisotropic ? std::exp(std::log(0.25) + std::log(16.0) * u(rng)) : 1.0;
            stddevs[size_t(c) * d + j] = float(s * f);
        }
    }
}

void SyntheticMixture::sample(idx_t n, uint64_t seed, float* x, int32_t* labels) const {
    const int d = params.d, k = params.n_clusters;
    std::vector<double> cdf(k);
    double acc = 0;
    for (int c = 0; c < k; c++) cdf[c] = acc += weights[c];
    // Rows in chunks with their own seeds: reproducible for any thread count.
    const idx_t chunk = 4096;
#pragma omp parallel for schedule(dynamic)
    for (idx_t c0 = 0; c0 < n; c0 += chunk) {
        std::mt19937_64 rng(seed * 1000003ULL + uint64_t(c0 / chunk));
        std::normal_distribution<double> g(0, 1);
        std::uniform_real_distribution<double> u(0, acc);
        for (idx_t i = c0; i < std::min(n, c0 + chunk); i++) {
            int c = int(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
            c = std::min(c, k - 1);
            if (labels) labels[i] = c;
            for (int j = 0; j < d; j++)
                x[size_t(i) * d + j] =
                    float(centers[size_t(c) * d + j] + stddevs[size_t(c) * d + j] * g(rng));
        }
    }
}

}  // namespace faiss_gmm
