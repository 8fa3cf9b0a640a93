#include "sluice/train/npy.h"

#include "sluice/formats/file_util.h"

namespace sluice::train {
namespace {

std::string Header(const char* descr, const std::vector<int64_t>& shape) {
  std::string tuple = "(";
  for (size_t i = 0; i < shape.size(); ++i) tuple += (i ? ", " : "") + std::to_string(shape[i]);
  tuple += shape.size() == 1 ? ",)" : ")";  // Python's one-element tuple is "(3,)"
  std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " +
                     tuple + ", }";
  // magic (6) + version (2) + length (2) + dict + '\n' is a multiple of 64.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>(dict.size() >> 8);
  return out + dict;
}

template <typename T>
Status Write(const std::string& path, const char* descr, const std::vector<int64_t>& shape,
             std::span<const T> data) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (n != static_cast<int64_t>(data.size()))
    return Status::InvalidArgument("npy " + path + ": shape does not match the data size");
  std::string bytes = Header(descr, shape);
  bytes.append(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(T));
  return formats::WriteFileAtomically(path, bytes);
}

}  // namespace

Status WriteNpy(const std::string& path, const std::vector<int64_t>& shape,
                std::span<const float> data) {
  return Write(path, "<f4", shape, data);
}
Status WriteNpy(const std::string& path, const std::vector<int64_t>& shape,
                std::span<const int64_t> data) {
  return Write(path, "<i8", shape, data);
}

Status NpyAppender::Close() {
  int64_t row = 1;
  for (int64_t d : row_shape_) row *= d;
  std::vector<int64_t> shape = {row ? static_cast<int64_t>(data_.size()) / row : 0};
  shape.insert(shape.end(), row_shape_.begin(), row_shape_.end());
  return WriteNpy(path_, shape, data_);
}

}  // namespace sluice::train
