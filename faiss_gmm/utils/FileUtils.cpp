#include <faiss_gmm/utils/FileUtils.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

namespace faiss_gmm {

void checked_fwrite(const void* p, size_t size, size_t count, FILE* f, const char* what) {
    if (count && fwrite(p, size, count, f) != count)
        throw Error(std::string("faiss-gmm: short write of ") + what + ": " + strerror(errno));
}

void write_file_atomic(const std::string& path, const std::function<void(FILE*)>& write) {
    std::string tmpl = path + ".tmp.XXXXXX";
    int fd = mkstemp(&tmpl[0]);
    if (fd < 0) throw Error("faiss-gmm: cannot write '" + path + "': " + strerror(errno));
    FILE* f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(tmpl.c_str());
        throw Error("faiss-gmm: cannot write '" + path + "': " + strerror(e));
    }
    try {
        write(f);
        if (fflush(f) != 0 || fsync(fileno(f)) != 0)
            throw Error(std::string("faiss-gmm: flushing failed: ") + strerror(errno));
    } catch (const std::exception& e) {
        fclose(f);
        unlink(tmpl.c_str());
        throw Error(std::string("faiss-gmm: writing '") + path + "' failed: " + e.what());
    }
    if (fclose(f) != 0 || rename(tmpl.c_str(), path.c_str()) != 0) {
        int e = errno;
        unlink(tmpl.c_str());
        throw Error("faiss-gmm: cannot write '" + path + "': " + strerror(e));
    }
}

bool all_finite(int64_t count, const float* x) {
    const uint32_t* u = reinterpret_cast<const uint32_t*>(x);
    int bad = 0;
#pragma omp parallel for reduction(| : bad) schedule(static) if (count > (1 << 20))
    for (int64_t i = 0; i < count; i++) bad |= int((u[i] & 0x7f800000u) == 0x7f800000u);
    return !bad;
}

void check_finite_rows(idx_t n, int d, const float* x, const char* what) {
    if (all_finite(int64_t(n) * d, x)) return;  // the first bad row, in order, only then
    for (idx_t i = 0; i < n; i++) {
        const float* r = x + i * size_t(d);
        for (int j = 0; j < d; j++) {
            if (!std::isfinite(r[j])) {
                throw InvalidArgument(std::string("faiss-gmm: ") + what + ": row " + std::to_string(i) +
                            " has a non-finite value (" + (std::isnan(r[j]) ? "nan" : "inf") +
                            ") at dimension " + std::to_string(j));
            }
        }
    }
}

void check_writable(const std::string& path) {
    const std::string probe = path + ".probe";
    write_file_atomic(probe, [](FILE*) {});
    std::remove(probe.c_str());
}

}  // namespace faiss_gmm
