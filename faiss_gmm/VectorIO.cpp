#include <faiss_gmm/VectorIO.h>
#include <faiss_gmm/utils/FileUtils.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <regex>

namespace faiss_gmm {

namespace {

bool ends_with(const std::string& s, const std::string& suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

[[noreturn]] void bad_file(const std::string& path, const std::string& why) {
    throw Error("faiss-gmm: '" + path + "': " + why);
}

size_t elem_size(ElementType t) { return element_size(t); }

/// Parse the dict of a .npy header: dtype, fortran_order, shape.
void parse_npy_header(const std::string& path, const std::string& h, ElementType* type, idx_t* n,
                      int* d) {
    std::smatch m;
    if (!std::regex_search(h, m, std::regex("'descr'\\s*:\\s*'([^']*)'")))
        bad_file(path, "npy header has no 'descr'");
    std::string descr = m[1];
    if (descr == "<f4")
        *type = ElementType::Float32;
    else if (descr == "|u1" || descr == "<u1")
        *type = ElementType::UInt8;
    else if (descr == "<i4")
        *type = ElementType::Int32;
    else if (descr == "<f2")
        *type = ElementType::Float16;
    else
        bad_file(path, "unsupported npy dtype '" + descr +
                           "' (float32 '<f4', float16 '<f2', uint8 '|u1' or int32 '<i4')");
    if (!std::regex_search(h, m, std::regex("'fortran_order'\\s*:\\s*(True|False)")))
        bad_file(path, "npy header has no 'fortran_order'");
    if (m[1] == "True") bad_file(path, "npy array is in Fortran order (need C order)");
    if (!std::regex_search(h, m,
                           std::regex("'shape'\\s*:\\s*\\(\\s*(\\d+)\\s*,\\s*(\\d+)\\s*,?\\s*\\)")))
        bad_file(path, "npy array is not 2-D (need shape (n, d))");
    *n = std::stoll(m[1]);
    long long dd = std::stoll(m[2]);
    if (dd <= 0 || dd > (1 << 24))
        bad_file(path, "npy dimension " + std::to_string(dd) + " is out of range");
    *d = int(dd);
}

}  // namespace

size_t element_size(ElementType t) {
    switch (t) {
        case ElementType::UInt8:
            return 1;
        case ElementType::Float16:
            return 2;
        default:
            return 4;
    }
}

const char* to_string(ElementType t) {
    switch (t) {
        case ElementType::Float32:
            return "float32";
        case ElementType::UInt8:
            return "uint8";
        case ElementType::Int32:
            return "int32";
        case ElementType::Float16:
            return "float16";
    }
    return "?";
}

float half_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    float f;
    if (exp == 0) {  // zero or subnormal: man * 2^-24, exact in float
        f = std::ldexp(float(man), -24);
        uint32_t u;
        memcpy(&u, &f, 4);
        u |= sign;
        memcpy(&f, &u, 4);
        return f;
    }
    const uint32_t u = sign | (exp == 31 ? (0xffu << 23) | (man << 13)  // Inf / NaN
                                         : ((exp + 112) << 23) | (man << 13));
    memcpy(&f, &u, 4);
    return f;
}

uint16_t float_to_half(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint16_t sign = uint16_t((u >> 16) & 0x8000);
    const uint32_t au = u & 0x7fffffff;
    if (au >= 0x7f800000) return sign | 0x7c00 | (au > 0x7f800000 ? 0x200 : 0);  // Inf / NaN
    if (au >= 0x477ff000) return sign | 0x7c00;  // rounds past 65504: Inf
    if (au < 0x38800000) {                       // below 2^-14: subnormal half (or zero)
        float a;
        memcpy(&a, &au, 4);
        return sign | uint16_t(std::nearbyint(std::ldexp(a, 24)));  // round to nearest even
    }
    // Normal: drop 13 mantissa bits with round to nearest even (a carry
    // into the exponent is the correct result).
    const uint32_t r = au + 0xfff + ((au >> 13) & 1);
    return sign | uint16_t((r - (112u << 23)) >> 13);
}

void convert_to_float(ElementType t, const void* src, size_t count, float* out) {
    switch (t) {
        case ElementType::Float32:
            memcpy(out, src, sizeof(float) * count);
            break;
        case ElementType::UInt8: {
            const uint8_t* p = static_cast<const uint8_t*>(src);
            for (size_t i = 0; i < count; i++) out[i] = float(p[i]);
            break;
        }
        case ElementType::Float16: {
            const uint16_t* p = static_cast<const uint16_t*>(src);
            for (size_t i = 0; i < count; i++) out[i] = half_to_float(p[i]);
            break;
        }
        case ElementType::Int32: {
            const int32_t* p = static_cast<const int32_t*>(src);
            for (size_t i = 0; i < count; i++) out[i] = float(p[i]);
            break;
        }
    }
}

VectorFormat format_from_path(const std::string& p) {
    if (ends_with(p, ".fvecs")) return VectorFormat::Fvecs;
    if (ends_with(p, ".bvecs")) return VectorFormat::Bvecs;
    if (ends_with(p, ".ivecs")) return VectorFormat::Ivecs;
    if (ends_with(p, ".fbin")) return VectorFormat::Fbin;
    if (ends_with(p, ".u8bin")) return VectorFormat::U8bin;
    if (ends_with(p, ".ibin")) return VectorFormat::Ibin;
    if (ends_with(p, ".npy")) return VectorFormat::Npy;
    throw InvalidArgument(
        "faiss-gmm: '" + p +
        "': unknown vector file extension (fvecs, bvecs, ivecs, fbin, u8bin, ibin, npy)");
}

namespace {

/// The element type a *vecs or *bin extension implies (npy: its header's).
ElementType fixed_type(VectorFormat f) {
    switch (f) {
        case VectorFormat::Bvecs:
        case VectorFormat::U8bin:
            return ElementType::UInt8;
        case VectorFormat::Ivecs:
        case VectorFormat::Ibin:
            return ElementType::Int32;
        default:
            return ElementType::Float32;
    }
}

}  // namespace

VectorFile::VectorFile(const std::string& path) : path_(path), format_(format_from_path(path)) {
    map_file();
    try {
        const uint8_t* base = static_cast<const uint8_t*>(map_);
        switch (format_) {
            case VectorFormat::Fvecs:
            case VectorFormat::Bvecs:
            case VectorFormat::Ivecs:
                read_vecs_layout(base);
                break;
            case VectorFormat::Fbin:
            case VectorFormat::U8bin:
            case VectorFormat::Ibin:
                read_bin_layout(base);
                break;
            case VectorFormat::Npy:
                read_npy_layout(base);
                break;
        }
        if (n_ == 0) bad_file(path, "file holds no vectors");
    } catch (...) {
        munmap(map_, size_);
        map_ = nullptr;
        throw;
    }
}

void VectorFile::map_file() {
    int fd = open(path_.c_str(), O_RDONLY);
    if (fd < 0) bad_file(path_, std::string("cannot open: ") + strerror(errno));
    struct stat stt;
    if (fstat(fd, &stt) != 0) {
        close(fd);
        bad_file(path_, std::string("cannot stat: ") + strerror(errno));
    }
    size_ = size_t(stt.st_size);
    if (size_ == 0) {
        close(fd);
        bad_file(path_, "file is empty");
    }
    map_ = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map_ == MAP_FAILED) {
        map_ = nullptr;
        bad_file(path_, std::string("cannot map: ") + strerror(errno));
    }
}

