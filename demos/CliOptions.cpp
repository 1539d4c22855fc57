#include "CliOptions.h"

#include <faiss_gmm/utils/Utils.h>

namespace faiss_gmm {

void GmmOptions::add_to(CLI::App* app) {
    app->add_option("--cov", cov,
                    "covariance type: spherical, diagonal or full (full on the GPU: d <= 128)")
        ->capture_default_str();
    app->add_option("--niter", niter,
                    "maximum EM iterations (k-means iterations where k-means is the trainer)")
        ->capture_default_str();
    app->add_option("--tol", tol, "stop when the mean log-likelihood changes less")
        ->capture_default_str();
    app->add_option("--reg-covar", reg_covar,
                    "added to variances, in units of the data's mean variance")
        ->capture_default_str();
    app->add_option("--init", init,
                    "initial means: kmeans (on a GPU backend our GPU k-means, else FAISS's), "
                    "faiss-kmeans (FAISS's CPU k-means always), kmeans++ or random")
        ->capture_default_str();
    app->add_option("--kmeans-niter", kmeans_niter, "k-means iterations for --init kmeans")
        ->capture_default_str();
    app->add_option("--seed", seed, "random seed")->capture_default_str();
    app->add_option("--max-points-per-component", max_points,
                    "subsample to k * this many rows, as FAISS (0: all rows)")
        ->capture_default_str();
    app->add_option("--device", device, "E-step device: auto, cpu or gpu")->capture_default_str();
    app->add_option("--precision", precision,
                    "GPU E-step precision: fp32 (exact), tf32, bf16 or fast (tensor cores)")
        ->capture_default_str();
    app->add_option("--gpus", gpus,
                    "GPUs to split the rows over, e.g. 0,1 (default: every visible GPU)");
    app->add_option("--gpu-cache-gb", gpu_cache_gb,
                    "--full-data on GPUs: keep each GPU's share of the rows on the device "
                    "after the first iteration when it fits in this many GB (0: stream "
                    "every iteration)")
        ->capture_default_str();
    app->add_flag("--quiet", quiet, "no progress on stderr");
}

GaussianMixtureParameters GmmOptions::params() const {
    GaussianMixtureParameters p;
    p.covariance_type = covariance_type_from_string(cov);
    p.init = init_method_from_string(init);
    p.device = device_from_string(device);
    p.precision = precision_from_string(precision);
    p.niter = niter;
    p.tol = tol;
    p.reg_covar = reg_covar;
    p.seed = seed;
    p.kmeans_niter = kmeans_niter;
    p.max_points_per_component = max_points;
    p.verbose = !quiet;
    if (!gpus.empty()) p.gpu_devices = parse_int_list(gpus);
    FAISS_GMM_CHECK(gpu_cache_gb >= 0, "--gpu-cache-gb must be >= 0");
    p.gpu_cache_bytes = size_t(gpu_cache_gb * 1e9);
    return p;
}

}  // namespace faiss_gmm
