// Batch normalization (Ioffe & Szegedy 2015) over NHWC rows, with an optional fused ReLU.
//
// Statistics: rows are cut into a fixed number of parts (a function of the row count only); each
// part sums in float over blocks of at most 256 rows and accumulates the blocks in double, and the
// parts are added in order, so the statistics are identical for any thread count. The variance is
// computed in the same pass from values shifted by the first row (no E[x^2] - E[x]^2 cancellation
// when the mean is large against the spread).
#include <cmath>
#include <vector>

#include "parallel.h"
#include "sluice/train/layers.h"

namespace sluice::train {
namespace {

constexpr int64_t kParts = 32;
constexpr int64_t kBlock = 256;

// The normalization as one fused multiply-add, the same instruction in forward and backward.
inline float Affine(float x, float scale, float shift) { return std::fma(x, scale, shift); }

// sums[c] = sum over rows of f(row, c), deterministically. f is called with (row pointer index r).
template <typename RowFn>
void ChannelSums(int64_t rows, int64_t channels, std::vector<double>* sums, RowFn&& row_fn) {
  const int64_t parts = std::max<int64_t>(1, std::min(kParts, rows));
  std::vector<double> partial(parts * channels, 0.0);
  ParallelParts(rows, parts, [&](int64_t p, int64_t r0, int64_t r1) {
    std::vector<float> block(channels);
    double* acc = partial.data() + p * channels;
    for (int64_t b = r0; b < r1; b += kBlock) {
      std::fill(block.begin(), block.end(), 0.0f);
      for (int64_t r = b; r < std::min(r1, b + kBlock); ++r) row_fn(r, block.data());
      for (int64_t c = 0; c < channels; ++c) acc[c] += block[c];
    }
  });
  sums->assign(channels, 0.0);
  for (int64_t p = 0; p < parts; ++p)
    for (int64_t c = 0; c < channels; ++c) (*sums)[c] += partial[p * channels + c];
}

class BatchNorm final : public Layer {
 public:
  BatchNorm(const BatchNormSpec& spec, Param* gamma, Param* beta, BnState* state)
      : spec_(spec), gamma_(gamma), beta_(beta), state_(state) {}
  std::string_view type() const override { return spec_.relu ? "batch_norm_relu" : "batch_norm"; }

  // in[0] x: (N, H, W, C) or (N, C) -> out y: same shape
  void Forward(std::span<const Tensor* const> in, Tensor* out, bool training) override {
    const Tensor& x = *in[0];
    const int64_t C = spec_.channels, rows = x.size() / C;
    out->Resize(x.shape());
    training_ = training;
    mean_.assign(C, 0.0f);
    invstd_.assign(C, 0.0f);
    const float* g = gamma_->value.data();
    const float* b = beta_->value.data();
    if (training) {
      // One pass: sums of (x - shift) and (x - shift)^2 with the first row as the shift, so the
      // variance S2/M - (S1/M)^2 does not cancel catastrophically when |mean| >> std.
      std::vector<double> sums;
      const float* xd = x.data();
      std::vector<float> shift_row(xd, xd + C);
      const float* __restrict sh0 = shift_row.data();
      ChannelSums(rows, 2 * C, &sums, [&](int64_t r, float* __restrict acc) {
        const float* __restrict row = xd + r * C;
        for (int64_t c = 0; c < C; ++c) {
          const float d = row[c] - sh0[c];
          acc[c] += d;
          acc[C + c] += d * d;
        }
      });
      std::vector<double> sq(C);
      for (int64_t c = 0; c < C; ++c) {
        const double m1 = sums[c] / rows;
        mean_[c] = static_cast<float>(sh0[c] + m1);
        sq[c] = std::max(0.0, sums[C + c] / rows - m1 * m1) * rows;
      }
      float* rm = state_->running_mean.data();
      float* rv = state_->running_var.data();
      const float m = spec_.momentum;
      for (int64_t c = 0; c < C; ++c) {
        const double var = sq[c] / rows;
        invstd_[c] = static_cast<float>(1.0 / std::sqrt(var + spec_.epsilon));
        const double unbiased = rows > 1 ? var * rows / (rows - 1) : var;
        rm[c] = m * rm[c] + (1 - m) * mean_[c];
        rv[c] = m * rv[c] + (1 - m) * static_cast<float>(unbiased);
      }
      ++state_->num_batches_tracked;
    } else {
      for (int64_t c = 0; c < C; ++c) {
        mean_[c] = state_->running_mean[c];
        invstd_[c] = 1.0f / std::sqrt(state_->running_var[c] + spec_.epsilon);
      }
    }
    scale_.resize(C);
    shift_.resize(C);
    for (int64_t c = 0; c < C; ++c) {
      scale_[c] = g[c] * invstd_[c];
      shift_[c] = b[c] - mean_[c] * scale_[c];
    }
    const bool relu = spec_.relu;
    const float* __restrict sc = scale_.data();
    const float* __restrict sh = shift_.data();
    const float* __restrict xd = x.data();
    float* __restrict yd = out->data();
    ParallelRange(rows, 512, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* __restrict xr = xd + r * C;
        float* __restrict yr = yd + r * C;
        for (int64_t c = 0; c < C; ++c) {
          const float v = Affine(xr[c], sc[c], sh[c]);
          yr[c] = relu ? std::max(v, 0.0f) : v;
        }
      }
    });
  }

