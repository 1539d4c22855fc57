/**
 * faiss-gmm: the command-line tool. Subcommands train, build, eval, demo.
 * Progress goes to stderr, results to stdout. Under mpirun, train runs as
 * one rank of a distributed fit.
 */
#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss_gmm/Communicator.h>
#include <faiss_gmm/DataSource.h>
#include <faiss_gmm/EStep.h>
#include <faiss_gmm/IVFEvaluation.h>
#include <faiss_gmm/IVFMixture.h>
#include <faiss_gmm/IndexIO.h>
#include <faiss_gmm/IndexIVFTraining.h>
#include <faiss_gmm/KMeans.h>
#include <faiss_gmm/VectorIO.h>
#include <faiss_gmm/utils/FileUtils.h>
#include <faiss_gmm/utils/Utils.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "CliData.h"
#include "Demo.h"

using namespace faiss_gmm;

namespace {

/// Options shared by every subcommand that fits a mixture.
struct GmmOptions {
    std::string cov = "spherical", init = "kmeans", device = "auto", precision = "fp32";
    int niter = 20, seed = 1234, max_points = 256, kmeans_niter = 10;
    double tol = 1e-4, reg_covar = 1e-3, gpu_cache_gb = 0;
    bool quiet = false;
    std::string gpus;  // "0,1" or "" (every visible GPU)

