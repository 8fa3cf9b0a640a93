// The memory-bound layers (ReLU, residual add, pooling, global average pooling), the dense layer
// and the loss. Convolution is in conv.cc, batch norm in batch_norm.cc.
#include "sluice/train/layers.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "parallel.h"

namespace sluice::train {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Map = Eigen::Map<RowMat>;
using CMap = Eigen::Map<const RowMat>;
constexpr int64_t kGrain = 16384;

// g where y > 0, else 0. Both values are loaded unconditionally, so the loops using this become
// vector selects (a conditional load of g compiles to an unpredictable branch per element).
inline float MaskPositive(float y, float g) { return y > 0 ? g : 0.0f; }

class Relu final : public Layer {
 public:
  std::string_view type() const override { return "relu"; }
  // x -> y = max(x, 0), same shape
  void Forward(std::span<const Tensor* const> in, Tensor* out, bool) override {
    const Tensor& x = *in[0];
    out->Resize(x.shape());
    ParallelRange(x.size(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out->data()[i] = std::max(x[i], 0.0f);
    });
  }
  void Backward(std::span<const Tensor* const>, const Tensor& out, const Tensor& dout,
                std::span<Tensor* const> din) override {
    if (!din[0]) return;
    din[0]->Resize(out.shape());
    ParallelRange(out.size(), kGrain, [&](int64_t b, int64_t e) {
      float* __restrict d = din[0]->data();
      const float* __restrict y = out.data();
      const float* __restrict g = dout.data();
      for (int64_t i = b; i < e; ++i) d[i] = MaskPositive(y[i], g[i]);
    });
  }
};

class Add final : public Layer {
 public:
  explicit Add(bool relu) : relu_(relu) {}
  std::string_view type() const override { return relu_ ? "add_relu" : "add"; }
  bool SameGradForAllInputs() const override { return true; }
  // a, b -> y = a + b (then ReLU), all the same shape
  void Forward(std::span<const Tensor* const> in, Tensor* out, bool) override {
    const Tensor& a = *in[0];
    const Tensor& b = *in[1];
    out->Resize(a.shape());
    const float* __restrict pa = a.data();
    const float* __restrict pb = b.data();
    float* __restrict y = out->data();
    const bool relu = relu_;
    ParallelRange(a.size(), kGrain, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        const float v = pa[i] + pb[i];
        y[i] = relu ? std::max(v, 0.0f) : v;
      }
    });
  }
  void Backward(std::span<const Tensor* const>, const Tensor& out, const Tensor& dout,
                std::span<Tensor* const> din) override {
    for (Tensor* d : din)
      if (d) d->Resize(out.shape());
    float* __restrict d0 = din[0] ? din[0]->data() : nullptr;
    float* __restrict d1 = din[1] ? din[1]->data() : nullptr;
    const float* __restrict y = out.data();
    const float* __restrict dy = dout.data();
    const bool relu = relu_;
    // Branch-free loops (one per case), so each one vectorizes.
    ParallelRange(out.size(), kGrain, [&](int64_t s, int64_t e) {
      float* __restrict first = d0 ? d0 : d1;
      if (!first) return;
      if (relu)
        for (int64_t i = s; i < e; ++i) first[i] = MaskPositive(y[i], dy[i]);
      else
        std::memcpy(first + s, dy + s, (e - s) * sizeof(float));
      if (d0 && d1) std::memcpy(d1 + s, d0 + s, (e - s) * sizeof(float));
    });
  }


 private:
  bool relu_;
};

class Pool final : public Layer {
 public:
  Pool(PoolKind kind, int kernel, int stride, int padding)
      : kind_(kind), k_(kernel), s_(stride), p_(padding) {}
  std::string_view type() const override { return kind_ == PoolKind::kMax ? "max_pool" : "avg_pool"; }

