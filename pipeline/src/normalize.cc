#include "sluice/pipeline/normalize.h"

#include <algorithm>
#include <cmath>

namespace sluice::pipeline {
namespace {

template <typename T>
void Flip(T* image, int height, int width, int channels) {
  for (int y = 0; y < height; ++y) {
    T* row = image + static_cast<int64_t>(y) * width * channels;
    for (int l = 0, r = width - 1; l < r; ++l, --r) {
      std::swap_ranges(row + static_cast<int64_t>(l) * channels,
                       row + static_cast<int64_t>(l + 1) * channels,
                       row + static_cast<int64_t>(r) * channels);
    }
  }
}

}  // namespace

void FlipHorizontal(float* image, int height, int width, int channels) {
  Flip(image, height, width, channels);
}
void FlipHorizontal(uint8_t* image, int height, int width, int channels) {
  Flip(image, height, width, channels);
}

void NormalizeMeanStd(float* image, int64_t pixels, const std::array<float, 3>& mean,
                      const std::array<float, 3>& stddev) {
  for (int64_t p = 0; p < pixels; ++p) {
    float* px = image + p * 3;
    for (int c = 0; c < 3; ++c) px[c] = (px[c] - mean[c]) / stddev[c];
  }
}

void SubtractMean(float* image, int64_t pixels, const std::array<float, 3>& mean) {
  for (int64_t p = 0; p < pixels; ++p) {
    float* px = image + p * 3;
    for (int c = 0; c < 3; ++c) px[c] -= mean[c];
  }
}

void PerImageStandardize(float* image, int64_t n) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += image[i];
  const double mean = sum / static_cast<double>(n);
  // Two-pass variance: no cancellation for images with a large mean and small spread.
  double sq = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = image[i] - mean;
    sq += d * d;
  }
  const double stddev = std::sqrt(sq / static_cast<double>(n));
  const double adjusted = std::max(stddev, 1.0 / std::sqrt(static_cast<double>(n)));
  const double inv = 1.0 / adjusted;
  for (int64_t i = 0; i < n; ++i) image[i] = static_cast<float>((image[i] - mean) * inv);
}

}  // namespace sluice::pipeline
