#include "direct_conv.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "parallel.h"

namespace sluice::train {
namespace {

typedef float v16 __attribute__((vector_size(64)));

inline v16 Load(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void Store(float* p, v16 v) { std::memcpy(p, &v, sizeof(v)); }
// (Not `v16{} + s`: that is a real addition of +0.0, one more instruction per broadcast.)
inline v16 Broadcast(float s) { return v16{s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}; }

// One tile: WB pixels (stride ci in xp, stride co in y) x CB vectors of output channels. CI > 0
// fixes the input channel count at compile time, so pixel offsets become immediates.
template <int WB, int CB, int CI>
inline void Tile(const float* xp, int64_t row_stride, int64_t ci_runtime, const float* w, int64_t k,
                 int64_t co, float* y) {
  const int64_t ci = CI > 0 ? CI : ci_runtime;
  v16 acc[WB][CB];
#pragma GCC unroll 32
  for (int p = 0; p < WB; ++p)
#pragma GCC unroll 4
    for (int c = 0; c < CB; ++c) acc[p][c] = v16{};
  for (int64_t kh = 0; kh < k; ++kh) {
    for (int64_t kw = 0; kw < k; ++kw) {
      const float* xr = xp + kh * row_stride + kw * ci;
      const float* wk = w + (kh * k + kw) * ci * co;
      for (int64_t i = 0; i < ci; ++i) {
        v16 wv[CB];
#pragma GCC unroll 4
        for (int c = 0; c < CB; ++c) wv[c] = Load(wk + i * co + c * 16);
#pragma GCC unroll 32
        for (int p = 0; p < WB; ++p) {
          const v16 xb = Broadcast(xr[p * ci + i]);
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

using TileFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, int64_t, float*);

template <int CB, int CI>
TileFn PickTile(int wb) {
  switch (wb) {
    case 28: if constexpr (CB == 1) return &Tile<28, 1, CI>; break;
    case 16: if constexpr (CB == 1) return &Tile<16, 1, CI>; break;
    case 14: if constexpr (CB <= 2) return &Tile<14, CB, CI>; break;
    case 8: if constexpr (CB <= 2) return &Tile<8, CB, CI>; break;
    case 7: return &Tile<7, CB, CI>;
    case 4: return &Tile<4, CB, CI>;
    case 1: return &Tile<1, CB, CI>;
  }
  return nullptr;
}

template <int CI>
TileFn PickCb(int cb, int wb) {
  switch (cb) {
    case 1: return PickTile<1, CI>(wb);
    case 2: return PickTile<2, CI>(wb);
    case 4: return PickTile<4, CI>(wb);
  }
  return nullptr;
}

TileFn Pick(int cb, int wb, int64_t ci) {
  switch (ci) {
    case 16: return PickCb<16>(cb, wb);
    case 32: return PickCb<32>(cb, wb);
    case 64: return PickCb<64>(cb, wb);
  }
  return PickCb<0>(cb, wb);
}

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

void PadNhwc(const float* src, int64_t n, int64_t h, int64_t w, int64_t c, int64_t p, float* dst) {
  const int64_t hp = h + 2 * p, wp = w + 2 * p;
  ParallelRange(n * hp, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t img = r / hp, row = r % hp;
      float* d = dst + r * wp * c;
      if (row < p || row >= h + p) {
        std::memset(d, 0, wp * c * sizeof(float));
        continue;
      }
      std::memset(d, 0, p * c * sizeof(float));
      std::memcpy(d + p * c, src + ((img * h) + row - p) * w * c, w * c * sizeof(float));
      std::memset(d + (p + w) * c, 0, p * c * sizeof(float));
    }
  });
}

void DirectConvStride1(const float* xp, int64_t n, int64_t hp, int64_t wp, int64_t ci,
                       const float* w, int64_t k, int64_t co, float* y) {
  const int64_t ho = hp - k + 1, wo = wp - k + 1;
  const int cb = co % 64 == 0 ? 4 : co % 32 == 0 ? 2 : 1;
  const int wb = TileWidth(cb, wo);
  const TileFn tile = Pick(cb, wb, ci), single = Pick(cb, 1, ci);
  const int64_t row_stride = wp * ci;
  ParallelRange(n * ho, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t img = r / ho, oh = r % ho;
      const float* xrow = xp + (img * hp + oh) * row_stride;
      float* yrow = y + r * wo * co;
      for (int64_t c0 = 0; c0 < co; c0 += cb * 16) {
        int64_t ow = 0;
        for (; ow + wb <= wo; ow += wb) tile(xrow + ow * ci, row_stride, ci, w + c0, k, co, yrow + ow * co + c0);
        for (; ow < wo; ++ow) single(xrow + ow * ci, row_stride, ci, w + c0, k, co, yrow + ow * co + c0);
      }
    }
  });
}

}  // namespace sluice::train

namespace sluice::train {
namespace {

// dw[i][c] += sum over the pixels of `images` images of xp(pixel shifted by kh, kw)[i] * dy[c], for
// CIB input channels x CB output vectors.
template <int CIB, int CB, int CI>
void WeightGradTile(const float* xp, const float* dy, int64_t images, int64_t ho, int64_t wo,
                    int64_t hp, int64_t wp, int64_t ci_runtime, int64_t co, float* dw) {
  const int64_t ci = CI > 0 ? CI : ci_runtime;
  v16 acc[CIB][CB];
#pragma GCC unroll 16
  for (int i = 0; i < CIB; ++i)
#pragma GCC unroll 4
    for (int c = 0; c < CB; ++c) acc[i][c] = v16{};
  for (int64_t img = 0; img < images; ++img) {
    for (int64_t oh = 0; oh < ho; ++oh) {
      const float* xr = xp + ((img * hp + oh) * wp) * ci;
      const float* dr = dy + ((img * ho + oh) * wo) * co;
      for (int64_t ow = 0; ow < wo; ++ow) {
        v16 d[CB];
#pragma GCC unroll 4
        for (int c = 0; c < CB; ++c) d[c] = Load(dr + ow * co + c * 16);
#pragma GCC unroll 16
        for (int i = 0; i < CIB; ++i) {
          const v16 xb = Broadcast(xr[ow * ci + i]);
#pragma GCC unroll 4
          for (int c = 0; c < CB; ++c) acc[i][c] += xb * d[c];
        }
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < CIB; ++i)
#pragma GCC unroll 4
    for (int c = 0; c < CB; ++c) Store(dw + i * co + c * 16, Load(dw + i * co + c * 16) + acc[i][c]);
}

using WgradFn = void (*)(const float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                         int64_t, int64_t, float*);

template <int CI>
WgradFn PickWgradCi(int cb) {
  switch (cb) {
    case 1: return &WeightGradTile<16, 1, CI>;
    case 2: return &WeightGradTile<8, 2, CI>;
    case 4: return &WeightGradTile<4, 4, CI>;
  }
  return nullptr;
}

int WgradCb(int64_t co) { return co % 64 == 0 ? 4 : co % 32 == 0 ? 2 : 1; }
int WgradCib(int cb) { return cb == 1 ? 16 : cb == 2 ? 8 : 4; }

}  // namespace

bool DirectWeightGradSupported(int64_t ci, int64_t co) {
  return co % 16 == 0 && ci % WgradCib(WgradCb(co)) == 0;
}

void DirectConvWeightGradStride1(const float* xp, int64_t n, int64_t hp, int64_t wp, int64_t ci,
                                 const float* dy, int64_t k, int64_t co, int64_t parts,
                                 float* partials) {
  const int64_t ho = hp - k + 1, wo = wp - k + 1, wsize = k * k * ci * co;
  const int cb = WgradCb(co), cib = WgradCib(cb);
  WgradFn fn = ci == 16 ? PickWgradCi<16>(cb)
               : ci == 32 ? PickWgradCi<32>(cb)
               : ci == 64 ? PickWgradCi<64>(cb)
                          : PickWgradCi<0>(cb);
  ParallelParts(n, parts, [&](int64_t p, int64_t n0, int64_t n1) {
    float* dw = partials + p * wsize;
    std::memset(dw, 0, wsize * sizeof(float));
    // Small image groups keep this part's xp and dy rows in L2 across the k*k*blocks passes.
    const int64_t step = std::max<int64_t>(1, (int64_t{256} << 10) / ((hp * wp * ci + ho * wo * co) * 4));
    for (int64_t g0 = n0; g0 < n1; g0 += step) {
      const int64_t g1 = std::min(n1, g0 + step);
      for (int64_t kh = 0; kh < k; ++kh)
        for (int64_t kw = 0; kw < k; ++kw)
          for (int64_t i0 = 0; i0 < ci; i0 += cib)
            for (int64_t c0 = 0; c0 < co; c0 += cb * 16)
              fn(xp + ((g0 * hp + kh) * wp + kw) * ci + i0, dy + g0 * ho * wo * co + c0, g1 - g0, ho,
                 wo, hp, wp, ci, co, dw + ((kh * k + kw) * ci + i0) * co + c0);
    }
  });
}

}  // namespace sluice::train
