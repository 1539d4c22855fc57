/**
 * `faiss-gmm eval`: recall 1@1, 10@10, 100@100, vectors scanned and QPS
 * per nprobe of a FAISS index file, searched plainly or through its
 * mixture.
 */
#pragma once

#include <faiss_gmm/utils/Common.h>

#include <CLI/CLI.hpp>
#include <string>

namespace faiss_gmm {

/// How eval searches: plain FAISS, or through the index's mixture.
struct EvalSearch {
    std::string model_path;          ///< the index's GMM (build --model-out); empty: plain FAISS
    std::string probe = "distance";  ///< distance or posterior
    double mass = 0;                 ///< adaptive posterior mass (0: off)
};

/** The eval subcommand's options, registration and run. */
struct EvalCommand {
    std::string index_path;                            ///< --index: the index file
    std::string queries;                               ///< --queries
    std::string gt_path;                               ///< --gt: ground-truth ids
    std::string base;                                  ///< --base: for brute-force ground truth
    std::string nprobe_list = "1,2,4,8,16,32,64,128";  ///< --nprobe
    idx_t max_queries = 0;                             ///< --max-queries (0: all)
    EvalSearch es;
    CLI::App* app = nullptr;  ///< the registered subcommand

    /** Register the subcommand on the tool's app. */
    void add_to(CLI::App& parent);
    /** Search and print the recall table. @return the process exit code */
    int run() const;
};

}  // namespace faiss_gmm