  // dout: like out -> din[0]: like x; gamma, beta grads (C) +=
  void Backward(std::span<const Tensor* const> in, const Tensor&, const Tensor& dout,
                std::span<Tensor* const> din) override {
    const Tensor& x = *in[0];
    const int64_t C = spec_.channels, rows = x.size() / C;
    const bool relu = spec_.relu;
    const float* __restrict xd = x.data();
    const float* __restrict dyd = dout.data();
    const float* __restrict mean = mean_.data();
    const float* __restrict invstd = invstd_.data();
    // The ReLU's mask is recomputed from x with the forward's own arithmetic (y > 0 exactly when
    // Affine(x) > 0), so backward reads x and dy but never y.
    const float* __restrict sc = scale_.data();
    const float* __restrict sh = shift_.data();
    // g = dy masked by the ReLU; one pass sums dbeta = sum g and dgamma = sum g * xhat (the two
    // halves of acc, so one ChannelSums call reads the tensors once).
    std::vector<double> sums;
    ChannelSums(rows, 2 * C, &sums, [&](int64_t r, float* __restrict acc) {
      const float* __restrict xr = xd + r * C;
      const float* __restrict dr = dyd + r * C;
      for (int64_t c = 0; c < C; ++c) {
        const float v = Affine(xr[c], sc[c], sh[c]);
        const float gv = (!relu || v > 0) ? dr[c] : 0.0f;
        acc[c] += gv;
        acc[C + c] += gv * ((xr[c] - mean[c]) * invstd[c]);
      }
    });
    float* gg = gamma_->grad.data();
    float* bg = beta_->grad.data();
    for (int64_t c = 0; c < C; ++c) {
      bg[c] += static_cast<float>(sums[c]);
      gg[c] += static_cast<float>(sums[C + c]);
    }
    Tensor* dx = din[0];
    if (!dx) return;
    dx->Resize(x.shape());
    const float* g = gamma_->value.data();
    // training: dx = gamma * invstd * (g - dbeta / M - xhat * dgamma / M); eval: gamma * invstd * g
    std::vector<float> k(C), mb(C), mg(C);
    for (int64_t c = 0; c < C; ++c) {
      k[c] = g[c] * invstd_[c];
      mb[c] = training_ ? static_cast<float>(sums[c] / rows) : 0.0f;
      mg[c] = training_ ? static_cast<float>(sums[C + c] / rows) : 0.0f;
    }
    const float* __restrict kp = k.data();
    const float* __restrict mbp = mb.data();
    const float* __restrict mgp = mg.data();
    float* __restrict dxd = dx->data();
    ParallelRange(rows, 512, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* __restrict xr = xd + r * C;
        const float* __restrict dr = dyd + r * C;
        float* __restrict o = dxd + r * C;
        for (int64_t c = 0; c < C; ++c) {
          const float v = Affine(xr[c], sc[c], sh[c]);
        const float gv = (!relu || v > 0) ? dr[c] : 0.0f;
          const float xhat = (xr[c] - mean[c]) * invstd[c];
          o[c] = kp[c] * (gv - mbp[c] - xhat * mgp[c]);
        }
      }
    });
  }

 private:
  BatchNormSpec spec_;
  Param* gamma_;
  Param* beta_;
  BnState* state_;
  bool training_ = true;
  std::vector<float> mean_, invstd_;
  std::vector<float> scale_, shift_;  // y = Affine(x, scale, shift), then the ReLU if fused
};

}  // namespace

std::unique_ptr<Layer> MakeBatchNorm(const BatchNormSpec& spec, Param* gamma, Param* beta,
                                     BnState* state) {
  return std::make_unique<BatchNorm>(spec, gamma, beta, state);
}

}  // namespace sluice::train
