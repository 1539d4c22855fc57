#include "TrainCommand.h"

#include <faiss/IndexFlat.h>
#include <faiss_gmm/DataSource.h>
#include <faiss_gmm/GaussianMixture.h>
#include <faiss_gmm/KMeans.h>
#include <faiss_gmm/VectorIO.h>
#include <faiss_gmm/utils/FileUtils.h>
#include <faiss_gmm/utils/Utils.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <vector>

#include "CliData.h"

namespace faiss_gmm {

namespace {

/// This rank's part of --data: the file named by substituting {rank}, or a
/// contiguous share of the one source (after --max-rows).
struct TrainData {
    std::unique_ptr<DataSource> source, first, share;
    const DataSource& shard() const { return share ? *share : first ? *first : *source; }
};

TrainData open_train_data(const std::string& spec, idx_t max_rows, const Communicator& comm) {
    TrainData t;
    const std::string tag = "{rank}";
    const size_t at = spec.find(tag);
    if (at != std::string::npos) {
        FAISS_GMM_CHECK(max_rows == 0, "--max-rows does not combine with per-rank files ({rank})");
        std::string path = spec;
        path.replace(at, tag.size(), std::to_string(comm.rank()));
        t.source = open_data_source(path);
        return t;
    }
    t.source = open_data_source(spec);
    if (max_rows > 0 && max_rows < t.source->n())
        t.first.reset(new RangeSource(*t.source, 0, max_rows));
    if (comm.size() > 1) {
        const DataSource& all = t.first ? *t.first : *t.source;
        const idx_t b = all.n() * comm.rank() / comm.size();
        const idx_t e = all.n() * (comm.rank() + 1) / comm.size();
        t.share.reset(new RangeSource(all, b, e - b));
    }
    return t;
}

}  // namespace

int TrainCommand::train_gmm(const Communicator& comm) const {
    auto p = options.params();
    if (full_data) p.max_points_per_component = 0;
    p.checkpoint_path = checkpoint;
    p.resume = resume;
    FAISS_GMM_CHECK(!resume || !checkpoint.empty(), "--resume needs --checkpoint FILE");
    const bool lead = comm.rank() == 0;  // prints the results and writes the files
    // The source is read in blocks (files are memory-mapped): sampling reads
    // only the sampled rows, --full-data streams every row each iteration.
    const TrainData td = open_train_data(data, max_rows, comm);
    const DataSource& src = td.shard();
    if (p.verbose) {
        if (comm.size() > 1)
            fprintf(stderr, "faiss-gmm: rank %d of %d: training data %s\n", comm.rank(),
                    comm.size(), src.description().c_str());
        else
            fprintf(stderr, "faiss-gmm: training data %s\n", src.description().c_str());
    }
    // Writable outputs before hours of EM, not after.
    if (lead) {
        for (const std::string& out : {means_out, model_out, checkpoint})
            if (!out.empty()) check_writable(out);
        if (p.verbose) print_backend(p);
    }
    GaussianMixture gmm(src.d(), k, p);
    double t0 = wall_seconds();
    gmm.fit(src, comm);
    if (!lead) return 0;
    fprintf(stderr, "faiss-gmm: trained in %.2f s (%zu iterations, %s)\n", wall_seconds() - t0,
            gmm.iteration_stats.size(), gmm.converged ? "converged" : "iteration limit");
    if (!means_out.empty()) write_vectors(means_out, k, src.d(), gmm.means.data());
    if (!model_out.empty()) gmm.save(model_out);
    if (!gmm.iteration_stats.empty())
        printf("final mean log-likelihood %.6f\n", gmm.iteration_stats.back().log_likelihood);
    return 0;
}

int TrainCommand::train_kmeans() const {
    const auto p = options.params();
    const TrainData td = open_train_data(data, max_rows, Communicator());
    const DataSource& src = td.shard();
    if (!means_out.empty()) check_writable(means_out);
    if (p.verbose) print_backend(p);
    const idx_t n = src.n();
    FAISS_GMM_CHECK(idx_t(k) <= n, "k=" + std::to_string(k) + " clusters but only " +
                                       std::to_string(n) + " rows (need k <= n)");
    // Only FAISS's sample is read: the first k * max rows of rand_perm(n, seed).
    const idx_t m = options.max_points > 0 ? std::min(n, idx_t(k) * options.max_points) : n;
    std::vector<float> x(size_t(m) * src.d());
    if (m == n) {
        src.read_float(0, n, x.data());
    } else {
        read_rows(src, faiss_sample_rows(n, m, options.seed), x.data());
    }
    check_finite_rows(m, src.d(), x.data(), src.description().c_str());
    if (p.verbose)
        fprintf(stderr, "faiss-gmm: k-means on %lld of %lld rows of %s\n", (long long)m,
                (long long)n, src.description().c_str());
    faiss::ClusteringParameters cp;
    cp.niter = options.niter;
    cp.seed = options.seed;
    cp.verbose = p.verbose;
    cp.max_points_per_centroid = 1 << 30;  // sampled above
    KMeansClustering km(src.d(), k, cp);
    km.backend = p;
    faiss::IndexFlatL2 index(src.d());
    const double t0 = wall_seconds();
    km.train(m, x.data(), index);
    fprintf(stderr, "faiss-gmm: k-means trained in %.2f s (%zu iterations)\n", wall_seconds() - t0,
            km.iteration_stats.size());
    if (!means_out.empty()) write_vectors(means_out, k, src.d(), km.centroids.data());
    if (!km.iteration_stats.empty())
        printf("final objective %.6g\n", km.iteration_stats.back().obj);
    return 0;
}

void TrainCommand::add_to(CLI::App& parent) {
    app = parent.add_subcommand("train", "fit a GMM; write the means (fvecs) and the model");
    app->add_option("--data", data,
                    "training vectors (under mpirun: each rank takes its share, or the file "
                    "named by replacing {rank} with its rank)")
        ->required();
    app->add_option("-k,--k", k, "number of components")->capture_default_str();
    app->add_option("--means-out", means_out, "write the k means here (.fvecs, .fbin, .npy)");
    app->add_option("--model-out", model_out, "write the fitted model here");
    app->add_option("--max-rows", max_rows, "read at most this many rows (0: all)");
    app->add_flag("--full-data", full_data,
                  "stream every row through each EM iteration (default: FAISS's sample of "
                  "k * max-points-per-component rows)");
    app->add_option("--checkpoint", checkpoint,
                    "write the model and EM state here after every iteration");
    app->add_flag("--resume", resume, "continue from --checkpoint when it exists");
    app->add_option("--algo", algo,
                    "gmm, or kmeans: FAISS's k-means (its sample, initialisation and splits; "
                    "--niter iterations) on the GPU when the backend is one")
        ->capture_default_str();
    options.add_to(app);
}

int TrainCommand::run(const Communicator& comm) const {
    // Before anything is read or written: no output may be an input.
    refuse_clobbering(
        {{"--data", data}},
        {{"--means-out", means_out}, {"--model-out", model_out}, {"--checkpoint", checkpoint}});
    FAISS_GMM_CHECK(algo == "gmm" || algo == "kmeans",
                    "unknown --algo '" + algo + "' (gmm or kmeans)");
    if (algo == "kmeans") {
        FAISS_GMM_CHECK(comm.size() == 1, "--algo kmeans runs in one process");
        FAISS_GMM_CHECK(model_out.empty() && !full_data && checkpoint.empty(),
                        "--algo kmeans writes --means-out only (no --model-out, "
                        "--full-data or --checkpoint)");
        return train_kmeans();
    }
    return train_gmm(comm);
}

}  // namespace faiss_gmm