void VectorFile::read_vecs_layout(const uint8_t* base) {
    type_ = fixed_type(format_);
    elem_ = elem_size(type_);
    if (size_ < 4) bad_file(path_, "truncated: shorter than one row header");
    int32_t d0;
    memcpy(&d0, base, 4);
    if (d0 <= 0 || d0 > (1 << 24))
        bad_file(path_, "bad dimension " + std::to_string(d0) +
                            " in the first row header (not a *vecs file?)");
    d_ = d0;
    row_skip_ = 4;
    row_stride_ = 4 + size_t(d_) * elem_;
    if (size_ % row_stride_ != 0)
        bad_file(path_, "truncated or corrupt: size " + std::to_string(size_) +
                            " is not a multiple of the row size " + std::to_string(row_stride_) +
                            " (d=" + std::to_string(d_) + ")");
    n_ = idx_t(size_ / row_stride_);
    for (idx_t i = 1; i < n_; i++) {
        int32_t di;
        memcpy(&di, base + size_t(i) * row_stride_, 4);
        if (di != d_)
            bad_file(path_, "row " + std::to_string(i) + " has dimension " + std::to_string(di) +
                                " but row 0 has " + std::to_string(d_));
    }
}

void VectorFile::read_bin_layout(const uint8_t* base) {
    type_ = fixed_type(format_);
    elem_ = elem_size(type_);
    if (size_ < 8) bad_file(path_, "truncated: shorter than the 8-byte header");
    uint32_t hdr[2];
    memcpy(hdr, base, 8);
    if (hdr[1] == 0 || hdr[1] > (1u << 24))
        bad_file(path_, "bad dimension " + std::to_string(hdr[1]) + " in the header");
    n_ = hdr[0];
    d_ = int(hdr[1]);
    header_ = 8;
    row_stride_ = size_t(d_) * elem_;
    size_t want = 8 + size_t(n_) * row_stride_;
    if (size_ != want)
        bad_file(path_, (size_ < want ? "truncated: " : "corrupt: ") + std::string("header says ") +
                            std::to_string(n_) + " x " + std::to_string(d_) + " (" +
                            std::to_string(want) + " bytes) but the file has " +
                            std::to_string(size_) + " bytes");
}

