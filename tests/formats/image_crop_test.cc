#include "sluice/formats/image_crop.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "sluice/formats/image.h"

namespace sluice::formats {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSeed = 20260117;
// Sides that are multiples of neither 8 nor 16, so the last iMCU row and column are partial.
constexpr int kWidth = 133;
constexpr int kHeight = 101;

// A seeded image with gradients, edges and noise, so chroma upsampling and DCT blocks matter.
Image TestImage(int width, int height, int channels, uint64_t seed) {
  std::mt19937 gen(static_cast<uint32_t>(seed));
  std::uniform_int_distribution<int> noise(-24, 24);
  Image image{width, height, channels, std::vector<uint8_t>(size_t(width) * height * channels)};
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        int v = (x * (3 + c) + y * (5 - c)) % 256;
        if ((x / 11 + y / 7 + c) % 3 == 0) v = 255 - v;
        v += noise(gen);
        image.pixels[(size_t(y) * width + x) * channels + c] =
            static_cast<uint8_t>(std::clamp(v, 0, 255));
      }
    }
  }
  return image;
}

std::string Jpeg(const Image& image, const JpegEncodeOptions& options = {}) {
  auto jpeg = EncodeJpeg(image, 90, options);
  EXPECT_TRUE(jpeg.ok()) << jpeg.status().ToString();
  return jpeg.ok() ? *jpeg : std::string();
}

struct Variant {
  const char* name;
  int channels;
  JpegEncodeOptions options;
};

void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

const Variant kVariants[] = {
    {"ycbcr420", 3, {}},
    {"ycbcr444", 3, {.subsampling = ChromaSubsampling::k444}},
    {"gray", 1, {}},
    {"progressive420", 3, {.progressive = true}},
    {"progressive444", 3, {.subsampling = ChromaSubsampling::k444, .progressive = true}},
    {"progressive_gray", 1, {.progressive = true}},
    {"cmyk", 4, {.cmyk = true}},
};

// Cuts window w out of an RGB image of the given width.
std::vector<uint8_t> Cut(const std::vector<uint8_t>& rgb, int width, const PixelWindow& w) {
  std::vector<uint8_t> out;
  for (int y = w.y; y < w.y + w.height; ++y) {
    const auto* row = rgb.data() + (size_t(y) * width + w.x) * 3;
    out.insert(out.end(), row, row + size_t(w.width) * 3);
  }
  return out;
}

std::string Describe(const PixelWindow& w) {
  std::ostringstream s;
  s << "window x=" << w.x << " y=" << w.y << " " << w.width << "x" << w.height;
  return s.str();
}

// Fixed windows of interest plus seeded random ones.
std::vector<PixelWindow> Windows(int width, int height, uint64_t seed, int random_count) {
  std::vector<PixelWindow> windows = {
      {0, 0, width, height},                      // the full image
      {0, 0, 17, 13},                             // top-left corner
      {width - 9, height - 7, 9, 7},              // bottom-right corner, partial iMCUs
      {width / 2 - 20, height / 2 - 15, 40, 30},  // centre
      {0, 0, 1, 1},                               // 1x1 at each corner and inside
      {width - 1, height - 1, 1, 1},
      {37, 23, 1, 1},
      {16, 16, 16, 16},           // exactly on iMCU boundaries
      {15, 17, 18, 14},           // one pixel off them
      {5, 3, width - 10, 1},      // one row
      {width - 2, 0, 1, height},  // one column
      {1, 1, width - 1, height - 1},
  };
  std::mt19937 gen(static_cast<uint32_t>(seed));
  for (int i = 0; i < random_count; ++i) {
    const int w = std::uniform_int_distribution<int>(1, width)(gen);
    const int h = std::uniform_int_distribution<int>(1, height)(gen);
    const int x = std::uniform_int_distribution<int>(0, width - w)(gen);
    const int y = std::uniform_int_distribution<int>(0, height - h)(gen);
    windows.push_back({x, y, w, h});
  }
  return windows;
}

class DecodeCropTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    const Variant& v = GetParam();
    jpeg_ = Jpeg(TestImage(kWidth, kHeight, v.channels, kSeed), v.options);
    auto full = DecodeImage(jpeg_);
    ASSERT_TRUE(full.ok()) << full.status().ToString();
    ASSERT_EQ(full->channels, 3);
    full_ = std::move(*full);
  }

  std::string jpeg_;
  Image full_;  // DecodeImage of jpeg_, RGB
};

