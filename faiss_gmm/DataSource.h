/**
 * Where the EM trainer reads its rows: one interface over in-memory arrays,
 * memory-mapped vector files, row ranges (shards) and a reproducible
 * generator, read in row blocks. Rows keep their stored element type
 * (float32, uint8, float16) until the consumer converts them: the GPU
 * backend moves uint8 rows over PCIe as bytes and converts on the device.
 */
#pragma once

#include <faiss_gmm/SyntheticData.h>
#include <faiss_gmm/VectorIO.h>
#include <faiss_gmm/utils/Common.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace faiss_gmm {

class SyntheticSource;

/** Rows to train on, read in blocks. Reads of disjoint ranges may run concurrently. */
class DataSource {
   public:
    virtual ~DataSource() = default;
    virtual idx_t n() const = 0;  ///< number of rows
    virtual int d() const = 0;    ///< dimension
    /** The element type read_raw() delivers: Float32, UInt8 or Float16. */
    virtual ElementType type() const = 0;
    /** One line for logs: what the rows are and where they come from. */
    virtual std::string description() const = 0;
    /** Rows [i0, i0 + count) as stored into out (count x d values of type()). */
    virtual void read_raw(idx_t i0, idx_t count, void* out) const = 0;
    /**
     * The rows as one contiguous n x d array of type() in host memory, or
     * nullptr (files with per-row headers, generators).
     */
    virtual const void* contiguous_rows() const { return nullptr; }
    /**
     * The synthetic generator whose rows these are (row i here is its row
     * i + *row_offset), or nullptr: rows that are a function of their index
     * can be made where they are consumed (on the GPU, see
     * gpu::DeviceRowGenerator) instead of being read and copied.
     */
    virtual const SyntheticSource* generator(idx_t* row_offset) const {
        (void)row_offset;
        return nullptr;
    }

    /** Bytes of one stored row. */
    size_t row_bytes() const { return size_t(d()) * element_size(type()); }
    /** Rows [i0, i0 + count) converted to float32 into out (count x d). */
    void read_float(idx_t i0, idx_t count, float* out) const;
    /**
     * A number no other source object of this process was given (copies
     * share it: they read the same rows). What a backend keeps per source
     * (the GPU's row cache, its generator) is keyed by it: a new source
     * built where a freed one lived is not mistaken for the old.
     */
    uint64_t uid() const { return uid_; }

   private:
    static uint64_t next_uid();
    uint64_t uid_ = next_uid();
};

/** Rows in the caller's memory (not copied: it must outlive the source). */
class ArraySource : public DataSource {
   public:
    /** n x d float32 rows. */
    ArraySource(idx_t n, int d, const float* x);
    /** n x d rows of type t (Float32, UInt8 or Float16 as uint16_t bits). */
    ArraySource(idx_t n, int d, ElementType t, const void* x);
    idx_t n() const override { return n_; }
    int d() const override { return d_; }
    ElementType type() const override { return type_; }
    std::string description() const override;
    void read_raw(idx_t i0, idx_t count, void* out) const override;
    const void* contiguous_rows() const override { return x_; }

   private:
    idx_t n_;
    int d_;
    ElementType type_;
    const void* x_;
};

/** A memory-mapped vector file (fvecs, bvecs, fbin, u8bin, npy). */
class FileSource : public DataSource {
   public:
    /** Map and validate path (VectorFile); int32 files are refused. */
    explicit FileSource(const std::string& path);
    idx_t n() const override { return file_.n(); }
    int d() const override { return file_.d(); }
    ElementType type() const override { return file_.type(); }
    std::string description() const override;
    void read_raw(idx_t i0, idx_t count, void* out) const override;
    const void* contiguous_rows() const override { return file_.contiguous_rows(); }
    const VectorFile& file() const { return file_; }

   private:
    VectorFile file_;
};

/** Rows [begin, begin + count) of another source: a shard of one file. */
class RangeSource : public DataSource {
   public:
    /** The parent must outlive the view. */
    RangeSource(const DataSource& parent, idx_t begin, idx_t count);
    idx_t n() const override { return count_; }
    int d() const override { return parent_.d(); }
    ElementType type() const override { return parent_.type(); }
    std::string description() const override;
    void read_raw(idx_t i0, idx_t count, void* out) const override;
    const void* contiguous_rows() const override;
    const SyntheticSource* generator(idx_t* row_offset) const override;

