#include "synthetic_image.h"

#include <algorithm>
#include <cmath>

namespace sluice::ingest {
namespace {

constexpr float kPi = 3.14159265358979f;
// Sensor noise amplitudes (8-bit levels): what makes q90 JPEGs about as large as ImageNet photos.
constexpr float kLumaNoise = 16.0f;
constexpr float kChromaNoise = 3.0f;

enum class Shape {
  kCircle,
  kSquare,
  kTriangle,
  kRing,
  kCross,
  kHexagon,
  kCrescent,
  kEllipse,
  kFlower,
  kFrame
};
enum class Texture { kSolid, kStripes, kChecks, kDots };

struct Rgb {
  float r, g, b;
};

struct Style {
  Shape shape;
  Texture texture;
  float hue;     // object hue in [0, 1)
  float sat;     // object saturation
  float val;     // object brightness
  float bg_hue;  // tint of the background
};

// Styles 0..9 have ten different shapes and hues 36 degrees apart; styles 10..19 have hues shifted
// half a step, paler colours and another texture, and reuse the shapes of the opposite hues (style
// 15 is a pale circle near cyan, style 0 a saturated red one), so no two styles are close in both.
Style StyleOf(int s) {
  const int base = s % 10;
  const bool second = s >= 10;
  Style style;
  style.shape = static_cast<Shape>(second ? (base + 5) % 10 : base);
  style.texture = static_cast<Texture>((base + (second ? 2 : 0)) % 4);
  style.hue = base / 10.0f + (second ? 0.05f : 0.0f);
  style.sat = second ? 0.55f : 0.85f;
  style.val = second ? 0.75f : 0.92f;
  const float bg = 0.37f * static_cast<float>(s) + 0.13f;
  style.bg_hue = bg - std::floor(bg);
  return style;
}

Rgb Hsv(float h, float s, float v) {
  h = (h - std::floor(h)) * 6.0f;
  const int i = static_cast<int>(h) % 6;
  const float f = h - std::floor(h);
  const float p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  Rgb c{};
  switch (i) {
    case 0:
      c = {v, t, p};
      break;
    case 1:
      c = {q, v, p};
      break;
    case 2:
      c = {p, v, t};
      break;
    case 3:
      c = {p, q, v};
      break;
    case 4:
      c = {t, p, v};
      break;
    default:
      c = {v, p, q};
      break;
  }
  return {c.r * 255, c.g * 255, c.b * 255};
}

float Length(float x, float y) { return std::sqrt(x * x + y * y); }

// Signed distance (negative inside) to a centred box with half-sides bx, by.
float BoxSdf(float x, float y, float bx, float by) {
  const float qx = std::fabs(x) - bx, qy = std::fabs(y) - by;
  return Length(std::max(qx, 0.0f), std::max(qy, 0.0f)) + std::min(std::max(qx, qy), 0.0f);
}

// Signed distances after Inigo Quilez's 2D distance functions
// (iquilezles.org/articles/distfunctions2d); some (crescent, ellipse, flower) are approximations,
// which only soften their anti-aliasing a little. Unit scale: every shape fits in the unit disc,
// give or take a few percent.
float ShapeSdf(Shape shape, float u, float v) {
  switch (shape) {
    case Shape::kCircle:
      return Length(u, v) - 0.95f;
    case Shape::kSquare:
      return BoxSdf(u, v, 0.72f, 0.72f);
    case Shape::kTriangle: {
      // Equilateral triangle of "radius" r, shifted so its bounding box is centred.
      const float k = std::sqrt(3.0f), r = 0.85f;
      float px = std::fabs(u) - r, py = -(v - 0.245f) + r / k;
      if (px + k * py > 0) {
        const float nx = (px - k * py) / 2, ny = (-k * px - py) / 2;
        px = nx;
        py = ny;
      }
      px -= std::clamp(px, -2 * r, 0.0f);
      return -Length(px, py) * (py < 0 ? -1.0f : 1.0f);
    }
    case Shape::kRing:
      return std::fabs(Length(u, v) - 0.7f) - 0.26f;
    case Shape::kCross:
      return std::min(BoxSdf(u, v, 0.95f, 0.3f), BoxSdf(u, v, 0.3f, 0.95f));
    case Shape::kHexagon: {
      const float kx = -0.866025404f, ky = 0.5f, kz = 0.577350269f, r = 0.85f;
      float px = std::fabs(u), py = std::fabs(v);
      const float d = 2 * std::min(kx * px + ky * py, 0.0f);
      px -= d * kx;
      py -= d * ky;
      px -= std::clamp(px, -kz * r, kz * r);
      py -= r;
      return Length(px, py) * (py < 0 ? -1.0f : 1.0f);
    }
    case Shape::kCrescent:
      return std::max(Length(u, v) - 0.95f, -(Length(u - 0.45f, v) - 0.8f));
    case Shape::kEllipse:
      return (Length(u, v / 0.5f) - 0.95f) * 0.5f;
    case Shape::kFlower: {
      const float r = 0.7f + 0.25f * std::cos(5 * std::atan2(v, u));
      return (Length(u, v) - r) * 0.7f;
    }
    case Shape::kFrame:
      return std::max(BoxSdf(u, v, 0.72f, 0.72f), -BoxSdf(u, v, 0.4f, 0.4f));
  }
  return 1.0f;
}

// 0..1: how much of the secondary colour the texture shows at object coordinates (u, v).
float TextureMix(Texture texture, float u, float v) {
  switch (texture) {
    case Texture::kSolid:
      return 0.0f;
    case Texture::kStripes:
      return 0.5f + 0.5f * std::sin(u * 11.0f);
    case Texture::kChecks:
      return std::sin(u * 7.0f) * std::sin(v * 7.0f) > 0 ? 1.0f : 0.0f;
    case Texture::kDots: {
      const float du = u * 3.5f - std::round(u * 3.5f), dv = v * 3.5f - std::round(v * 3.5f);
      return std::clamp((0.3f - Length(du, dv)) * 12.0f, 0.0f, 1.0f);
    }
  }
  return 0.0f;
}

struct Placement {
  float cx, cy;  // centre, pixels
  float radius;  // pixels
  float sx, sy;  // squash (sx * sy = 1)
  float cos_t, sin_t;
  float hue_jitter;
};

// Float RGB canvas, row-major.
struct Canvas {
  int w, h;
  std::vector<float> px;
  float* At(int x, int y) { return &px[(static_cast<size_t>(y) * w + x) * 3]; }
};

// Bilinear value noise: uniform values in [-amplitude, amplitude] on a grid of `cell`-pixel
// squares, interpolated (smooth, cheap "texture").
class ValueNoise {
 public:
  ValueNoise(int w, int h, int cell, float amplitude, SplitMix64& rng)
      : w_(w), cell_(cell), gw_(w / cell + 2), grid_(static_cast<size_t>(gw_) * (h / cell + 2)) {
    for (float& g : grid_) g = static_cast<float>(rng.Uniform(-amplitude, amplitude));
  }

