// Pixel-wise kernels of the presets: horizontal flip, mean/std normalization, per-image
// standardization. All work in place on interleaved HWC buffers and are thread-compatible.
#ifndef SLUICE_PIPELINE_NORMALIZE_H_
#define SLUICE_PIPELINE_NORMALIZE_H_

#include <array>
#include <cstdint>

namespace sluice::pipeline {

// resnet (tensorflow/tpu resnet_preprocessing.py): MEAN_RGB and STDDEV_RGB scaled to the 0..255
// range.
inline constexpr std::array<float, 3> kResnetMean = {0.485f * 255.0f, 0.456f * 255.0f,
                                                     0.406f * 255.0f};
inline constexpr std::array<float, 3> kResnetStd = {0.229f * 255.0f, 0.224f * 255.0f,
                                                    0.225f * 255.0f};
// vgg (slim vgg_preprocessing.py: _R_MEAN, _G_MEAN, _B_MEAN); no division.
inline constexpr std::array<float, 3> kVggMean = {123.68f, 116.78f, 103.94f};

// Mirrors columns: pixel (y, x) <-> (y, width - 1 - x), channels kept together. Exact (a
// permutation). image: (height, width, channels)
void FlipHorizontal(float* image, int height, int width, int channels);
void FlipHorizontal(uint8_t* image, int height, int width, int channels);

// image[p, c] = (image[p, c] - mean[c]) / stddev[c] for every pixel p; image: (pixels, 3).
void NormalizeMeanStd(float* image, int64_t pixels, const std::array<float, 3>& mean,
                      const std::array<float, 3>& stddev);

// image[p, c] -= mean[c]; image: (pixels, 3).
void SubtractMean(float* image, int64_t pixels, const std::array<float, 3>& mean);

// tf.image.per_image_standardization over all n values (n = 32 * 32 * 3 = 3072 for CIFAR):
// (x - mean) / max(stddev, 1 / sqrt(n)), with the population stddev. Mean and variance are
// accumulated in double. Requires n > 0.
void PerImageStandardize(float* image, int64_t n);

}  // namespace sluice::pipeline

#endif  // SLUICE_PIPELINE_NORMALIZE_H_
