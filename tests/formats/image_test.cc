// Image codec tests. Reference images with unusual layouts (CMYK, YCCK, palette, 16-bit,
// interlaced) are written here with libjpeg and libpng directly, independently of our encoders.
// Fixture sizes and pixel values were read once with `file` and a zlib-only PNG decoder in Python.
#include "sluice/formats/image.h"

#include <gtest/gtest.h>
#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace sluice::formats {
namespace {

namespace fs = std::filesystem;

// ---- helpers ------------------------------------------------------------------------------------

const fs::path kImagesDir = fs::path(SLUICE_FIXTURES_DIR) / "tfds" / "images";

std::string ReadFixture(const std::string& name) {
  std::ifstream in(kImagesDir / name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A smooth pattern with some texture: JPEG-friendly, every channel different.
Image Pattern(int width, int height, int channels) {
  Image image{width, height, channels, {}};
  image.pixels.resize(size_t(width) * height * channels);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        const double v = 128 + 90 * std::sin(0.11 * x + 0.07 * y + 1.3 * c) +
                         30 * std::cos(0.05 * x * (c + 1) - 0.09 * y);
        image.pixels[(size_t(y) * width + x) * channels + c] =
            static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
      }
    }
  }
  return image;
}

double Psnr(const Image& a, const Image& b) {
  EXPECT_EQ(a.pixels.size(), b.pixels.size());
  double sse = 0;
  for (size_t i = 0; i < a.pixels.size() && i < b.pixels.size(); ++i) {
    const double d = double(a.pixels[i]) - double(b.pixels[i]);
    sse += d * d;
  }
  const double mse = sse / double(a.pixels.size());
  return mse == 0 ? 999 : 10 * std::log10(255.0 * 255.0 / mse);
}

int MaxAbsDiff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  EXPECT_EQ(a.size(), b.size());
  int worst = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

// Writes 4-channel CMYK samples with libjpeg itself (Adobe marker, libjpeg's inverted convention).
std::string LibjpegCmyk(const Image& cmyk, bool ycck, int quality) {
  jpeg_compress_struct c;
  jpeg_error_mgr jerr;
  c.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&c);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buffer, &size);
  c.image_width = cmyk.width;
  c.image_height = cmyk.height;
  c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  if (ycck) jpeg_set_colorspace(&c, JCS_YCCK);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPLE*>(cmyk.pixels.data() + c.next_scanline * cmyk.width * 4);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  std::string out(reinterpret_cast<char*>(buffer), size);
  std::free(buffer);
  jpeg_destroy_compress(&c);
  return out;
}

// RGB expected from inverted (Adobe) CMYK samples: R = C * K / 255.
std::vector<uint8_t> InvertedCmykToRgb(const Image& cmyk) {
  std::vector<uint8_t> rgb;
  for (size_t i = 0; i < cmyk.pixels.size(); i += 4) {
    const int k = cmyk.pixels[i + 3];
    for (int c = 0; c < 3; ++c) rgb.push_back(static_cast<uint8_t>(cmyk.pixels[i + c] * k / 255));
  }
  return rgb;
}

struct PngSpec {
  int width = 0, height = 0, color_type = PNG_COLOR_TYPE_RGB, bit_depth = 8;
  bool interlaced = false;
  std::vector<png_color> palette{};
  std::vector<uint8_t> trns{};  // palette alpha entries
  png_color_16 trns_color{};    // for gray/RGB tRNS
  bool trns_for_color = false;
  std::vector<std::vector<uint8_t>> rows{};  // packed rows as PNG stores them (16-bit big-endian)
};

void AppendToString(png_structp png, png_bytep data, size_t length) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<char*>(data), length);
}

// Writes a PNG with libpng directly. Test-only: errors abort through libpng's defaults.
std::string LibpngWrite(const PngSpec& spec) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(png, &out, AppendToString, nullptr);
  png_set_IHDR(png, info, spec.width, spec.height, spec.bit_depth, spec.color_type,
               spec.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!spec.palette.empty()) {
    png_set_PLTE(png, info, spec.palette.data(), static_cast<int>(spec.palette.size()));
  }
  if (!spec.trns.empty()) {
    png_set_tRNS(png, info, spec.trns.data(), static_cast<int>(spec.trns.size()), nullptr);
  }
  if (spec.trns_for_color) png_set_tRNS(png, info, nullptr, 0, &spec.trns_color);
  png_write_info(png, info);
  std::vector<png_bytep> rows;
  for (const auto& r : spec.rows) rows.push_back(const_cast<png_bytep>(r.data()));
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

// Offset of the first marker segment `marker` (FF xx) in a JPEG, or npos.
size_t FindJpegMarker(const std::string& jpeg, uint8_t marker) {
  size_t p = 2;
  while (p + 4 <= jpeg.size() && uint8_t(jpeg[p]) == 0xFF) {
    if (uint8_t(jpeg[p + 1]) == marker) return p;
    p += 2 + (uint8_t(jpeg[p + 2]) << 8 | uint8_t(jpeg[p + 3]));
  }
  return std::string::npos;
}

