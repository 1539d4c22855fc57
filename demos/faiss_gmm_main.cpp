/**
 * faiss-gmm: the command-line tool. Subcommands train, build, eval, demo
 * (TrainCommand.h, BuildCommand.h, EvalCommand.h, Demo.h). Progress goes to
 * stderr, results to stdout. Under mpirun, train runs as one rank of a
 * distributed fit.
 */
#include <faiss_gmm/Communicator.h>
#include <faiss_gmm/utils/Common.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <new>
#include <string>

#include "BuildCommand.h"
#include "CliOptions.h"
#include "Demo.h"
#include "EvalCommand.h"
#include "TrainCommand.h"

using namespace faiss_gmm;

namespace {

/// Started by mpirun with several processes: this is one rank of a
/// distributed job. Null (after printing why) when it cannot be one.
std::unique_ptr<Communicator> make_communicator(int* argc, char*** argv) {
    try {
        const int launched = mpi_launch_size();
        FAISS_GMM_CHECK(launched == 1 || mpi_built(),
                        "started by mpirun with " + std::to_string(launched) +
                            " processes, but this build has no MPI support (install "
                            "libopenmpi-dev and rebuild)");
        return launched > 1 ? mpi_world(argc, argv) : std::make_unique<Communicator>();
    } catch (const std::exception& e) {
        fprintf(stderr, "%s\n", e.what());
        return nullptr;
    }
}

/// The demo subcommand's options on the tool's app.
CLI::App* add_demo(CLI::App& app, DemoParameters& dp, GmmOptions& o_demo) {
    auto* demo = app.add_subcommand("demo",
                                    "k-means IVF vs GMM IVF, alone and with SOAR spilling, "
                                    "at equal entries scanned (synthetic data unless --data)");
    demo->add_option("--data", dp.data, "your vectors (the last --nq rows become queries)");
    demo->add_option("--n", dp.n, "synthetic base size")->capture_default_str();
    demo->add_option("--d", dp.d, "synthetic dimension")->capture_default_str();
    demo->add_option("--nlist", dp.nlist, "inverted lists")->capture_default_str();
    demo->add_option("--nq", dp.nq, "queries")->capture_default_str();
    demo->add_option("--nprobe", dp.nprobes, "comma-separated nprobe values")
        ->capture_default_str();
    demo->add_option("--lambda-kmeans", dp.lambda_kmeans, "SOAR's lambda on k-means centroids")
        ->capture_default_str();
    demo->add_option("--lambda-gmm", dp.lambda_gmm, "SOAR's lambda on GMM means")
        ->capture_default_str();
    o_demo.niter = 10;
    o_demo.add_to(demo);
    return demo;
}

/// The error as the user reads it, ending a distributed job's other ranks.
int report_error(const std::exception& e, Communicator& comm) {
    std::string msg = e.what();
    if (msg.rfind("faiss-gmm: ", 0) == 0) msg = msg.substr(11);
    // std::bad_alloc says only "std::bad_alloc": say what it means here.
    if (dynamic_cast<const std::bad_alloc*>(&e))
        msg =
            "out of memory: the job's arrays do not fit in this machine's memory (fewer "
            "components or rows, a smaller --max-points-per-component sample, or "
            "--full-data to stream the rows)";
    if (comm.size() > 1) {
        // The other ranks may wait in a collective for this one: end the job.
        fprintf(stderr, "faiss-gmm: error (rank %d of %d): %s\n", comm.rank(), comm.size(),
                msg.c_str());
        comm.abort(1);
    }
    fprintf(stderr, "faiss-gmm: error: %s\n", msg.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    std::unique_ptr<Communicator> comm = make_communicator(&argc, &argv);
    if (!comm) return 1;
    CLI::App app{
        "faiss-gmm: train the coarse quantizer of FAISS IVF indexes with a Gaussian "
        "mixture (EM) instead of k-means.\nVector files: .fvecs .bvecs .fbin .u8bin .npy; "
        "ground truth: .ivecs .ibin .npy."};
    app.require_subcommand(1);

    TrainCommand train;
    BuildCommand build;
    EvalCommand eval;
    DemoParameters dp;
    GmmOptions o_demo;
    train.add_to(app);
    build.add_to(app);
    eval.add_to(app);
    CLI::App* demo = add_demo(app, dp, o_demo);

    CLI11_PARSE(app, argc, argv);
    try {
        if (*train.app) return train.run(*comm);
        FAISS_GMM_CHECK(comm->size() == 1, "only train runs distributed (under mpirun)");
        if (*build.app) return build.run();
        if (*eval.app) return eval.run();
        if (*demo) return run_demo(dp, o_demo.params());
    } catch (const std::exception& e) {
        return report_error(e, *comm);
    }
    return 0;
}
