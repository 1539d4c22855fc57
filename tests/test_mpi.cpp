// Distributed training: `mpirun -np P faiss-gmm train` against the same fit
// in one process (CPU backend, ranks on this machine).
#include <faiss_gmm/GaussianMixture.h>
#include <faiss_gmm/SyntheticData.h>
#include <faiss_gmm/VectorIO.h>
#include <gtest/gtest.h>

#include "TestUtils.h"

using namespace faiss_gmm;
using namespace faiss_gmm::test;

namespace {

#ifdef FAISS_GMM_WITH_MPI

/// mpirun with P ranks on this host: as root too (CI), more ranks than
/// cores, one OpenMP thread each; `timeout` so a hung rank fails the test.
std::string mpirun(int ranks) {
    return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 timeout "
           "300 " +
           std::string(FAISS_GMM_MPIEXEC) + " -np " + std::to_string(ranks) +
           " --oversubscribe --bind-to none " + cli_path();
}

std::string one_process() { return "OMP_NUM_THREADS=1 " + cli_path(); }

class Mpi : public testing::Test {
   protected:
    TempDir dir;
    const uint64_t seed = fresh_seed();
    const int d = 24;
    const idx_t n = 9001;
    std::vector<float> x;
    std::string data;
    void SetUp() override {
        SyntheticMixtureParameters sp;
        sp.d = d;
        sp.n_clusters = 30;
        sp.seed = seed;
        x.resize(size_t(n) * d);
        SyntheticMixture(sp).sample(n, 1, x.data());
        data = dir / "data.fvecs";
        write_vectors(data, n, d, x.data());
    }
    void TearDown() override {
        if (HasFailure()) printf("data seed: FAISS_GMM_TEST_SEED=%llu\n", (unsigned long long)seed);
    }
    /// The rows split at the given points into shard_0.fvecs, shard_1.fvecs, ...
    std::string write_shards(const std::vector<idx_t>& cuts) {
        idx_t b = 0;
        for (size_t s = 0; s <= cuts.size(); s++) {
            const idx_t e = s < cuts.size() ? cuts[s] : n;
            write_vectors(dir / ("shard_" + std::to_string(s) + ".fvecs"), e - b, d,
                          x.data() + size_t(b) * d);
            b = e;
        }
        return dir / "shard_{rank}.fvecs";
    }
    GaussianMixture train(const std::string& runner, const std::string& data_spec,
                          const std::string& name, const std::string& opts) {
        const auto r = run_command(runner + " train --data " + data_spec + " -k 37 --device cpu " +
                                   opts + " --model-out " + (dir / name));
        EXPECT_EQ(r.code, 0) << runner << "\n" << r.out;
        return GaussianMixture::load(dir / name);
    }
};


// Sampling mode: the ranks gather FAISS's sample of the global rows and all
// run the same EM on it, so the model is the one-process model, bit for bit.
TEST_F(Mpi, TwoRanksGiveTheOneProcessModel) {
    const std::string opts = "--max-points-per-component 100 --niter 6 --tol 0 --quiet";
    const GaussianMixture one = train(one_process(), data, "one.gmm", opts);
    const GaussianMixture shares = train(mpirun(2), data, "shares.gmm", opts);
    const GaussianMixture files = train(mpirun(2), write_shards({2345}), "files.gmm", opts);
    for (const GaussianMixture* m : {&shares, &files}) {
        EXPECT_EQ(m->means, one.means);
        EXPECT_EQ(m->variances, one.variances);
        EXPECT_EQ(m->weights, one.weights);
    }
}

// Full-data mode: every iteration's statistics are summed over the ranks;
// each rank's E-step rounds its own blocks in float32, so the models agree to
// float32 accuracy. A resumed distributed run ends as the uninterrupted one.
TEST_F(Mpi, FullDataStatisticsAreSummedOverRanks) {
    const std::string opts = "--full-data --niter 6 --tol 0 --cov diagonal";
    const GaussianMixture one = train(one_process(), data, "one.gmm", opts + " --quiet");
    const GaussianMixture two = train(mpirun(2), data, "two.gmm", opts + " --quiet");
    const GaussianMixture three =
        train(mpirun(3), write_shards({1000, 1001}), "three.gmm", opts + " --quiet");
    for (const GaussianMixture* m : {&two, &three}) {
        EXPECT_LT(rel_err(m->means, one.means), 1e-4);
        EXPECT_LT(rel_err(m->variances, one.variances), 1e-3);
        EXPECT_LT(rel_err(m->weights, one.weights), 1e-3);
    }
    // 3 iterations with a checkpoint, then resumed to 6.
    const std::string ckpt = dir / "run.ckpt";
    const std::string copts = "--full-data --tol 0 --cov diagonal --checkpoint " + ckpt;
    train(mpirun(2), data, "half.gmm", copts + " --niter 3 --quiet");
    const auto r = run_command(mpirun(2) + " train --data " + data +
                               " -k 37 --device cpu --niter 6 --resume " + copts + " --model-out " +
                               (dir / "resumed.gmm"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("resumed from"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("iter   3/6"), std::string::npos) << "iteration 3 ran again:\n" << r.out;
    EXPECT_NE(r.out.find("iter   4/6"), std::string::npos) << r.out;
    const GaussianMixture resumed = GaussianMixture::load(dir / "resumed.gmm");
    EXPECT_LT(rel_err(resumed.means, two.means), 1e-5);
    EXPECT_LT(rel_err(resumed.variances, two.variances), 1e-5);
}

// One rank's bad row ends the whole job (no rank left waiting) with a
// message naming the row and the file, and no model is written.
TEST_F(Mpi, BadRowOnOneRankEndsTheJobAndIsNamed) {
    x[size_t(1717 + 17) * d + 5] = NAN;  // row 17 of the second shard
    const std::string spec = write_shards({1717});
    for (const std::string mode : {"", "--full-data"}) {
        const auto r = run_command(mpirun(2) + " train --data " + spec + " -k 37 --device cpu " +
                                   mode + " --model-out " + (dir / "bad.gmm"));
        EXPECT_NE(r.code, 0) << r.out;
        EXPECT_NE(r.out.find("row 17 of"), std::string::npos) << mode << "\n" << r.out;
        EXPECT_NE(r.out.find("shard_1.fvecs"), std::string::npos) << mode << "\n" << r.out;
        EXPECT_NE(r.out.find("rank 1 of 2"), std::string::npos) << mode << "\n" << r.out;
        EXPECT_FALSE(file_exists(dir / "bad.gmm"));
    }
}

#else

TEST(Mpi, Skipped) { GTEST_SKIP() << "built without MPI (install libopenmpi-dev)"; }

#endif

}  // namespace
