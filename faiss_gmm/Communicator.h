/**
 * Processes that fit one mixture together (MPI ranks on several machines).
 *
 * GaussianMixture::fit(shard, comm) reads only this process's shard; what
 * the processes must agree on (shard sizes, the training sample, each
 * iteration's sufficient statistics, a checkpoint to resume from) goes
 * through a Communicator. The base class is the single process: every
 * collective is the identity, so the one-process path is the same code.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace faiss_gmm {

struct SufficientStatistics;

/** A group of processes; the base class is one process alone. */
class Communicator {
   public:
    virtual ~Communicator() = default;
    /** This process's index in the group, 0 .. size() - 1. */
    virtual int rank() const { return 0; }
    /** Number of processes. */
    virtual int size() const { return 1; }
    /** Index among the group's processes on this host (picks the GPU). */
    virtual int local_rank() const { return 0; }
    /** Element-wise sum over all processes, in place; every process gets the same values. */
    virtual void allreduce_sum(double* values, size_t n) const {}
    /** Element-wise sum over all processes, in place (float). */
    virtual void allreduce_sum(float* values, size_t n) const {}
    /** Copy root's `bytes` bytes at data to every process. */
    virtual void broadcast(void* data, size_t bytes, int root = 0) const {}
    /** Every process's value, in rank order. */
    virtual std::vector<int64_t> allgather(int64_t value) const { return {value}; }
    /**
     * End every process of the group with this exit code (MPI_Abort). The
     * way out when one process fails while the others wait in a collective.
     */
    virtual void abort(int code) const;
};

/**
 * Sum the statistics of every process in place (they must share shape and
 * shift): after it, each process holds the statistics of the whole data.
 */
void allreduce(SufficientStatistics& stats, const Communicator& comm);

/** Whether this build has MPI support (FAISS_GMM_WITH_MPI). */
bool mpi_built();

/**
 * Whether this process was started by mpirun / mpiexec (OpenMPI's or a PMI
 * launcher's environment), and the job's size from it (1 when not).
 */
int mpi_launch_size();

/**
 * Initialise MPI (MPI_Init_thread, funneled: only the calling thread talks)
 * and return the world communicator; MPI is finalised when it is destroyed.
 * Throws Error when the build has no MPI support.
 */
std::unique_ptr<Communicator> mpi_world(int* argc, char*** argv);

}  // namespace faiss_gmm
