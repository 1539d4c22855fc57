/**
 * `faiss-gmm build`: a FAISS factory string and vectors in, an index file
 * out, whose coarse quantizer is GMM-trained (or k-means-trained, or a
 * fitted model's means), with optional soft multi-assignment.
 */
#pragma once

#include <faiss_gmm/IVFMixture.h>
#include <faiss_gmm/utils/Common.h>

#include <CLI/CLI.hpp>
#include <string>

#include "CliOptions.h"

namespace faiss_gmm {

/// Where build's quantizer comes from, besides --data.
struct BuildSources {
    std::string train_data;  ///< --train-data: train on these rows instead of --data's
    std::string model;       ///< --model: a fitted mixture; nothing is trained for the quantizer
};

/** The build subcommand's options, registration and run. */
struct BuildCommand {
    std::string data;                      ///< --data: the vectors the index holds
    std::string factory = "IVF1024,Flat";  ///< --factory
    std::string out;                       ///< --out: the index file
    std::string metric = "l2";             ///< --metric: l2 or ip
    idx_t train_rows = 0;                  ///< --train-rows (0: all)
    bool kmeans = false;                   ///< --kmeans: train with k-means instead
    std::string model_out;                 ///< --model-out: the fitted mixture
    BuildSources from;
    MultiAssignParameters ma = one_list();  ///< --max-lists, --tau, --spill, ...
    GmmOptions options;                     ///< covariance, EM and device options
    CLI::App* app = nullptr;                ///< the registered subcommand

    /** Register the subcommand on the tool's app. */
    void add_to(CLI::App& parent);
    /**
     * Check the options (no output may be an input), then build and write
     * the index. @return the process exit code
     */
    int run() const;

   private:
    static MultiAssignParameters one_list() {
        MultiAssignParameters m;
        m.max_lists = 1;
        return m;
    }
};

}  // namespace faiss_gmm