uint32_t Crc32(std::string_view data) {
  uint32_t crc = 0xFFFFFFFF;
  for (unsigned char ch : data) {
    crc ^= ch;
    for (int i = 0; i < 8; ++i) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

void PutBigEndian32(std::string* s, size_t offset, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[offset + i] = static_cast<char>(v >> (24 - 8 * i));
}

// Rewrites a PNG's IHDR size and fixes its CRC so only our pixel limit can object.
std::string WithPngSize(std::string png, uint32_t width, uint32_t height) {
  PutBigEndian32(&png, 16, width);
  PutBigEndian32(&png, 20, height);
  PutBigEndian32(&png, 29, Crc32(std::string_view(png).substr(12, 17)));
  return png;
}

std::string WithJpegSize(std::string jpeg, uint16_t width, uint16_t height) {
  size_t sof = FindJpegMarker(jpeg, 0xC0);
  if (sof == std::string::npos) sof = FindJpegMarker(jpeg, 0xC2);
  EXPECT_NE(sof, std::string::npos);
  jpeg[sof + 5] = static_cast<char>(height >> 8);
  jpeg[sof + 6] = static_cast<char>(height);
  jpeg[sof + 7] = static_cast<char>(width >> 8);
  jpeg[sof + 8] = static_cast<char>(width);
  return jpeg;
}

std::string SmallJpeg(int channels = 3, int quality = 90, JpegEncodeOptions options = {}) {
  Result<std::string> jpeg = EncodeJpeg(Pattern(16, 12, channels), quality, options);
  EXPECT_TRUE(jpeg.ok()) << jpeg.status().ToString();
  return jpeg.ok() ? *jpeg : std::string();
}

std::string SmallPng(int channels = 3) {
  Result<std::string> png = EncodePng(Pattern(13, 7, channels));
  EXPECT_TRUE(png.ok()) << png.status().ToString();
  return png.ok() ? *png : std::string();
}

class FixtureImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kImagesDir)) GTEST_SKIP() << "no fixtures at " << kImagesDir;
  }
};

// ---- sniffing
// ------------------------------------------------------------------------------------

TEST(SniffImageFormatTest, RecognisesJpegAndPngByMagicBytes) {
  EXPECT_EQ(SniffFormat(SmallJpeg()), ImageFormat::kJpeg);
  EXPECT_EQ(SniffFormat(SmallPng()), ImageFormat::kPng);
  EXPECT_EQ(SniffFormat("\xFF\xD8\xFF"), ImageFormat::kJpeg);
  EXPECT_EQ(SniffFormat(std::string_view("\x89PNG\r\n\x1A\n", 8)), ImageFormat::kPng);
}

TEST(SniffImageFormatTest, ShortOrForeignBytesAreUnknown) {
  EXPECT_EQ(SniffFormat(""), ImageFormat::kUnknown);
  EXPECT_EQ(SniffFormat("\xFF\xD8"), ImageFormat::kUnknown);
  EXPECT_EQ(SniffFormat("\x89PNG\r\n"), ImageFormat::kUnknown);
  EXPECT_EQ(SniffFormat("GIF89a......"), ImageFormat::kUnknown);
  EXPECT_EQ(SniffFormat("<html>"), ImageFormat::kUnknown);
}

TEST(SniffImageFormatTest, NamesAreStable) {
  EXPECT_EQ(ImageFormatName(ImageFormat::kJpeg), "JPEG");
  EXPECT_EQ(ImageFormatName(ImageFormat::kPng), "PNG");
  EXPECT_EQ(ColorSpaceName(ColorSpace::kYCbCr), "ycbcr");
  EXPECT_EQ(ColorSpaceName(ColorSpace::kGrayAlpha), "gray+alpha");
  EXPECT_EQ(ColorSpaceName(ColorSpace::kYcck), "ycck");
}

// ---- probing the shared fixtures
// ------------------------------------------------------------------