void VectorFile::read_npy_layout(const uint8_t* base) {
    if (size_ < 10 || memcmp(base, "\x93NUMPY", 6) != 0)
        bad_file(path_, "not a .npy file (bad magic)");
    int major = base[6];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = base[8] | (size_t(base[9]) << 8);
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (size_ < 12) bad_file(path_, "truncated npy header");
        uint32_t l;
        memcpy(&l, base + 8, 4);
        hlen = l;
        hoff = 12;
    } else {
        bad_file(path_, "unsupported npy version " + std::to_string(major));
    }
    if (hoff + hlen > size_) bad_file(path_, "truncated npy header");
    std::string h(reinterpret_cast<const char*>(base + hoff), hlen);
    parse_npy_header(path_, h, &type_, &n_, &d_);
    elem_ = elem_size(type_);
    header_ = hoff + hlen;
    row_stride_ = size_t(d_) * elem_;
    size_t want = header_ + size_t(n_) * row_stride_;
    if (size_ != want)
        bad_file(path_, (size_ < want ? "truncated: " : "corrupt: ") + std::string("npy shape (") +
                            std::to_string(n_) + ", " + std::to_string(d_) + ") needs " +
                            std::to_string(want) + " bytes but the file has " +
                            std::to_string(size_));
}

VectorFile::~VectorFile() {
    if (map_) munmap(map_, size_);
}

const uint8_t* VectorFile::row_ptr(idx_t i) const {
    return static_cast<const uint8_t*>(map_) + header_ + size_t(i) * row_stride_ + row_skip_;
}

void VectorFile::read_float(idx_t i0, idx_t count, float* out) const {
    FAISS_GMM_CHECK(i0 >= 0 && count >= 0 && i0 + count <= n_,
                    "'" + path_ + "': row range out of bounds");
#pragma omp parallel for if (count * d_ > (1 << 20))
    for (idx_t i = 0; i < count; i++)
        convert_to_float(type_, row_ptr(i0 + i), size_t(d_), out + size_t(i) * d_);
}

void VectorFile::read_raw(idx_t i0, idx_t count, void* out) const {
    FAISS_GMM_CHECK(i0 >= 0 && count >= 0 && i0 + count <= n_,
                    "'" + path_ + "': row range out of bounds");
    uint8_t* o = static_cast<uint8_t*>(out);
    const size_t rb = size_t(d_) * elem_;
    if (!row_skip_) {
        memcpy(o, row_ptr(i0), rb * size_t(count));
        return;
    }
    for (idx_t i = 0; i < count; i++) memcpy(o + size_t(i) * rb, row_ptr(i0 + i), rb);
}

