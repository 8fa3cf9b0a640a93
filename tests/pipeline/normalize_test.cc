#include "sluice/pipeline/normalize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace sluice::pipeline {
namespace {

TEST(FlipTest, MirrorsColumnsExactlyForOddAndEvenWidths) {
  for (int width : {1, 2, 5, 224}) {
    const int h = 3, c = 3;
    std::vector<float> img(static_cast<size_t>(h) * width * c);
    for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<float>(i) * 0.37f;
    std::vector<float> flipped = img;
    FlipHorizontal(flipped.data(), h, width, c);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < width; ++x)
        for (int ch = 0; ch < c; ++ch)
          ASSERT_EQ(flipped[(y * width + x) * c + ch], img[(y * width + (width - 1 - x)) * c + ch])
              << "width " << width << " y " << y << " x " << x << " c " << ch;
    FlipHorizontal(flipped.data(), h, width, c);
    EXPECT_EQ(flipped, img) << "flipping twice is the identity";
  }
}

TEST(FlipTest, Uint8) {
  std::vector<uint8_t> img = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};  // 2 rows x 2 cols x 3
  FlipHorizontal(img.data(), 2, 2, 3);
  EXPECT_EQ(img, (std::vector<uint8_t>{4, 5, 6, 1, 2, 3, 10, 11, 12, 7, 8, 9}));
}

TEST(NormalizeTest, ResnetConstants) {
  EXPECT_FLOAT_EQ(kResnetMean[0], 123.675f);
  EXPECT_FLOAT_EQ(kResnetMean[1], 116.28f);
  EXPECT_FLOAT_EQ(kResnetMean[2], 103.53f);
  EXPECT_FLOAT_EQ(kResnetStd[0], 58.395f);
  EXPECT_FLOAT_EQ(kResnetStd[1], 57.12f);
  EXPECT_FLOAT_EQ(kResnetStd[2], 57.375f);
  EXPECT_FLOAT_EQ(kVggMean[0], 123.68f);
  EXPECT_FLOAT_EQ(kVggMean[1], 116.78f);
  EXPECT_FLOAT_EQ(kVggMean[2], 103.94f);
}

TEST(NormalizeTest, MeanStdPerChannel) {
  std::vector<float> img = {0, 0, 0, 255, 255, 255, 123.675f, 116.28f, 103.53f};
  NormalizeMeanStd(img.data(), 3, kResnetMean, kResnetStd);
  const double mean[3] = {0.485 * 255, 0.456 * 255, 0.406 * 255};
  const double std[3] = {0.229 * 255, 0.224 * 255, 0.225 * 255};
  const double raw[9] = {0, 0, 0, 255, 255, 255, 123.675, 116.28, 103.53};
  for (int i = 0; i < 9; ++i) {
    EXPECT_NEAR(img[i], (raw[i] - mean[i % 3]) / std[i % 3], 1e-5) << i;
  }
  EXPECT_NEAR(img[3], 2.2489083, 1e-5);  // (255 - 123.675) / 58.395
  EXPECT_NEAR(img[6], 0.0, 1e-6);
}

TEST(NormalizeTest, VggSubtractsMeans) {
  std::vector<float> img = {0, 0, 0, 255, 128, 1};
  SubtractMean(img.data(), 2, kVggMean);
  EXPECT_EQ(img, (std::vector<float>{-123.68f, -116.78f, -103.94f, 255 - 123.68f, 128 - 116.78f,
                                     1 - 103.94f}));
}

// A double-precision reference of tf.image.per_image_standardization.
std::vector<double> StandardizeReference(const std::vector<float>& x) {
  const double n = static_cast<double>(x.size());
  double mean = 0;
  for (float v : x) mean += v;
  mean /= n;
  double var = 0;
  for (float v : x) var += (v - mean) * (v - mean);
  const double sd = std::max(std::sqrt(var / n), 1 / std::sqrt(n));
  std::vector<double> out;
  for (float v : x) out.push_back((v - mean) / sd);
  return out;
}

TEST(StandardizeTest, MatchesDoubleReferenceOnCifarSizedImages) {
  std::mt19937 gen(3);
  for (int trial = 0; trial < 5; ++trial) {
    std::uniform_int_distribution<int> byte(0, trial == 4 ? 2 : 255);  // last: a nearly flat image
    std::vector<float> img(3072);
    for (float& v : img) v = static_cast<float>(byte(gen));
    const std::vector<double> ref = StandardizeReference(img);
    PerImageStandardize(img.data(), static_cast<int64_t>(img.size()));
    double sum = 0;
    for (size_t i = 0; i < img.size(); ++i) {
      ASSERT_NEAR(img[i], ref[i], 1e-5) << "trial " << trial << " i " << i;
      sum += img[i];
    }
    EXPECT_NEAR(sum / img.size(), 0.0, 1e-5);
  }
}

TEST(StandardizeTest, SmallCases) {
  std::vector<float> a = {0, 0, 2, 2};  // mean 1, stddev 1
  PerImageStandardize(a.data(), 4);
  EXPECT_EQ(a, (std::vector<float>{-1, -1, 1, 1}));
  // stddev sqrt(0.0075) < 1 / sqrt(4): divide by 0.5 instead.
  std::vector<float> b = {0, 0, 0, 0.2f};
  PerImageStandardize(b.data(), 4);
  EXPECT_NEAR(b[0], -0.1, 1e-6);
  EXPECT_NEAR(b[3], 0.3, 1e-6);
  // A constant image becomes zeros, not NaN.
  std::vector<float> c(3072, 77.0f);
  PerImageStandardize(c.data(), 3072);
  for (float v : c) ASSERT_EQ(v, 0.0f);
}

}  // namespace
}  // namespace sluice::pipeline
