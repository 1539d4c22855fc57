/**
 * Vector files: memory-mapped readers for fvecs, bvecs, ivecs, fbin, u8bin
 * and .npy (float32 / uint8 / int32), and atomic writers. Readers validate
 * the header and the file size and throw Error naming the problem.
 */
#pragma once

#include <faiss_gmm/utils/Common.h>

#include <memory>
#include <string>
#include <vector>

namespace faiss_gmm {

/// On-disk layout.
enum class VectorFormat {
    Fvecs,  ///< per row: int32 d, then d float32 (TEXMEX)
    Bvecs,  ///< per row: int32 d, then d uint8
    Ivecs,  ///< per row: int32 d, then d int32 (ground truth)
    Fbin,   ///< uint32 n, uint32 d, then n*d float32 (big-ann-benchmarks)
    U8bin,  ///< uint32 n, uint32 d, then n*d uint8
    Ibin,   ///< uint32 n, uint32 d, then n*d int32
    Npy,    ///< NumPy .npy, 2-D, C order, '<f4', '|u1' or '<i4'
};

/// Element type of the stored values.
enum class ElementType {
    Float32,
    UInt8,
    Int32,
    Float16,  ///< IEEE half (npy '<f2'); training data only
};

/** Bytes per value of t. */
size_t element_size(ElementType t);

/** Name of t for messages ("float32", "uint8", "int32", "float16"). */
const char* to_string(ElementType t);

/** IEEE half to float (exact; subnormals, Inf and NaN kept). */
float half_to_float(uint16_t h);

/** Float to IEEE half, round to nearest even (overflow gives Inf). */
uint16_t float_to_half(float f);

/**
 * count values of type t at src converted to float32 into out (Float32,
 * UInt8, Float16 or Int32).
 */
void convert_to_float(ElementType t, const void* src, size_t count, float* out);

/** Format from the file name's extension; throws Error for an unknown one. */
VectorFormat format_from_path(const std::string& path);

/** A read-only, memory-mapped vector file. */
class VectorFile {
   public:
    /** Map and validate path; the format comes from the extension. */
    explicit VectorFile(const std::string& path);
    ~VectorFile();
    VectorFile(const VectorFile&) = delete;
    VectorFile& operator=(const VectorFile&) = delete;

    idx_t n() const { return n_; }  ///< number of rows
    int d() const { return d_; }    ///< dimension
    ElementType type() const { return type_; }
    VectorFormat format() const { return format_; }
    const std::string& path() const { return path_; }

    /** Rows [i0, i0 + count) converted to float32 into out (count x d). */
    void read_float(idx_t i0, idx_t count, float* out) const;
    /**
     * Rows [i0, i0 + count) as stored (type(), row headers of *vecs files
     * dropped) into out: count x d values of element_size(type()) bytes.
     */
    void read_raw(idx_t i0, idx_t count, void* out) const;
    /**
     * The rows as one contiguous n x d array of type() (fbin, u8bin, npy),
     * or nullptr where per-row headers interleave them (*vecs).
     */
    const void* contiguous_rows() const {
        return row_skip_ ? nullptr : static_cast<const uint8_t*>(map_) + header_;
    }
    /** Rows [i0, i0 + count) as int32 into out (Int32 files only). */
    void read_int(idx_t i0, idx_t count, int32_t* out) const;

   private:
    const uint8_t* row_ptr(idx_t i) const;
    /// Map the whole file read-only into map_ / size_.
    void map_file();
    /// The layout (n, d, element type, header and row sizes) of each family,
    /// checked against the file's size; they throw naming the file.
    void read_vecs_layout(const uint8_t* base);
    void read_bin_layout(const uint8_t* base);
    void read_npy_layout(const uint8_t* base);
    std::string path_;
    VectorFormat format_;
    ElementType type_ = ElementType::Float32;
    idx_t n_ = 0;
    int d_ = 0;
    size_t elem_ = 4;        ///< bytes per value
    size_t header_ = 0;      ///< bytes before row 0
    size_t row_stride_ = 0;  ///< bytes from one row to the next
    size_t row_skip_ = 0;    ///< bytes of per-row header (the *vecs int32 d)
    void* map_ = nullptr;
    size_t size_ = 0;
};

/**
 * Read a whole vector file as float32 (at most max_rows rows when > 0).
 * n and d receive the shape.
 */
std::vector<float> read_vectors(const std::string& path, idx_t* n, int* d, idx_t max_rows = 0);

/** Read a whole ivecs / ibin / int32 npy file (ground truth) as int32. */
std::vector<int32_t> read_ivectors(const std::string& path, idx_t* n, int* d);

/** Write n x d float32 rows; format from the extension (fvecs, fbin, npy). Atomic. */
void write_vectors(const std::string& path, idx_t n, int d, const float* x);

/** Write n x d int32 rows as ivecs, ibin or npy (from the extension). Atomic. */
void write_ivectors(const std::string& path, idx_t n, int d, const int32_t* x);

/** Write n x d uint8 rows as bvecs, u8bin or npy (from the extension). Atomic. */
void write_bvectors(const std::string& path, idx_t n, int d, const uint8_t* x);

/** Write n x d IEEE half rows (as uint16_t bits) as npy ('<f2'). Atomic. */
void write_hvectors(const std::string& path, idx_t n, int d, const uint16_t* x);

}  // namespace faiss_gmm
