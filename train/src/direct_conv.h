// Direct convolution kernels for stride-1 convolutions with Cout a multiple of 16, on a
// zero-padded NHWC input: a register tile of WB output pixels x CB 16-channel vectors accumulates
// over (kh, kw, ci), one broadcast input value times CB weight vectors per step (the blocking of
// oneDNN's jit:avx512 direct convolution). Used for the forward pass and, with flipped and
// transposed weights, for the input gradient; im2col + GEMM does everything else.
// Written with GCC vector extensions: AVX-512 registers under -march=native, narrower elsewhere.
#ifndef SLUICE_TRAIN_SRC_DIRECT_CONV_H_
#define SLUICE_TRAIN_SRC_DIRECT_CONV_H_

#include <cstdint>

namespace sluice::train {

// xp: (N, Hp, Wp, Ci) padded input; w: (k, k, Ci, Co); y: (N, Hp - k + 1, Wp - k + 1, Co).
// Co % 16 == 0. Parallel over output rows (deterministic: no reductions).
void DirectConvStride1(const float* xp, int64_t n, int64_t hp, int64_t wp, int64_t ci,
                       const float* w, int64_t k, int64_t co, float* y);

// The weight gradient of the same geometry, dw (k, k, Ci, Co) = sum over pixels of xp patches x dy
// (N, Ho, Wo, Co): the batch is cut into `parts` image ranges (a function of the shapes only),
// each summed into its own k*k*Ci*Co block of `partials`; the caller adds the blocks in order.
bool DirectWeightGradSupported(int64_t ci, int64_t co);
void DirectConvWeightGradStride1(const float* xp, int64_t n, int64_t hp, int64_t wp, int64_t ci,
                                 const float* dy, int64_t k, int64_t co, int64_t parts,
                                 float* partials);

// dst (N, H + 2p, W + 2p, C) <- src (N, H, W, C) with a zero border of p.
void PadNhwc(const float* src, int64_t n, int64_t h, int64_t w, int64_t c, int64_t p, float* dst);

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_SRC_DIRECT_CONV_H_