TEST_F(FixtureImageTest, ProbesBaselineJpeg) {
  Result<ImageInfo> info = ProbeImage(ReadFixture("6pixels.jpeg"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->format, ImageFormat::kJpeg);
  EXPECT_EQ(info->width, 3);
  EXPECT_EQ(info->height, 2);
  EXPECT_EQ(info->components, 3);
  EXPECT_EQ(info->color_space, ColorSpace::kYCbCr);
  EXPECT_FALSE(info->progressive);
  EXPECT_EQ(info->bit_depth, 8);
  EXPECT_FALSE(info->IsCmyk());
}

TEST_F(FixtureImageTest, ProbesProgressiveJpeg) {
  Result<ImageInfo> info = ProbeImage(ReadFixture("test_image.jpg"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->width, 178);
  EXPECT_EQ(info->height, 218);
  EXPECT_EQ(info->components, 3);
  EXPECT_TRUE(info->progressive);
}

// Despite its name this fixture is a 3-component YCbCr JPEG (its SOF0 lists 3 components).
TEST_F(FixtureImageTest, SixPixelsCmykFixtureIsReallyYCbCr) {
  Result<ImageInfo> info = ProbeImage(ReadFixture("6pixels_cmyk.jpeg"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->components, 3);
  EXPECT_FALSE(info->IsCmyk());
}

TEST_F(FixtureImageTest, ProbesRgbAndRgbaPngs) {
  Result<ImageInfo> rgb = ProbeImage(ReadFixture("6pixels.png"));
  ASSERT_TRUE(rgb.ok()) << rgb.status().ToString();
  EXPECT_EQ(rgb->format, ImageFormat::kPng);
  EXPECT_EQ(rgb->width, 3);
  EXPECT_EQ(rgb->height, 2);
  EXPECT_EQ(rgb->components, 3);
  EXPECT_EQ(rgb->color_space, ColorSpace::kRgb);
  EXPECT_EQ(rgb->bit_depth, 8);
  EXPECT_FALSE(rgb->progressive);
  Result<ImageInfo> rgba = ProbeImage(ReadFixture("6pixels_4chan.png"));
  ASSERT_TRUE(rgba.ok()) << rgba.status().ToString();
  EXPECT_EQ(rgba->components, 4);
  EXPECT_EQ(rgba->color_space, ColorSpace::kRgba);
}

// ---- decoding
// ------------------------------------------------------------------------------------

TEST_F(FixtureImageTest, DecodesPngToIndependentlyDecodedPixels) {
  const std::vector<uint8_t> rgb = {0, 255, 0,   255, 0,   0, 255, 0,   255,
                                    0, 0,   255, 255, 255, 0, 126, 127, 128};
  Result<Image> image = DecodeImage(ReadFixture("6pixels.png"));
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_EQ(image->width, 3);
  EXPECT_EQ(image->height, 2);
  EXPECT_EQ(image->channels, 3);
  EXPECT_EQ(image->pixels, rgb);

  // The 4-channel fixture has the same colours, fully opaque.
  Result<Image> dropped = DecodeImage(ReadFixture("6pixels_4chan.png"));
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  EXPECT_EQ(dropped->channels, 3);
  EXPECT_EQ(dropped->pixels, rgb);
  Result<Image> rgba = DecodeImage(ReadFixture("6pixels_4chan.png"), {.force_rgb = false});
  ASSERT_TRUE(rgba.ok()) << rgba.status().ToString();
  ASSERT_EQ(rgba->channels, 4);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(rgba->pixels[4 * i + 3], 255);
    for (int c = 0; c < 3; ++c) EXPECT_EQ(rgba->pixels[4 * i + c], rgb[3 * i + c]);
  }
}

// A bad CRC in an ancillary chunk (here zTXt) is a libpng warning: ignored, and never printed.
TEST_F(FixtureImageTest, AncillaryChunkCrcErrorIsIgnoredSilently) {
  std::string png = ReadFixture("6pixels_4chan.png");
  const size_t ztxt = png.find("zTXt");
  ASSERT_NE(ztxt, std::string::npos);
  png[ztxt + 10] ^= 0x01;
  ::testing::internal::CaptureStderr();
  Result<Image> image = DecodeImage(png);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_EQ(image->width, 3);
}

TEST_F(FixtureImageTest, DecodesFixtureJpegs) {
  for (const auto& [name, w, h] : {std::tuple("6pixels.jpeg", 3, 2),
                                   {"test_image.jpg", 178, 218},
                                   {"6pixels_cmyk.jpeg", 3, 2}}) {
    Result<Image> image = DecodeImage(ReadFixture(name));
    ASSERT_TRUE(image.ok()) << name << ": " << image.status().ToString();
    EXPECT_EQ(image->width, w) << name;
    EXPECT_EQ(image->height, h) << name;
    EXPECT_EQ(image->channels, 3) << name;
    EXPECT_EQ(image->pixels.size(), size_t(w) * h * 3) << name;
  }
}

TEST(DecodeImageTest, JpegRoundTripKeepsPsnrHigh) {
  const Image original = Pattern(64, 48, 3);
  for (auto [subsampling, quality, min_psnr] : {std::tuple(ChromaSubsampling::k420, 95, 30.0),
                                                {ChromaSubsampling::k444, 95, 36.0},
                                                {ChromaSubsampling::k444, 100, 45.0}}) {
    Result<std::string> jpeg = EncodeJpeg(original, quality, {.subsampling = subsampling});
    ASSERT_TRUE(jpeg.ok()) << jpeg.status().ToString();
    Result<Image> decoded = DecodeImage(*jpeg);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    ASSERT_EQ(decoded->width, 64);
    ASSERT_EQ(decoded->height, 48);
    ASSERT_EQ(decoded->channels, 3);
    EXPECT_GT(Psnr(original, *decoded), min_psnr) << "quality " << quality;
  }
}

TEST(DecodeImageTest, ProgressiveJpegRoundTrips) {
  const Image original = Pattern(40, 30, 3);
  Result<std::string> jpeg = EncodeJpeg(original, 95, {.progressive = true});
  ASSERT_TRUE(jpeg.ok()) << jpeg.status().ToString();
  Result<ImageInfo> info = ProbeImage(*jpeg);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->progressive);
  Result<Image> decoded = DecodeImage(*jpeg);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_GT(Psnr(original, *decoded), 30);
}

TEST(DecodeImageTest, PngRoundTripIsExactForEveryChannelCount) {
  for (int channels = 1; channels <= 4; ++channels) {
    const Image original = Pattern(17, 9, channels);
    Result<std::string> png = EncodePng(original);
    ASSERT_TRUE(png.ok()) << png.status().ToString();
    Result<Image> decoded = DecodeImage(*png, {.force_rgb = false});
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(decoded->width, 17);
    EXPECT_EQ(decoded->height, 9);
    EXPECT_EQ(decoded->channels, channels);
    EXPECT_EQ(decoded->pixels, original.pixels) << channels << " channels";
  }
}

TEST(DecodeImageTest, GrayscaleJpegDecodesToRgbWithEqualChannels) {
  const std::string jpeg = SmallJpeg(/*channels=*/1);
  Result<ImageInfo> info = ProbeImage(jpeg);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->components, 1);
  EXPECT_EQ(info->color_space, ColorSpace::kGray);

  Result<Image> rgb = DecodeImage(jpeg);
  ASSERT_TRUE(rgb.ok()) << rgb.status().ToString();
  ASSERT_EQ(rgb->channels, 3);
  Result<Image> gray = DecodeImage(jpeg, {.force_rgb = false});
  ASSERT_TRUE(gray.ok()) << gray.status().ToString();
  ASSERT_EQ(gray->channels, 1);
  for (size_t i = 0; i < gray->pixels.size(); ++i) {
    EXPECT_EQ(rgb->pixels[3 * i], gray->pixels[i]);
    EXPECT_EQ(rgb->pixels[3 * i + 1], gray->pixels[i]);
    EXPECT_EQ(rgb->pixels[3 * i + 2], gray->pixels[i]);
  }
}

