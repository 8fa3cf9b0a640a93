// Convolution on NHWC activations and (KH, KW, Cin, Cout) weights: the direct kernels of
// direct_conv.h where they apply (stride 1 or 2, Cout a multiple of 16), else im2col + GEMM.
//
// Output rows r = (n, oh, ow) are cut into tiles of `TileRows(K)` rows, K = KH * KW * Cin, so a
// tile's im2col matrix col (rows, K) stays in L2 while Eigen multiplies it:
//   forward   y[tile]  (rows, Cout) = col (rows, K) * W (K, Cout)
//   backward  dW      (K, Cout)   += col^T * dy[tile]
//             dcol    (rows, K)    = dy[tile] * W^T, scattered back into dx (col2im)
// bench/train/conv_bench measured Eigen's single-thread GEMM at 60-110 GFLOP/s on these shapes
// (1024-row tiles beat 4096-row ones). Backward splits the batch into a fixed number of image
// groups: col2im of a group touches only its own images (no races), and each group keeps its own
// dW partial, summed in group order (deterministic for any thread count). A 1x1 stride-1 conv uses
// x itself as col.
#include <algorithm>
#include <cstring>
#include <vector>

#include "direct_conv.h"
#include "parallel.h"
#include "sluice/train/layers.h"

namespace sluice::train {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Map = Eigen::Map<RowMat>;
using CMap = Eigen::Map<const RowMat>;

struct Geometry {
  int64_t n, h, w, ci, ho, wo, co, k, stride, pad;
  int64_t cols() const { return k * k * ci; }       // K
  int64_t rows_per_image() const { return ho * wo; }
};

int64_t TileRows(int64_t K) { return std::clamp<int64_t>(262144 / K, 128, 2048); }

// col (r1 - r0, K) <- the receptive fields of output rows [r0, r1).
void Im2Col(const float* x, const Geometry& g, int64_t r0, int64_t r1, float* col) {
  const int64_t hw = g.rows_per_image(), K = g.cols();
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / hw, oh = (r % hw) / g.wo, ow = r % g.wo;
    float* dst = col + (r - r0) * K;
    const float* image = x + n * g.h * g.w * g.ci;
    for (int64_t kh = 0; kh < g.k; ++kh) {
      const int64_t ih = oh * g.stride - g.pad + kh;
      if (ih < 0 || ih >= g.h) {
        std::memset(dst, 0, g.k * g.ci * sizeof(float));
        dst += g.k * g.ci;
        continue;
      }
      for (int64_t kw = 0; kw < g.k; ++kw, dst += g.ci) {
        const int64_t iw = ow * g.stride - g.pad + kw;
        if (iw < 0 || iw >= g.w)
          std::memset(dst, 0, g.ci * sizeof(float));
        else
          std::memcpy(dst, image + (ih * g.w + iw) * g.ci, g.ci * sizeof(float));
      }
    }
  }
}

// dx += the columns of dcol (r1 - r0, K), each added back at the pixel it was copied from.
void Col2ImAdd(const float* dcol, const Geometry& g, int64_t r0, int64_t r1, float* dx) {
  const int64_t hw = g.rows_per_image(), K = g.cols();
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / hw, oh = (r % hw) / g.wo, ow = r % g.wo;
    const float* src = dcol + (r - r0) * K;
    float* image = dx + n * g.h * g.w * g.ci;
    for (int64_t kh = 0; kh < g.k; ++kh) {
      const int64_t ih = oh * g.stride - g.pad + kh;
      if (ih < 0 || ih >= g.h) {
        src += g.k * g.ci;
        continue;
      }
      for (int64_t kw = 0; kw < g.k; ++kw, src += g.ci) {
        const int64_t iw = ow * g.stride - g.pad + kw;
        if (iw < 0 || iw >= g.w) continue;
        float* d = image + (ih * g.w + iw) * g.ci;
        for (int64_t c = 0; c < g.ci; ++c) d[c] += src[c];
      }
    }
  }
}

class Conv2d final : public Layer {
 public:
  Conv2d(const ConvSpec& spec, Param* weight, Param* bias) : spec_(spec), w_(weight), b_(bias) {}
  std::string_view type() const override { return "conv2d"; }

