/**
 * Using the mixture itself, not only its means, in a standard FAISS IVF
 * index: soft multi-assignment when adding vectors (a border vector goes
 * into several inverted lists) and probing lists by the component's
 * posterior instead of the distance to its mean, optionally adaptive.
 *
 * The index stays a standard FAISS IndexIVF (Flat, PQ, SQ, also inside an
 * IndexPreTransform chain such as OPQ): faiss::write_index / read_index
 * handle it unchanged. What plain FAISS does with a multi-assigned index:
 * ntotal counts list entries, not vectors, and its search may return the
 * same id more than once (once per probed list that holds it, with the
 * same distance for Flat codes, a slightly different one for PQ / SQ
 * residual codes). search_mixture() returns each id at most once, with its
 * best distance.
 */
#pragma once

#include <faiss_gmm/GaussianMixture.h>
#include <faiss_gmm/utils/Common.h>

#include <vector>

namespace faiss {
struct Index;
}

namespace faiss_gmm {

/// Which extra lists a vector also goes into (MultiAssignParameters::rule).
enum class SpillRule {
    /// Every list whose responsibility r_ik >= tau, by decreasing r.
    Responsibility = 0,
    /// The same at a temperature: r_ik proportional to exp((log pi_k + log
    /// N(x | k)) / T) >= tau. T > 1 spreads the near one-hot posteriors of
    /// high dimension; T = 1 is Responsibility.
    Tempered = 1,
    /// SOAR (Sun, Guo & Kumar, NeurIPS 2023; ScaNN's spill): always the
    /// centroid c' minimising ||x - c'||^2 + lambda <r, x - c'>^2 / ||r||^2,
    /// r = x - c the primary residual (further lists penalise every earlier
    /// residual). Uses the index's centroids only: k-means IVF too (the
    /// model may then be empty). Exact over all lists, on the CPU.
    Soar = 2,
};

/// A vector's first list (MultiAssignParameters::primary).
enum class PrimaryList {
    Nearest = 0,       ///< the quantizer's nearest centroid (what FAISS adds to)
    MostProbable = 1,  ///< the most probable component (agrees with posterior probing)
};

/** How add_multi_assign() spreads vectors over the inverted lists. */
struct MultiAssignParameters {
    /// A vector also goes into every other list whose responsibility
    /// r_ik >= tau. No value helped on every data set of
    /// bench/IVF_RESULTS.md: tuned on held-out base vectors, the choice was
    /// 0.4 (the largest tried: fewest copies) on SIFT, 0.05-0.2 on the MNIST
    /// sets, where posteriors are nearly one-hot and tau hardly matters
    /// (1.02-1.06 entries per vector, no measurable change), and 0.05 with
    /// m = 3 on a skewed low-dimensional synthetic mixture, where copies paid
    /// off only at high recall with adaptive probing. 0.1 is a middle
    /// default; tune it with bench/ivf_recall.
    float tau = 0.1f;
    /// m: at most this many lists per vector, the nearest included (1 =
    /// single assignment). 2 by default: storage at most 2x.
    int max_lists = 2;
    SpillRule rule =
        SpillRule::Responsibility;  ///< which extra lists (tau applies to the first two rules)
    double temperature = 1.0;       ///< SpillRule::Tempered: T > 0
    float lambda = 1.0f;            ///< SpillRule::Soar: the weight of the parallel residual, >= 0
    PrimaryList primary = PrimaryList::Nearest;  ///< the first list
};

/** What one add_multi_assign() call stored. */
struct MultiAssignStats {
    idx_t n_vectors = 0;  ///< vectors added
    idx_t n_entries = 0;  ///< inverted-list entries written (>= n_vectors)
    /** Storage overhead: entries per vector (1 = single assignment). */
    double entries_per_vector() const {
        return n_vectors ? double(n_entries) / double(n_vectors) : 0.0;
    }
};

/**
 * The lists each of n vectors goes to: row i of lists (n x p.max_lists,
 * -1 padded) holds first the primary list (p.primary: the index's own
 * quantizer assignment, or the most probable component), then the extra
 * lists of p.rule: by decreasing responsibility (at p.temperature) the
 * other lists whose responsibility under `model` is >= p.tau, or SOAR's. x is in the index's input
 * space (the chain of an IndexPreTransform is applied here). The model
 * must be the index's (d and k = nlist, e.g. from index_factory_gmm).
 */
void assign_multi(const faiss::Index* index, const GaussianMixture& model, idx_t n, const float* x,
                  const MultiAssignParameters& p, idx_t* lists);

/**
 * The selection rule of assign_multi() on precomputed candidates: row i of
 * lists (n x p.max_lists, -1 padded) is nearest[i], then the first
 * max_lists - 1 of row i of top (n x t components by decreasing
 * responsibility, resp alongside, e.g. from GaussianMixture::top_components)
 * that differ from it and have responsibility >= p.tau. Any t >= max_lists
 * gives the same lists, so candidates computed once serve every (tau, m)
 * with m <= t. t may be 0 when max_lists is 1.
 */
void select_lists(idx_t n, const idx_t* nearest, int t, const idx_t* top, const float* resp,
                  const MultiAssignParameters& p, idx_t* lists);

/**
 * Add n vectors with ids xids (nullptr: 0..n-1, only into an empty index)
 * into the lists given by assign_multi() (n x max_lists, -1 padded): each
 * vector's code is computed against each of its lists, as FAISS's own add
 * does for one.
 */
MultiAssignStats add_preassigned(faiss::Index* index, idx_t n, const float* x, const idx_t* xids,
                                 int max_lists, const idx_t* lists);

/** assign_multi() then add_preassigned(). */
MultiAssignStats add_multi_assign(faiss::Index* index, const GaussianMixture& model, idx_t n,
                                  const float* x, const MultiAssignParameters& p = {},
                                  const idx_t* xids = nullptr);

/// How search_mixture() orders the lists of a query.
enum class ProbeOrder {
    Distance = 0,   ///< by distance to the list's centroid (what FAISS does)
    Posterior = 1,  ///< by log pi_k + log N(q | mu_k, Sigma_k), most probable first
};

/** Parameters of search_mixture(). */
struct MixtureSearchParameters {
    int nprobe = 1;                            ///< lists probed (the upper bound when mass > 0)
    ProbeOrder order = ProbeOrder::Posterior;  ///< how lists are ranked
    /// p: with the posterior order, stop adding lists once their cumulative
    /// posterior reaches this (adaptive nprobe, at least one list, at most
    /// nprobe). 0 (or >= 1): always nprobe lists.
    double mass = 0.0;
    /// Most copies of one id the index holds (its max_lists); search fetches
    /// k * max_copies results so that k distinct ids survive de-duplication.
    /// 0: count it from the index's lists (one pass over the ids).
    int max_copies = 0;
};

/** Work done by search_mixture() (sums over the queries). */
struct MixtureSearchStats {
    idx_t nq = 0;      ///< queries searched
    double ndis = 0;   ///< list entries scanned (distances computed)
    double nlist = 0;  ///< lists probed
};

/**
 * k nearest neighbours of nq queries in an IVF index (directly, or inside
 * an IndexPreTransform) with lists ordered by `p.order` under `model`
 * (the index's mixture; with ProbeOrder::Distance and mass 0 it may be an
 * empty GaussianMixture(), e.g. for k-means IVF with SOAR's copies); each
 * id is returned at most once, with its best
 * distance (padded as FAISS pads, id -1 at -+FLT_MAX, when fewer than k
 * ids were found).
 * distances and labels are nq x k. stats (if given) accumulates the work.
 */
void search_mixture(const faiss::Index* index, const GaussianMixture& model, idx_t nq,
                    const float* xq, idx_t k, float* distances, idx_t* labels,
                    const MixtureSearchParameters& p, MixtureSearchStats* stats = nullptr);

/**
 * search_mixture()'s posterior probing as a step of its own (for indexes
 * that live in another copy of FAISS, such as python3-faiss's): the nprobe
 * most probable components of each query under model (nq x d, in the IVF's
 * space), most probable first, into assign (nq x nprobe), and each one's
 * distance to its centroid (centroids: k x d, L2 or inner product by ip)
 * into cdis, as IndexIVF::search_preassigned takes them. With 0 < mass < 1
 * the lists after the cumulative posterior reaches mass are -1 (skipped).
 */
void probe_by_posterior(const GaussianMixture& model, const float* centroids, bool ip, idx_t nq,
                        const float* xq, int nprobe, double mass, idx_t* assign, float* cdis);

/**
 * search_mixture()'s de-duplication: from nq rows of kk sorted results
 * (fd, fi; -1 ends a row) keep the first k distinct ids of each, with their
 * distances (the first copy is the best), padding with id -1 at the worst
 * distance as FAISS does. distances and labels are nq x k.
 */
void keep_distinct(idx_t nq, idx_t kk, const float* fd, const idx_t* fi, idx_t k, bool ip,
                   float* distances, idx_t* labels);

/** The largest number of entries any one id has in the index's lists. */
int count_max_copies(const faiss::Index* index);

}  // namespace faiss_gmm
