// Direct convolution kernels on unpadded NHWC activations and (KH, KW, Cin, Cout) weights, for
// stride 1 or 2 and Cout a multiple of 16: a register tile of WB output pixels x CB 16-channel
// vectors accumulates over (kh, kw, ci), one broadcast input value times CB weight vectors per
// step (the blocking of oneDNN's jit:avx512 direct convolution). Zero padding is never
// materialized as a tensor: the forward pass copies each input row it needs once into a small
// per-thread ring of padded rows (L1-resident), and the weight gradient clips each (kh, kw) tap's
// pixel range to the valid inputs. Used for the forward pass and, with flipped and transposed
// weights, for the input gradient of stride-1 convolutions; im2col + GEMM does everything else.
// Written with GCC vector extensions: AVX-512 registers under -march=native, narrower elsewhere.
#ifndef SLUICE_TRAIN_SRC_DIRECT_CONV_H_
#define SLUICE_TRAIN_SRC_DIRECT_CONV_H_

#include <cstdint>

namespace sluice::train {

struct DirectShape {
  int64_t n, h, w, ci;  // input (N, H, W, Cin)
  int64_t k, stride, pad;
  int64_t co;
  int64_t ho() const { return (h + 2 * pad - k) / stride + 1; }
  int64_t wo() const { return (w + 2 * pad - k) / stride + 1; }
};

// Whether DirectConv handles this shape: Cout % 16 == 0, stride 1 or 2, pad < k.
bool DirectConvSupported(const DirectShape& s);

// x: (N, H, W, Ci); w: (k, k, Ci, Co); y: (N, Ho, Wo, Co). Parallel over output rows
// (deterministic: no reductions).
void DirectConv(const float* x, const DirectShape& s, const float* w, float* y);

// The input gradient of any stride, dx (N, H, W, Ci) = sum over output pixels and taps of
// dy x W^T scattered back to the tap's input pixel: per tap a register-tiled 1x1 product of a dy
// row tile with wt (k, k, Co, Ci) (each tap's weights transposed), added into dx. Parallel over
// images, each pixel's contributions added in a fixed order. Needs Ci % 16 == 0 and pad < k.
bool DirectInputGradScatterSupported(const DirectShape& s);
void DirectConvInputGradScatter(const float* dy, const DirectShape& s, const float* wt, float* dx);

// Whether DirectConvWeightGrad handles this shape (DirectConvSupported and a Cin the channel
// blocking divides).
bool DirectWeightGradSupported(const DirectShape& s);

// dw (k, k, Ci, Co) = sum over output pixels of the input patch x dy (N, Ho, Wo, Co): the batch is
// cut into `parts` image ranges (a function of the shapes only), each summed into its own
// k*k*Ci*Co block of `partials`; the caller adds the blocks in order.
void DirectConvWeightGrad(const float* x, const DirectShape& s, const float* dy, int64_t parts,
                          float* partials);

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_SRC_DIRECT_CONV_H_
