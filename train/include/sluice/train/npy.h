// NumPy .npy files (format version 1.0: magic "\x93NUMPY", version 1 0, u16 LE header length,
// a Python-dict header padded with spaces to a multiple of 64 bytes and ended by '\n', then the
// raw little-endian C-order data), for `sluice eval --dump-inputs/--dump-logits` and parity tests.
// numpy.load reads them; written atomically.
#ifndef SLUICE_TRAIN_NPY_H_
#define SLUICE_TRAIN_NPY_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sluice/formats/status.h"

namespace sluice::train {

Status WriteNpy(const std::string& path, const std::vector<int64_t>& shape,
                std::span<const float> data);
Status WriteNpy(const std::string& path, const std::vector<int64_t>& shape,
                std::span<const int64_t> data);

// Appends rows to an .npy file whose first dimension grows (the header is rewritten on Close).
// For dumps whose row count is not known up front.
class NpyAppender {
 public:
  NpyAppender(std::string path, std::vector<int64_t> row_shape) :
      path_(std::move(path)), row_shape_(std::move(row_shape)) {}
  void Append(std::span<const float> rows) { data_.insert(data_.end(), rows.begin(), rows.end()); }
  Status Close();

 private:
  std::string path_;
  std::vector<int64_t> row_shape_;
  std::vector<float> data_;
};

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_NPY_H_