TEST_P(DecodeCropTest, Scale1WindowEqualsCutOfFullDecode) {
  DecodedCrop crop;
  for (const PixelWindow& w : Windows(kWidth, kHeight, kSeed + 1, 40)) {
    SCOPED_TRACE(Describe(w));
    ASSERT_TRUE(DecodeJpegCrop(jpeg_, w, 1, &crop).ok());
    ASSERT_EQ(crop.width, w.width);
    ASSERT_EQ(crop.height, w.height);
    ASSERT_EQ(crop.pixels, Cut(full_.pixels, kWidth, w));
  }
}

// JDCT_IFAST (TensorFlow's default): windows are still exact cuts of the whole image decoded the
// same way, and the pixels are close to, but not all equal to, the accurate IDCT's.
TEST_P(DecodeCropTest, FastIdctWindowEqualsCutOfFullFastDecode) {
  CropDecodeOptions fast;
  fast.fast_idct = true;
  DecodedCrop full;
  ASSERT_TRUE(DecodeJpegCrop(jpeg_, {0, 0, kWidth, kHeight}, 1, &full, fast).ok());
  int max_diff = 0;
  size_t differ = 0;
  for (size_t i = 0; i < full.pixels.size(); ++i) {
    const int d = std::abs(int{full.pixels[i]} - int{full_.pixels[i]});
    max_diff = std::max(max_diff, d);
    differ += d != 0;
  }
  EXPECT_GT(differ, 0u) << "the fast IDCT was not used";
  EXPECT_LE(max_diff, 12);
  DecodedCrop crop;
  for (const PixelWindow& w : Windows(kWidth, kHeight, kSeed + 9, 20)) {
    SCOPED_TRACE(Describe(w));
    ASSERT_TRUE(DecodeJpegCrop(jpeg_, w, 1, &crop, fast).ok());
    ASSERT_EQ(crop.pixels, Cut(full.pixels, kWidth, w));
  }
}

TEST_P(DecodeCropTest, ScaledWindowEqualsCutOfFullScaledDecode) {
  for (int d : {2, 4, 8}) {
    SCOPED_TRACE("scale 1/" + std::to_string(d));
    // The whole image at 1/d takes no crop or skip path: the reference.
    DecodedCrop full;
    ASSERT_TRUE(DecodeJpegCrop(jpeg_, {0, 0, kWidth, kHeight}, d, &full).ok());
    ASSERT_EQ(full.width, (kWidth + d - 1) / d);
    ASSERT_EQ(full.height, (kHeight + d - 1) / d);
    DecodedCrop crop;
    for (const PixelWindow& w : Windows(kWidth, kHeight, kSeed + d, 30)) {
      SCOPED_TRACE(Describe(w));
      ASSERT_TRUE(DecodeJpegCrop(jpeg_, w, d, &crop).ok());
      const PixelWindow s = ScaledWindow(w, d);
      ASSERT_EQ(crop.width, s.width);
      ASSERT_EQ(crop.height, s.height);
      ASSERT_EQ(crop.pixels, Cut(full.pixels, full.width, s));
    }
  }
}

TEST_P(DecodeCropTest, EighthsWindowEqualsCutOfFullEighthsDecode) {
  for (int n : {3, 5, 6, 7}) {
    SCOPED_TRACE("scale " + std::to_string(n) + "/8");
    DecodedCrop full;
    ASSERT_TRUE(DecodeJpegCropEighths(jpeg_, {0, 0, kWidth, kHeight}, n, &full).ok());
    ASSERT_EQ(full.width, (kWidth * n + 7) / 8);
    ASSERT_EQ(full.height, (kHeight * n + 7) / 8);
    DecodedCrop crop;
    for (const PixelWindow& w : Windows(kWidth, kHeight, kSeed + 10 * n, 20)) {
      SCOPED_TRACE(Describe(w));
      ASSERT_TRUE(DecodeJpegCropEighths(jpeg_, w, n, &crop).ok());
      const PixelWindow s = ScaledWindowEighths(w, n);
      ASSERT_EQ(crop.width, s.width);
      ASSERT_EQ(crop.height, s.height);
      ASSERT_EQ(crop.pixels, Cut(full.pixels, full.width, s));
    }
  }
  // 8/8 is the unscaled decode, and 4/8 the 1/2 one.
  DecodedCrop a, b;
  ASSERT_TRUE(DecodeJpegCropEighths(jpeg_, {3, 4, 50, 40}, 8, &a).ok());
  ASSERT_TRUE(DecodeJpegCrop(jpeg_, {3, 4, 50, 40}, 1, &b).ok());
  EXPECT_EQ(a.pixels, b.pixels);
  ASSERT_TRUE(DecodeJpegCropEighths(jpeg_, {3, 4, 50, 40}, 4, &a).ok());
  ASSERT_TRUE(DecodeJpegCrop(jpeg_, {3, 4, 50, 40}, 2, &b).ok());
  EXPECT_EQ(a.pixels, b.pixels);
}

