#include "sluice/pipeline/resize.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

namespace sluice::pipeline {
namespace {

// The taps of one output coordinate along one axis (weights in double, see Resample).
template <int kTaps>
struct Taps {
  std::array<int, kTaps> index;  // clamped source indices
  std::array<double, kTaps> weight;
};

// TF: CalculateResizeScale(align_corners = false) and LegacyScaler.
float Scale(int in_size, int out_size) {
  return static_cast<float>(in_size) / static_cast<float>(out_size);
}

int ClampIndex(int64_t i, int size) {
  return static_cast<int>(std::clamp<int64_t>(i, 0, size - 1));
}

double CubicKernel(double t) {
  constexpr double a = kBicubicA;
  t = std::fabs(t);
  if (t <= 1.0) return ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
  if (t < 2.0) return ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a;
  return 0.0;
}

std::vector<Taps<4>> BicubicTaps(int in_size, int out_size) {
  const float scale = Scale(in_size, out_size);
  std::vector<Taps<4>> taps(out_size);
  for (int o = 0; o < out_size; ++o) {
    const float s = static_cast<float>(o) * scale;
    const int64_t i = static_cast<int64_t>(std::floor(s));
    // f quantized to the 1024-entry table, as TF's GetWeightsAndIndices does.
    const int64_t q = std::lrint((s - static_cast<float>(i)) * kBicubicTableSize);
    const double f = static_cast<double>(q) / kBicubicTableSize;
    Taps<4>& t = taps[o];
    t.weight = {CubicKernel(1.0 + f), CubicKernel(f), CubicKernel(1.0 - f), CubicKernel(2.0 - f)};
    for (int k = 0; k < 4; ++k) t.index[k] = ClampIndex(i - 1 + k, in_size);
  }
  return taps;
}

std::vector<Taps<2>> BilinearTaps(int in_size, int out_size) {
  const float scale = Scale(in_size, out_size);
  std::vector<Taps<2>> taps(out_size);
  for (int o = 0; o < out_size; ++o) {
    const float s = static_cast<float>(o) * scale;
    const float lo = std::floor(s);
    const float f = s - lo;
    Taps<2>& t = taps[o];
    t.index = {ClampIndex(static_cast<int64_t>(lo), in_size),
               ClampIndex(static_cast<int64_t>(std::ceil(s)), in_size)};
    t.weight = {1.0 - f, static_cast<double>(f)};
  }
  return taps;
}

// Separable filter: for each output pixel, interpolate kTaps source rows along x, then combine
// along y (TF's order). Accumulates in double: float sums of 16 taps of 0..255 values drift by
// ~3e-4, and the kernels promise 1e-4 against an exact evaluation (TF's own float sums carry that
// drift).
template <int kTaps, typename T>
void Resample(const T* src, const ResizeShape& s, const std::vector<Taps<kTaps>>& ytaps,
              const std::vector<Taps<kTaps>>& xtaps, float* dst) {
  const int c = s.channels;
  const int64_t src_stride = static_cast<int64_t>(s.src_width) * c;
  for (int oy = 0; oy < s.dst_height; ++oy) {
    const Taps<kTaps>& ty = ytaps[oy];
    float* out = dst + static_cast<int64_t>(oy) * s.dst_width * c;
    for (int ox = 0; ox < s.dst_width; ++ox) {
      const Taps<kTaps>& tx = xtaps[ox];
      for (int ch = 0; ch < c; ++ch) {
        double acc = 0.0;
        for (int ky = 0; ky < kTaps; ++ky) {
          const T* row = src + ty.index[ky] * src_stride + ch;
          double v = 0.0;
          for (int kx = 0; kx < kTaps; ++kx) {
            v += tx.weight[kx] * static_cast<double>(row[static_cast<int64_t>(tx.index[kx]) * c]);
          }
          acc += ty.weight[ky] * v;
        }
        out[static_cast<int64_t>(ox) * c + ch] = static_cast<float>(acc);
      }
    }
  }
}

template <typename T>
void Bicubic(const T* src, const ResizeShape& s, float* dst) {
  Resample<4>(src, s, BicubicTaps(s.src_height, s.dst_height),
              BicubicTaps(s.src_width, s.dst_width), dst);
}

template <typename T>
void Bilinear(const T* src, const ResizeShape& s, float* dst) {
  Resample<2>(src, s, BilinearTaps(s.src_height, s.dst_height),
              BilinearTaps(s.src_width, s.dst_width), dst);
}

}  // namespace

void ResizeBicubic(const uint8_t* src, const ResizeShape& shape, float* dst) {
  Bicubic(src, shape, dst);
}
void ResizeBicubic(const float* src, const ResizeShape& shape, float* dst) {
  Bicubic(src, shape, dst);
}
void ResizeBilinear(const uint8_t* src, const ResizeShape& shape, float* dst) {
  Bilinear(src, shape, dst);
}
void ResizeBilinear(const float* src, const ResizeShape& shape, float* dst) {
  Bilinear(src, shape, dst);
}

}  // namespace sluice::pipeline