TEST(DecodeImageTest, CmykJpegIsProbedAsCmykAndDecodedToRgb) {
  const Image cmyk = Pattern(24, 16, 4);
  const std::string jpeg = LibjpegCmyk(cmyk, /*ycck=*/false, 100);
  Result<ImageInfo> info = ProbeImage(jpeg);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->components, 4);
  EXPECT_EQ(info->color_space, ColorSpace::kCmyk);
  EXPECT_TRUE(info->IsCmyk());

  Result<Image> rgb = DecodeImage(jpeg);
  ASSERT_TRUE(rgb.ok()) << rgb.status().ToString();
  EXPECT_EQ(rgb->channels, 3);
  EXPECT_LE(MaxAbsDiff(rgb->pixels, InvertedCmykToRgb(cmyk)), 6);
  // force_rgb=false cannot keep CMYK: RGB either way.
  Result<Image> native = DecodeImage(jpeg, {.force_rgb = false});
  ASSERT_TRUE(native.ok());
  EXPECT_EQ(native->pixels, rgb->pixels);
}

TEST(DecodeImageTest, YcckJpegIsProbedAsYcckAndDecodedToRgb) {
  const Image cmyk = Pattern(24, 16, 4);
  const std::string jpeg = LibjpegCmyk(cmyk, /*ycck=*/true, 100);
  Result<ImageInfo> info = ProbeImage(jpeg);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->color_space, ColorSpace::kYcck);
  EXPECT_TRUE(info->IsCmyk());
  Result<Image> rgb = DecodeImage(jpeg);
  ASSERT_TRUE(rgb.ok()) << rgb.status().ToString();
  EXPECT_LE(MaxAbsDiff(rgb->pixels, InvertedCmykToRgb(cmyk)), 8);
}

TEST(EncodeImageTest, CmykOptionWritesAdobeCmykThatDecodesLikeLibjpegs) {
  const Image cmyk = Pattern(24, 16, 4);
  Result<std::string> jpeg = EncodeJpeg(cmyk, 100, {.cmyk = true});
  ASSERT_TRUE(jpeg.ok()) << jpeg.status().ToString();
  Result<ImageInfo> info = ProbeImage(*jpeg);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->color_space, ColorSpace::kCmyk);
  EXPECT_NE(FindJpegMarker(*jpeg, 0xEE), std::string::npos) << "no Adobe APP14 marker";
  Result<Image> rgb = DecodeImage(*jpeg);
  ASSERT_TRUE(rgb.ok()) << rgb.status().ToString();
  EXPECT_LE(MaxAbsDiff(rgb->pixels, InvertedCmykToRgb(cmyk)), 6);
}

TEST(DecodeImageTest, PalettePngWithTransparencyExpandsToRgbOrRgba) {
  PngSpec spec{.width = 3, .height = 2, .color_type = PNG_COLOR_TYPE_PALETTE, .bit_depth = 4};
  spec.palette = {{10, 20, 30}, {200, 100, 0}, {1, 2, 3}};
  spec.trns = {255, 128};  // entry 2 has no tRNS entry: opaque
  // 4-bit indices, two per byte: row 0 = 0 1 2, row 1 = 2 1 0.
  spec.rows = {{0x01, 0x20}, {0x21, 0x00}};
  const std::string png = LibpngWrite(spec);
  Result<ImageInfo> info = ProbeImage(png);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->color_space, ColorSpace::kPalette);
  EXPECT_EQ(info->components, 1);
  EXPECT_EQ(info->bit_depth, 4);

  Result<Image> rgb = DecodeImage(png);
  ASSERT_TRUE(rgb.ok()) << rgb.status().ToString();
  EXPECT_EQ(rgb->channels, 3);
  EXPECT_EQ(rgb->pixels, (std::vector<uint8_t>{10, 20, 30, 200, 100, 0, 1, 2, 3,  //
                                               1, 2, 3, 200, 100, 0, 10, 20, 30}));
  Result<Image> rgba = DecodeImage(png, {.force_rgb = false});
  ASSERT_TRUE(rgba.ok()) << rgba.status().ToString();
  EXPECT_EQ(rgba->channels, 4);
  EXPECT_EQ(rgba->pixels,
            (std::vector<uint8_t>{10, 20, 30, 255, 200, 100, 0, 128, 1,  2,  3,  255,
                                  1,  2,  3,  255, 200, 100, 0, 128, 10, 20, 30, 255}));
}

