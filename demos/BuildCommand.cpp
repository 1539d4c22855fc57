#include "BuildCommand.h"

#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss_gmm/GaussianMixture.h>
#include <faiss_gmm/IndexIVFTraining.h>
#include <faiss_gmm/utils/FileUtils.h>
#include <faiss_gmm/utils/Utils.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <vector>

#include "CliData.h"

namespace faiss_gmm {

namespace {

faiss::MetricType parse_metric(const std::string& m) {
    if (m == "l2" || m == "L2") return faiss::METRIC_L2;
    if (m == "ip" || m == "IP") return faiss::METRIC_INNER_PRODUCT;
    throw Error("faiss-gmm: unknown metric '" + m + "' (l2 or ip)");
}

void write_index_atomic(const faiss::Index* index, const std::string& path) {
    write_file_atomic(path, [&](FILE* f) { faiss::write_index(index, f); });
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

/// The option combinations build refuses, before anything is read.
void check_options(const BuildCommand& b) {
    const MultiAssignParameters& ma = b.ma;
    FAISS_GMM_CHECK(!(b.kmeans && !b.model_out.empty()),
                    "--model-out needs the GMM (drop --kmeans)");
    FAISS_GMM_CHECK(!(b.kmeans && !b.from.model.empty()),
                    "--model is a fitted GMM: drop --kmeans to build from it");
    FAISS_GMM_CHECK(!(b.kmeans && ma.max_lists > 1 && ma.rule != SpillRule::Soar),
                    "--max-lists > 1 with --kmeans needs --spill soar (the other rules read the "
                    "mixture)");
    FAISS_GMM_CHECK(!(b.kmeans && ma.primary == PrimaryList::MostProbable),
                    "--primary probable needs the GMM (drop --kmeans)");
    FAISS_GMM_CHECK(ma.max_lists >= 1, "--max-lists must be >= 1");
    FAISS_GMM_CHECK(ma.tau >= 0 && ma.tau <= 1, "--tau must be in [0, 1]");
}

/// The empty index the factory string names, its IVF's clustering
/// parameters set from ours.
std::unique_ptr<faiss::Index> make_index(const BuildCommand& b, int d,
                                         const GaussianMixtureParameters& p) {
    std::unique_ptr<faiss::Index> index;
    try {
        index.reset(faiss::index_factory(d, b.factory.c_str(), parse_metric(b.metric)));
    } catch (const std::exception& e) {
        throw Error("faiss-gmm: bad factory string '" + b.factory + "': " + e.what());
    }
    index->verbose = !b.options.quiet;
    // The IVF trains its quantizer by its own cp (FAISS's: 10 iterations,
    // 256 rows per list): --niter and --max-points-per-component are ours.
    faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index.get());
    FAISS_GMM_CHECK(ivf, "faiss-gmm: '" + b.factory + "' holds no IVF: nothing to train");
    ivf->cp.niter = p.niter;
    ivf->cp.max_points_per_centroid =
        p.max_points_per_component > 0 ? p.max_points_per_component : 1 << 30;
    return index;
}

/// Train the index's quantizer: from --model's means, with k-means, or
/// with a GMM fitted here. Returns the mixture (empty for k-means).
GaussianMixture train_quantizer(const BuildCommand& b, faiss::Index* index, int d, idx_t nt,
                                const float* train_x, const GaussianMixtureParameters& p) {
    GaussianMixture model;
    if (!b.from.model.empty()) {
        model = GaussianMixture::load(b.from.model);
        FAISS_GMM_CHECK(model.d == d, "--model " + b.from.model + " has dimension " +
                                          std::to_string(model.d) + " but --data has " +
                                          std::to_string(d));
        // The model's fit stays; the backend that assigns and spills is this run's.
        model.params.device = p.device;
        model.params.precision = p.precision;
        model.params.gpu_device = p.gpu_device;
        model.params.gpu_devices = p.gpu_devices;
        model.params.verbose = p.verbose;
        train_index_from_model(index, model, nt, train_x);
    } else if (b.kmeans) {
        train_index_kmeans(index, nt, train_x, p);
    } else {
        train_index_gmm(index, nt, train_x, p, &model);
    }
    return model;
}

/// Add the rows: to their nearest list, or to several (multi-assignment).
void fill_index(const BuildCommand& b, faiss::Index* index, GaussianMixture& model, idx_t n,
                const float* x, const GaussianMixtureParameters& p) {
    const MultiAssignParameters& ma = b.ma;
    if (ma.max_lists > 1 || ma.primary != PrimaryList::Nearest) {
        if (b.kmeans) model.params = p;  // SOAR reads the index's centroids, not a model
        const auto st = add_multi_assign(index, model, n, x, ma);
        fprintf(stderr,
                "faiss-gmm: multi-assignment (%s, up to %d lists): %lld entries, %.3f per "
                "vector\n",
                spill_description(ma).c_str(), ma.max_lists, (long long)st.n_entries,
                st.entries_per_vector());
    } else {
        // The list assignment on the GPU when there is one.
        add_to_index(index, n, x, p);
    }
}

}  // namespace

void BuildCommand::add_to(CLI::App& parent) {
    app = parent.add_subcommand("build",
                                "factory string + vectors -> a FAISS index file "
                                "whose coarse quantizer is GMM-trained");
    app->add_option("--data", data, "vectors to add (and to train on, without --train-data)")
        ->required();
    app->add_option("--factory", factory,
                    "FAISS factory string, e.g. IVF4096,PQ32 or OPQ16,IVF1024,PQ16")
        ->capture_default_str();
    app->add_option("--out", out, "index file (faiss::read_index reads it)")->required();
    app->add_option("--metric", metric, "l2 or ip")->capture_default_str();
    app->add_option("--train-rows", train_rows, "train on the first this many rows (0: all)");
    app->add_option("--train-data", from.train_data,
                    "train on these vectors (a learn set or a sample) instead of --data's; "
                    "--data is what the index holds");
    app->add_option("--model", from.model,
                    "a fitted mixture (train --model-out, build --model-out) as the quantizer: "
                    "no training, e.g. several spill rules from one model");
    app->add_flag("--kmeans", kmeans,
                  "train with k-means instead (FAISS's semantics; the GPU k-means when the "
                  "backend is a GPU)");
    app->add_option("--model-out", model_out,
                    "also write the fitted mixture (eval --model reads it)");
    app->add_option("--max-lists", ma.max_lists,
                    "soft multi-assignment: store each vector in up to this many lists (1: a "
                    "plain index; 2 with --tau 0.1 is the tuned setting)")
        ->capture_default_str();
    app->add_option("--tau", ma.tau, "multi-assignment: extra lists need a responsibility >= tau")
        ->capture_default_str();
    static const std::map<std::string, SpillRule> spill_names{{"resp", SpillRule::Responsibility},
                                                              {"tempered", SpillRule::Tempered},
                                                              {"soar", SpillRule::Soar}};
    app->add_option("--spill", ma.rule,
                    "multi-assignment rule: resp (responsibility >= tau), tempered "
                    "(responsibility at --temperature >= tau) or soar (SOAR with --lambda; "
                    "works with --kmeans)")
        ->transform(CLI::CheckedTransformer(spill_names, CLI::ignore_case));
    app->add_option("--temperature", ma.temperature, "--spill tempered: T > 0")
        ->capture_default_str();
    app->add_option("--lambda", ma.lambda, "--spill soar: weight of the parallel residual")
        ->capture_default_str();
    static const std::map<std::string, PrimaryList> primary_names{
        {"nearest", PrimaryList::Nearest}, {"probable", PrimaryList::MostProbable}};
    app->add_option("--primary", ma.primary,
                    "first list: nearest (the quantizer's, FAISS's) or probable (the most "
                    "probable component, to match posterior probing)")
        ->transform(CLI::CheckedTransformer(primary_names, CLI::ignore_case));
    options.add_to(app);
}

int BuildCommand::run() const {
    // Before anything is read or written: no output may be an input.
    refuse_clobbering(
        {{"--data", data}, {"--train-data", from.train_data}, {"--model", from.model}},
        {{"--out", out}, {"--model-out", model_out}});
    check_options(*this);
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
    const idx_t nt = train_rows > 0 ? std::min(train_rows, tn) : tn;
    const double t0 = wall_seconds();
    const auto p = options.params();
    print_backend(p);
    std::unique_ptr<faiss::Index> index = make_index(*this, d, p);
    GaussianMixture model = train_quantizer(*this, index.get(), d, nt, train_x, p);
    const double t1 = wall_seconds();
    fprintf(stderr, "faiss-gmm: trained in %.2f s, adding %lld vectors\n", t1 - t0, (long long)n);
    fill_index(*this, index.get(), model, n, x.data(), p);
    if (!model_out.empty()) model.save(model_out);
    write_index_atomic(index.get(), out);
    fprintf(stderr, "faiss-gmm: wrote %s (%.2f s to add)\n", out.c_str(), wall_seconds() - t1);
    return 0;
}

}  // namespace faiss_gmm
