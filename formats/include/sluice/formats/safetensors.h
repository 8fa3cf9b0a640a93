// safetensors: Hugging Face's flat tensor file, the format of sluice checkpoints.
//
// Byte layout (https://github.com/huggingface/safetensors, "Format"):
//
//   +-----------+-------------------------------+-----------------------------------------+
//   | N: u64 LE | header: N bytes of UTF-8 JSON | data: raw little-endian row-major bytes |
//   +-----------+-------------------------------+-----------------------------------------+
//     8 bytes     padded with ' ' so that N is    tensors back to back, no gap, no overlap
//                 a multiple of 8
//
//   header = {"__metadata__": {"key": "value", ...},                       (optional; strings only)
//             "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
//
// data_offsets are relative to the start of the data section, end exclusive; end - begin equals
// product(shape) * element size (a scalar has shape [] and one element). The union of all
// [begin, end) must be exactly [0, data size).
//
// SafetensorsWriter writes tensors sorted by name, so the same tensors and metadata always give the
// same bytes. SafetensorsFile validates the whole header before handing out anything: a malformed
// file is DataLoss (an unknown dtype Unsupported) naming the file and the reason; garbage never
// crashes it. Neither class is thread-safe; a parsed SafetensorsFile is safe to read concurrently.
#ifndef SLUICE_FORMATS_SAFETENSORS_H_
#define SLUICE_FORMATS_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "sluice/formats/status.h"

namespace sluice::formats {

// The header's dtype strings, as spelled in the file ("F32", "BF16", ...).
enum class SafetensorsDtype {
  kBool,
  kU8,
  kI8,
  kF8E5M2,
  kF8E4M3,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kI64,
  kU64,
  kF64,
};

std::string_view SafetensorsDtypeName(SafetensorsDtype dtype);
// Unsupported for a name we do not know.
Result<SafetensorsDtype> ParseSafetensorsDtype(std::string_view name);
// Bytes per element: 1, 2, 4 or 8.
size_t SafetensorsDtypeSize(SafetensorsDtype dtype);

// The dtype a C++ element type is written as.
template <typename T>
constexpr SafetensorsDtype SafetensorsDtypeOf() {
  using D = SafetensorsDtype;
  if constexpr (std::is_same_v<T, float>)
    return D::kF32;
  else if constexpr (std::is_same_v<T, double>)
    return D::kF64;
  else if constexpr (std::is_same_v<T, int64_t>)
    return D::kI64;
  else if constexpr (std::is_same_v<T, uint64_t>)
    return D::kU64;
  else if constexpr (std::is_same_v<T, int32_t>)
    return D::kI32;
  else if constexpr (std::is_same_v<T, uint32_t>)
    return D::kU32;
  else if constexpr (std::is_same_v<T, int16_t>)
    return D::kI16;
  else if constexpr (std::is_same_v<T, uint16_t>)
    return D::kU16;
  else if constexpr (std::is_same_v<T, int8_t>)
    return D::kI8;
  else if constexpr (std::is_same_v<T, uint8_t>)
    return D::kU8;
  else if constexpr (std::is_same_v<T, bool>)
    return D::kBool;
  else
    static_assert(sizeof(T) == 0, "no safetensors dtype for this element type");
}

// Upper bound on the header length field; anything larger is treated as corruption rather than
// allocated (the reference implementation uses the same 100 MB limit).
constexpr uint64_t kSafetensorsMaxHeaderSize = 100'000'000;

// One tensor of a parsed file. `data` views the file's bytes (little-endian, row-major, possibly
// unaligned: copy out or use the typed helpers of SafetensorsFile).
struct SafetensorsTensor {
  SafetensorsDtype dtype;
  std::vector<int64_t> shape;  // [] for a scalar
  std::string_view data;

  int64_t num_elements() const;
};

// Builds a safetensors file in memory. Add() copies the bytes. Not thread-safe.
class SafetensorsWriter {
 public:
  // `bytes` must hold product(shape) * element size bytes, little-endian row-major. InvalidArgument
  // for an empty or duplicate name, "__metadata__", a name that is not UTF-8, a negative dimension,
  // or a byte count that does not match the shape.
  Status Add(std::string name, SafetensorsDtype dtype, std::vector<int64_t> shape,
             std::string_view bytes);
  template <typename T>
  Status Add(std::string name, std::vector<int64_t> shape, std::span<const T> values) {
    static_assert(std::is_arithmetic_v<T> && sizeof(T) <= 8);
    return Add(
        std::move(name), SafetensorsDtypeOf<T>(), std::move(shape),
        std::string_view(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));
  }
  // Sets one "__metadata__" entry (replacing an earlier value for the key). Keys and values must be
  // UTF-8; checked by Serialize().
  void SetMetadata(std::string key, std::string value);

  // The whole file. InvalidArgument if a metadata string is not valid UTF-8.
  Result<std::string> Serialize() const;
  // Writes the file atomically (tmp + fsync + rename).
  Status WriteFile(const std::string& path) const;

  size_t num_tensors() const { return tensors_.size(); }

 private:
  struct Entry {
    SafetensorsDtype dtype;
    std::vector<int64_t> shape;
    std::string bytes;
  };
  // The 8-byte length prefix plus the padded JSON header for the current tensors.
  Result<std::string> Header() const;

  std::map<std::string, Entry> tensors_;  // sorted by name: the file order
  std::map<std::string, std::string> metadata_;
};

// A parsed, validated safetensors file (its bytes owned). Move-only; views handed out stay valid
// until the object is destroyed (moving it keeps them valid).
class SafetensorsFile {
 public:
  // `name` is used in messages (a path, usually).
  static Result<SafetensorsFile> Parse(std::string bytes, std::string name = "<memory>");
  static Result<SafetensorsFile> Open(const std::string& path);

  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Sorted by name.
  std::vector<std::string> names() const;
  size_t size() const { return tensors_.size(); }
  bool contains(std::string_view name) const { return tensors_.find(name) != tensors_.end(); }
  // NotFound for an unknown name.
  Result<SafetensorsTensor> Find(std::string_view name) const;

  // Typed copies, widening losslessly: Floats accepts F32, F16, BF16; Doubles any of those or F64;
  // Int64s any integer dtype except U64, and BOOL. InvalidArgument for another dtype.
  Result<std::vector<float>> Floats(std::string_view name) const;
  Result<std::vector<double>> Doubles(std::string_view name) const;
  Result<std::vector<int64_t>> Int64s(std::string_view name) const;

  const std::string& name() const { return name_; }

 private:
  struct Info {
    SafetensorsDtype dtype;
    std::vector<int64_t> shape;
    uint64_t begin;  // absolute offsets in bytes_
    uint64_t end;
  };
  SafetensorsFile() = default;

  std::string name_;
  std::unique_ptr<const std::string> bytes_;
  std::map<std::string, Info, std::less<>> tensors_;
  std::map<std::string, std::string> metadata_;
};

// IEEE binary16 and bfloat16 bit patterns to float (exact: every such value is a float).
float HalfToFloat(uint16_t bits);
float BFloat16ToFloat(uint16_t bits);

}  // namespace sluice::formats

#endif  // SLUICE_FORMATS_SAFETENSORS_H_