  // row[0..w) = the noise along image row y.
  void Row(int y, float* row) const {
    const int iy = y / cell_;
    const float ty = static_cast<float>(y - iy * cell_) / cell_;
    const float* g0 = &grid_[static_cast<size_t>(iy) * gw_];
    const float* g1 = g0 + gw_;
    const float inv = 1.0f / cell_;
    for (int j = 0, x = 0; x < w_; ++j) {
      const float a = g0[j] + (g1[j] - g0[j]) * ty;
      const float b = g0[j + 1] + (g1[j + 1] - g0[j + 1]) * ty;
      const float step = (b - a) * inv;
      for (int k = 0; k < cell_ && x < w_; ++k, ++x) row[x] = a + step * k;
    }
  }

 private:
  int w_, cell_, gw_;
  std::vector<float> grid_;
};

void PaintBackground(Canvas& c, const Style& style, SplitMix64& rng) {
  const float h0 = style.bg_hue + static_cast<float>(rng.Uniform(-0.08, 0.08));
  const Rgb c0 = Hsv(h0, static_cast<float>(rng.Uniform(0.1, 0.35)),
                     static_cast<float>(rng.Uniform(0.35, 0.85)));
  const Rgb c1 =
      Hsv(h0 + static_cast<float>(rng.Uniform(-0.1, 0.1)),
          static_cast<float>(rng.Uniform(0.1, 0.35)), static_cast<float>(rng.Uniform(0.25, 0.9)));
  const float phi = static_cast<float>(rng.Uniform(0, 2 * kPi));
  const float gx = std::cos(phi), gy = std::sin(phi);
  const float diag = Length(static_cast<float>(c.w), static_cast<float>(c.h));

  // Texture: out-of-focus mottling on a coarse grid, plus fine grain (foliage, sand, fabric) that
  // gives the JPEGs photo-like sizes.
  const ValueNoise coarse(c.w, c.h, std::max(8, std::min(c.w, c.h) / 5), 18.0f, rng);
  const ValueNoise fine(c.w, c.h, 3, static_cast<float>(rng.Uniform(10, 24)), rng);
  std::vector<float> coarse_row(c.w), fine_row(c.w);
  const float dt = gx / diag;
  for (int y = 0; y < c.h; ++y) {
    coarse.Row(y, coarse_row.data());
    fine.Row(y, fine_row.data());
    const float t0 = (-c.w * 0.5f * gx + (y - c.h * 0.5f) * gy) / diag + 0.5f;
    float* p = c.At(0, y);
    for (int x = 0; x < c.w; ++x, p += 3) {
      const float m = coarse_row[x] + fine_row[x];
      const float t = std::clamp(t0 + x * dt, 0.0f, 1.0f);
      p[0] = c0.r + (c1.r - c0.r) * t + m;
      p[1] = c0.g + (c1.g - c0.g) * t + m;
      p[2] = c0.b + (c1.b - c0.b) * t + m;
    }
  }

  // A few soft blobs of unrelated colour: clutter that is not the class object.
  const int blobs = static_cast<int>(rng.UniformInt(2, 5));
  const float min_side = static_cast<float>(std::min(c.w, c.h));
  for (int b = 0; b < blobs; ++b) {
    const float bx = static_cast<float>(rng.Uniform(0, c.w)),
                by = static_cast<float>(rng.Uniform(0, c.h));
    const float r = min_side * static_cast<float>(rng.Uniform(0.06, 0.22));
    const Rgb col =
        Hsv(static_cast<float>(rng.Uniform()), static_cast<float>(rng.Uniform(0.15, 0.5)),
            static_cast<float>(rng.Uniform(0.3, 0.9)));
    const float alpha = static_cast<float>(rng.Uniform(0.35, 0.7));
    const int x0 = std::max(0, static_cast<int>(bx - r)),
              x1 = std::min(c.w - 1, static_cast<int>(bx + r));
    const int y0 = std::max(0, static_cast<int>(by - r)),
              y1 = std::min(c.h - 1, static_cast<int>(by + r));
    for (int y = y0; y <= y1; ++y) {
      for (int x = x0; x <= x1; ++x) {
        const float d2 =
            ((x + 0.5f - bx) * (x + 0.5f - bx) + (y + 0.5f - by) * (y + 0.5f - by)) / (r * r);
        if (d2 >= 1) continue;
        const float a = alpha * (1 - d2) * (1 - d2);
        float* p = c.At(x, y);
        p[0] += (col.r - p[0]) * a;
        p[1] += (col.g - p[1]) * a;
        p[2] += (col.b - p[2]) * a;
      }
    }
  }
}

// Draws one object with 1-pixel anti-aliasing (coverage = 0.5 - signed distance in pixels) and
// returns the pixels it covers at least half.
PixelBox PaintObject(Canvas& c, const Style& style, const Placement& pl) {
  const Rgb primary = Hsv(style.hue + pl.hue_jitter, style.sat, style.val);
  const Rgb secondary{primary.r * 0.45f, primary.g * 0.45f, primary.b * 0.45f};
  const float extent = pl.radius * 1.1f * std::max(pl.sx, pl.sy) + 2;
  const int x0 = std::max(0, static_cast<int>(pl.cx - extent));
  const int x1 = std::min(c.w - 1, static_cast<int>(pl.cx + extent));
  const int y0 = std::max(0, static_cast<int>(pl.cy - extent));
  const int y1 = std::min(c.h - 1, static_cast<int>(pl.cy + extent));
  const float px_per_unit = pl.radius * std::min(pl.sx, pl.sy);
  PixelBox box{c.w, c.h, -1, -1};
  for (int y = y0; y <= y1; ++y) {
    for (int x = x0; x <= x1; ++x) {
      const float dx = x + 0.5f - pl.cx, dy = y + 0.5f - pl.cy;
      const float u = (pl.cos_t * dx + pl.sin_t * dy) / (pl.radius * pl.sx);
      const float v = (-pl.sin_t * dx + pl.cos_t * dy) / (pl.radius * pl.sy);
      const float cover = std::clamp(0.5f - ShapeSdf(style.shape, u, v) * px_per_unit, 0.0f, 1.0f);
      if (cover <= 0) continue;
      if (cover >= 0.5f) {
        box.xmin = std::min(box.xmin, x);
        box.ymin = std::min(box.ymin, y);
        box.xmax = std::max(box.xmax, x);
        box.ymax = std::max(box.ymax, y);
      }
      const float t = TextureMix(style.texture, u, v);
      // A light from the upper left gives the object some volume.
      const float light = std::clamp(1.08f - 0.15f * (u + v), 0.75f, 1.25f);
      float* p = c.At(x, y);
      const float r = (primary.r + (secondary.r - primary.r) * t) * light;
      const float g = (primary.g + (secondary.g - primary.g) * t) * light;
      const float b = (primary.b + (secondary.b - primary.b) * t) * light;
      p[0] += (r - p[0]) * cover;
      p[1] += (g - p[1]) * cover;
      p[2] += (b - p[2]) * cover;
    }
  }
  if (box.xmax < 0) {  // too small to cover half a pixel anywhere: the centre pixel
    box.xmin = box.xmax = std::clamp(static_cast<int>(pl.cx), 0, c.w - 1);
    box.ymin = box.ymax = std::clamp(static_cast<int>(pl.cy), 0, c.h - 1);
  }
  return box;
}

Placement Place(int w, int h, int objects, const Placement* other, SplitMix64& rng) {
  const float min_side = static_cast<float>(std::min(w, h));
  // Small images (CIFAR's 32x32) get relatively larger objects, as CIFAR's photos are close-ups.
  const bool small = min_side < 64;
  double lo = small ? 0.30 : 0.22, hi = small ? 0.42 : 0.36;
  if (objects > 1) {
    lo *= 0.7;
    hi *= 0.7;
  }
  Placement pl{};
  pl.radius = min_side * static_cast<float>(rng.Uniform(lo, hi));
  pl.sx = static_cast<float>(rng.Uniform(0.85, 1.15));
  pl.sy = 1 / pl.sx;
  const float theta = static_cast<float>(rng.Uniform(0, 2 * kPi));
  pl.cos_t = std::cos(theta);
  pl.sin_t = std::sin(theta);
  pl.hue_jitter = static_cast<float>(rng.Uniform(-0.025, 0.025));
  const float ext = pl.radius * std::max(pl.sx, pl.sy);
  auto coord = [&](int side) {
    return side > 2 * ext ? static_cast<float>(rng.Uniform(ext, side - ext)) : side * 0.5f;
  };
  pl.cx = coord(w);
  pl.cy = coord(h);
  if (other != nullptr) {
    // Of a few candidate centres, keep the one farthest from the first object (less occlusion).
    float best = Length(pl.cx - other->cx, pl.cy - other->cy);
    for (int i = 0; i < 4; ++i) {
      const float cx = coord(w), cy = coord(h);
      const float d = Length(cx - other->cx, cy - other->cy);
      if (d > best) {
        best = d;
        pl.cx = cx;
        pl.cy = cy;
      }
    }
  }
  return pl;
}

}  // namespace

uint64_t MixSeed(uint64_t seed, uint64_t stream, uint64_t index) {
  SplitMix64 a(seed ^ 0x5851f42d4c957f2dULL);
  SplitMix64 b(a.Next() ^ (stream * 0xd1342543de82ef95ULL));
  SplitMix64 c(b.Next() ^ index);
  return c.Next();
}

SyntheticImage RenderSyntheticImage(const SyntheticImageSpec& spec) {
  SplitMix64 rng(spec.seed);
  const Style style = StyleOf(((spec.style % kNumStyles) + kNumStyles) % kNumStyles);
  Canvas canvas{spec.width, spec.height,
                std::vector<float>(static_cast<size_t>(spec.width) * spec.height * 3)};
  PaintBackground(canvas, style, rng);

  SyntheticImage out;
  Placement first{};
  for (int i = 0; i < std::max(1, spec.objects); ++i) {
    const Placement pl = Place(spec.width, spec.height, spec.objects, i ? &first : nullptr, rng);
    if (i == 0) first = pl;
    out.boxes.push_back(PaintObject(canvas, style, pl));
  }

  // Sensor noise (mostly luminance, a little chroma) and quantisation. One 64-bit draw per pixel.
  formats::Image& img = out.image;
  img.width = spec.width;
  img.height = spec.height;
  img.channels = 3;
  img.pixels.resize(canvas.px.size());
  SplitMix64 noise(rng.Next());
  const size_t pixels = static_cast<size_t>(spec.width) * spec.height;
  const float* src = canvas.px.data();
  uint8_t* dst = img.pixels.data();
  auto quantize = [](float v) { return static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f) + 0.5f); };
  for (size_t i = 0; i < pixels; ++i, src += 3, dst += 3) {
    const uint64_t r = noise.Next();
    // Triangular luminance noise in (-kLumaNoise, kLumaNoise), uniform chroma noise of
    // +-kChromaNoise.
    const float luma =
        static_cast<float>(static_cast<int>(r & 0xff) + static_cast<int>((r >> 8) & 0xff) - 255) *
        (kLumaNoise / 255);
    const float cr =
        static_cast<float>(static_cast<int>((r >> 16) & 0xff) - 128) * (kChromaNoise / 128);
    const float cg =
        static_cast<float>(static_cast<int>((r >> 24) & 0xff) - 128) * (kChromaNoise / 128);
    const float cb =
        static_cast<float>(static_cast<int>((r >> 32) & 0xff) - 128) * (kChromaNoise / 128);
    dst[0] = quantize(src[0] + luma + cr);
    dst[1] = quantize(src[1] + luma + cg);
    dst[2] = quantize(src[2] + luma + cb);
  }
  return out;
}