    void add_to(CLI::App* app) {
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
        app->add_option("--device", device, "E-step device: auto, cpu or gpu")
            ->capture_default_str();
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
    GaussianMixtureParameters params() const {
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
};

faiss::MetricType parse_metric(const std::string& m) {
    if (m == "l2" || m == "L2") return faiss::METRIC_L2;
    if (m == "ip" || m == "IP") return faiss::METRIC_INNER_PRODUCT;
    throw Error("faiss-gmm: unknown metric '" + m + "' (l2 or ip)");
}

void write_index_atomic(const faiss::Index* index, const std::string& path) {
    write_file_atomic(path, [&](FILE* f) { faiss::write_index(index, f); });
}

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

int run_train(const std::string& data, int k, const std::string& means_out,
              const std::string& model_out, idx_t max_rows, bool full_data,
              const std::string& checkpoint, bool resume, const GmmOptions& o,
              const Communicator& comm) {
    auto p = o.params();
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

/// train --algo kmeans: FAISS's k-means semantics (its sample, initial
/// rows, updates and splits), on the GPU when the backend is one.
int run_train_kmeans(const std::string& data, int k, const std::string& means_out, idx_t max_rows,
                     const GmmOptions& o) {
    const auto p = o.params();
    const TrainData td = open_train_data(data, max_rows, Communicator());
    const DataSource& src = td.shard();
    if (!means_out.empty()) check_writable(means_out);
    if (p.verbose) print_backend(p);
    const idx_t n = src.n();
    FAISS_GMM_CHECK(idx_t(k) <= n, "k=" + std::to_string(k) + " clusters but only " +
                                       std::to_string(n) + " rows (need k <= n)");
    // Only FAISS's sample is read: the first k * max rows of rand_perm(n, seed).
    const idx_t m = o.max_points > 0 ? std::min(n, idx_t(k) * o.max_points) : n;
    std::vector<float> x(size_t(m) * src.d());
    if (m == n) {
        src.read_float(0, n, x.data());
    } else {
        read_rows(src, faiss_sample_rows(n, m, o.seed), x.data());
    }
    check_finite_rows(m, src.d(), x.data(), src.description().c_str());
    if (p.verbose)
        fprintf(stderr, "faiss-gmm: k-means on %lld of %lld rows of %s\n", (long long)m,
                (long long)n, src.description().c_str());
    faiss::ClusteringParameters cp;
    cp.niter = o.niter;
    cp.seed = o.seed;
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

/// The spill rule as the log says it.
std::string spill_description(const MultiAssignParameters& ma) {
    char buf[96];
    if (ma.rule == SpillRule::Soar)
        snprintf(buf, sizeof buf, "SOAR, lambda %.3g", ma.lambda);
    else if (ma.rule == SpillRule::Tempered)
        snprintf(buf, sizeof buf, "responsibility >= %.3g at T %.3g", ma.tau, ma.temperature);
    else
        snprintf(buf, sizeof buf, "responsibility >= %.3g", ma.tau);
    return std::string(buf) +
           (ma.primary == PrimaryList::MostProbable ? ", first list the most probable" : "");
}

/// Where build's quantizer comes from, besides --data.
struct BuildSources {
    std::string train_data;  ///< --train-data: train on these rows instead of --data's
    std::string model;       ///< --model: a fitted mixture; nothing is trained for the quantizer
};

int run_build(const std::string& data, const std::string& factory, const std::string& out,
              const std::string& metric, idx_t train_rows, bool kmeans,
              const std::string& model_out, const MultiAssignParameters& ma, const GmmOptions& o,
              const BuildSources& from) {
    FAISS_GMM_CHECK(!(kmeans && !model_out.empty()), "--model-out needs the GMM (drop --kmeans)");
    FAISS_GMM_CHECK(!(kmeans && !from.model.empty()),
                    "--model is a fitted GMM: drop --kmeans to build from it");
    FAISS_GMM_CHECK(!(kmeans && ma.max_lists > 1 && ma.rule != SpillRule::Soar),
                    "--max-lists > 1 with --kmeans needs --spill soar (the other rules read the "
                    "mixture)");
    FAISS_GMM_CHECK(!(kmeans && ma.primary == PrimaryList::MostProbable),
                    "--primary probable needs the GMM (drop --kmeans)");
    FAISS_GMM_CHECK(ma.max_lists >= 1, "--max-lists must be >= 1");
    FAISS_GMM_CHECK(ma.tau >= 0 && ma.tau <= 1, "--tau must be in [0, 1]");
    idx_t n;
    int d;
    auto x = load_rows(data, &n, &d);
    // Fail on an unwritable output before spending the training time.
    check_writable(out);
    std::vector<float> tx;  // --train-data's rows, when given
    idx_t tn = n;
    if (!from.train_data.empty()) {
        int td;
        tx = load_rows(from.train_data, &tn, &td);
        FAISS_GMM_CHECK(td == d, "--train-data has dimension " + std::to_string(td) +
                                     " but --data has " + std::to_string(d));
    }
    const float* train_x = tx.empty() ? x.data() : tx.data();
    idx_t nt = train_rows > 0 ? std::min(train_rows, tn) : tn;
    double t0 = wall_seconds();
    std::unique_ptr<faiss::Index> index;
    GaussianMixture model;
    const auto p = o.params();
    print_backend(p);
    auto make_index = [&] {
        try {
            index.reset(faiss::index_factory(d, factory.c_str(), parse_metric(metric)));
        } catch (const std::exception& e) {
            throw Error("faiss-gmm: bad factory string '" + factory + "': " + e.what());
        }
        index->verbose = !o.quiet;
        // The IVF trains its quantizer by its own cp (FAISS's: 10 iterations,
        // 256 rows per list): --niter and --max-points-per-component are ours.
        faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index.get());
        FAISS_GMM_CHECK(ivf, "faiss-gmm: '" + factory + "' holds no IVF: nothing to train");
        ivf->cp.niter = p.niter;
        ivf->cp.max_points_per_centroid =
            p.max_points_per_component > 0 ? p.max_points_per_component : 1 << 30;
    };
    if (!from.model.empty()) {
        model = GaussianMixture::load(from.model);
        FAISS_GMM_CHECK(model.d == d, "--model " + from.model + " has dimension " +
                                          std::to_string(model.d) + " but --data has " +
                                          std::to_string(d));
        // The model's fit stays; the backend that assigns and spills is this run's.
        model.params.device = p.device;
        model.params.precision = p.precision;
        model.params.gpu_device = p.gpu_device;
        model.params.gpu_devices = p.gpu_devices;
        model.params.verbose = p.verbose;
        make_index();
        train_index_from_model(index.get(), model, nt, train_x);
    } else if (kmeans) {
        make_index();
        train_index_kmeans(index.get(), nt, train_x, p);
    } else {
        make_index();
        train_index_gmm(index.get(), nt, train_x, p, &model);
    }
    double t1 = wall_seconds();
    fprintf(stderr, "faiss-gmm: trained in %.2f s, adding %lld vectors\n", t1 - t0, (long long)n);
    if (ma.max_lists > 1 || ma.primary != PrimaryList::Nearest) {
        if (kmeans) model.params = p;  // SOAR reads the index's centroids, not a model
        const auto st = add_multi_assign(index.get(), model, n, x.data(), ma);
        fprintf(stderr,
                "faiss-gmm: multi-assignment (%s, up to %d lists): %lld entries, %.3f per "
                "vector\n",
                spill_description(ma).c_str(), ma.max_lists, (long long)st.n_entries,
                st.entries_per_vector());
    } else {
        // The list assignment on the GPU when there is one.
        add_to_index(index.get(), n, x.data(), p);
    }
    if (!model_out.empty()) model.save(model_out);
    write_index_atomic(index.get(), out);
    fprintf(stderr, "faiss-gmm: wrote %s (%.2f s to add)\n", out.c_str(), wall_seconds() - t1);
    return 0;
}

void print_recall_table(const std::vector<RecallPoint>& pts) {
    printf("%7s %9s %9s %9s %12s %8s %10s\n", "nprobe", "R1@1", "R10@10", "R100@100", "scanned/q",
           "lists/q", "QPS");
    for (const auto& p : pts)
        printf("%7d %9.4f %9.4f %9.4f %12.1f %8.2f %10.0f\n", p.nprobe, p.recall_1_1,
               p.recall_10_10, p.recall_100_100, p.scanned_per_query, p.lists_per_query, p.qps);
}

/// How eval searches: plain FAISS, or through the index's mixture.
struct EvalSearch {
    std::string model_path;          ///< the index's GMM (build --model-out); empty: plain FAISS
    std::string probe = "distance";  ///< distance or posterior
    double mass = 0;                 ///< adaptive posterior mass (0: off)
};

int run_eval(const std::string& index_path, const std::string& queries, const std::string& gt_path,
             const std::string& base, const std::string& nprobe_list, idx_t max_queries,
             const EvalSearch& es) {
    FAISS_GMM_CHECK(es.probe == "distance" || es.probe == "posterior",
                    "unknown --probe '" + es.probe + "' (distance or posterior)");
    FAISS_GMM_CHECK(!es.model_path.empty() || (es.probe == "distance" && es.mass == 0),
                    "--probe posterior and --mass need --model (the index's mixture)");
    FAISS_GMM_CHECK(es.mass == 0 || es.probe == "posterior", "--mass needs --probe posterior");
    FAISS_GMM_CHECK(es.mass >= 0 && es.mass <= 1, "--mass must be in [0, 1]");
    std::unique_ptr<faiss::Index> index = read_index_checked(index_path);
    idx_t nq;
    int dq;
    auto xq = load_rows(queries, &nq, &dq, max_queries);
    FAISS_GMM_CHECK(dq == index->d, "queries have dimension " + std::to_string(dq) +
                                        " but the index has " + std::to_string(index->d));
    std::vector<int32_t> gt;
    int gt_k;
    if (!gt_path.empty()) {
        idx_t ng;
        gt = read_ivectors(gt_path, &ng, &gt_k);
        FAISS_GMM_CHECK(ng >= nq, "ground truth has " + std::to_string(ng) + " rows for " +
                                      std::to_string(nq) + " queries");
    } else {
        FAISS_GMM_CHECK(!base.empty(), "eval needs --gt or --base (for brute-force ground truth)");
        idx_t nb;
        int db;
        auto xb = load_rows(base, &nb, &db);
        FAISS_GMM_CHECK(db == dq, "base and queries differ in dimension");
        gt_k = int(std::min<idx_t>(100, nb));
        fprintf(stderr, "faiss-gmm: brute-force ground truth (%d-NN)\n", gt_k);
        gt = brute_force_ground_truth(db, nb, xb.data(), nq, xq.data(), gt_k, index->metric_type);
    }
    const int copies = count_max_copies(index.get());
    if (es.model_path.empty() && copies <= 1) {
        print_recall_table(
            evaluate_ivf(index.get(), nq, xq.data(), gt.data(), gt_k, parse_int_list(nprobe_list)));
        return 0;
    }
    // Through search_mixture, each id once: with the index's mixture, or a
    // spilled index without one (k-means with SOAR; distance order, checked above).
    const GaussianMixture model =
        es.model_path.empty() ? GaussianMixture() : GaussianMixture::load(es.model_path);
    MixtureSearchParameters sp;
    sp.order = es.probe == "posterior" ? ProbeOrder::Posterior : ProbeOrder::Distance;
    sp.mass = es.mass;
    sp.max_copies = copies;
    if (es.model_path.empty())
        fprintf(stderr, "faiss-gmm: %d copies per id: searching by distance, each id once\n",
                copies);
    else
        fprintf(stderr,
                "faiss-gmm: searching through the mixture (%s probing%s), up to %d copies per "
                "id\n",
                es.probe.c_str(), es.mass > 0 ? ", adaptive" : "", sp.max_copies);
    print_recall_table(evaluate_ivf_mixture(index.get(), model, nq, xq.data(), gt.data(), gt_k,
                                            parse_int_list(nprobe_list), sp));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // Started by mpirun with several processes: this is one rank of a
    // distributed job.
    std::unique_ptr<Communicator> comm;
    try {
        const int launched = mpi_launch_size();
        FAISS_GMM_CHECK(launched == 1 || mpi_built(),
                        "started by mpirun with " + std::to_string(launched) +
                            " processes, but this build has no MPI support (install "
                            "libopenmpi-dev and rebuild)");
        comm = launched > 1 ? mpi_world(&argc, &argv) : std::make_unique<Communicator>();
    } catch (const std::exception& e) {
        fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    CLI::App app{
        "faiss-gmm: train the coarse quantizer of FAISS IVF indexes with a Gaussian "
        "mixture (EM) instead of k-means.\nVector files: .fvecs .bvecs .fbin .u8bin .npy; "
        "ground truth: .ivecs .ibin .npy."};
    app.require_subcommand(1);

    GmmOptions o_train, o_build, o_demo;
    std::string data, means_out, model_out;
    int k = 1024;
    idx_t max_rows = 0;
    auto* train = app.add_subcommand("train", "fit a GMM; write the means (fvecs) and the model");
    train
        ->add_option("--data", data,
                     "training vectors (under mpirun: each rank takes its share, or the file "
                     "named by replacing {rank} with its rank)")
        ->required();
    train->add_option("-k,--k", k, "number of components")->capture_default_str();
    train->add_option("--means-out", means_out, "write the k means here (.fvecs, .fbin, .npy)");
    train->add_option("--model-out", model_out, "write the fitted model here");
    train->add_option("--max-rows", max_rows, "read at most this many rows (0: all)");
    bool full_data = false, resume = false;
    std::string checkpoint;
    train->add_flag("--full-data", full_data,
                    "stream every row through each EM iteration (default: FAISS's sample of "
                    "k * max-points-per-component rows)");
    train->add_option("--checkpoint", checkpoint,
                      "write the model and EM state here after every iteration");
    train->add_flag("--resume", resume, "continue from --checkpoint when it exists");
    std::string algo = "gmm";
    train
        ->add_option("--algo", algo,
                     "gmm, or kmeans: FAISS's k-means (its sample, initialisation and splits; "
                     "--niter iterations) on the GPU when the backend is one")
        ->capture_default_str();
    o_train.add_to(train);

    std::string b_data, factory = "IVF1024,Flat", out, metric = "l2";
    idx_t train_rows = 0;
    bool use_kmeans = false;
    auto* build = app.add_subcommand("build",
                                     "factory string + vectors -> a FAISS index file "
                                     "whose coarse quantizer is GMM-trained");
    build->add_option("--data", b_data, "vectors to add (and to train on, without --train-data)")
        ->required();
    build
        ->add_option("--factory", factory,
                     "FAISS factory string, e.g. IVF4096,PQ32 or OPQ16,IVF1024,PQ16")
        ->capture_default_str();
    build->add_option("--out", out, "index file (faiss::read_index reads it)")->required();
    build->add_option("--metric", metric, "l2 or ip")->capture_default_str();
    build->add_option("--train-rows", train_rows, "train on the first this many rows (0: all)");
    BuildSources b_from;
    build->add_option("--train-data", b_from.train_data,
                      "train on these vectors (a learn set or a sample) instead of --data's; "
                      "--data is what the index holds");
    build->add_option("--model", b_from.model,
                      "a fitted mixture (train --model-out, build --model-out) as the quantizer: "
                      "no training, e.g. several spill rules from one model");
    build->add_flag("--kmeans", use_kmeans,
                    "train with k-means instead (FAISS's semantics; the GPU k-means when the "
                    "backend is a GPU)");
    std::string b_model_out;
    MultiAssignParameters b_ma;
    b_ma.max_lists = 1;
    build->add_option("--model-out", b_model_out,
                      "also write the fitted mixture (eval --model reads it)");
    build
        ->add_option("--max-lists", b_ma.max_lists,
                     "soft multi-assignment: store each vector in up to this many lists (1: a "
                     "plain index; 2 with --tau 0.1 is the tuned setting)")
        ->capture_default_str();
    build
        ->add_option("--tau", b_ma.tau,
                     "multi-assignment: extra lists need a responsibility >= tau")
        ->capture_default_str();
    const std::map<std::string, SpillRule> spill_names{{"resp", SpillRule::Responsibility},
                                                       {"tempered", SpillRule::Tempered},
                                                       {"soar", SpillRule::Soar}};
    build
        ->add_option("--spill", b_ma.rule,
                     "multi-assignment rule: resp (responsibility >= tau), tempered "
                     "(responsibility at --temperature >= tau) or soar (SOAR with --lambda; "
                     "works with --kmeans)")
        ->transform(CLI::CheckedTransformer(spill_names, CLI::ignore_case));
    build->add_option("--temperature", b_ma.temperature, "--spill tempered: T > 0")
        ->capture_default_str();
    build->add_option("--lambda", b_ma.lambda, "--spill soar: weight of the parallel residual")
        ->capture_default_str();
    const std::map<std::string, PrimaryList> primary_names{{"nearest", PrimaryList::Nearest},
                                                           {"probable", PrimaryList::MostProbable}};
    build
        ->add_option("--primary", b_ma.primary,
                     "first list: nearest (the quantizer's, FAISS's) or probable (the most "
                     "probable component, to match posterior probing)")
        ->transform(CLI::CheckedTransformer(primary_names, CLI::ignore_case));
    o_build.add_to(build);

    std::string e_index, queries, gt, base, nprobes = "1,2,4,8,16,32,64,128";
    idx_t max_q = 0;
    auto* eval = app.add_subcommand("eval",
                                    "recall 1@1, 10@10, 100@100 and vectors scanned per "
                                    "query vs nprobe");
    eval->add_option("--index", e_index, "index file")->required();
    eval->add_option("--queries", queries, "query vectors")->required();
    eval->add_option("--gt", gt, "ground truth ids (.ivecs); else brute force on --base");
    eval->add_option("--base", base, "base vectors for brute-force ground truth");
    eval->add_option("--nprobe", nprobes, "comma-separated nprobe values")->capture_default_str();
    eval->add_option("--max-queries", max_q, "use at most this many queries (0: all)");
    EvalSearch es;
    eval->add_option("--model", es.model_path,
                     "the index's mixture (build --model-out): search through it, each id once");
    eval->add_option("--probe", es.probe, "list order with --model: distance or posterior")
        ->capture_default_str();
    eval->add_option("--mass", es.mass,
                     "adaptive probing: stop once the probed lists' posterior reaches this");

    DemoParameters dp;
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

    CLI11_PARSE(app, argc, argv);
    try {
        // Before anything is read or written: no output may be an input.
        if (*train)
            refuse_clobbering({{"--data", data}}, {{"--means-out", means_out},
                                                   {"--model-out", model_out},
                                                   {"--checkpoint", checkpoint}});
        if (*build)
            refuse_clobbering({{"--data", b_data},
                               {"--train-data", b_from.train_data},
                               {"--model", b_from.model}},
                              {{"--out", out}, {"--model-out", b_model_out}});
        if (*train && algo == "kmeans") {
            FAISS_GMM_CHECK(comm->size() == 1, "--algo kmeans runs in one process");
            FAISS_GMM_CHECK(model_out.empty() && !full_data && checkpoint.empty(),
                            "--algo kmeans writes --means-out only (no --model-out, "
                            "--full-data or --checkpoint)");
            return run_train_kmeans(data, k, means_out, max_rows, o_train);
        }
        FAISS_GMM_CHECK(algo == "gmm" || algo == "kmeans",
                        "unknown --algo '" + algo + "' (gmm or kmeans)");
        if (*train)
            return run_train(data, k, means_out, model_out, max_rows, full_data, checkpoint, resume,
                             o_train, *comm);
        FAISS_GMM_CHECK(comm->size() == 1, "only train runs distributed (under mpirun)");
        if (*build)
            return run_build(b_data, factory, out, metric, train_rows, use_kmeans, b_model_out,
                             b_ma, o_build, b_from);
        if (*eval) return run_eval(e_index, queries, gt, base, nprobes, max_q, es);
        if (*demo) return run_demo(dp, o_demo.params());
    } catch (const std::exception& e) {
        std::string msg = e.what();
        if (msg.rfind("faiss-gmm: ", 0) == 0) msg = msg.substr(11);
        // std::bad_alloc says only "std::bad_alloc": say what it means here.
        if (dynamic_cast<const std::bad_alloc*>(&e))
            msg =
                "out of memory: the job's arrays do not fit in this machine's memory (fewer "
                "components or rows, a smaller --max-points-per-component sample, or "
                "--full-data to stream the rows)";
        if (comm->size() > 1) {
            // The other ranks may wait in a collective for this one: end the job.
            fprintf(stderr, "faiss-gmm: error (rank %d of %d): %s\n", comm->rank(), comm->size(),
                    msg.c_str());
            comm->abort(1);
        }
        fprintf(stderr, "faiss-gmm: error: %s\n", msg.c_str());
        return 1;
    }
    return 0;
}
