/**
 * Reproducible data drawn from a known Gaussian mixture: for the demo,
 * tests (parameter recovery) and benchmarks.
 */
#pragma once

#include <faiss_gmm/utils/Common.h>

#include <cstdint>
#include <vector>

namespace faiss_gmm {

/** How to draw a synthetic mixture. */
struct SyntheticMixtureParameters {
    int d = 64;                 ///< dimension
    int n_clusters = 256;       ///< true components
    double size_skew = 1.0;     ///< component weights ~ 1 / (rank + 1)^size_skew (0: equal sizes)
    double center_scale = 1.0;  ///< centres ~ N(0, center_scale^2 I)
    double spread_min = 0.1;    ///< per-component standard deviation drawn log-uniformly
    double spread_max = 0.4;    ///< in [spread_min, spread_max]
    bool anisotropic =
        false;  ///< per-dimension deviations (spread times a log-uniform factor in [1/4, 4])
    uint64_t seed = 2024;  ///< the mixture's seed
};

/** A mixture with its draws. */
struct SyntheticMixture {
    SyntheticMixtureParameters params;
    std::vector<float> weights;  ///< n_clusters mixing weights
    std::vector<float> centers;  ///< n_clusters x d
    std::vector<float> stddevs;  ///< n_clusters x d standard deviations

    /** Draw the mixture's parameters. */
    explicit SyntheticMixture(const SyntheticMixtureParameters& p);

    /**
     * Draw n rows (n x d into x; true component into labels if non-null)
     * with the given stream seed: the same (mixture, seed) gives the same rows.
     */
    void sample(idx_t n, uint64_t seed, float* x, int32_t* labels = nullptr) const;
};

}  // namespace faiss_gmm
