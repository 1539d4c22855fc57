#include "EvalCommand.h"

#include <faiss/Index.h>
#include <faiss_gmm/GaussianMixture.h>
#include <faiss_gmm/IVFEvaluation.h>
#include <faiss_gmm/IVFMixture.h>
#include <faiss_gmm/IndexIO.h>
#include <faiss_gmm/VectorIO.h>
#include <faiss_gmm/utils/Utils.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <vector>

#include "CliData.h"

namespace faiss_gmm {

namespace {

void print_recall_table(const std::vector<RecallPoint>& pts) {
    printf("%7s %9s %9s %9s %12s %8s %10s\n", "nprobe", "R1@1", "R10@10", "R100@100", "scanned/q",
           "lists/q", "QPS");
    for (const auto& p : pts)
        printf("%7d %9.4f %9.4f %9.4f %12.1f %8.2f %10.0f\n", p.nprobe, p.recall_1_1,
               p.recall_10_10, p.recall_100_100, p.scanned_per_query, p.lists_per_query, p.qps);
}

}  // namespace

void EvalCommand::add_to(CLI::App& parent) {
    app = parent.add_subcommand("eval",
                                "recall 1@1, 10@10, 100@100 and vectors scanned per "
                                "query vs nprobe");
    app->add_option("--index", index_path, "index file")->required();
    app->add_option("--queries", queries, "query vectors")->required();
    app->add_option("--gt", gt_path, "ground truth ids (.ivecs); else brute force on --base");
    app->add_option("--base", base, "base vectors for brute-force ground truth");
    app->add_option("--nprobe", nprobe_list, "comma-separated nprobe values")
        ->capture_default_str();
    app->add_option("--max-queries", max_queries, "use at most this many queries (0: all)");
    app->add_option("--model", es.model_path,
                    "the index's mixture (build --model-out): search through it, each id once");
    app->add_option("--probe", es.probe, "list order with --model: distance or posterior")
        ->capture_default_str();
    app->add_option("--mass", es.mass,
                    "adaptive probing: stop once the probed lists' posterior reaches this");
}

int EvalCommand::run() const {
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

}  // namespace faiss_gmm
