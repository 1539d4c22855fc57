// Real ANN sets (../shared/data): k-means IVF-Flat vs GMM IVF-Flat recall.
// Skips when the folder is absent. The table goes to stdout (ctest -V).
#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>
#include <faiss/index_factory.h>
#include <faiss_gmm/IVFEvaluation.h>
#include <faiss_gmm/IndexIVFTraining.h>
#include <faiss_gmm/VectorIO.h>
#include <gtest/gtest.h>

#include <memory>

#include "TestUtils.h"

using namespace faiss_gmm;
using faiss_gmm::test::file_exists;

namespace {

struct DataSet {
    const char* name;
    int nlist;
};

class RealData : public testing::TestWithParam<DataSet> {};

TEST_P(RealData, GmmRecallIsSaneAgainstKMeans) {
    const auto ds = GetParam();
    const char* env = getenv("FAISS_GMM_DATA");
    std::string root = env ? env : FAISS_GMM_SHARED_DATA;
    std::string pre = root + "/" + ds.name + "/" + ds.name;
    if (!file_exists(pre + "_base.fvecs"))
        GTEST_SKIP() << "no data set at " << pre << "_base.fvecs";
    idx_t nb, nq, ng;
    int d, dq, gk;
    auto xb = read_vectors(pre + "_base.fvecs", &nb, &d);
    auto xq = read_vectors(pre + "_query.fvecs", &nq, &dq);
    auto gt = read_ivectors(pre + "_groundtruth.ivecs", &ng, &gk);
    ASSERT_EQ(d, dq);
    ASSERT_EQ(ng, nq);

    std::vector<int> nprobes;
    for (int p = 1; p <= ds.nlist / 4; p *= 2) nprobes.push_back(p);
    nprobes.push_back(ds.nlist);  // every list: must be exact
    const std::string factory = "IVF" + std::to_string(ds.nlist) + ",Flat";
    const int seeds = 2;
    // Same training budget: k-means runs 20 iterations, GMM 10 k-means + 10 EM.
    std::vector<std::vector<double>> rec(3, std::vector<double>(nprobes.size(), 0.0)), scan = rec;
    const char* names[3] = {"k-means", "GMM sph", "GMM diag"};
    for (int s = 0; s < seeds; s++) {
        for (int m = 0; m < 3; m++) {
            std::unique_ptr<faiss::Index> index;
            if (m == 0) {
                index.reset(faiss::index_factory(d, factory.c_str()));
                auto* ivf = faiss::ivflib::extract_index_ivf(index.get());
                ivf->cp.niter = 20;
                ivf->cp.seed = 1234 + s;
                index->train(nb, xb.data());
            } else {
                GaussianMixtureParameters p;
                p.niter = 10;
                p.kmeans_niter = 10;
                p.seed = 1234 + s;
                p.covariance_type = m == 1 ? CovarianceType::Spherical : CovarianceType::Diagonal;
                index.reset(index_factory_gmm(d, factory, nb, xb.data(), p));
            }
            index->add(nb, xb.data());
            auto r = evaluate_ivf(index.get(), nq, xq.data(), gt.data(), gk, nprobes);
            for (size_t i = 0; i < r.size(); i++) {
                rec[m][i] += r[i].recall_10_10 / seeds;
                scan[m][i] += r[i].scanned_per_query / seeds;
            }
        }
    }
    printf("\n%s: %lld x %d, %lld queries, %s, 10-recall@10 (mean of %d seeds)\n", ds.name,
           (long long)nb, d, (long long)nq, factory.c_str(), seeds);
    printf("%7s", "nprobe");
    for (auto* nm : names) printf(" | %9s %10s", nm, "scanned/q");
    printf("\n");
    for (size_t i = 0; i < nprobes.size(); i++) {
        printf("%7d", nprobes[i]);
        for (int m = 0; m < 3; m++) printf(" | %9.4f %10.1f", rec[m][i], scan[m][i]);
        printf("\n");
    }
    for (int m = 0; m < 3; m++) {
        SCOPED_TRACE(names[m]);
        for (size_t i = 1; i < nprobes.size(); i++) EXPECT_GE(rec[m][i], rec[m][i - 1] - 1e-9);
        EXPECT_NEAR(rec[m].back(), 1.0, 1e-9);  // every list probed: exact
        EXPECT_NEAR(scan[m].back(), double(nb), 1e-6);
        // Sane: the GMM partition is a usable IVF partition, not far from
        // k-means at the same nprobe (the numbers themselves are reported).
        for (size_t i = 0; i < nprobes.size(); i++) EXPECT_GT(rec[m][i], rec[0][i] - 0.2);
    }
}

INSTANTIATE_TEST_SUITE_P(SharedData, RealData,
                         testing::Values(DataSet{"siftsmall", 64}, DataSet{"mnist10k", 64},
                                         DataSet{"fmnistsmall", 16}),
                         [](const testing::TestParamInfo<DataSet>& i) {
                             return std::string(i.param.name);
                         });

}  // namespace