// The 1/d decode is a good picture of the image: each pixel is close to the mean of the d x d
// source block it covers (a loose bound: the DCT scaling is not a box filter, and JPEG is lossy).
TEST_P(DecodeCropTest, ScaledDecodeApproximatesBoxAverage) {
  for (int d : {2, 4, 8}) {
    DecodedCrop scaled;
    ASSERT_TRUE(DecodeJpegCrop(jpeg_, {0, 0, kWidth, kHeight}, d, &scaled).ok());
    double total = 0;
    for (int y = 0; y < scaled.height; ++y) {
      for (int x = 0; x < scaled.width; ++x) {
        for (int c = 0; c < 3; ++c) {
          double sum = 0;
          int n = 0;
          for (int sy = y * d; sy < std::min(kHeight, (y + 1) * d); ++sy) {
            for (int sx = x * d; sx < std::min(kWidth, (x + 1) * d); ++sx, ++n) {
              sum += full_.pixels[(size_t(sy) * kWidth + sx) * 3 + c];
            }
          }
          total += std::abs(sum / n - scaled.pixels[(size_t(y) * scaled.width + x) * 3 + c]);
        }
      }
    }
    EXPECT_LT(total / (scaled.width * scaled.height * 3), 12.0) << "scale 1/" << d;
  }
}

