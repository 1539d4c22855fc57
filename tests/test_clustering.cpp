// GmmClustering as a faiss::Clustering drop-in.
#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss_gmm/Clustering.h>
#include <gtest/gtest.h>

#include "TestUtils.h"

using namespace faiss_gmm;
using namespace faiss_gmm::test;

namespace {

TEST(GmmClustering, FillsTheSameFieldsAsFaissClustering) {
    std::mt19937_64 rng(fresh_seed());
    const int d = 24, k = 37;
    const int64_t n = 4099;
    auto x = random_rows(n, d, true, rng);

    faiss::Clustering ref(d, k);
    ref.niter = 6;
    faiss::IndexFlatL2 ref_index(d);
    ref.train(n, x.data(), ref_index);

    GmmClustering gmm(d, k);
    gmm.niter = 6;
    gmm.gmm.tol = 0;  // run every iteration, as k-means does
    faiss::IndexFlatL2 index(d);
    faiss::Clustering& as_base = gmm;  // used through the base class
    as_base.train(n, x.data(), index);

    EXPECT_EQ(gmm.centroids.size(), ref.centroids.size());
    EXPECT_EQ(gmm.iteration_stats.size(), ref.iteration_stats.size());
    EXPECT_EQ(index.ntotal, ref_index.ntotal);
    // The index holds exactly the centroids, which are the mixture's means.
    EXPECT_EQ(std::vector<float>(index.get_xb(), index.get_xb() + k * d), gmm.centroids);
    EXPECT_EQ(gmm.centroids, gmm.model.means);
    for (const auto& s : gmm.iteration_stats) {
        EXPECT_TRUE(std::isfinite(s.obj));
        EXPECT_GE(s.time, s.time_search);
        EXPECT_GE(s.imbalance_factor, 1.0 - 1e-9);
        EXPECT_GE(s.nsplit, 0);
    }
    // obj decreases (minus the log-likelihood), as k-means' objective does.
    EXPECT_LE(gmm.iteration_stats.back().obj, gmm.iteration_stats.front().obj + 1e-3f);
}

TEST(GmmClustering, SphericalGivesUnitCentroids) {
    std::mt19937_64 rng(fresh_seed());
    const int d = 16, k = 8;
    auto x = random_rows(2000, d, false, rng);
    for (int64_t i = 0; i < 2000; i++) {
        double s = 0;
        for (int j = 0; j < d; j++) s += x[i * d + j] * x[i * d + j];
        for (int j = 0; j < d; j++) x[i * d + j] /= std::sqrt(s);
    }
    faiss::ClusteringParameters cp;
    cp.spherical = true;
    cp.niter = 5;
    GmmClustering c(d, k, cp);
    faiss::IndexFlatIP index(d);
    c.train(2000, x.data(), index);
    for (int i = 0; i < k; i++) {
        double s = 0;
        for (int j = 0; j < d; j++) s += c.centroids[i * d + j] * c.centroids[i * d + j];
        EXPECT_NEAR(s, 1.0, 1e-5);
    }
}

TEST(GmmClustering, NredoFrozenAndErrors) {
    std::mt19937_64 rng(fresh_seed());
    const int d = 5, k = 4;
    auto x = random_rows(800, d, false, rng);
    GmmClustering c(d, k);
    c.niter = 4;
    c.nredo = 2;
    faiss::IndexFlatL2 index(d);
    c.train(800, x.data(), index);
    EXPECT_EQ(index.ntotal, k);

    GmmClustering frozen(d, k);
    frozen.frozen_centroids = true;
    EXPECT_THROW(frozen.train(800, x.data(), index), Error);  // no centroids given
    frozen.centroids.assign(x.begin(), x.begin() + k * d);
    frozen.train(800, x.data(), index);
    EXPECT_EQ(frozen.centroids, std::vector<float>(x.begin(), x.begin() + k * d));

    faiss::IndexFlatL2 wrong(d + 1);
    EXPECT_THROW(c.train(800, x.data(), wrong), Error);
    GmmClustering big(d, 900);
    EXPECT_THROW(big.train(800, x.data(), index), Error);
}

}  // namespace
