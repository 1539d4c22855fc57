/**
 * Precisions of the tensor-core E-step's two products (plain header: the
 * kernels and the host code share it; no CUDA types).
 */
#pragma once

namespace faiss_gmm {
namespace gpu {

/// Operand precision of one tensor-core product (fp32 accumulate): the
/// precision policy the kernels are instantiated on. The x3 forms split each
/// fp32 operand into a high and a low part and add hi*hi + hi*lo + lo*hi:
/// about 22 (TF32) or 16 (bf16) significant bits.
enum class MmaPrecision {
    Tf32 = 0,    ///< TF32, one product
    Tf32x3 = 1,  ///< three TF32 products (float32-class accuracy)
    Bf16 = 2,    ///< bf16, one product of the rounded operands
    Bf16x3 = 3,  ///< three bf16 products
    /// Accumulation only: r split into two bf16 parts, x' rounded once (two
    /// products), so that the r x'^2 >= 0 terms keep 2^-9 relative.
    Bf16x2 = 4,
};

/// The precisions of the two products of the tensor-core E-step. Both
/// passes recompute the log-densities with `logits`, so that a row's
/// responsibilities sum to one.
struct MmaPlan {
    MmaPrecision logits = MmaPrecision::Tf32x3;      ///< x.a_k (and x^2.b_k)
    MmaPrecision accumulate = MmaPrecision::Tf32x3;  ///< R^T x (and R^T x^2)
};

/** Whether the (logits, accumulate) pair is compiled in (kernels/EStepMmaKernels.cu). */
bool mma_plan_supported(const MmaPlan& plan);

/// The passes of a plan that the wgmma kernels (kernels/EStepWgmmaKernels.cu,
/// built for sm_90a) run; the mma.sync kernels run the others.
struct WgmmaCoverage {
    bool log_norm = false;  ///< pass 1: 3xbf16 log-densities
    /// pass 2: 3xbf16 log-densities with bf16 or TF32 accumulation, or
    /// 3xTF32 throughout (spherical)
    bool accumulate = false;
};

/**
 * Whether GPU `device` (-1: the current one) runs the wgmma kernels: a
 * compute-capability 9.0 GPU (Hopper). Elsewhere only mma.sync runs.
 */
bool wgmma_device(int device = -1);

/**
 * What the wgmma kernels cover of `plan` for a spherical or diagonal model,
 * on a device where wgmma_device() holds.
 */
WgmmaCoverage wgmma_coverage(const MmaPlan& plan, bool spherical);

}  // namespace gpu
}  // namespace faiss_gmm
