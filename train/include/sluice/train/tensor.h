// Tensor: a dense, row-major float32 array with a shape, 64-byte aligned for AVX-512 loads.
//
// Activations are NHWC, (N, H, W, C): the input pipeline's layout, and the one whose convolution
// GEMMs ran as fast as NCHW's in bench/train/conv_bench (channels contiguous also makes im2col a
// run of memcpy per tap). Not thread-safe; distinct tensors may be used from distinct threads.
#ifndef SLUICE_TRAIN_TENSOR_H_
#define SLUICE_TRAIN_TENSOR_H_

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <Eigen/Core>

namespace sluice::train {

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::vector<int64_t> shape) { Resize(std::move(shape)); }

  // Sets the shape; keeps the storage when it is large enough. Contents are unspecified.
  void Resize(std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    shape_ = std::move(shape);
    size_ = n;
    if (static_cast<int64_t>(data_.size()) < n) data_.resize(n);
  }
  void SetZero() {
    if (size_ > 0) std::memset(data_.data(), 0, size_ * sizeof(float));
  }
  void Fill(float v) { std::fill(data_.begin(), data_.begin() + size_, v); }
  // Frees the storage (a tensor not needed until the next step).
  void Release() {
    data_ = {};
    shape_.clear();
    size_ = 0;
  }

  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  std::span<float> span() { return {data_.data(), static_cast<size_t>(size_)}; }
  std::span<const float> span() const { return {data_.data(), static_cast<size_t>(size_)}; }
  float& operator[](int64_t i) { return data_[i]; }
  float operator[](int64_t i) const { return data_[i]; }
  int64_t size() const { return size_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[i]; }
  int rank() const { return static_cast<int>(shape_.size()); }
  // Bytes of storage held (capacity, not size).
  size_t capacity_bytes() const { return data_.capacity() * sizeof(float); }

 private:
  std::vector<float, Eigen::aligned_allocator<float>> data_;
  std::vector<int64_t> shape_;
  int64_t size_ = 0;
};

std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_TENSOR_H_