  // x: (N, H, W, C) -> y: (N, Ho, Wo, C)
  void Forward(std::span<const Tensor* const> in, Tensor* out, bool) override {
    const Tensor& x = *in[0];
    const int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
    const int64_t Ho = (H + 2 * p_ - k_) / s_ + 1, Wo = (W + 2 * p_ - k_) / s_ + 1;
    out->Resize({N, Ho, Wo, C});
    if (kind_ == PoolKind::kMax) argmax_.resize(out->size());
    ParallelRange(N * Ho * Wo, 256, [&](int64_t r0, int64_t r1) {
      std::vector<float> acc(C);
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t n = r / (Ho * Wo), oh = (r / Wo) % Ho, ow = r % Wo;
        float* y = out->data() + r * C;
        int32_t* am = kind_ == PoolKind::kMax ? argmax_.data() + r * C : nullptr;
        std::fill(acc.begin(), acc.end(),
                  kind_ == PoolKind::kMax ? -std::numeric_limits<float>::infinity() : 0.0f);
        if (am) std::fill(am, am + C, -1);
        for (int64_t kh = 0; kh < k_; ++kh) {
          const int64_t ih = oh * s_ - p_ + kh;
          if (ih < 0 || ih >= H) continue;
          for (int64_t kw = 0; kw < k_; ++kw) {
            const int64_t iw = ow * s_ - p_ + kw;
            if (iw < 0 || iw >= W) continue;
            const int64_t pix = ih * W + iw;
            const float* xr = x.data() + (n * H * W + pix) * C;
            for (int64_t c = 0; c < C; ++c) {
              if (am) {
                if (xr[c] > acc[c]) acc[c] = xr[c], am[c] = static_cast<int32_t>(pix);
              } else {
                acc[c] += xr[c];
              }
            }
          }
        }
        const float inv = 1.0f / (k_ * k_);
        for (int64_t c = 0; c < C; ++c) y[c] = am ? acc[c] : acc[c] * inv;
      }
    });
  }

  void Backward(std::span<const Tensor* const> in, const Tensor& out, const Tensor& dout,
                std::span<Tensor* const> din) override {
    if (!din[0]) return;
    const Tensor& x = *in[0];
    Tensor* dx = din[0];
    dx->Resize(x.shape());
    const int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
    const int64_t Ho = out.dim(1), Wo = out.dim(2);
    // Per image: windows overlap only within an image.
    ParallelRange(N, 1, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        float* dimg = dx->data() + n * H * W * C;
        std::fill(dimg, dimg + H * W * C, 0.0f);
        for (int64_t o = 0; o < Ho * Wo; ++o) {
          const int64_t r = n * Ho * Wo + o, oh = o / Wo, ow = o % Wo;
          const float* g = dout.data() + r * C;
          if (kind_ == PoolKind::kMax) {
            const int32_t* am = argmax_.data() + r * C;
            for (int64_t c = 0; c < C; ++c)
              if (am[c] >= 0) dimg[am[c] * C + c] += g[c];
            continue;
          }
          const float inv = 1.0f / (k_ * k_);
          for (int64_t kh = 0; kh < k_; ++kh) {
            const int64_t ih = oh * s_ - p_ + kh;
            if (ih < 0 || ih >= H) continue;
            for (int64_t kw = 0; kw < k_; ++kw) {
              const int64_t iw = ow * s_ - p_ + kw;
              if (iw < 0 || iw >= W) continue;
              float* d = dimg + (ih * W + iw) * C;
              for (int64_t c = 0; c < C; ++c) d[c] += g[c] * inv;
            }
          }
        }
      }
    });
  }

 private:
  PoolKind kind_;
  int k_, s_, p_;
  std::vector<int32_t> argmax_;
};

class GlobalAvgPool final : public Layer {
 public:
  std::string_view type() const override { return "global_avg_pool"; }
  // x: (N, H, W, C) -> y: (N, C)
  void Forward(std::span<const Tensor* const> in, Tensor* out, bool) override {
    const Tensor& x = *in[0];
    const int64_t N = x.dim(0), HW = x.dim(1) * x.dim(2), C = x.dim(3);
    out->Resize({N, C});
    ParallelRange(N, 8, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        float* y = out->data() + n * C;
        std::fill(y, y + C, 0.0f);
        for (int64_t p = 0; p < HW; ++p) {
          const float* xr = x.data() + (n * HW + p) * C;
          for (int64_t c = 0; c < C; ++c) y[c] += xr[c];
        }
        for (int64_t c = 0; c < C; ++c) y[c] /= static_cast<float>(HW);
      }
    });
  }
  void Backward(std::span<const Tensor* const> in, const Tensor&, const Tensor& dout,
                std::span<Tensor* const> din) override {
    if (!din[0]) return;
    const Tensor& x = *in[0];
    din[0]->Resize(x.shape());
    const int64_t N = x.dim(0), HW = x.dim(1) * x.dim(2), C = x.dim(3);
    ParallelRange(N, 8, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t p = 0; p < HW; ++p)
          for (int64_t c = 0; c < C; ++c)
            din[0]->data()[(n * HW + p) * C + c] = dout[n * C + c] / static_cast<float>(HW);
    });
  }
};

