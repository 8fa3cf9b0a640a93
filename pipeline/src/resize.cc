#include "sluice/pipeline/resize.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

namespace sluice::pipeline {
namespace {

// The taps of one output coordinate along one axis.
template <int kTaps>
struct Taps {
  std::array<int, kTaps> index;  // clamped source indices
  std::array<float, kTaps> weight;
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

// Taps of outputs [first, first + count) of an in_size -> out_size resize.
void BicubicTaps(int in_size, int out_size, int first, int count, std::vector<Taps<4>>* taps) {
  const float scale = Scale(in_size, out_size);
  taps->resize(count);
  for (int k = 0; k < count; ++k) {
    const float s = static_cast<float>(first + k) * scale;
    const int64_t i = static_cast<int64_t>(std::floor(s));
    // f quantized to the 1024-entry table, as TF's GetWeightsAndIndices does.
    const int64_t q = std::lrint((s - static_cast<float>(i)) * kBicubicTableSize);
    const double f = static_cast<double>(q) / kBicubicTableSize;
    Taps<4>& t = (*taps)[k];
    t.weight = {static_cast<float>(CubicKernel(1.0 + f)), static_cast<float>(CubicKernel(f)),
                static_cast<float>(CubicKernel(1.0 - f)), static_cast<float>(CubicKernel(2.0 - f))};
    for (int j = 0; j < 4; ++j) t.index[j] = ClampIndex(i - 1 + j, in_size);
  }
}

void BilinearTaps(int in_size, int out_size, int first, int count, std::vector<Taps<2>>* taps) {
  const float scale = Scale(in_size, out_size);
  taps->resize(count);
  for (int k = 0; k < count; ++k) {
    const float s = static_cast<float>(first + k) * scale;
    const float lo = std::floor(s);
    const float f = s - lo;
    Taps<2>& t = (*taps)[k];
    t.index = {ClampIndex(static_cast<int64_t>(lo), in_size),
               ClampIndex(static_cast<int64_t>(std::ceil(s)), in_size)};
    t.weight = {1.0f - f, f};
  }
}

// Horizontal pass of one source row into `out` (out_w pixels of C channels).
template <int kTaps, int C, typename T>
void ResampleRow(const T* row, const Taps<kTaps>* xtaps, int out_w, float* out) {
  for (int ox = 0; ox < out_w; ++ox) {
    const Taps<kTaps>& t = xtaps[ox];
    float acc[C] = {};
    for (int k = 0; k < kTaps; ++k) {
      const T* p = row + static_cast<int64_t>(t.index[k]) * C;
      for (int c = 0; c < C; ++c) acc[c] += t.weight[k] * static_cast<float>(p[c]);
    }
    for (int c = 0; c < C; ++c) out[ox * C + c] = acc[c];
  }
}

template <int kTaps, typename T>
void ResampleRowAnyC(const T* row, const Taps<kTaps>* xtaps, int out_w, int channels, float* out) {
  for (int ox = 0; ox < out_w; ++ox) {
    const Taps<kTaps>& t = xtaps[ox];
    for (int c = 0; c < channels; ++c) {
      float acc = 0.0f;
      for (int k = 0; k < kTaps; ++k) {
        acc +=
            t.weight[k] * static_cast<float>(row[static_cast<int64_t>(t.index[k]) * channels + c]);
      }
      out[static_cast<int64_t>(ox) * channels + c] = acc;
    }
  }
}

// Separable filter: the x pass runs once per source row that some output row needs (rows
// [lo, hi]), into scratch; the y pass combines kTaps of those rows per output row (TF's order: x
// then y).
template <int kTaps, typename T>
void Resample(const T* src, const ResizeShape& s, const std::vector<Taps<kTaps>>& ytaps,
              const std::vector<Taps<kTaps>>& xtaps, float* dst, ResizeScratch* scratch) {
  const int c = s.channels;
  const int out_w = static_cast<int>(xtaps.size());
  const int out_h = static_cast<int>(ytaps.size());
  const int64_t row_len = static_cast<int64_t>(out_w) * c;
  int lo = s.src_height, hi = -1;
  for (const Taps<kTaps>& t : ytaps) {
    for (int k = 0; k < kTaps; ++k) {
      lo = std::min(lo, t.index[k]);
      hi = std::max(hi, t.index[k]);
    }
  }
  ResizeScratch local;
  if (scratch == nullptr) scratch = &local;
  scratch->rows.resize(static_cast<size_t>(hi - lo + 1) * row_len);
  float* rows = scratch->rows.data();
  const int64_t src_stride = static_cast<int64_t>(s.src_width) * c;
  for (int y = lo; y <= hi; ++y) {
    const T* row = src + y * src_stride;
    float* out = rows + (y - lo) * row_len;
    if (c == 3) {
      ResampleRow<kTaps, 3>(row, xtaps.data(), out_w, out);
    } else if (c == 1) {
      ResampleRow<kTaps, 1>(row, xtaps.data(), out_w, out);
    } else {
      ResampleRowAnyC<kTaps>(row, xtaps.data(), out_w, c, out);
    }
  }
  for (int oy = 0; oy < out_h; ++oy) {
    const Taps<kTaps>& t = ytaps[oy];
    const float* r[kTaps];
    for (int k = 0; k < kTaps; ++k) r[k] = rows + (t.index[k] - lo) * row_len;
    float* out = dst + oy * row_len;
    for (int64_t i = 0; i < row_len; ++i) {
      float acc = 0.0f;
      for (int k = 0; k < kTaps; ++k) acc += t.weight[k] * r[k][i];
      out[i] = acc;
    }
  }
}

struct Window {
  int x, y, width, height;
};

Window DestinationWindow(const ResizeShape& s) {
  if (s.window_width <= 0 || s.window_height <= 0) return {0, 0, s.dst_width, s.dst_height};
  return {s.window_x, s.window_y, s.window_width, s.window_height};
}

template <typename T>
void Bicubic(const T* src, const ResizeShape& s, float* dst, ResizeScratch* scratch) {
  const Window w = DestinationWindow(s);
  std::vector<Taps<4>> ytaps, xtaps;
  BicubicTaps(s.src_height, s.dst_height, w.y, w.height, &ytaps);
  BicubicTaps(s.src_width, s.dst_width, w.x, w.width, &xtaps);
  Resample<4>(src, s, ytaps, xtaps, dst, scratch);
}

template <typename T>
void Bilinear(const T* src, const ResizeShape& s, float* dst, ResizeScratch* scratch) {
  const Window w = DestinationWindow(s);
  std::vector<Taps<2>> ytaps, xtaps;
  BilinearTaps(s.src_height, s.dst_height, w.y, w.height, &ytaps);
  BilinearTaps(s.src_width, s.dst_width, w.x, w.width, &xtaps);
  Resample<2>(src, s, ytaps, xtaps, dst, scratch);
}

}  // namespace

void ResizeBicubic(const uint8_t* src, const ResizeShape& shape, float* dst,
                   ResizeScratch* scratch) {
  Bicubic(src, shape, dst, scratch);
}
void ResizeBicubic(const float* src, const ResizeShape& shape, float* dst, ResizeScratch* scratch) {
  Bicubic(src, shape, dst, scratch);
}
void ResizeBilinear(const uint8_t* src, const ResizeShape& shape, float* dst,
                    ResizeScratch* scratch) {
  Bilinear(src, shape, dst, scratch);
}
void ResizeBilinear(const float* src, const ResizeShape& shape, float* dst,
                    ResizeScratch* scratch) {
  Bilinear(src, shape, dst, scratch);
}

}  // namespace sluice::pipeline