void VectorFile::read_int(idx_t i0, idx_t count, int32_t* out) const {
    FAISS_GMM_CHECK(type_ == ElementType::Int32, "'" + path_ + "' does not hold int32 values");
    FAISS_GMM_CHECK(i0 >= 0 && count >= 0 && i0 + count <= n_,
                    "'" + path_ + "': row range out of bounds");
    for (idx_t i = 0; i < count; i++) memcpy(out + size_t(i) * d_, row_ptr(i0 + i), 4 * size_t(d_));
}

std::vector<float> read_vectors(const std::string& path, idx_t* n, int* d, idx_t max_rows) {
    VectorFile f(path);
    idx_t m = max_rows > 0 ? std::min(max_rows, f.n()) : f.n();
    std::vector<float> x(size_t(m) * f.d());
    f.read_float(0, m, x.data());
    *n = m;
    *d = f.d();
    return x;
}

std::vector<int32_t> read_ivectors(const std::string& path, idx_t* n, int* d) {
    VectorFile f(path);
    std::vector<int32_t> x(size_t(f.n()) * f.d());
    f.read_int(0, f.n(), x.data());
    *n = f.n();
    *d = f.d();
    return x;
}

namespace {

void write_rows(const std::string& path, idx_t n, int d, const void* x, ElementType t) {
    FAISS_GMM_CHECK(n >= 0 && d > 0, "write: bad shape");
    VectorFormat fmt = format_from_path(path);
    const size_t es = elem_size(t);
    const bool ok_type = fmt == VectorFormat::Npy || t == fixed_type(fmt);
    FAISS_GMM_CHECK(ok_type, "'" + path + "': the extension does not match the element type");
    const uint8_t* src = static_cast<const uint8_t*>(x);
    write_file_atomic(path, [&](FILE* f) {
        if (fmt == VectorFormat::Fbin || fmt == VectorFormat::U8bin || fmt == VectorFormat::Ibin) {
            uint32_t hdr[2] = {uint32_t(n), uint32_t(d)};
            checked_fwrite(hdr, 4, 2, f, "header");
            checked_fwrite(src, es, size_t(n) * d, f, "rows");
        } else if (fmt == VectorFormat::Npy) {
            const char* descr = t == ElementType::Float32   ? "<f4"
                                : t == ElementType::UInt8   ? "|u1"
                                : t == ElementType::Float16 ? "<f2"
                                                            : "<i4";
            std::string h = std::string("{'descr': '") + descr +
                            "', 'fortran_order': False, 'shape': (" + std::to_string(n) + ", " +
                            std::to_string(d) + "), }";
            size_t total = 10 + h.size() + 1;
            h += std::string((64 - total % 64) % 64, ' ') + "\n";
            uint16_t hl = uint16_t(h.size());
            checked_fwrite("\x93NUMPY\x01\x00", 1, 8, f, "npy magic");
            checked_fwrite(&hl, 2, 1, f, "npy header");
            checked_fwrite(h.data(), 1, h.size(), f, "npy header");
            checked_fwrite(src, es, size_t(n) * d, f, "rows");
        } else {
            int32_t dd = d;
            for (idx_t i = 0; i < n; i++) {
                checked_fwrite(&dd, 4, 1, f, "row header");
                checked_fwrite(src + size_t(i) * d * es, es, d, f, "row");
            }
        }
    });
}

}  // namespace

void write_vectors(const std::string& path, idx_t n, int d, const float* x) {
    write_rows(path, n, d, x, ElementType::Float32);
}
void write_ivectors(const std::string& path, idx_t n, int d, const int32_t* x) {
    write_rows(path, n, d, x, ElementType::Int32);
}
void write_bvectors(const std::string& path, idx_t n, int d, const uint8_t* x) {
    write_rows(path, n, d, x, ElementType::UInt8);
}
void write_hvectors(const std::string& path, idx_t n, int d, const uint16_t* x) {
    write_rows(path, n, d, x, ElementType::Float16);
}

}  // namespace faiss_gmm