class Dense final : public Layer {
 public:
  Dense(Param* w, Param* b) : w_(w), b_(b) {}
  std::string_view type() const override { return "dense"; }
  // x: (N, in) (or (N, ...) flattened) -> y: (N, out); W: (out, in)
  void Forward(std::span<const Tensor* const> in, Tensor* out, bool) override {
    const Tensor& x = *in[0];
    const int64_t N = x.dim(0), I = x.size() / N, O = w_->value.dim(0);
    out->Resize({N, O});
    Map y(out->data(), N, O);
    y.noalias() = CMap(x.data(), N, I) * CMap(w_->value.data(), O, I).transpose();
    if (b_) y.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(b_->value.data(), O);
  }
  void Backward(std::span<const Tensor* const> in, const Tensor&, const Tensor& dout,
                std::span<Tensor* const> din) override {
    const Tensor& x = *in[0];
    const int64_t N = x.dim(0), I = x.size() / N, O = w_->value.dim(0);
    CMap dy(dout.data(), N, O);
    Map(w_->grad.data(), O, I).noalias() += dy.transpose() * CMap(x.data(), N, I);
    if (b_) Eigen::Map<Eigen::RowVectorXf>(b_->grad.data(), O) += dy.colwise().sum();
    if (din[0]) {
      din[0]->Resize(x.shape());
      Map(din[0]->data(), N, I).noalias() = dy * CMap(w_->value.data(), O, I);
    }
  }
  int64_t MacsPerImage(std::span<const Tensor* const>, const Tensor&) const override {
    return w_->value.size();
  }

 private:
  Param* w_;
  Param* b_;
};

}  // namespace

std::unique_ptr<Layer> MakeRelu() { return std::make_unique<Relu>(); }
std::unique_ptr<Layer> MakeAdd(bool relu) { return std::make_unique<Add>(relu); }
std::unique_ptr<Layer> MakePool(PoolKind kind, int kernel, int stride, int padding) {
  return std::make_unique<Pool>(kind, kernel, stride, padding);
}
std::unique_ptr<Layer> MakeGlobalAvgPool() { return std::make_unique<GlobalAvgPool>(); }
std::unique_ptr<Layer> MakeDense(Param* weight, Param* bias) {
  return std::make_unique<Dense>(weight, bias);
}

LossResult SoftmaxCrossEntropy(const Tensor& logits, std::span<const int64_t> labels,
                               float label_smoothing, Tensor* dlogits) {
  const int64_t N = logits.dim(0), K = logits.dim(1);
  if (dlogits) dlogits->Resize({N, K});
  LossResult result;
  const float off = label_smoothing / K, on = 1.0f - label_smoothing + off;
  for (int64_t n = 0; n < N; ++n) {
    const float* z = logits.data() + n * K;
    const int64_t y = labels[n];
    const float zmax = *std::max_element(z, z + K);
    double sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += std::exp(static_cast<double>(z[k] - zmax));
    const double log_sum = std::log(sum) + zmax;
    double loss = 0;
    int64_t above = 0;
    for (int64_t k = 0; k < K; ++k) {
      const double logp = z[k] - log_sum;
      const float q = k == y ? on : off;
      loss -= q * logp;
      if (dlogits) dlogits->data()[n * K + k] = static_cast<float>((std::exp(logp) - q) / N);
      if (z[k] > z[y]) ++above;
    }
    result.loss += loss;
    result.top1 += above == 0;
    result.top5 += above < 5;
  }
  result.loss /= N;
  return result;
}

}  // namespace sluice::train
