#include "sluice/pipeline/crop.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <set>
#include <vector>

namespace sluice::pipeline {
namespace {

constexpr uint64_t kSeed = 20260101;

// Statistics of many sampled crops of one image size.
struct CropStats {
  int n = 0;
  double fallback = 0;       // fraction that are the center crop (or whole image)
  double mean_area = 0;      // mean area fraction of all returned crops
  double mean_center_x = 0;  // mean of (x + width / 2) / image width
  double mean_center_y = 0;
  std::array<double, 4> aspect_hist{};  // fractions of non-fallback crops in 4 bins over [3/4, 4/3]
};

int AspectBin(double aspect) {
  const double t = (aspect - 0.75) / (4.0 / 3.0 - 0.75);
  return std::clamp(static_cast<int>(t * 4), 0, 3);
}

void Accumulate(CropStats& s, int h, int w, const CropWindow& c, bool fell_back) {
  ++s.n;
  s.fallback += fell_back;
  s.mean_area += static_cast<double>(c.width) * c.height / (static_cast<double>(h) * w);
  s.mean_center_x += (c.x + c.width / 2.0) / w;
  s.mean_center_y += (c.y + c.height / 2.0) / h;
  if (!fell_back) s.aspect_hist[AspectBin(static_cast<double>(c.width) / c.height)] += 1;
}

void Finish(CropStats& s) {
  const double non_fallback = s.n - s.fallback;
  for (double& b : s.aspect_hist) b /= non_fallback;
  s.fallback /= s.n;
  s.mean_area /= s.n;
  s.mean_center_x /= s.n;
  s.mean_center_y /= s.n;
}

// A straightforward simulation of the spec (resnet-train with the whole image as the one box), in
// double with the standard library's generator: what the crops should look like, independent of
// PhiloxStream.
CropStats SimulateSpec(int h, int w, int n) {
  std::mt19937_64 gen(12345);
  std::uniform_real_distribution<double> aspect_dist(0.75, 4.0 / 3.0);
  const double area = static_cast<double>(h) * w;
  CropStats s;
  for (int i = 0; i < n; ++i) {
    bool ok = false;
    int ch = 0, cw = 0, x = 0, y = 0;
    for (int attempt = 0; attempt < 10 && !ok; ++attempt) {
      const double r = aspect_dist(gen);
      int lo = static_cast<int>(std::nearbyint(std::sqrt(0.08 * area / r)));
      int hi = static_cast<int>(std::nearbyint(std::sqrt(area / r)));
      while (hi > 0 && std::nearbyint(hi * r) > w) --hi;  // widest height whose width still fits
      hi = std::min(hi, h);
      lo = std::min(lo, hi);
      ch = std::uniform_int_distribution<int>(lo, hi)(gen);
      cw = static_cast<int>(std::nearbyint(ch * r));
      if (cw * ch < 0.08 * area) cw = static_cast<int>(std::nearbyint(++ch * r));
      if (cw * ch > area) cw = static_cast<int>(std::nearbyint(--ch * r));
      if (cw * ch < 0.08 * area || cw * ch > area || cw > w || ch > h || cw <= 0 || ch <= 0)
        continue;
      if (cw * ch < 0.1 * area) continue;  // min_object_covered of the whole-image box
      y = ch < h ? std::uniform_int_distribution<int>(0, h - ch - 1)(gen) : 0;
      x = cw < w ? std::uniform_int_distribution<int>(0, w - cw - 1)(gen) : 0;
      ok = true;
    }
    if (!ok || (cw == w && ch == h)) {
      Accumulate(s, h, w, CenterCrop(h, w), true);
    } else {
      Accumulate(s, h, w, CropWindow{x, y, cw, ch}, false);
    }
  }
  Finish(s);
  return s;
}

CropStats SampleOurs(int h, int w, int n) {
  CropStats s;
  const DistortedCropOptions options;
  const CropWindow center = CenterCrop(h, w);
  for (int i = 0; i < n; ++i) {
    PhiloxStream rng(kSeed, 0, i);
    const CropWindow c = SampleDistortedCrop(h, w, {}, options, rng);
    Accumulate(s, h, w, c, c == center);
  }
  Finish(s);
  return s;
}

class DistortedCropTest : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(DistortedCropTest, AlwaysInsideWithAreaAndAspectInRange) {
  const auto [h, w] = GetParam();
  const DistortedCropOptions options;
  const CropWindow center = CenterCrop(h, w);
  for (int i = 0; i < 5000; ++i) {
    PhiloxStream rng(kSeed, 1, i);
    const CropWindow c = SampleDistortedCrop(h, w, {}, options, rng);
    SCOPED_TRACE(testing::Message() << h << "x" << w << " sample " << i << ": crop x=" << c.x
                                    << " y=" << c.y << " " << c.width << "x" << c.height);
    ASSERT_GE(c.x, 0);
    ASSERT_GE(c.y, 0);
    ASSERT_GT(c.width, 0);
    ASSERT_GT(c.height, 0);
    ASSERT_LE(c.x + c.width, w);
    ASSERT_LE(c.y + c.height, h);
    if (c == center) continue;
    ASSERT_FALSE(c.width == w && c.height == h) << "the whole image must become the center crop";
    const double frac = static_cast<double>(c.width) * c.height / (static_cast<double>(h) * w);
    // Area >= 0.08 from area_range, and >= 0.1 since the crop must cover 10 % of the whole-image
    // box.
    ASSERT_GE(frac, 0.1);
    ASSERT_LE(frac, 1.0);
    // width = round(height * r) with r in [3/4, 4/3): the aspect is off by at most 0.5 / height.
    const double aspect = static_cast<double>(c.width) / c.height;
    ASSERT_GE(aspect, 0.75 - 0.5 / c.height - 1e-9);
    ASSERT_LE(aspect, 4.0 / 3.0 + 0.5 / c.height + 1e-9);
  }
}

TEST_P(DistortedCropTest, DistributionMatchesSimulationOfSpec) {
  const auto [h, w] = GetParam();
  const int n = 20000;
  const CropStats ours = SampleOurs(h, w, n);
  const CropStats spec = SimulateSpec(h, w, n);
  SCOPED_TRACE(testing::Message() << h << "x" << w << ": fallback " << ours.fallback << " vs "
                                  << spec.fallback << ", mean area " << ours.mean_area << " vs "
                                  << spec.mean_area);
  // Standard errors with n = 20000 are below 0.004 for each figure; tolerances are ~4 sigma.
  EXPECT_NEAR(ours.fallback, spec.fallback, 0.015);
  EXPECT_NEAR(ours.mean_area, spec.mean_area, 0.012);
  EXPECT_NEAR(ours.mean_center_x, spec.mean_center_x, 0.01);
  EXPECT_NEAR(ours.mean_center_y, spec.mean_center_y, 0.01);
  for (int b = 0; b < 4; ++b) {
    EXPECT_NEAR(ours.aspect_hist[b], spec.aspect_hist[b], 0.025) << "aspect bin " << b;
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, DistortedCropTest,
                         ::testing::Values(std::pair{375, 500}, std::pair{500, 333},
                                           std::pair{37, 50}, std::pair{224, 224}));

TEST(DistortedCropDeterminismTest, SameKeySameCrop) {
  const DistortedCropOptions options;
  std::set<std::array<int, 4>> distinct;
  for (int i = 0; i < 200; ++i) {
    PhiloxStream a(kSeed, 5, i), b(kSeed, 5, i);
    const CropWindow ca = SampleDistortedCrop(480, 640, {}, options, a);
    const CropWindow cb = SampleDistortedCrop(480, 640, {}, options, b);
    ASSERT_EQ(ca, cb) << "sample " << i;
    distinct.insert({ca.x, ca.y, ca.width, ca.height});
  }
  EXPECT_GT(distinct.size(), 150u) << "different samples should get different crops";
}

TEST(DistortedCropEdgeTest, ImpossibleConstraintsFallBackToCenterCrop) {
  DistortedCropOptions options;
  options.aspect_ratio_min = 3.0f;  // a 3:1 crop of >= 90 % of a square image cannot exist
  options.aspect_ratio_max = 4.0f;
  options.area_min = 0.9f;
  PhiloxStream rng(kSeed, 0, 0);
  EXPECT_EQ(SampleDistortedBoundingBox(100, 100, {}, options, rng), (CropWindow{0, 0, 100, 100}));
  PhiloxStream rng2(kSeed, 0, 0);
  EXPECT_EQ(SampleDistortedCrop(100, 100, {}, options, rng2), CenterCrop(100, 100));
}

TEST(DistortedCropEdgeTest, SampledWholeImageAlsoBecomesCenterCrop) {
  DistortedCropOptions options;
  options.area_min = 1.0f;  // only the whole image qualifies: the raw sampler returns it...
  PhiloxStream rng(kSeed, 0, 0);
  EXPECT_EQ(SampleDistortedBoundingBox(50, 50, {}, options, rng), (CropWindow{0, 0, 50, 50}));
  PhiloxStream rng2(kSeed, 0, 0);  // ...and resnet_preprocessing calls that "bad"
  EXPECT_EQ(SampleDistortedCrop(50, 50, {}, options, rng2), CenterCrop(50, 50));
}

TEST(DistortedCropEdgeTest, CoversTheRequiredFractionOfAGivenBox) {
  const int h = 400, w = 600;
  const NormalizedBox box{0.1f, 0.6f, 0.4f, 0.9f};  // rows 40..160, columns 360..540
  DistortedCropOptions options;
  options.min_object_covered = 0.5f;
  int sampled = 0;
  for (int i = 0; i < 2000; ++i) {
    PhiloxStream rng(kSeed, 0, i);
    const CropWindow c = SampleDistortedBoundingBox(h, w, std::span(&box, 1), options, rng);
    if (c == CropWindow{0, 0, w, h}) continue;
    ++sampled;
    const int ix = std::max(0, std::min(c.x + c.width, 540) - std::max(c.x, 360));
    const int iy = std::max(0, std::min(c.y + c.height, 160) - std::max(c.y, 40));
    ASSERT_GE(ix * iy, 0.5 * 180 * 120) << "sample " << i;
  }
  EXPECT_GT(sampled, 1000);
}

TEST(CenterCropTest, MatchesResnetFormula) {
  // side = int(0.875 * min(h, w)), offsets ((h - side) + 1) / 2, ((w - side) + 1) / 2.
  EXPECT_EQ(CenterCrop(375, 500), (CropWindow{86, 24, 328, 328}));
  EXPECT_EQ(CenterCrop(500, 333), (CropWindow{21, 105, 291, 291}));
  EXPECT_EQ(CenterCrop(256, 256), (CropWindow{16, 16, 224, 224}));
  EXPECT_EQ(CenterCrop(224, 224), (CropWindow{14, 14, 196, 196}));
  EXPECT_EQ(CenterCrop(33, 1000),
            (CropWindow{486, 3, 28, 28}));  // 28.875 -> 28, (972+1)/2, (5+1)/2
  EXPECT_EQ(CenterCrop(100, 100, 32, 0), (CropWindow{0, 0, 100, 100}));
  EXPECT_EQ(CenterCrop(1, 1), (CropWindow{0, 0, 1, 1}));  // never empty
}

TEST(VggCropTest, AspectPreservingResizeSize) {
  EXPECT_EQ(AspectPreservingResizeSize(375, 500, 256), (ImageSize{256, 341}));  // 341.33
  EXPECT_EQ(AspectPreservingResizeSize(500, 375, 256), (ImageSize{341, 256}));
  EXPECT_EQ(AspectPreservingResizeSize(300, 300, 512), (ImageSize{512, 512}));
  EXPECT_EQ(AspectPreservingResizeSize(200, 301, 256), (ImageSize{256, 385}));  // 385.28
}

TEST(VggCropTest, RandomCropCoversEveryOffsetInBounds) {
  std::set<int> xs, ys;
  std::set<int> sides;
  for (int i = 0; i < 3000; ++i) {
    PhiloxStream rng(kSeed, 0, i);
    const int side = SampleVggResizeSide(rng);
    ASSERT_GE(side, 256);
    ASSERT_LE(side, 512);
    sides.insert(side);
    const CropWindow c = VggRandomCrop(230, 240, rng);
    ASSERT_EQ(c.width, 224);
    ASSERT_EQ(c.height, 224);
    xs.insert(c.x);
    ys.insert(c.y);
  }
  EXPECT_EQ(*xs.begin(), 0);
  EXPECT_EQ(*xs.rbegin(), 16);
  EXPECT_EQ(xs.size(), 17u);
  EXPECT_EQ(*ys.begin(), 0);
  EXPECT_EQ(*ys.rbegin(), 6);
  EXPECT_TRUE(sides.count(256) && sides.count(512));
}

TEST(VggCropTest, CentralCrop) {
  EXPECT_EQ(VggCentralCrop(256, 341), (CropWindow{58, 16, 224, 224}));
  EXPECT_EQ(VggCentralCrop(224, 224), (CropWindow{0, 0, 224, 224}));
}

TEST(CifarCropTest, OffsetsUniformOverZeroToEight) {
  std::array<int, 9> xs{}, ys{};
  const int n = 45000;
  for (int i = 0; i < n; ++i) {
    PhiloxStream rng(kSeed, 0, i);
    const CropWindow c = CifarRandomCrop(rng);
    ASSERT_EQ(c.width, 32);
    ASSERT_EQ(c.height, 32);
    ASSERT_GE(c.x, 0);
    ASSERT_LE(c.x, 8);
    ASSERT_GE(c.y, 0);
    ASSERT_LE(c.y, 8);
    ++xs[c.x];
    ++ys[c.y];
  }
  for (int v = 0; v < 9; ++v) {
    EXPECT_NEAR(xs[v], n / 9, 350) << "x offset " << v;  // sd ~ 67
    EXPECT_NEAR(ys[v], n / 9, 350) << "y offset " << v;
  }
}

}  // namespace
}  // namespace sluice::pipeline
