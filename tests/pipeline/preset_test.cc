// ProcessSample against the same steps run one by one through the public kernels: the preset
// fuses flip and normalization into the resize and picks a DCT scale, and this checks that the
// fused result is the composition of the tested kernels (crop draw, crop decode, resize, flip,
// normalize) in the documented order of random draws.
#include "sluice/pipeline/preset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "sluice/formats/example.h"
#include "sluice/formats/image.h"
#include "sluice/formats/image_crop.h"
#include "sluice/pipeline/crop.h"
#include "sluice/pipeline/normalize.h"
#include "sluice/pipeline/philox.h"
#include "sluice/pipeline/resize.h"

namespace sluice::pipeline {
namespace {

using formats::ChooseScaleDenom;
using formats::CropDecodeOptions;
using formats::DecodedCrop;
using formats::DecodeJpegCrop;
using formats::DecodeJpegCropEighths;

constexpr int kSize = 224;
constexpr size_t kValues = size_t{kSize} * kSize * 3;

// A smooth gradient with noise: JPEG-compressible but not flat, so flips and crops show.
std::string TestJpeg(int width, int height, unsigned seed) {
  formats::Image img{width, height, 3, std::vector<uint8_t>(size_t(width) * height * 3)};
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> noise(0, 40);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &img.pixels[(size_t(y) * width + x) * 3];
      p[0] = static_cast<uint8_t>((x * 200) / width + noise(gen));
      p[1] = static_cast<uint8_t>((y * 200) / height + noise(gen));
      p[2] = static_cast<uint8_t>(((x + y) * 100) / (width + height) + noise(gen));
    }
  }
  auto jpeg = formats::EncodeJpeg(img, 90);
  EXPECT_TRUE(jpeg.ok()) << jpeg.status().ToString();
  return jpeg.ok() ? *jpeg : std::string();
}

std::string Record(const std::string& jpeg) {
  formats::Example ex;
  ex.SetBytes("image/encoded", jpeg).SetInt64("image/class/label", 3);
  return ex.Serialize();
}

// resnet-train / resnet-eval, one step at a time. Returns the float image before normalization
// (flipped when drawn) and reports the scale used.
std::vector<float> ResnetSteps(const std::string& jpeg, bool train, uint64_t seed, uint64_t index,
                               int* eighths_used, int* flips) {
  auto info = formats::ProbeImage(jpeg);
  EXPECT_TRUE(info.ok());
  PhiloxStream rng(seed, 0, index);
  CropWindow window = train ? SampleDistortedCrop(info->height, info->width, {}, {}, rng)
                            : CenterCrop(info->height, info->width, kSize);
  const bool flip = train && rng.Bernoulli();
  *flips += flip;
  const int eighths = 8 / ChooseScaleDenom(window.width, window.height, kSize, kSize);
  *eighths_used = eighths;
  DecodedCrop crop;
  CropDecodeOptions options;
  options.fast_idct = true;  // the presets decode with TensorFlow's default IDCT
  EXPECT_TRUE(DecodeJpegCropEighths(jpeg, window, eighths, &crop, options).ok());
  std::vector<float> out(kValues);
  ResizeBicubic(crop.pixels.data(), {crop.height, crop.width, 3, kSize, kSize}, out.data());
  if (flip) FlipHorizontal(out.data(), kSize, kSize, 3);
  return out;
}

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want, float tol,
                const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  float worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
  EXPECT_LE(worst, tol) << what;
}