formats::Image ToGray(const formats::Image& rgb) {
  formats::Image gray{rgb.width, rgb.height, 1, {}};
  const size_t n = static_cast<size_t>(rgb.width) * rgb.height;
  gray.pixels.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = &rgb.pixels[i * 3];
    gray.pixels[i] = static_cast<uint8_t>((299 * p[0] + 587 * p[1] + 114 * p[2] + 500) / 1000);
  }
  return gray;
}

formats::Image ToAdobeCmyk(const formats::Image& rgb) {
  formats::Image cmyk{rgb.width, rgb.height, 4, {}};
  const size_t n = static_cast<size_t>(rgb.width) * rgb.height;
  cmyk.pixels.resize(n * 4);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = &rgb.pixels[i * 3];
    uint8_t* q = &cmyk.pixels[i * 4];
    // Inverted samples: DecodeImage computes R = C * K / 255, so K = max(R, G, B) and C = R * 255 /
    // K.
    const int k = std::max({p[0], p[1], p[2]});
    for (int ch = 0; ch < 3; ++ch) {
      q[ch] = k == 0 ? 255 : static_cast<uint8_t>((p[ch] * 255 + k / 2) / k);
    }
    q[3] = static_cast<uint8_t>(k);
  }
  return cmyk;
}

}  // namespace sluice::ingest