TEST(DecodeImageTest, SixteenBitGrayAlphaPngScalesToEightBits) {
  PngSpec spec{.width = 2, .height = 1, .color_type = PNG_COLOR_TYPE_GRAY_ALPHA, .bit_depth = 16};
  spec.rows = {{0xFF, 0xFF, 0x80, 0x00, 0x00, 0x00, 0x12, 0x34}};  // (65535, 32768), (0, 0x1234)
  const std::string png = LibpngWrite(spec);
  Result<ImageInfo> info = ProbeImage(png);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->bit_depth, 16);
  EXPECT_EQ(info->color_space, ColorSpace::kGrayAlpha);
  EXPECT_EQ(info->components, 2);
  Result<Image> ga = DecodeImage(png, {.force_rgb = false});
  ASSERT_TRUE(ga.ok()) << ga.status().ToString();
  EXPECT_EQ(ga->channels, 2);
  // png_set_scale_16 rounds v * 255 / 65535: 32768 -> 128, 0x1234 -> 18.
  EXPECT_EQ(ga->pixels, (std::vector<uint8_t>{255, 128, 0, 18}));
  Result<Image> rgb = DecodeImage(png);
  ASSERT_TRUE(rgb.ok());
  EXPECT_EQ(rgb->pixels, (std::vector<uint8_t>{255, 255, 255, 0, 0, 0}));
}

TEST(DecodeImageTest, OneBitGrayPngExpandsToFullRange) {
  PngSpec spec{.width = 10, .height = 1, .color_type = PNG_COLOR_TYPE_GRAY, .bit_depth = 1};
  spec.rows = {{0b10110000, 0b01000000}};
  Result<Image> gray = DecodeImage(LibpngWrite(spec), {.force_rgb = false});
  ASSERT_TRUE(gray.ok()) << gray.status().ToString();
  EXPECT_EQ(gray->channels, 1);
  EXPECT_EQ(gray->pixels, (std::vector<uint8_t>{255, 0, 255, 255, 0, 0, 0, 0, 0, 255}));
}

TEST(DecodeImageTest, InterlacedPngDecodesLikeNonInterlaced) {
  const Image original = Pattern(11, 13, 3);
  PngSpec spec{.width = 11,
               .height = 13,
               .color_type = PNG_COLOR_TYPE_RGB,
               .bit_depth = 8,
               .interlaced = true};
  for (int y = 0; y < 13; ++y) {
    spec.rows.emplace_back(original.pixels.begin() + y * 33, original.pixels.begin() + y * 33 + 33);
  }
  const std::string png = LibpngWrite(spec);
  Result<ImageInfo> info = ProbeImage(png);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->progressive);
  Result<Image> decoded = DecodeImage(png);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->pixels, original.pixels);
}

// ---- error paths
// ---------------------------------------------------------------------------------

TEST(DecodeImageTest, ZeroBytesIsDataLoss) {
  EXPECT_EQ(DecodeImage("").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ProbeImage("").status().code(), StatusCode::kDataLoss);
}