   private:
    const DataSource& parent_;
    idx_t begin_, count_;
};

/**
 * n rows drawn from a SyntheticMixture, generated on demand and never
 * stored: row i depends only on (mixture, seed, i), so any range can be
 * produced by any thread, in any order, with the same result. The noise
 * comes from a 4096-level quantile table of the standard normal (rescaled
 * to unit variance, tails cut near 3.5 sigma) indexed by a counter-based
 * generator: cheap enough to feed a GPU a billion rows. Float16 and
 * UInt8 rows are scale * x + offset, rounded (uint8: half up, clamped
 * to 0..255).
 */
class SyntheticSource : public DataSource {
   public:
    SyntheticSource(const SyntheticMixture& mixture, idx_t n, uint64_t seed,
                    ElementType type = ElementType::Float32, float scale = 1.f, float offset = 0.f);
    idx_t n() const override { return n_; }
    int d() const override { return mixture_.params.d; }
    ElementType type() const override { return type_; }
    std::string description() const override;
    /** Parallel (OpenMP) over rows when the range is large. */
    void read_raw(idx_t i0, idx_t count, void* out) const override;
    /** The true component of rows [i0, i0 + count). */
    void labels(idx_t i0, idx_t count, int32_t* out) const;
    const SyntheticMixture& mixture() const { return mixture_; }
    /** The standard deviation of the quantised noise (1 up to rounding). */
    static double noise_table_stddev();
    const SyntheticSource* generator(idx_t* row_offset) const override {
        if (row_offset) *row_offset = 0;
        return this;
    }

    /// Bits of one noise draw; the table has 2^kNoiseBits levels.
    static constexpr int kNoiseBits = 12;
    /** The noise table (2^kNoiseBits unit-variance quantiles of N(0, 1)). */
    static const float* noise_levels();
    /** The per-source key: row i's generator starts at mix64(key + i). */
    uint64_t row_key() const;
    float scale() const { return scale_; }    ///< rows are scale * draw + offset
    float offset() const { return offset_; }  ///< (then rounded for uint8 / float16)
    /** Normalised cumulative weights (the component draw's table, last = 1). */
    const std::vector<double>& cdf() const { return cdf_; }

   private:
    template <class T>
    void generate(idx_t i0, idx_t count, T* out) const;
    int component_of(uint64_t& state) const;

    SyntheticMixture mixture_;
    idx_t n_;
    uint64_t seed_;
    ElementType type_;
    float scale_, offset_;
    std::vector<double> cdf_;  ///< cumulative weights, for the component draw
};

/**
 * The rows FAISS-style subsampling keeps: the first m of a seeded
 * Fisher-Yates permutation of 0..n-1 (std::mt19937_64(seed)), sorted.
 * O(m) memory whatever n is (the permutation is kept sparse).
 */
std::vector<idx_t> sample_rows(idx_t n, idx_t m, uint64_t seed);

/**
 * Throw Error naming the first row of x (count x d floats, rows
 * [i0, i0 + count) of src) that holds a NaN or Inf, by its index in src.
 */
void check_finite_source_rows(const DataSource& src, idx_t i0, idx_t count, const float* x);

/**
 * The same over rows [i0, i0 + count) of src, read in bounded blocks: names
 * the bad row after a pass found a non-finite result.
 */
void find_nonfinite_source_row(const DataSource& src, idx_t i0, idx_t count);

/** The given rows (sorted, in range) of a source as float32 into out (rows.size() x d). */
void read_rows(const DataSource& src, const std::vector<idx_t>& rows, float* out);

/**
 * A source for a path: FileSource, or a synthetic mixture spelled
 * "synthetic:N[xD][,k=K][,seed=S][,uint8]" (e.g. "synthetic:1000000x128,k=1024,uint8").
 * Throws Error naming a bad spelling.
 */
std::unique_ptr<DataSource> open_data_source(const std::string& spec);

}  // namespace faiss_gmm
