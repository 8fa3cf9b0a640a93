#include "direct_conv.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "parallel.h"

namespace sluice::train {
namespace {

typedef float v16 __attribute__((vector_size(64)));

constexpr int64_t kMaxKernel = 16;

inline v16 Load(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void Store(float* p, v16 v) { std::memcpy(p, &v, sizeof(v)); }
// (Not `v16{} + s`: that is a real addition of +0.0, one more instruction per broadcast.)
inline v16 Broadcast(float s) { return v16{s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}; }

// [lo, hi): the output positions o in [0, out) whose input position o * stride + off lies in
// [0, in).
inline void ValidRange(int64_t out, int64_t in, int64_t stride, int64_t off, int64_t* lo,
                       int64_t* hi) {
  *lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  *hi = in - 1 - off < 0 ? 0 : std::min(out, (in - 1 - off) / stride + 1);
  if (*hi < *lo) *hi = *lo;
}

// One tile: WB output pixels (input pixel stride S * ci, output stride co) x CB vectors of output
// channels, summed over kernel rows [kh0, kh1) (the others fall in the zero padding). rows[kh] is
// the tile's input row for kernel row kh, in padded column coordinates; x_off the tile's first
// column offset in it. CI > 0 fixes the input channel count at compile time, so pixel offsets
// become immediates.
template <int WB, int CB, int CI, int S>
void Tile(const float* const* rows, int64_t kh0, int64_t kh1, int64_t x_off, int64_t ci_runtime,
          const float* w, int64_t k, int64_t co, float* y) {
  const int64_t ci = CI > 0 ? CI : ci_runtime;
  v16 acc[WB][CB];
#pragma GCC unroll 32
  for (int p = 0; p < WB; ++p)
#pragma GCC unroll 4
    for (int c = 0; c < CB; ++c) acc[p][c] = v16{};
  for (int64_t kh = kh0; kh < kh1; ++kh) {
    for (int64_t kw = 0; kw < k; ++kw) {
      const float* xr = rows[kh] + x_off + kw * ci;
      const float* wk = w + (kh * k + kw) * ci * co;
      for (int64_t i = 0; i < ci; ++i) {
        v16 wv[CB];
#pragma GCC unroll 4
        for (int c = 0; c < CB; ++c) wv[c] = Load(wk + i * co + c * 16);
#pragma GCC unroll 32
        for (int p = 0; p < WB; ++p) {
          const v16 xb = Broadcast(xr[p * S * ci + i]);
#pragma GCC unroll 4
          for (int c = 0; c < CB; ++c) acc[p][c] += xb * wv[c];
        }
      }
    }
  }
#pragma GCC unroll 32
  for (int p = 0; p < WB; ++p)
#pragma GCC unroll 4
    for (int c = 0; c < CB; ++c) Store(y + p * co + c * 16, acc[p][c]);
}

using TileFn = void (*)(const float* const*, int64_t, int64_t, int64_t, int64_t, const float*,
                        int64_t, int64_t, float*);

template <int CB, int CI, int S>
TileFn PickTile(int wb) {
  switch (wb) {
    case 28: if constexpr (CB == 1) return &Tile<28, 1, CI, S>; break;
    case 16: if constexpr (CB == 1) return &Tile<16, 1, CI, S>; break;
    case 14: if constexpr (CB <= 2) return &Tile<14, CB, CI, S>; break;
    case 8: if constexpr (CB <= 2) return &Tile<8, CB, CI, S>; break;
    case 7: return &Tile<7, CB, CI, S>;
    case 4: return &Tile<4, CB, CI, S>;
    case 1: return &Tile<1, CB, CI, S>;
  }
  return nullptr;
}

template <int CI, int S>
TileFn PickCb(int cb, int wb) {
  switch (cb) {
    case 1: return PickTile<1, CI, S>(wb);
    case 2: return PickTile<2, CI, S>(wb);
    case 4: return PickTile<4, CI, S>(wb);
  }
  return nullptr;
}

template <int S>
TileFn PickCi(int cb, int wb, int64_t ci) {
  switch (ci) {
    case 16: return PickCb<16, S>(cb, wb);
    case 32: return PickCb<32, S>(cb, wb);
    case 64: return PickCb<64, S>(cb, wb);
  }
  return PickCb<0, S>(cb, wb);
}

TileFn Pick(int cb, int wb, int64_t ci, int64_t stride) {
  return stride == 1 ? PickCi<1>(cb, wb, ci) : PickCi<2>(cb, wb, ci);
}

int VectorsPerTile(int64_t co) { return co % 64 == 0 ? 4 : co % 32 == 0 ? 2 : 1; }

// The widest tile for this output width: one that divides it, else the widest that fits.
int TileWidth(int cb, int64_t wo) {
  static const int kOptions[3][6] = {{28, 16, 14, 8, 7, 4}, {14, 8, 7, 4, 0, 0}, {7, 4, 0, 0, 0, 0}};
  const int* options = kOptions[cb == 1 ? 0 : cb == 2 ? 1 : 2];
  for (int i = 0; i < 6 && options[i]; ++i)
    if (wo % options[i] == 0) return options[i];
  for (int i = 0; i < 6 && options[i]; ++i)
    if (options[i] <= wo) return options[i];
  return 1;
}

}  // namespace

bool DirectConvSupported(const DirectShape& s) {
  return s.co % 16 == 0 && (s.stride == 1 || s.stride == 2) && s.pad < s.k && s.k <= kMaxKernel &&
         s.ho() > 0 && s.wo() > 0;
}

void DirectConv(const float* x, const DirectShape& s, const float* w, float* y) {
  const int64_t ho = s.ho(), wo = s.wo(), k = s.k, ci = s.ci, co = s.co, pad = s.pad;
  const int64_t stride = s.stride, wp = s.w + 2 * pad, slot = wp * ci;
  int cb = VectorsPerTile(co);
  int wb = TileWidth(cb, wo);
  // A weight slice beyond half of L2 is re-read from L2 for every tile: then more pixels per tile
  // (fewer channel vectors) halves that traffic per FMA.
  if (k * k * ci * cb * 16 * 4 > (256 << 10) && cb > 1 && TileWidth(cb / 2, wo) > wb) {
    cb /= 2;
    wb = TileWidth(cb, wo);
  }
  const TileFn tile = Pick(cb, wb, ci, stride), single = Pick(cb, 1, ci, stride);
  // Output rows go in blocks whose input rows (a contiguous range of row tags img * H + ih) take
  // at most ~384 KB; within a block the output-channel slices are the outer loop, so a slice of
  // the weights (k * k * Cin x 16 * cb) is read once per block rather than once per output row
  // (which streamed the whole kernel from memory for every row of a 256/512-channel layer). With
  // padding, the block's input rows are first copied into a per-thread buffer of zero-bordered
  // rows, so the zero padding never exists as a tensor; without, the tiles read x directly.
  const int64_t max_rows = std::max<int64_t>(k, (int64_t{384} << 10) / (slot * 4));
  ParallelRange(s.n * ho, 1, [&](int64_t r0, int64_t r1) {
    thread_local std::vector<float> padded;
    thread_local std::vector<const float*> rows;  // (block row, kh) -> input row
    for (int64_t b0 = r0; b0 < r1;) {
      int64_t b1 = b0, t0 = -1, t1 = -1;  // the block's input row tags: [t0, t1]
      for (; b1 < r1; ++b1) {
        const int64_t img = b1 / ho, ih0 = (b1 % ho) * stride - pad;
        const int64_t lo = img * s.h + std::max<int64_t>(0, ih0);
        const int64_t hi = img * s.h + std::min(s.h, ih0 + k) - 1;
        if (b1 > b0 && std::max(t1, hi) - t0 + 1 > max_rows) break;
        if (t0 < 0) t0 = lo;
        t1 = std::max(t1, hi);
      }
      if (pad > 0) {
        padded.resize((t1 - t0 + 1) * slot);
        for (int64_t t = t0; t <= t1; ++t) {
          float* d = padded.data() + (t - t0) * slot;
          std::memset(d, 0, pad * ci * sizeof(float));
          std::memcpy(d + pad * ci, x + t * s.w * ci, s.w * ci * sizeof(float));
          std::memset(d + (pad + s.w) * ci, 0, pad * ci * sizeof(float));
        }
      }
      rows.resize((b1 - b0) * k);
      for (int64_t r = b0; r < b1; ++r) {
        const int64_t img = r / ho, ih0 = (r % ho) * stride - pad;
        for (int64_t kh = std::max<int64_t>(0, -ih0); kh < std::min(k, s.h - ih0); ++kh) {
          const int64_t t = img * s.h + ih0 + kh;
          rows[(r - b0) * k + kh] = pad > 0 ? padded.data() + (t - t0) * slot : x + t * s.w * ci;
        }
      }
      for (int64_t c0 = 0; c0 < co; c0 += cb * 16) {
        for (int64_t r = b0; r < b1; ++r) {
          const int64_t ih0 = (r % ho) * stride - pad;
          const int64_t kh0 = std::max<int64_t>(0, -ih0), kh1 = std::min(k, s.h - ih0);
          const float* const* rr = rows.data() + (r - b0) * k;
          float* yrow = y + r * wo * co;
          int64_t ow = 0;
          for (; ow + wb <= wo; ow += wb)
            tile(rr, kh0, kh1, ow * stride * ci, ci, w + c0, k, co, yrow + ow * co + c0);
          for (; ow < wo; ++ow)
            single(rr, kh0, kh1, ow * stride * ci, ci, w + c0, k, co, yrow + ow * co + c0);
        }
      }
      b0 = b1;
    }
  });
}

bool DirectInputGradScatterSupported(const DirectShape& s) {
  return s.ci % 16 == 0 && s.pad < s.k && s.k <= kMaxKernel && s.ho() > 0 && s.wo() > 0;
}

void DirectConvInputGradScatter(const float* dy, const DirectShape& s, const float* wt, float* dx) {
  const int64_t ho = s.ho(), wo = s.wo(), k = s.k, ci = s.ci, co = s.co;
  // Per tap, a 1x1 "convolution" of a dy row tile (Cout channels in) to Cin channels out.
  const int cb = VectorsPerTile(ci);
  const int wb = TileWidth(cb, wo);
  const TileFn tile = Pick(cb, wb, co, 1), single = Pick(cb, 1, co, 1);
  ParallelRange(s.n, 1, [&](int64_t i0, int64_t i1) {
    thread_local std::vector<float> tmp;
    tmp.resize(wb * ci);
    for (int64_t img = i0; img < i1; ++img) {
      float* dximg = dx + img * s.h * s.w * ci;
      std::memset(dximg, 0, s.h * s.w * ci * sizeof(float));
      for (int64_t oh = 0; oh < ho; ++oh) {
        const float* rows[1] = {dy + (img * ho + oh) * wo * co};
        for (int64_t kh = 0; kh < k; ++kh) {
          const int64_t ih = oh * s.stride - s.pad + kh;
          if (ih < 0 || ih >= s.h) continue;
          float* dxrow = dximg + ih * s.w * ci;
          for (int64_t kw = 0; kw < k; ++kw) {
            const float* wtap = wt + (kh * k + kw) * co * ci;
            for (int64_t ow = 0; ow < wo;) {
              const int64_t width = ow + wb <= wo ? wb : 1;
              const TileFn fn = width == wb ? tile : single;
              for (int64_t c0 = 0; c0 < ci; c0 += cb * 16)
                fn(rows, 0, 1, ow * co, co, wtap + c0, 1, ci, tmp.data() + c0);
              for (int64_t p = 0; p < width; ++p) {
                const int64_t iw = (ow + p) * s.stride - s.pad + kw;
                if (iw < 0 || iw >= s.w) continue;
                float* d = dxrow + iw * ci;
                const float* t = tmp.data() + p * ci;
                for (int64_t c = 0; c < ci; c += 16) Store(d + c, Load(d + c) + Load(t + c));
              }
              ow += width;
            }
          }
        }
      }
    }
  });
}

namespace {

// One (kh, kw) tap's pixels for a block of CIB input channels x CB output vectors:
// dw[i][c] += sum over images, over output rows [oh0, oh1) and columns [ow0, ow1) (the ones whose
// input pixel (oh * S + ih_off, ow * S + iw_off) is inside the image) of x[i] * dy[c].
struct TapRange {
  int64_t images, oh0, oh1, ow0, ow1, ih_off, iw_off;
};

// U pixels go to U separate accumulator sets (summed at the end, in order) when CIB x CB alone is
// too few independent chains to hide the FMA latency (a 3-channel input).
template <int CIB, int CB, int CI, int S, int U = 1>
void WeightGradTile(const float* x, const float* dy, const DirectShape& s, const TapRange& t,
                    float* dw) {
  const int64_t ci = CI > 0 ? CI : s.ci, co = s.co, ho = s.ho(), wo = s.wo();
  const int64_t pixels = t.ow1 - t.ow0;
  v16 acc[U][CIB][CB];
#pragma GCC unroll 4
  for (int u = 0; u < U; ++u)
#pragma GCC unroll 16
    for (int i = 0; i < CIB; ++i)
#pragma GCC unroll 4
      for (int c = 0; c < CB; ++c) acc[u][i][c] = v16{};
  for (int64_t img = 0; img < t.images; ++img) {
    for (int64_t oh = t.oh0; oh < t.oh1; ++oh) {
      const float* xr = x + ((img * s.h + oh * S + t.ih_off) * s.w + t.ow0 * S + t.iw_off) * ci;
      const float* dr = dy + ((img * ho + oh) * wo + t.ow0) * co;
      // Pixel ow into accumulator set u (a constant once inlined and unrolled).
      auto add_pixel = [&](int64_t ow, int u) __attribute__((always_inline)) {
        v16 d[CB];
#pragma GCC unroll 4
        for (int c = 0; c < CB; ++c) d[c] = Load(dr + ow * co + c * 16);
#pragma GCC unroll 16
        for (int i = 0; i < CIB; ++i) {
          const v16 xb = Broadcast(xr[ow * S * ci + i]);
#pragma GCC unroll 4
          for (int c = 0; c < CB; ++c) acc[u][i][c] += xb * d[c];
        }
      };
      int64_t ow = 0;
      for (; ow + U <= pixels; ow += U)
#pragma GCC unroll 4
        for (int u = 0; u < U; ++u) add_pixel(ow + u, u);
      for (; ow < pixels; ++ow) add_pixel(ow, 0);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < CIB; ++i)
#pragma GCC unroll 4
    for (int c = 0; c < CB; ++c) {
      v16 sum = acc[0][i][c];
#pragma GCC unroll 4
      for (int u = 1; u < U; ++u) sum += acc[u][i][c];
      Store(dw + i * co + c * 16, Load(dw + i * co + c * 16) + sum);
    }
}

using WgradFn = void (*)(const float*, const float*, const DirectShape&, const TapRange&, float*);

template <int CI, int S>
WgradFn PickWgradCb(int cb) {
  switch (cb) {
    case 1: return &WeightGradTile<16, 1, CI, S>;
    case 2: return &WeightGradTile<8, 2, CI, S>;
    case 4: return &WeightGradTile<4, 4, CI, S>;
  }
  return nullptr;
}

template <int S>
WgradFn PickWgradCi(int cb, int64_t ci) {
  if (ci == 3) {  // an RGB input: all 3 channels in one block
    switch (cb) {
      case 1: return &WeightGradTile<3, 1, 3, S, 4>;
      case 2: return &WeightGradTile<3, 2, 3, S, 2>;
      case 4: return &WeightGradTile<3, 4, 3, S, 1>;
    }
  }
  switch (ci) {
    case 16: return PickWgradCb<16, S>(cb);
    case 32: return PickWgradCb<32, S>(cb);
    case 64: return PickWgradCb<64, S>(cb);
  }
  return PickWgradCb<0, S>(cb);
}

int WgradCib(int cb, int64_t ci) { return ci == 3 ? 3 : cb == 1 ? 16 : cb == 2 ? 8 : 4; }

}  // namespace

bool DirectWeightGradSupported(const DirectShape& s) {
  return DirectConvSupported(s) && s.ci % WgradCib(VectorsPerTile(s.co), s.ci) == 0;
}

void DirectConvWeightGrad(const float* x, const DirectShape& s, const float* dy, int64_t parts,
                          float* partials) {
  const int64_t k = s.k, ci = s.ci, co = s.co, ho = s.ho(), wo = s.wo(), wsize = k * k * ci * co;
  const int cb = VectorsPerTile(co), cib = WgradCib(cb, ci);
  const WgradFn fn = s.stride == 1 ? PickWgradCi<1>(cb, ci) : PickWgradCi<2>(cb, ci);
  ParallelParts(s.n, parts, [&](int64_t p, int64_t n0, int64_t n1) {
    float* dw = partials + p * wsize;
    std::memset(dw, 0, wsize * sizeof(float));
    // Small image groups keep this part's x and dy rows in L2 across the k*k*blocks passes.
    const int64_t step =
        std::max<int64_t>(1, (int64_t{256} << 10) / ((s.h * s.w * ci + ho * wo * co) * 4));
    for (int64_t g0 = n0; g0 < n1; g0 += step) {
      const int64_t g1 = std::min(n1, g0 + step);
      TapRange t;
      t.images = g1 - g0;
      for (int64_t kh = 0; kh < k; ++kh) {
        t.ih_off = kh - s.pad;
        ValidRange(ho, s.h, s.stride, t.ih_off, &t.oh0, &t.oh1);
        for (int64_t kw = 0; kw < k; ++kw) {
          t.iw_off = kw - s.pad;
          ValidRange(wo, s.w, s.stride, t.iw_off, &t.ow0, &t.ow1);
          if (t.oh0 == t.oh1 || t.ow0 == t.ow1) continue;
          for (int64_t i0 = 0; i0 < ci; i0 += cib)
            for (int64_t c0 = 0; c0 < co; c0 += cb * 16)
              fn(x + g0 * s.h * s.w * ci + i0, dy + g0 * ho * wo * co + c0, s, t,
                 dw + ((kh * k + kw) * ci + i0) * co + c0);
        }
      }
    }
  });
}

}  // namespace sluice::train
