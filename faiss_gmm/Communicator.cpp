#include "faiss_gmm/Communicator.h"

#include <cstdio>
#include <cstdlib>
#include <limits>

#include "faiss_gmm/EStep.h"
#include "faiss_gmm/utils/Common.h"

#ifdef FAISS_GMM_WITH_MPI
#include <mpi.h>
#endif

namespace faiss_gmm {

void Communicator::abort(int code) const {
    fflush(stdout);
    fflush(stderr);
    std::_Exit(code);
}

void allreduce(SufficientStatistics& st, const Communicator& comm) {
    if (comm.size() == 1) return;
    // One message: nk, sum_x, sum_x2, then the two scalars.
    std::vector<double> buf;
    buf.reserve(st.nk.size() + st.sum_x.size() + st.sum_x2.size() + 2);
    buf.insert(buf.end(), st.nk.begin(), st.nk.end());
    buf.insert(buf.end(), st.sum_x.begin(), st.sum_x.end());
    buf.insert(buf.end(), st.sum_x2.begin(), st.sum_x2.end());
    buf.push_back(st.sum_log_norm);
    buf.push_back(st.sum_weights);
    comm.allreduce_sum(buf.data(), buf.size());
    const double* p = buf.data();
    for (auto* v : {&st.nk, &st.sum_x, &st.sum_x2}) {
        std::copy(p, p + v->size(), v->begin());
        p += v->size();
    }
    st.sum_log_norm = p[0];
    st.sum_weights = p[1];
}

bool mpi_built() {
#ifdef FAISS_GMM_WITH_MPI
    return true;
#else
    return false;
#endif
}

int mpi_launch_size() {
    for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"})
        if (const char* s = getenv(var)) return std::max(1, atoi(s));
    return 1;
}

#ifdef FAISS_GMM_WITH_MPI

namespace {

void check_mpi(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw Error(std::string("faiss-gmm: ") + what + " failed: " + std::string(msg, len));
}

/// MPI counts are int: long buffers go in pieces.
constexpr size_t kMaxCount = size_t(1) << 30;

class MpiWorld : public Communicator {
   public:
    MpiWorld(int* argc, char*** argv) {
        int initialised = 0;
        MPI_Initialized(&initialised);
        if (!initialised) {
            int provided = 0;
            check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided),
                      "MPI_Init_thread");
            owns_ = true;
        }
        // Errors come back as codes (turned into exceptions), not aborts.
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
        check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
        MPI_Comm node;
        check_mpi(
            MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
            "MPI_Comm_split_type");
        check_mpi(MPI_Comm_rank(node, &local_rank_), "MPI_Comm_rank");
        MPI_Comm_free(&node);
    }
    ~MpiWorld() override {
        if (owns_) MPI_Finalize();
    }
    int rank() const override { return rank_; }
    int size() const override { return size_; }
    int local_rank() const override { return local_rank_; }
    void allreduce_sum(double* v, size_t n) const override {
        reduce(v, n, MPI_DOUBLE, sizeof(double));
    }
    void allreduce_sum(float* v, size_t n) const override {
        reduce(v, n, MPI_FLOAT, sizeof(float));
    }
    void broadcast(void* data, size_t bytes, int root) const override {
        for (size_t off = 0; off < bytes; off += kMaxCount)
            check_mpi(
                MPI_Bcast(static_cast<char*>(data) + off, int(std::min(kMaxCount, bytes - off)),
                          MPI_BYTE, root, MPI_COMM_WORLD),
                "MPI_Bcast");
    }
    std::vector<int64_t> allgather(int64_t value) const override {
        std::vector<int64_t> all(size_);
        check_mpi(MPI_Allgather(&value, 1, MPI_INT64_T, all.data(), 1, MPI_INT64_T, MPI_COMM_WORLD),
                  "MPI_Allgather");
        return all;
    }
    void abort(int code) const override {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
        std::_Exit(code);
    }

   private:
    void reduce(void* v, size_t n, MPI_Datatype type, size_t elem) const {
        for (size_t off = 0; off < n; off += kMaxCount)
            check_mpi(
                MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(v) + off * elem,
                              int(std::min(kMaxCount, n - off)), type, MPI_SUM, MPI_COMM_WORLD),
                "MPI_Allreduce");
    }
    int rank_ = 0, size_ = 1, local_rank_ = 0;
    bool owns_ = false;
};

}  // namespace

std::unique_ptr<Communicator> mpi_world(int* argc, char*** argv) {
    return std::make_unique<MpiWorld>(argc, argv);
}

#else

std::unique_ptr<Communicator> mpi_world(int*, char***) {
    throw Error("faiss-gmm: this build has no MPI support (install libopenmpi-dev and rebuild)");
}

#endif

}  // namespace faiss_gmm