  // in[0] x: (N, H, W, Cin) -> out y: (N, Ho, Wo, Cout)
  void Forward(std::span<const Tensor* const> in, Tensor* out, bool) override {
    const Tensor& x = *in[0];
    const Geometry g = Geo(x);
    out->Resize({g.n, g.ho, g.wo, g.co});
    const int64_t rows = g.n * g.rows_per_image(), K = g.cols(), tile = TileRows(K);
    const int64_t tiles = (rows + tile - 1) / tile;
    CMap w(w_->value.data(), K, g.co);
    if (UseDirect(g)) {
      DirectConv(x.data(), Shape(g), w_->value.data(), out->data());
      if (b_) Map(out->data(), rows, g.co).rowwise() +=
          Eigen::Map<const Eigen::RowVectorXf>(b_->value.data(), g.co);
      return;
    }
    ParallelRange(tiles, 1, [&](int64_t t0, int64_t t1) {
      thread_local std::vector<float> col;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t r0 = t * tile, r1 = std::min(rows, r0 + tile);
        const float* a = x.data() + r0 * K;
        if (!Pointwise()) {
          col.resize(tile * K);
          Im2Col(x.data(), g, r0, r1, col.data());
          a = col.data();
        }
        Map y(out->data() + r0 * g.co, r1 - r0, g.co);
        y.noalias() = CMap(a, r1 - r0, K) * w;
        if (b_) y.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(b_->value.data(), g.co);
      }
    });
  }

  // dout dy: (N, Ho, Wo, Cout) -> din[0] dx: (N, H, W, Cin); weight grad (KH, KW, Cin, Cout) +=
  void Backward(std::span<const Tensor* const> in, const Tensor&, const Tensor& dout,
                std::span<Tensor* const> din) override {
    const Tensor& x = *in[0];
    const Geometry g = Geo(x);
    // Weight-gradient partials: one buffer per calling thread, shared by every conv layer (layers
    // run one at a time), so a deep model holds one, not one per layer. (A reference, so that the
    // worker threads in the lambdas below use the caller's buffer, not their own thread_local.)
    thread_local std::vector<float> partials_buffer;
    std::vector<float>& partials = partials_buffer;
    // The direct kernels take the weight gradient when the channel counts suit them, and the
    // input gradient when Cin is a multiple of 16: for stride 1 a stride-1 convolution of dy
    // padded by k - 1 - p with the kernel flipped and its channel axes swapped, for larger strides
    // per-tap products scattered back. im2col + GEMM does the rest.
    const bool direct_w = UseDirect(g) && DirectWeightGradSupported(Shape(g));
    const bool direct_dx = din[0] && DirectInputGrad(g);
    Tensor* dx = direct_dx ? nullptr : din[0];
    const int64_t K = g.cols(), hw = g.rows_per_image(), tile = TileRows(K);
    // Groups: at most 32, fewer when the weight is large (each group holds a dW partial).
    const int64_t weight_size = K * g.co + g.co;  // dW, then db
    const int64_t groups = std::clamp<int64_t>((int64_t{64} << 20) / (weight_size * 4), 1,
                                               std::min<int64_t>(32, g.n));
    if (direct_w) {
      // Direct weight-gradient parts: at most 2 MB of partials in all (they are written, then
      // summed element by element in part order, in parallel over the elements).
      const int64_t wsize = K * g.co;
      const int64_t parts = std::clamp<int64_t>((int64_t{2} << 20) / (wsize * 4), 1,
                                                std::min<int64_t>(32, g.n));
      partials.resize(parts * wsize);
      DirectConvWeightGrad(x.data(), Shape(g), dout.data(), parts, partials.data());
      float* grad = w_->grad.data();
      const float* part = partials.data();
      ParallelRange(wsize, 4096, [&](int64_t i0, int64_t i1) {
        for (int64_t p = 0; p < parts; ++p)
          for (int64_t i = i0; i < i1; ++i) grad[i] += part[p * wsize + i];
      });
      if (b_) {
        // db = column sums of dy: fixed row parts summed in double, added in part order.
        const int64_t rows = g.n * hw, parts = std::min<int64_t>(32, rows);
        std::vector<double> db(parts * g.co, 0.0);
        const float* dy = dout.data();
        ParallelParts(rows, parts, [&](int64_t p, int64_t r0, int64_t r1) {
          double* acc = db.data() + p * g.co;
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t c = 0; c < g.co; ++c) acc[c] += dy[r * g.co + c];
        });
        for (int64_t c = 0; c < g.co; ++c) {
          double sum = 0;
          for (int64_t p = 0; p < parts; ++p) sum += db[p * g.co + c];
          b_->grad[c] += static_cast<float>(sum);
        }
      }
    }
    if (direct_dx) InputGradDirect(g, dout, din[0]);
    if (direct_w && !dx) return;
    if (dx) dx->Resize(x.shape());
    CMap w(w_->value.data(), K, g.co);
    if (!direct_w) partials.resize(groups * weight_size);
    ParallelParts(g.n, groups, [&](int64_t p, int64_t n0, int64_t n1) {
      thread_local std::vector<float> col, dcol;
      Map dw(partials.data() + p * weight_size, direct_w ? 0 : K, g.co);
      Eigen::Map<Eigen::RowVectorXf> db(partials.data() + p * weight_size + K * g.co,
                                        direct_w ? 0 : g.co);
      dw.setZero();
      db.setZero();
      if (dx) std::memset(dx->data() + n0 * g.h * g.w * g.ci, 0, (n1 - n0) * g.h * g.w * g.ci * 4);
      for (int64_t r0 = n0 * hw; r0 < n1 * hw; r0 += tile) {
        const int64_t r1 = std::min(n1 * hw, r0 + tile), m = r1 - r0;
        CMap dy(dout.data() + r0 * g.co, m, g.co);
        if (!direct_w) {
          const float* a = x.data() + r0 * K;
          if (!Pointwise()) {
            col.resize(tile * K);
            Im2Col(x.data(), g, r0, r1, col.data());
            a = col.data();
          }
          dw.noalias() += CMap(a, m, K).transpose() * dy;
          if (b_) db += dy.colwise().sum();
        }
        if (!dx) continue;
        if (Pointwise()) {
          Map(dx->data() + r0 * K, m, K).noalias() = dy * w.transpose();
        } else {
          dcol.resize(tile * K);
          Map(dcol.data(), m, K).noalias() = dy * w.transpose();
          Col2ImAdd(dcol.data(), g, r0, r1, dx->data());
        }
      }
    });
    if (direct_w) return;
    float* grad = w_->grad.data();
    for (int64_t p = 0; p < std::min(groups, g.n); ++p) {
      const float* part = partials.data() + p * weight_size;
      for (int64_t i = 0; i < K * g.co; ++i) grad[i] += part[i];
      if (b_)
        for (int64_t c = 0; c < g.co; ++c) b_->grad[c] += part[K * g.co + c];
    }
  }

  int64_t MacsPerImage(std::span<const Tensor* const> in, const Tensor& out) const override {
    return out.dim(1) * out.dim(2) * out.dim(3) * spec_.kernel * spec_.kernel * in[0]->dim(3);
  }

  // dx: (N, H, W, Cin) <- stride 1: dy convolved with the flipped, transposed kernel; larger
  // strides: each tap's dy x W^T scattered back (direct_conv.h).
  void InputGradDirect(const Geometry& g, const Tensor& dout, Tensor* dx) {
    const int64_t k = g.k;
    const bool flip = g.stride == 1;
    transposed_.resize(k * k * g.co * g.ci);
    const float* wv = w_->value.data();
    for (int64_t kh = 0; kh < k; ++kh)
      for (int64_t kw = 0; kw < k; ++kw) {
        const int64_t src_tap = flip ? (k - 1 - kh) * k + (k - 1 - kw) : kh * k + kw;
        for (int64_t i = 0; i < g.ci; ++i)
          for (int64_t o = 0; o < g.co; ++o)
            transposed_[((kh * k + kw) * g.co + o) * g.ci + i] = wv[(src_tap * g.ci + i) * g.co + o];
      }
    dx->Resize({g.n, g.h, g.w, g.ci});
    if (flip)
      DirectConv(dout.data(), InputGradShape(g), transposed_.data(), dx->data());
    else
      DirectConvInputGradScatter(dout.data(), Shape(g), transposed_.data(), dx->data());
  }

 private:
  bool Pointwise() const { return spec_.kernel == 1 && spec_.stride == 1 && spec_.padding == 0; }
  static DirectShape Shape(const Geometry& g) {
    return {g.n, g.h, g.w, g.ci, g.k, g.stride, g.pad, g.co};
  }
  // The input gradient as a convolution: dy (N, Ho, Wo, Cout), padded by k - 1 - p, to Cin.
  static DirectShape InputGradShape(const Geometry& g) {
    return {g.n, g.ho, g.wo, g.co, g.k, 1, g.k - 1 - g.pad, g.ci};
  }
  // The direct kernels for the forward pass and the weight gradient. A 1x1 convolution with many
  // input channels is a GEMM Eigen already runs well; small ones (and strided ones, which would
  // need a gather) go direct. Maps narrower than 4 pixels (VGG's last stages) leave the register
  // tile mostly empty: GEMM.
  static bool UseDirect(const Geometry& g) {
    return DirectConvSupported(Shape(g)) && (g.k > 1 || g.ci <= 64) && g.wo >= 4;
  }
  static bool DirectInputGrad(const Geometry& g) {
    if ((g.k == 1 && g.co > 64) || g.w < 4 || g.wo < 4) return false;
    if (g.stride == 1) return g.pad < g.k && DirectConvSupported(InputGradShape(g));
    return DirectInputGradScatterSupported(Shape(g));
  }
  Geometry Geo(const Tensor& x) const {
    Geometry g;
    g.n = x.dim(0), g.h = x.dim(1), g.w = x.dim(2), g.ci = x.dim(3);
    g.k = spec_.kernel, g.stride = spec_.stride, g.pad = spec_.padding, g.co = spec_.out_channels;
    g.ho = (g.h + 2 * g.pad - g.k) / g.stride + 1;
    g.wo = (g.w + 2 * g.pad - g.k) / g.stride + 1;
    return g;
  }

  ConvSpec spec_;
  Param* w_;
  Param* b_;  // null: no bias
  std::vector<float> transposed_;  // the input-gradient kernel (k, k, Cout, Cin); stride 1: flipped
};

}  // namespace

std::unique_ptr<Layer> MakeConv2d(const ConvSpec& spec, Param* weight, Param* bias) {
  return std::make_unique<Conv2d>(spec, weight, bias);
}

}  // namespace sluice::train