INSTANTIATE_TEST_SUITE_P(Jpegs, DecodeCropTest, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(DecodeCropErrorTest, WindowOutsideImageIsInvalidArgument) {
  const std::string jpeg = Jpeg(TestImage(kWidth, kHeight, 3, kSeed));
  DecodedCrop crop;
  for (const PixelWindow& w : std::vector<PixelWindow>{{-1, 0, 10, 10},
                                                       {0, -1, 10, 10},
                                                       {0, 0, 0, 10},
                                                       {0, 0, 10, 0},
                                                       {0, 0, kWidth + 1, 10},
                                                       {0, 0, 10, kHeight + 1},
                                                       {kWidth - 5, 0, 6, 1},
                                                       {0, kHeight, 1, 1}}) {
    SCOPED_TRACE(Describe(w));
    EXPECT_EQ(DecodeJpegCrop(jpeg, w, 1, &crop).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(DecodeJpegCrop(jpeg, w, 4, &crop).code(), StatusCode::kInvalidArgument);
  }
}

TEST(DecodeCropErrorTest, BadScaleIsInvalidArgument) {
  const std::string jpeg = Jpeg(TestImage(32, 32, 3, kSeed));
  DecodedCrop crop;
  for (int d : {0, 3, 16, -2}) {
    EXPECT_EQ(DecodeJpegCrop(jpeg, {0, 0, 8, 8}, d, &crop).code(), StatusCode::kInvalidArgument)
        << d;
  }
}

TEST(DecodeCropErrorTest, OverPixelLimitIsInvalidArgument) {
  const std::string jpeg = Jpeg(TestImage(kWidth, kHeight, 3, kSeed));
  DecodedCrop crop;
  const CropDecodeOptions limit{.max_pixels = int64_t{kWidth} * kHeight - 1};
  EXPECT_EQ(DecodeJpegCrop(jpeg, {0, 0, 1, 1}, 1, &crop, limit).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      DecodeJpegCrop(jpeg, {0, 0, 1, 1}, 1, &crop, {.max_pixels = int64_t{kWidth} * kHeight}).ok());
  const std::string png = *EncodePng(TestImage(kWidth, kHeight, 3, kSeed));
  EXPECT_EQ(DecodePngCrop(png, {0, 0, 1, 1}, &crop, limit).code(), StatusCode::kInvalidArgument);
}

TEST(DecodeCropErrorTest, TruncatedJpegIsDataLoss) {
  for (bool progressive : {false, true}) {
    SCOPED_TRACE(progressive ? "progressive" : "baseline");
    const std::string jpeg =
        Jpeg(TestImage(kWidth, kHeight, 3, kSeed), {.progressive = progressive});
    const std::string cut = jpeg.substr(0, jpeg.size() / 2);
    DecodedCrop crop;
    // The bottom rows are past the end of the data.
    EXPECT_EQ(DecodeJpegCrop(cut, {0, kHeight - 10, kWidth, 10}, 1, &crop).code(),
              StatusCode::kDataLoss);
    EXPECT_EQ(DecodeJpegCrop(cut, {0, 0, kWidth, kHeight}, 2, &crop).code(), StatusCode::kDataLoss);
    // Headers only, or less.
    EXPECT_EQ(DecodeJpegCrop(jpeg.substr(0, 20), {0, 0, 1, 1}, 1, &crop).code(),
              StatusCode::kDataLoss);
  }
  // libjpeg reads a progressive file whole before the first row, so even the top is DataLoss.
  const std::string progressive = Jpeg(TestImage(kWidth, kHeight, 3, kSeed), {.progressive = true});
  DecodedCrop crop;
  EXPECT_EQ(
      DecodeJpegCrop(progressive.substr(0, progressive.size() / 2), {0, 0, 8, 8}, 1, &crop).code(),
      StatusCode::kDataLoss);
}

TEST(DecodeCropErrorTest, GarbageIsDataLossOrUnsupported) {
  DecodedCrop crop;
  EXPECT_EQ(DecodeJpegCrop("", {0, 0, 1, 1}, 1, &crop).code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeJpegCrop("not a jpeg at all", {0, 0, 1, 1}, 1, &crop).code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(DecodeCrop("GIF89a....", {0, 0, 1, 1}, 1, &crop).code(), StatusCode::kUnsupported);
  EXPECT_EQ(DecodeCrop("", {0, 0, 1, 1}, 1, &crop).code(), StatusCode::kDataLoss);
}

TEST(DecodePngCropTest, WindowEqualsCutOfFullDecode) {
  const Image image = TestImage(kWidth, kHeight, 3, kSeed);
  const std::string png = *EncodePng(image);
  DecodedCrop crop;
  for (const PixelWindow& w : Windows(kWidth, kHeight, kSeed, 10)) {
    SCOPED_TRACE(Describe(w));
    ASSERT_TRUE(DecodePngCrop(png, w, &crop).ok());
    EXPECT_EQ(crop.width, w.width);
    EXPECT_EQ(crop.height, w.height);
    EXPECT_EQ(crop.pixels, Cut(image.pixels, kWidth, w));
    // DecodeCrop ignores the scale for PNG.
    ASSERT_TRUE(DecodeCrop(png, w, 4, &crop).ok());
    EXPECT_EQ(crop.pixels, Cut(image.pixels, kWidth, w));
  }
  EXPECT_EQ(DecodePngCrop(png, {0, 0, kWidth + 1, 1}, &crop).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodePngCrop(png.substr(0, png.size() / 2), {0, 0, 4, 4}, &crop).code(),
            StatusCode::kDataLoss);
  // Gray PNG becomes RGB.
  const Image gray = TestImage(20, 10, 1, kSeed);
  ASSERT_TRUE(DecodePngCrop(*EncodePng(gray), {3, 2, 5, 4}, &crop).ok());
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 5; ++x) {
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(crop.pixels[(y * 5 + x) * 3 + c], gray.pixels[(y + 2) * 20 + x + 3]);
      }
    }
  }
}

TEST(DecodeCropFixtureTest, ProgressiveJpegWindowsEqualFullDecode) {
  const fs::path path = fs::path(SLUICE_FIXTURES_DIR) / "tfds" / "images" / "test_image.jpg";
  if (!fs::exists(path)) GTEST_SKIP() << path << " is absent";
  std::ifstream in(path, std::ios::binary);
  const std::string jpeg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto info = ProbeImage(jpeg);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  auto full = DecodeImage(jpeg);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  DecodedCrop crop;
  for (const PixelWindow& w : Windows(info->width, info->height, kSeed, 20)) {
    SCOPED_TRACE(Describe(w));
    ASSERT_TRUE(DecodeJpegCrop(jpeg, w, 1, &crop).ok());
    ASSERT_EQ(crop.pixels, Cut(full->pixels, info->width, w));
  }
  DecodedCrop scaled;
  ASSERT_TRUE(DecodeJpegCrop(jpeg, {0, 0, info->width, info->height}, 4, &scaled).ok());
  for (const PixelWindow& w : Windows(info->width, info->height, kSeed + 4, 20)) {
    SCOPED_TRACE(Describe(w));
    ASSERT_TRUE(DecodeJpegCrop(jpeg, w, 4, &crop).ok());
    ASSERT_EQ(crop.pixels, Cut(scaled.pixels, scaled.width, ScaledWindow(w, 4)));
  }
}