TEST(DecodeImageTest, RandomGarbageIsUnsupported) {
  std::mt19937 rng(1234);
  for (int i = 0; i < 50; ++i) {
    std::string garbage(1 + rng() % 300, '\0');
    for (auto& c : garbage) c = static_cast<char>(rng());
    garbage[0] = 'x';  // neither FF nor 89
    Result<Image> image = DecodeImage(garbage);
    EXPECT_EQ(image.status().code(), StatusCode::kUnsupported) << "case " << i;
    EXPECT_NE(image.status().message().find("first bytes"), std::string::npos);
    EXPECT_EQ(ProbeImage(garbage).status().code(), StatusCode::kUnsupported);
  }
  Result<Image> gif = DecodeImage("GIF89a\x01\x00\x01\x00");
  EXPECT_EQ(gif.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(gif.status().message().find("GIF"), std::string::npos) << gif.status().ToString();
}

TEST(DecodeImageTest, GarbageAfterMagicIsDataLoss) {
  std::mt19937 rng(99);
  for (std::string magic : {std::string("\xFF\xD8\xFF"), std::string("\x89PNG\r\n\x1A\n", 8)}) {
    std::string bytes = magic;
    for (int i = 0; i < 200; ++i) bytes += static_cast<char>(rng());
    EXPECT_EQ(DecodeImage(bytes).status().code(), StatusCode::kDataLoss);
    EXPECT_EQ(ProbeImage(bytes).status().code(), StatusCode::kDataLoss);
  }
}

TEST(DecodeImageTest, TruncatedJpegIsDataLoss) {
  Result<std::string> jpeg = EncodeJpeg(Pattern(64, 48, 3), 95);  // pixel data well past headers
  ASSERT_TRUE(jpeg.ok());
  const std::string half = jpeg->substr(0, jpeg->size() / 2);
  Result<Image> image = DecodeImage(half);
  EXPECT_EQ(image.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(image.status().message().find("Premature end of JPEG file"), std::string::npos)
      << image.status().ToString();
  // The header is intact, so probing still works.
  Result<ImageInfo> info = ProbeImage(half);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->width, 64);
  // Cut inside the headers, probing fails too.
  EXPECT_EQ(ProbeImage(jpeg->substr(0, 100)).status().code(), StatusCode::kDataLoss);
}

TEST(DecodeImageTest, TruncatedProgressiveJpegIsDataLoss) {
  const std::string jpeg = SmallJpeg(3, 90, {.progressive = true});
  EXPECT_EQ(DecodeImage(jpeg.substr(0, jpeg.size() * 2 / 3)).status().code(),
            StatusCode::kDataLoss);
}

TEST(DecodeImageTest, TruncatedPngIsDataLoss) {
  const std::string png = SmallPng();
  Result<Image> image = DecodeImage(png.substr(0, png.size() / 2));
  EXPECT_EQ(image.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(image.status().message().find("truncated PNG"), std::string::npos)
      << image.status().ToString();
}

TEST(DecodeImageTest, JpegMissingOnlyEoiIsDataLossEvenWhenLenient) {
  const std::string jpeg = SmallJpeg();
  const std::string no_eoi = jpeg.substr(0, jpeg.size() - 2);
  EXPECT_EQ(DecodeImage(no_eoi).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeImage(no_eoi, {.strict = false}).status().code(), StatusCode::kDataLoss);
}

TEST(DecodeImageTest, ExtraneousBytesBeforeEoiAreDataLossOnlyWhenStrict) {
  const std::string jpeg = SmallJpeg();
  ASSERT_EQ(jpeg.substr(jpeg.size() - 2), "\xFF\xD9");
  const std::string padded =
      jpeg.substr(0, jpeg.size() - 2) + std::string(40, '\x00') + jpeg.substr(jpeg.size() - 2);
  Result<Image> strict = DecodeImage(padded);
  EXPECT_EQ(strict.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(strict.status().message().find("extraneous bytes"), std::string::npos)
      << strict.status().ToString();
  Result<Image> lenient = DecodeImage(padded, {.strict = false});
  ASSERT_TRUE(lenient.ok()) << lenient.status().ToString();
  Result<Image> full = DecodeImage(jpeg);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(lenient->pixels, full->pixels);
  // Re-encoding is lenient like the reference's tf.image.decode_jpeg.
  EXPECT_TRUE(ReencodeAsRgbJpeg(padded).ok());
}

TEST(DecodeImageTest, JpegClaiming65500x65500IsRefusedBeforeAllocating) {
  const std::string huge = WithJpegSize(SmallJpeg(), 65500, 65500);
  Result<ImageInfo> info = ProbeImage(huge);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->width, 65500);
  EXPECT_EQ(info->height, 65500);
  Result<Image> image = DecodeImage(huge);
  EXPECT_EQ(image.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(image.status().message().find("65500x65500"), std::string::npos)
      << image.status().ToString();
}

TEST(DecodeImageTest, PngClaimingHugeSizeIsRefusedBeforeAllocating) {
  const std::string huge = WithPngSize(SmallPng(), 100000, 70000);
  Result<ImageInfo> info = ProbeImage(huge);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->width, 100000);
  Result<Image> image = DecodeImage(huge);
  EXPECT_EQ(image.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(image.status().message().find("100000x70000"), std::string::npos)
      << image.status().ToString();
}

// A PNG chunk inserted right after IHDR (which ends at byte 33): 4-byte length (as claimed),
// type, payload, CRC over type + payload.
std::string WithChunkAfterIhdr(std::string png, std::string_view type, std::string_view payload,
                               uint32_t claimed_length) {
  std::string chunk(4, '\0');
  PutBigEndian32(&chunk, 0, claimed_length);
  chunk.append(type);
  chunk.append(payload);
  chunk.append(4, '\0');
  PutBigEndian32(&chunk, chunk.size() - 4,
                 Crc32(std::string_view(chunk).substr(4, type.size() + payload.size())));
  png.insert(33, chunk);
  return png;
}

// An ancillary chunk whose length field lies (1.5 GB in a tiny file) is only a "benign error" to
// libpng, which then allocates the claimed length; found by fuzz_image_decode. It must be a plain
// DataLoss (the allocation itself is caught by the asan fuzz regression run, fuzz/regressions).
TEST(DecodeImageTest, PngChunkWithLyingLengthIsDataLoss) {
  for (std::string_view type :
       {"tEXt", "zTXt", "iTXt", "iCCP", "sPLT", "eXIf", "pCAL", "sCAL", "abCd"}) {
    const std::string png =
        WithChunkAfterIhdr(SmallPng(), type, std::string_view("k\0text", 6), 1560283090u);
    Result<Image> image = DecodeImage(png);
    EXPECT_EQ(image.status().code(), StatusCode::kDataLoss) << type;
    Result<ImageInfo> info = ProbeImage(png);
    EXPECT_EQ(info.status().code(), StatusCode::kDataLoss) << type;
  }
}

// Large honest metadata (a 9 MB text chunk, above libpng's 8 MB chunk limit) is skipped unread and
// the pixels are the same as without it.
TEST(DecodeImageTest, PngWithLargeTextChunkDecodesLikeWithout) {
  const std::string plain = SmallPng();
  const std::string text(9u << 20, 'x');
  const std::string with_text = WithChunkAfterIhdr(
      plain, "tEXt", std::string("Comment\0", 8) + text, static_cast<uint32_t>(8 + text.size()));
  Result<Image> a = DecodeImage(plain);
  Result<Image> b = DecodeImage(with_text);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(a->pixels, b->pixels);
}

TEST(DecodeImageTest, MaxPixelsOptionAppliesToSmallImages) {
  for (const std::string& bytes : {SmallJpeg(), SmallPng()}) {
    const int64_t pixels = bytes[0] == '\xFF' ? 16 * 12 : 13 * 7;
    EXPECT_TRUE(DecodeImage(bytes, {.max_pixels = pixels}).ok());
    Result<Image> refused = DecodeImage(bytes, {.max_pixels = pixels - 1});
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(refused.status().message().find(bytes[0] == '\xFF' ? "16x12" : "13x7"),
              std::string::npos)
        << refused.status().ToString();
  }
}

TEST(DecodeImageTest, TwelveBitJpegIsUnsupported) {
  std::string jpeg = SmallJpeg();
  const size_t sof = FindJpegMarker(jpeg, 0xC0);
  ASSERT_NE(sof, std::string::npos);
  jpeg[sof + 4] = 12;  // sample precision
  EXPECT_EQ(ProbeImage(jpeg).status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(DecodeImage(jpeg).status().code(), StatusCode::kUnsupported);
}

// Every proper prefix fails with a clean status; none crashes (run under ASan in CI).
TEST(DecodeImageTest, EveryPrefixOfJpegFailsCleanly) {
  for (const std::string& jpeg :
       {SmallJpeg(), SmallJpeg(1), SmallJpeg(3, 80, {.progressive = true}),
        SmallJpeg(4, 90, {.cmyk = true})}) {
    ASSERT_TRUE(DecodeImage(jpeg).ok());
    for (size_t n = 0; n < jpeg.size(); ++n) {
      Result<Image> image = DecodeImage(std::string_view(jpeg).substr(0, n));
      const StatusCode want = n == 0  ? StatusCode::kDataLoss
                              : n < 3 ? StatusCode::kUnsupported
                                      : StatusCode::kDataLoss;
      ASSERT_EQ(image.status().code(), want)
          << "prefix " << n << " of " << jpeg.size() << ": " << image.status().ToString();
      ASSERT_FALSE(image.status().message().empty());
      (void)ProbeImage(std::string_view(jpeg).substr(0, n));
    }
  }
}

TEST(DecodeImageTest, EveryPrefixOfPngFailsCleanly) {
  std::vector<std::string> pngs = {SmallPng(), SmallPng(4)};
  PngSpec interlaced{.width = 9,
                     .height = 9,
                     .color_type = PNG_COLOR_TYPE_GRAY,
                     .bit_depth = 8,
                     .interlaced = true};
  for (int y = 0; y < 9; ++y) interlaced.rows.push_back(std::vector<uint8_t>(9, uint8_t(y * 20)));
  pngs.push_back(LibpngWrite(interlaced));
  for (const std::string& png : pngs) {
    ASSERT_TRUE(DecodeImage(png).ok());
    for (size_t n = 0; n < png.size(); ++n) {
      Result<Image> image = DecodeImage(std::string_view(png).substr(0, n));
      const StatusCode want = n == 0  ? StatusCode::kDataLoss
                              : n < 8 ? StatusCode::kUnsupported
                                      : StatusCode::kDataLoss;
      ASSERT_EQ(image.status().code(), want)
          << "prefix " << n << " of " << png.size() << ": " << image.status().ToString();
      (void)ProbeImage(std::string_view(png).substr(0, n));
    }
  }
}

// Seeded byte flips anywhere in the file: any outcome but a crash, and OK results are well formed.
TEST(DecodeImageTest, CorruptedBytesNeverCrash) {
  std::mt19937 rng(2024);
  for (const std::string& original :
       {SmallJpeg(), SmallJpeg(3, 90, {.progressive = true}), SmallPng(), SmallPng(2)}) {
    for (int trial = 0; trial < 300; ++trial) {
      std::string bytes = original;
      for (int flips = 1 + rng() % 4; flips > 0; --flips) {
        bytes[2 + rng() % (bytes.size() - 2)] = static_cast<char>(rng());
      }
      for (bool strict : {true, false}) {
        Result<Image> image = DecodeImage(bytes, {.max_pixels = 1 << 20, .strict = strict});
        if (image.ok()) {
          EXPECT_EQ(image->pixels.size(), size_t(image->width) * image->height * image->channels)
              << "trial " << trial;
        } else {
          EXPECT_FALSE(image.status().message().empty()) << "trial " << trial;
        }
      }
    }
  }
}

TEST(DecodeImageTest, ErrorsAreNeverPrintedToStderr) {
  const std::string jpeg = SmallJpeg();
  const std::string png = SmallPng();
  ::testing::internal::CaptureStderr();
  (void)DecodeImage(jpeg.substr(0, jpeg.size() / 2));
  (void)DecodeImage(jpeg.substr(0, jpeg.size() - 2), {.strict = false});
  (void)DecodeImage(png.substr(0, png.size() - 5));
  std::string flipped = png;
  flipped[45] ^= 0x55;  // inside IDAT's data: CRC error in a critical chunk
  EXPECT_EQ(DecodeImage(flipped).status().code(), StatusCode::kDataLoss);
  (void)ProbeImage("\xFF\xD8\xFF\xE0");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST(EncodeImageTest, MalformedImagesAreInvalidArgument) {
  Image rgba = Pattern(4, 4, 4);
  EXPECT_EQ(EncodeJpeg(rgba, 90).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeJpeg(Pattern(4, 4, 2), 90).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeJpeg(Pattern(4, 4, 3), 90, {.cmyk = true}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeJpeg(Pattern(4, 4, 3), 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeJpeg(Pattern(4, 4, 3), 101).status().code(), StatusCode::kInvalidArgument);
  Image short_pixels = Pattern(4, 4, 3);
  short_pixels.pixels.pop_back();
  EXPECT_EQ(EncodeJpeg(short_pixels, 90).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodePng(short_pixels).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodePng(Image{}).status().code(), StatusCode::kInvalidArgument);
  Image five{1, 1, 5, std::vector<uint8_t>(5)};
  EXPECT_EQ(EncodePng(five).status().code(), StatusCode::kInvalidArgument);
  Image too_wide{70000, 1, 1, std::vector<uint8_t>(70000)};
  EXPECT_EQ(EncodeJpeg(too_wide, 90).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(EncodePng(too_wide).ok());
}

// ---- re-encoding (ingest's fix for CMYK JPEGs and PNGs named .JPEG)
// ------------------------------

void ExpectRgbJpeg(const std::string& jpeg, int width, int height) {
  Result<ImageInfo> info = ProbeImage(jpeg);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->format, ImageFormat::kJpeg);
  EXPECT_EQ(info->components, 3);
  EXPECT_EQ(info->color_space, ColorSpace::kYCbCr);
  EXPECT_FALSE(info->progressive);
  EXPECT_EQ(info->width, width);
  EXPECT_EQ(info->height, height);
}

TEST(ReencodeImageTest, CmykBecomesRgbJpegWithSameColours) {
  const Image cmyk = Pattern(32, 24, 4);
  const std::string original = LibjpegCmyk(cmyk, /*ycck=*/false, 95);
  Result<Image> before = DecodeImage(original);
  ASSERT_TRUE(before.ok());
  Result<std::string> fixed = ReencodeAsRgbJpeg(original);
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  ExpectRgbJpeg(*fixed, 32, 24);
  Result<Image> after = DecodeImage(*fixed);
  ASSERT_TRUE(after.ok());
  EXPECT_GT(Psnr(*before, *after), 35);
}

TEST(ReencodeImageTest, PngNamedJpegBecomesRgbJpeg) {
  const Image original = Pattern(20, 10, 4);  // RGBA: alpha is dropped
  Result<std::string> png = EncodePng(original);
  ASSERT_TRUE(png.ok());
  Result<std::string> fixed = ReencodeAsRgbJpeg(*png);
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  ExpectRgbJpeg(*fixed, 20, 10);
  Result<Image> rgb = DecodeImage(*png);
  Result<Image> after = DecodeImage(*fixed);
  ASSERT_TRUE(rgb.ok() && after.ok());
  EXPECT_GT(Psnr(*rgb, *after), 35);
}

TEST(ReencodeImageTest, GrayJpegBecomesThreeComponents) {
  Result<std::string> fixed = ReencodeAsRgbJpeg(SmallJpeg(1));
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  ExpectRgbJpeg(*fixed, 16, 12);
}

TEST(ReencodeImageTest, BrokenInputKeepsItsStatus) {
  const std::string jpeg = SmallJpeg();
  EXPECT_EQ(ReencodeAsRgbJpeg(jpeg.substr(0, jpeg.size() / 2)).status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(ReencodeAsRgbJpeg("hello").status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(ReencodeAsRgbJpeg(SmallJpeg(), 0).status().code(), StatusCode::kInvalidArgument);
}

// ---- reentrancy
// ----------------------------------------------------------------------------------

TEST(DecodeImageTest, ConcurrentCallsGiveIdenticalResults) {
  const std::string jpeg = SmallJpeg(3, 90, {.progressive = true});
  const std::string png = SmallPng(4);
  const std::string broken = jpeg.substr(0, jpeg.size() / 2);
  Result<Image> want_jpeg = DecodeImage(jpeg);
  Result<Image> want_png = DecodeImage(png);
  ASSERT_TRUE(want_jpeg.ok() && want_png.ok());
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        Result<Image> a = DecodeImage(jpeg);
        Result<Image> b = DecodeImage(png);
        Result<Image> c = DecodeImage(broken);
        Result<std::string> d = EncodeJpeg(*want_jpeg, 90);
        if (!a.ok() || a->pixels != want_jpeg->pixels || !b.ok() || b->pixels != want_png->pixels ||
            c.ok() || !d.ok()) {
          ++failures[t];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace sluice::formats
