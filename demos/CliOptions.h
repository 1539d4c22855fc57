/**
 * The options every fitting subcommand of the command-line tool shares
 * (train, build, demo): covariance, EM, initialisation and device
 * settings, registered on a CLI11 subcommand and turned into
 * GaussianMixtureParameters.
 */
#pragma once

#include <faiss_gmm/GaussianMixture.h>

#include <CLI/CLI.hpp>
#include <string>

namespace faiss_gmm {

/// Options shared by every subcommand that fits a mixture.
struct GmmOptions {
    std::string cov = "spherical", init = "kmeans", device = "auto", precision = "fp32";
    int niter = 20, seed = 1234, max_points = 256, kmeans_niter = 10;
    double tol = 1e-4, reg_covar = 1e-3, gpu_cache_gb = 0;
    bool quiet = false;
    std::string gpus;  ///< "0,1" or "" (every visible GPU)

    /** Register the options on a subcommand. */
    void add_to(CLI::App* app);
    /** The parameters they name; throws on a bad value. */
    GaussianMixtureParameters params() const;
};

}  // namespace faiss_gmm