TEST(ScaledWindowTest, CoversEveryTouchedOutputPixel) {
  EXPECT_EQ(ScaledWindow({0, 0, 16, 16}, 1), (PixelWindow{0, 0, 16, 16}));
  EXPECT_EQ(ScaledWindow({0, 0, 16, 16}, 8), (PixelWindow{0, 0, 2, 2}));
  EXPECT_EQ(ScaledWindow({7, 9, 2, 1}, 8), (PixelWindow{0, 1, 2, 1}));
  EXPECT_EQ(ScaledWindow({3, 5, 10, 6}, 2), (PixelWindow{1, 2, 6, 4}));
  EXPECT_EQ(ScaledWindow({0, 0, 133, 101}, 4), (PixelWindow{0, 0, 34, 26}));
}

TEST(ScaledWindowTest, EighthsCoverEveryTouchedOutputPixel) {
  EXPECT_EQ(ScaledWindowEighths({0, 0, 16, 16}, 6), (PixelWindow{0, 0, 12, 12}));
  // x: 5 * 6 / 8 = 3.75 -> 3, end 15 * 6 / 8 = 11.25 -> 12; y: 2.25 -> 2, end 7.5 -> 8.
  EXPECT_EQ(ScaledWindowEighths({5, 3, 10, 7}, 6), (PixelWindow{3, 2, 9, 6}));
  for (int d : {1, 2, 4, 8}) {
    EXPECT_EQ(ScaledWindowEighths({13, 7, 101, 55}, 8 / d), ScaledWindow({13, 7, 101, 55}, d));
  }
}

TEST(ChooseScaleEighthsTest, SmallestScaleThatKeepsEnoughPixels) {
  EXPECT_EQ(ChooseScaleEighths(320, 320, 224, 224), 6);  // 240 >= 224, 5/8 gives 200
  EXPECT_EQ(ChooseScaleEighths(448, 448, 224, 224), 4);
  EXPECT_EQ(ChooseScaleEighths(449, 300, 224, 224), 6);  // the short side decides: 225
  EXPECT_EQ(ChooseScaleEighths(224, 224, 224, 224), 8);
  EXPECT_EQ(ChooseScaleEighths(100, 100, 224, 224), 8);  // upscaling: never scale down
  EXPECT_EQ(ChooseScaleEighths(5000, 5000, 224, 224), 1);
  EXPECT_EQ(ChooseScaleEighths(0, 10, 1, 1), 8);
}

TEST(ChooseScaleDenomTest, LargestScaleThatKeepsEnoughPixels) {
  EXPECT_EQ(ChooseScaleDenom(224, 224, 224, 224), 1);
  EXPECT_EQ(ChooseScaleDenom(448, 448, 224, 224), 2);
  EXPECT_EQ(ChooseScaleDenom(447, 448, 224, 224), 2);  // ceil(447 / 2) = 224
  EXPECT_EQ(ChooseScaleDenom(446, 448, 224, 224), 1);
  EXPECT_EQ(ChooseScaleDenom(1000, 1000, 224, 224), 4);
  EXPECT_EQ(ChooseScaleDenom(2000, 1800, 224, 224), 8);
  EXPECT_EQ(ChooseScaleDenom(5000, 5000, 224, 224), 8);  // 8 is the largest
  EXPECT_EQ(ChooseScaleDenom(2000, 500, 224, 224), 2);   // the short side decides
  EXPECT_EQ(ChooseScaleDenom(100, 100, 224, 224), 1);    // upscaling: never scale down
  EXPECT_EQ(ChooseScaleDenom(64, 64, 8, 8), 8);
  EXPECT_EQ(ChooseScaleDenom(0, 100, 1, 1), 1);
  EXPECT_EQ(ChooseScaleDenom(100, 100, 0, 1), 1);
  for (int crop = 1; crop < 300; crop += 7) {
    for (int out : {1, 16, 32, 224}) {
      const int d = ChooseScaleDenom(crop, crop, out, out);
      if (crop < out) {
        EXPECT_EQ(d, 1) << crop << " " << out;
        continue;
      }
      EXPECT_GE((crop + d - 1) / d, out) << crop << " " << out;
      if (d < 8) {
        EXPECT_LT((crop + 2 * d - 1) / (2 * d), out) << crop << " " << out;
      }
    }
  }
}

}  // namespace
}  // namespace sluice::formats
