// The faiss-gmm command line, end to end, including its errors.
#include <faiss/IVFlib.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/index_io.h>
#include <faiss_gmm/GaussianMixture.h>
#include <faiss_gmm/SyntheticData.h>
#include <faiss_gmm/VectorIO.h>
#include <gtest/gtest.h>

#include <unistd.h>


#include <fstream>
#include <iterator>
#include <memory>

#include "TestUtils.h"

using namespace faiss_gmm;
using namespace faiss_gmm::test;

namespace {

CommandRun cli(const std::string& args) { return run_command(cli_path() + " " + args); }

/// The recall columns (R1@1, R10@10, R100@100) of eval's row for `nprobe`;
/// empty when the row is missing.
std::vector<double> recall_row(const std::string& out, int nprobe) {
    size_t pos = 0;
    while (pos < out.size()) {
        size_t end = out.find('\n', pos);
        if (end == std::string::npos) end = out.size();
        int np;
        double r1, r10, r100;
        if (sscanf(out.c_str() + pos, " %d %lf %lf %lf", &np, &r1, &r10, &r100) == 4 &&
            np == nprobe)
            return {r1, r10, r100};
        pos = end + 1;
    }
    return {};
}

/// With every list probed the search is exhaustive: recall is 1 but for a
/// near-tie at rank 10 or 100, which the brute-force ground truth (BLAS
/// distances) and the IVF scan (direct distances) may order differently.
/// A result list holding an id twice would lose far more than that.
void expect_exhaustive_recall(const std::string& out, int nprobe, const std::string& what) {
    const auto r = recall_row(out, nprobe);
    ASSERT_EQ(r.size(), 3u) << what << ": no row for nprobe " << nprobe << "\n" << out;
    EXPECT_EQ(r[0], 1.0) << what << "\n" << out;  // queries are base rows: distance 0
    EXPECT_GE(r[1], 0.99) << what << "\n" << out;
    EXPECT_GE(r[2], 0.995) << what << "\n" << out;
}

class Cli : public testing::Test {
   protected:
    TempDir dir;
    std::string data;
    uint64_t seed = fresh_seed();
    void TearDown() override {
        if (HasFailure()) printf("data seed: FAISS_GMM_TEST_SEED=%llu\n", (unsigned long long)seed);
    }
    void SetUp() override {
        SyntheticMixtureParameters sp;
        sp.d = 16;
        sp.n_clusters = 12;
        sp.seed = seed;
        SyntheticMixture mix(sp);
        std::vector<float> x(3001 * 16);
        mix.sample(3001, 1, x.data());
        data = dir / "data.fvecs";
        write_vectors(data, 3001, 16, x.data());
    }
};

TEST_F(Cli, TrainBuildEval) {
    auto r = cli("train --data " + data + " -k 8 --niter 5 --cov diagonal --means-out " +
                 (dir / "m.fvecs") + " --model-out " + (dir / "m.gmm"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("iter"), std::string::npos) << "progress expected:\n" << r.out;
    idx_t n;
    int d;
    auto means = read_vectors(dir / "m.fvecs", &n, &d);
    EXPECT_EQ(n, 8);
    EXPECT_EQ(d, 16);
    auto model = GaussianMixture::load(dir / "m.gmm");
    EXPECT_EQ(model.means, means);
    EXPECT_EQ(model.params.covariance_type, CovarianceType::Diagonal);

    r = cli("build --data " + data + " --factory IVF16,Flat --niter 3 --out " +
            (dir / "ivf.index"));
    ASSERT_EQ(r.code, 0) << r.out;
    std::unique_ptr<faiss::Index> index(faiss::read_index((dir / "ivf.index").c_str()));
    EXPECT_EQ(index->ntotal, 3001);

    r = cli("eval --index " + (dir / "ivf.index") + " --queries " + data + " --base " + data +
            " --nprobe 1,16 --max-queries 40");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("R10@10"), std::string::npos) << r.out;
    expect_exhaustive_recall(r.out, 16, "all 16 lists probed");
}

TEST_F(Cli, MultiAssignBuildAndMixtureEval) {
    auto r =
        cli("build --data " + data + " --factory IVF16,Flat --niter 3 --max-lists 2 --tau 0.05" +
            " --model-out " + (dir / "ivf.gmm") + " --out " + (dir / "multi.index"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("per vector"), std::string::npos) << r.out;
    std::unique_ptr<faiss::Index> index(faiss::read_index((dir / "multi.index").c_str()));
    const auto model = GaussianMixture::load(dir / "ivf.gmm");
    EXPECT_EQ(model.k, 16);
    EXPECT_GE(index->ntotal, 3001) << "entries: vectors plus their extra copies";

    for (std::string probe :
         {"--probe distance", "--probe posterior", "--probe posterior --mass 0.99"}) {
        r = cli("eval --index " + (dir / "multi.index") + " --model " + (dir / "ivf.gmm") + " " +
                probe + " --queries " + data + " --base " + data +
                " --nprobe 1,16 --max-queries 40");
        ASSERT_EQ(r.code, 0) << probe << "\n" << r.out;
        EXPECT_NE(r.out.find("lists/q"), std::string::npos) << r.out;
        if (probe.find("mass") == std::string::npos)  // every list probed: exact, each id once
            expect_exhaustive_recall(r.out, 16, probe);
    }
    r = cli("eval --index " + (dir / "multi.index") + " --probe posterior --queries " + data +
            " --base " + data);
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("need --model"), std::string::npos) << r.out;
    r = cli("build --data " + data + " --factory IVF16,Flat --kmeans --max-lists 2 --out " +
            (dir / "km.index"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("needs --spill soar"), std::string::npos) << r.out;
    EXPECT_FALSE(file_exists(dir / "km.index"));
    // SOAR reads only the centroids: k-means IVF spills too, every vector twice.
    r = cli("build --data " + data + " --factory IVF16,Flat --kmeans --max-lists 2 --spill soar" +
            " --lambda 1.5 --out " + (dir / "soar.index"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("SOAR, lambda 1.5"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("2.000 per vector"), std::string::npos) << r.out;
    std::unique_ptr<faiss::Index> soar(faiss::read_index((dir / "soar.index").c_str()));
    EXPECT_EQ(soar->ntotal, 2 * 3001);
    r = cli("build --data " + data + " --factory IVF16,Flat --niter 2 --max-lists 2 --spill" +
            " tempered --temperature 3 --primary probable --out " + (dir / "temp.index"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("at T 3, first list the most probable"), std::string::npos) << r.out;
    r = cli("build --data " + data + " --factory IVF16,Flat --spill sideways --out " +
            (dir / "bad.index"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("--spill"), std::string::npos) << r.out;
    EXPECT_FALSE(file_exists(dir / "bad.index"));
}

TEST_F(Cli, BuildFromAFittedModelOrATrainingSet) {
    auto r = cli("train --data " + data + " -k 8 --niter 3 --seed 5 --quiet --model-out " +
                 (dir / "m.gmm"));
    ASSERT_EQ(r.code, 0) << r.out;
    const auto model = GaussianMixture::load(dir / "m.gmm");
    r = cli("build --data " + data + " --factory IVF8,Flat --model " + (dir / "m.gmm") +
            " --max-lists 2 --spill soar --out " + (dir / "a.index"));
    ASSERT_EQ(r.code, 0) << r.out;
    std::unique_ptr<faiss::Index> a(faiss::read_index((dir / "a.index").c_str()));
    auto* q = dynamic_cast<faiss::IndexFlat*>(faiss::ivflib::extract_index_ivf(a.get())->quantizer);
    ASSERT_TRUE(q);
    EXPECT_EQ(std::vector<float>(q->get_xb(), q->get_xb() + 8 * 16), model.means);
    EXPECT_EQ(a->ntotal, 2 * 3001);

    // --train-data trains on its rows and adds --data's; --niter reaches the IVF.
    idx_t n;
    int d;
    auto x = read_vectors(data, &n, &d);
    write_vectors(dir / "half.fvecs", 1500, d, x.data());
    r = cli("build --data " + data + " --train-data " + (dir / "half.fvecs") +
            " --factory IVF8,Flat --niter 2 --model-out " + (dir / "t.gmm") + " --out " +
            (dir / "t.index"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("iter   2/2"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("iter   3/"), std::string::npos) << r.out;
    r = cli("build --data " + (dir / "half.fvecs") + " --factory IVF8,Flat --niter 2 --quiet" +
            " --model-out " + (dir / "h.gmm") + " --out " + (dir / "h.index"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(GaussianMixture::load(dir / "t.gmm").means, GaussianMixture::load(dir / "h.gmm").means);
    std::unique_ptr<faiss::Index> t(faiss::read_index((dir / "t.index").c_str()));
    EXPECT_EQ(t->ntotal, 3001);

    // Errors name the problem and leave no index.
    r = cli("build --data " + data + " --factory IVF9,Flat --model " + (dir / "m.gmm") +
            " --out " + (dir / "bad.index"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("does not fit the index"), std::string::npos) << r.out;
    r = cli("build --data " + data + " --kmeans --model " + (dir / "m.gmm") + " --out " +
            (dir / "bad.index"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("drop --kmeans"), std::string::npos) << r.out;
    std::vector<float> narrow(100 * 5, 0.5f);
    write_vectors(dir / "narrow.fvecs", 100, 5, narrow.data());
    r = cli("build --data " + data + " --train-data " + (dir / "narrow.fvecs") + " --out " +
            (dir / "bad.index"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("--train-data has dimension 5"), std::string::npos) << r.out;
    EXPECT_FALSE(file_exists(dir / "bad.index"));
}

TEST_F(Cli, DemoRunsSmall) {
    auto r = cli(
        "demo --n 4000 --d 8 --nlist 16 --nq 50 --niter 2 --kmeans-niter 2 --nprobe 1,2,4,8,16 "
        "--quiet");
    ASSERT_EQ(r.code, 0) << r.out;
    // The four rows at equal recall, the spilled ones with 2 entries per vector
    // (SOAR always adds a second list), then one verdict.
    const size_t eq = r.out.find("At equal recall");
    ASSERT_NE(eq, std::string::npos) << r.out;
    for (const char* row : {"k-means  ", "k-means+SOAR  ", "GMM  ", "GMM+SOAR  "})
        EXPECT_NE(r.out.find(row, eq), std::string::npos) << row << "\n" << r.out;
    EXPECT_NE(r.out.find("GMM+SOAR            2.000", eq), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("k-means+SOAR        2.000", eq), std::string::npos) << r.out;
    const bool verdict = r.out.find("winner at equal entries scanned: ", eq) != std::string::npos ||
                         r.out.find("no row scans fewer", eq) != std::string::npos ||
                         r.out.find("no single winner", eq) != std::string::npos;
    EXPECT_TRUE(verdict) << r.out;
}

// An output that names an input (directly, through another spelling or a
// symlink) is refused before anything is written; so are two outputs
// naming one file.
TEST_F(Cli, OutputsThatAreInputsAreRefused) {
    const std::string before = read_raw(data);
    const std::string alias = dir.path + "/./data.fvecs", link = dir / "link.fvecs";
    ASSERT_EQ(symlink(data.c_str(), link.c_str()), 0);
    const std::vector<std::pair<std::string, std::string>> runs = {
        {"train --data " + data + " -k 3 --device cpu --means-out " + alias, "--means-out"},
        {"train --data " + link + " -k 3 --device cpu --model-out " + data, "--model-out"},
        {"train --data " + data + " -k 3 --device cpu --checkpoint " + data, "--checkpoint"},
        {"build --data " + data + " --factory IVF4,Flat --device cpu --out " + alias, "--out"},
        {"build --data " + (dir / "other.fvecs") + " --train-data " + data +
             " --factory IVF4,Flat --out " + link, "--out"}};
    for (const auto& [args, option] : runs) {
        const auto r = cli(args);
        EXPECT_NE(r.code, 0) << args;
        EXPECT_NE(r.out.find(option), std::string::npos) << args << "\n" << r.out;
        EXPECT_NE(r.out.find("same file"), std::string::npos) << args << "\n" << r.out;
        ASSERT_EQ(read_raw(data), before) << "the input changed: " << args;
    }
    const auto r = cli("train --data " + data + " -k 3 --device cpu --means-out " +
                       (dir / "m.fvecs") + " --model-out " + (dir / "./m.fvecs"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("name the same file"), std::string::npos) << r.out;
    EXPECT_FALSE(file_exists(dir / "m.fvecs"));
}

TEST_F(Cli, ErrorsAreClearAndLeaveNoOutput) {
    auto r = cli("train --data " + (dir / "missing.fvecs") + " -k 4");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("cannot open"), std::string::npos) << r.out;

    r = cli("train --data " + data + " -k 5000 --means-out " + (dir / "big.fvecs"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("k=5000"), std::string::npos) << r.out;
    EXPECT_FALSE(file_exists(dir / "big.fvecs"));

    std::vector<float> bad(20 * 4, 1.f);
    bad[13 * 4 + 1] = NAN;
    write_vectors(dir / "nan.fvecs", 20, 4, bad.data());
    r = cli("train --data " + (dir / "nan.fvecs") + " -k 2 --means-out " +
            (dir / "nan_means.fvecs"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("row 13"), std::string::npos) << r.out;
    EXPECT_FALSE(file_exists(dir / "nan_means.fvecs"));

    r = cli("build --data " + data + " --factory IVF8,Flat --out " + (dir / "data.fvecs/x.index"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("cannot write"), std::string::npos) << r.out;

    r = cli("train --data " + data + " -k 4 --cov tied");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("covariance"), std::string::npos) << r.out;
    // Full covariance trains on the CPU, and on the GPU where one is
    // visible; without one, --device gpu is refused by name.
    r = cli("train --data " + data + " -k 3 --cov full --device gpu --model-out " +
            (dir / "full_gpu.gmm"));
    if (gpu_backend_available()) {
        EXPECT_EQ(r.code, 0) << r.out;
        EXPECT_TRUE(file_exists(dir / "full_gpu.gmm"));
    } else {
        EXPECT_NE(r.code, 0);
        EXPECT_NE(r.out.find("GPU"), std::string::npos) << r.out;
        EXPECT_FALSE(file_exists(dir / "full_gpu.gmm"));
    }
    r = cli("train --data " + data + " -k 3 --cov full --device cpu --model-out " +
            (dir / "full.gmm"));
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(GaussianMixture::load(dir / "full.gmm").params.covariance_type,
              CovarianceType::Full);

    r = cli("train --data " + data + " -k 4 --precision fp64 --means-out " +
            (dir / "p_means.fvecs"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("unknown precision 'fp64'"), std::string::npos) << r.out;
    EXPECT_FALSE(file_exists(dir / "p_means.fvecs"));

    // An unwritable checkpoint is refused before any EM, with no outputs.
    r = cli("train --data " + data + " -k 4 --full-data --checkpoint " +
            (dir / "data.fvecs/run.ckpt") + " --means-out " + (dir / "ck_means.fvecs"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("cannot write"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("EM on"), std::string::npos) << "EM started:\n" << r.out;
    EXPECT_FALSE(file_exists(dir / "ck_means.fvecs"));

    r = cli("--help");
    EXPECT_EQ(r.code, 0);
    EXPECT_NE(r.out.find("build"), std::string::npos);
}

}  // namespace
