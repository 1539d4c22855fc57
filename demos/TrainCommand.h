/**
 * `faiss-gmm train`: fit a GMM on a vector file (under mpirun, as one rank
 * of a distributed fit) and write its means and model; or, with --algo
 * kmeans, FAISS's k-means.
 */
#pragma once

#include <faiss_gmm/Communicator.h>
#include <faiss_gmm/utils/Common.h>

#include <CLI/CLI.hpp>
#include <string>

#include "CliOptions.h"

namespace faiss_gmm {

/** The train subcommand's options, registration and run. */
struct TrainCommand {
    std::string data;          ///< --data: training vectors ({rank}: one file per rank)
    int k = 1024;              ///< -k: components
    std::string means_out;     ///< --means-out
    std::string model_out;     ///< --model-out
    idx_t max_rows = 0;        ///< --max-rows (0: all)
    bool full_data = false;    ///< --full-data: stream every row each iteration
    std::string checkpoint;    ///< --checkpoint
    bool resume = false;       ///< --resume
    std::string algo = "gmm";  ///< --algo: gmm or kmeans
    GmmOptions options;        ///< covariance, EM and device options
    CLI::App* app = nullptr;   ///< the registered subcommand

    /** Register the subcommand on the tool's app. */
    void add_to(CLI::App& parent);
    /**
     * Check the options (no output may be an input), then train.
     * @return the process exit code
     */
    int run(const Communicator& comm) const;

   private:
    int train_gmm(const Communicator& comm) const;
    /// --algo kmeans: FAISS's k-means semantics (its sample, initial rows,
    /// updates and splits), on the GPU when the backend is one.
    int train_kmeans() const;
};

}  // namespace faiss_gmm
