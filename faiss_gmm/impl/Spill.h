/**
 * The spill rules of multi-assignment that are not a plain responsibility
 * threshold (IVFMixture.h, SpillRule): the mixture at a temperature, and
 * SOAR's orthogonality-amplified residual rule (Sun, Guo & Kumar,
 * NeurIPS 2023), which needs only the centroids.
 */
#pragma once

#include <faiss_gmm/GaussianMixture.h>

namespace faiss_gmm {

/**
 * The mixture whose responsibilities are model's at temperature T:
 * r_k proportional to exp((log pi_k + log N(x | mu_k, S_k)) / T). It is a
 * mixture again: variances T S_k, and weights that absorb the rest of the
 * per-component constant (normalised), so every backend's top_components
 * applies to it unchanged. T > 0; T = 1 gives the model back.
 */
GaussianMixture tempered_mixture(const GaussianMixture& model, double temperature);

/**
 * SOAR's extra lists: row i of lists (n x m) holds primary[i] in column 0
 * on entry; columns 1..m-1 receive, in turn, the centroid c' (k x d,
 * row-major, not already in the row) minimising
 *   ||x - c'||^2 + lambda sum_p <r_p, x - c'>^2 / ||r_p||^2
 * over the residuals r_p = x - c_p of the lists chosen so far (the
 * primary's alone for m = 2, SOAR's spill). Exact over all k centroids:
 * two sgemm per extra list and block of rows, never n x k at once.
 */
void soar_lists(int d, idx_t k, const float* centroids, idx_t n, const float* x, float lambda,
                int m, idx_t* lists);

}  // namespace faiss_gmm