TEST(PresetTest, ResnetFusedEqualsKernelsOneByOne) {
  // 900x700: windows large enough for 1/2 and 1/4 DCT scaling; 300x260: none.
  const std::vector<std::string> jpegs = {TestJpeg(900, 700, 1), TestJpeg(300, 260, 2)};
  int scaled = 0, unscaled = 0, flips = 0;
  for (bool train : {true, false}) {
    SampleSpec spec;
    spec.preset = train ? Preset::kResnetTrain : Preset::kResnetEval;
    SampleScratch scratch;
    for (size_t j = 0; j < jpegs.size(); ++j) {
      const std::string record = Record(jpegs[j]);
      for (uint64_t index = 0; index < 12; ++index) {
        int eighths = 0;
        std::vector<float> want = ResnetSteps(jpegs[j], train, 5, index, &eighths, &flips);
        (eighths < 8 ? scaled : unscaled)++;
        std::vector<uint8_t> want_u8(kValues);
        for (size_t i = 0; i < kValues; ++i) {
          want_u8[i] = static_cast<uint8_t>(std::clamp(std::nearbyint(want[i]), 0.0f, 255.0f));
        }
        NormalizeMeanStd(want.data(), int64_t{kSize} * kSize, kResnetMean, kResnetStd);

        std::vector<float> got(kValues);
        int64_t label = -1;
        ASSERT_TRUE(
            ProcessSample(spec, record, 5, 0, index, &scratch, got.data(), nullptr, &label).ok());
        EXPECT_EQ(label, 3);
        // x * (1 / std) - mean / std against (x - mean) / std: float rounding only.
        ExpectNear(got, want, 1e-5f,
                   std::string(train ? "train" : "eval") + " image " + std::to_string(j) +
                       " sample " + std::to_string(index));

        SampleSpec u8_spec = spec;
        u8_spec.output = OutputType::kUint8;
        std::vector<uint8_t> got_u8(kValues);
        ASSERT_TRUE(ProcessSample(u8_spec, record, 5, 0, index, &scratch, nullptr, got_u8.data(),
                                  &label)
                        .ok());
        int differ = 0;  // a value within float rounding of .5 may round either way
        for (size_t i = 0; i < kValues; ++i) differ += std::abs(got_u8[i] - want_u8[i]) > 0;
        for (size_t i = 0; i < kValues; ++i) ASSERT_LE(std::abs(got_u8[i] - want_u8[i]), 1);
        EXPECT_LE(differ, 10);
      }
    }
  }
  EXPECT_GT(scaled, 0);  // both paths were exercised
  EXPECT_GT(unscaled, 0);
  EXPECT_GT(flips, 0);
  EXPECT_LT(flips, 24);
}

TEST(PresetTest, VggFusedEqualsKernelsOneByOne) {
  const std::string jpeg = TestJpeg(500, 375, 4);
  DecodedCrop image;
  CropDecodeOptions options;
  options.fast_idct = true;
  ASSERT_TRUE(DecodeJpegCrop(jpeg, {0, 0, 500, 375}, 1, &image, options).ok());
  const std::string record = Record(jpeg);
  for (bool train : {true, false}) {
    SampleSpec spec;
    spec.preset = train ? Preset::kVggTrain : Preset::kVggEval;
    SampleScratch scratch;
    int flips = 0;
    for (uint64_t index = 0; index < 10; ++index) {
      PhiloxStream rng(11, 0, index);
      const int side = train ? SampleVggResizeSide(rng) : 256;
      const ImageSize resized = AspectPreservingResizeSize(375, 500, side);
      const CropWindow crop = train ? VggRandomCrop(resized.height, resized.width, rng, kSize)
                                    : VggCentralCrop(resized.height, resized.width, kSize);
      const bool flip = train && rng.Bernoulli();
      flips += flip;
      ResizeShape shape{375, 500, 3, resized.height, resized.width};
      shape.window_x = crop.x;
      shape.window_y = crop.y;
      shape.window_width = crop.width;
      shape.window_height = crop.height;
      std::vector<float> want(kValues);
      ResizeBilinear(image.pixels.data(), shape, want.data());
      if (flip) FlipHorizontal(want.data(), kSize, kSize, 3);
      SubtractMean(want.data(), int64_t{kSize} * kSize, kVggMean);

      std::vector<float> got(kValues);
      int64_t label = -1;
      ASSERT_TRUE(
          ProcessSample(spec, record, 11, 0, index, &scratch, got.data(), nullptr, &label).ok());
      ExpectNear(got, want, 1e-4f, "vgg sample " + std::to_string(index));
    }
    if (train) {
      EXPECT_GT(flips, 0);
    }
  }
}

TEST(PresetTest, BasicModeRunsTheUnfusedPasses) {
  // --basic decodes the whole image and flips/normalizes in separate passes: with no DCT scaling
  // in play (a window smaller than 2 x 224) it must agree with the fused default.
  const std::string jpeg = TestJpeg(300, 260, 5);
  const std::string record = Record(jpeg);
  SampleSpec fused, basic;
  basic.full_decode = true;
  SampleScratch scratch;
  for (uint64_t index = 0; index < 8; ++index) {
    std::vector<float> a(kValues), b(kValues);
    int64_t label;
    ASSERT_TRUE(ProcessSample(fused, record, 2, 0, index, &scratch, a.data(), nullptr, &label).ok());
    ASSERT_TRUE(ProcessSample(basic, record, 2, 0, index, &scratch, b.data(), nullptr, &label).ok());
    ExpectNear(a, b, 1e-5f, "sample " + std::to_string(index));
  }
}

}  // namespace
}  // namespace sluice::pipeline
