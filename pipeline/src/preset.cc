#include "sluice/pipeline/preset.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <span>

#include "sluice/formats/example_view.h"
#include "sluice/formats/image.h"
#include "sluice/formats/image_crop.h"
#include "sluice/pipeline/crop.h"
#include "sluice/pipeline/normalize.h"
#include "sluice/pipeline/philox.h"

#include "sluice/pipeline/clock.h"

namespace sluice::pipeline {

namespace {

using formats::ChooseScaleDenom;
using formats::CropDecodeOptions;
using formats::DecodeCrop;
using formats::DecodedCrop;
using formats::DecodeJpegCropEighths;

constexpr std::array<std::string_view, 6> kPresetNames = {
    "resnet-train", "resnet-eval", "vgg-train", "vgg-eval", "cifar-train", "cifar-eval"};

// The decoded window (RGB uint8) and its size, whichever path produced it.
struct Window {
  const uint8_t* pixels = nullptr;
  int width = 0;
  int height = 0;
};

// Decodes `window` of the image; a JPEG DCT-scaled by eighths/8 unless spec.full_decode (--basic:
// the whole image at full size, then the window copied out). JPEGs with TensorFlow's default IDCT
// (JDCT_IFAST, CropDecodeOptions::fast_idct), as the reference preprocessing decodes them.
Status DecodeWindow(const SampleSpec& spec, std::string_view bytes, const formats::ImageInfo& info,
                    const CropWindow& window, int eighths, SampleScratch* scratch, Window* out) {
  CropDecodeOptions options;
  options.max_pixels = spec.max_pixels;
  options.fast_idct = true;
  if (spec.full_decode) {
    DecodedCrop& full = scratch->full;
    SLUICE_RETURN_IF_ERROR(DecodeCrop(bytes, {0, 0, info.width, info.height}, 1, &full, options));
    DecodedCrop& crop = scratch->crop;
    crop.width = window.width;
    crop.height = window.height;
    crop.pixels.resize(static_cast<size_t>(window.width) * window.height * 3);
    for (int y = 0; y < window.height; ++y) {
      std::memcpy(
          crop.pixels.data() + static_cast<size_t>(y) * window.width * 3,
          full.pixels.data() + (static_cast<size_t>(window.y + y) * full.width + window.x) * 3,
          static_cast<size_t>(window.width) * 3);
    }
  } else if (formats::SniffFormat(bytes) == formats::ImageFormat::kJpeg) {
    SLUICE_RETURN_IF_ERROR(DecodeJpegCropEighths(bytes, window, eighths, &scratch->crop, options));
  } else {
    SLUICE_RETURN_IF_ERROR(DecodeCrop(bytes, window, 1, &scratch->crop, options));
  }
  *out = {scratch->crop.pixels.data(), scratch->crop.width, scratch->crop.height};
  scratch->decode_end = Now();
  return Status::Ok();
}

// What follows the resize: the flip draw and the per-channel affine map. Fused into the resize's
// second pass, except in --basic (full_decode), which runs them as separate passes afterwards.
struct Epilogue {
  bool train = false;
  bool flip = false;  // drawn after the crop (and, for vgg, the resize side)
  std::array<float, 3> scale = {1, 1, 1};
  std::array<float, 3> bias = {0, 0, 0};  // scale 1, bias 0 (uint8 output) change nothing

  void DrawFlip(PhiloxStream& rng) { flip = train && rng.Bernoulli(); }
  // Sets the fused part of the resize; nothing when the epilogue runs separately.
  void Fuse(const SampleSpec& spec, ResizeShape* shape) const {
    if (spec.full_decode) return;
    shape->mirror = flip;
    shape->channel_scale = scale.data();
    shape->channel_bias = bias.data();
  }
};

// resnet-train / resnet-eval: crop window, decode, bicubic resize to size x size.
Status ResnetImage(const SampleSpec& spec, std::string_view bytes, PhiloxStream& rng,
                   SampleScratch* scratch, Epilogue* epilogue, float* dst) {
  SLUICE_ASSIGN_OR_RETURN(formats::ImageInfo info, formats::ProbeImage(bytes));
  CropWindow window;
  if (spec.preset == Preset::kResnetTrain) {
    DistortedCropOptions options;
    options.image_size = spec.image_size;
    window = SampleDistortedCrop(info.height, info.width, {}, options, rng);
  } else {
    window = CenterCrop(info.height, info.width, spec.image_size);
  }
  epilogue->DrawFlip(rng);
  scratch->augment = {window, 0, epilogue->flip};
  // The smallest of 1/8, 1/4, 1/2, 1 that keeps the window at least image_size on both sides: the
  // resize then starts from fewer pixels. Not the finer N/8 scales: libjpeg-turbo 2.1 has SIMD
  // IDCTs only for these four (for 4:2:0 chroma, N/8 needs a 2N x 2N IDCT, also plain C), and
  // decoding at 3/8 .. 7/8 measured slower than not scaling at all (bench/pipeline/preset_bench).
  const int eighths =
      info.format == formats::ImageFormat::kJpeg
          ? 8 / ChooseScaleDenom(window.width, window.height, spec.image_size, spec.image_size)
          : 8;
  Window w;
  SLUICE_RETURN_IF_ERROR(DecodeWindow(spec, bytes, info, window, eighths, scratch, &w));
  ResizeShape shape{w.height, w.width, 3, spec.image_size, spec.image_size};
  epilogue->Fuse(spec, &shape);
  ResizeBicubic(w.pixels, shape, dst, &scratch->resize);
  return Status::Ok();
}

// vgg-train / vgg-eval: the size x size crop of an aspect-preserving bilinear resize whose short
// side is `side`; only the crop's pixels are computed.
Status VggImage(const SampleSpec& spec, std::string_view bytes, PhiloxStream& rng,
                SampleScratch* scratch, Epilogue* epilogue, float* dst) {
  SLUICE_ASSIGN_OR_RETURN(formats::ImageInfo info, formats::ProbeImage(bytes));
  const bool train = spec.preset == Preset::kVggTrain;
  const int side = train ? SampleVggResizeSide(rng) : 256;
  const ImageSize resized = AspectPreservingResizeSize(info.height, info.width, side);
  if (resized.height < spec.image_size || resized.width < spec.image_size) {
    return Status::InvalidArgument("image " + std::to_string(info.width) + "x" +
                                   std::to_string(info.height) + " resized to short side " +
                                   std::to_string(side) + " is smaller than the " +
                                   std::to_string(spec.image_size) + " crop");
  }
  const CropWindow crop = train ? VggRandomCrop(resized.height, resized.width, rng, spec.image_size)
                                : VggCentralCrop(resized.height, resized.width, spec.image_size);
  epilogue->DrawFlip(rng);
  scratch->augment = {crop, side, epilogue->flip};
  // The bilinear taps of the crop reach source rows/columns floor(o * scale) .. +1; decode the
  // whole image (slim resizes the whole image too) at full resolution so the taps are exact.
  const CropWindow all{0, 0, info.width, info.height};
  Window w;
  SLUICE_RETURN_IF_ERROR(DecodeWindow(spec, bytes, info, all, 8, scratch, &w));
  ResizeShape shape{w.height, w.width, 3, resized.height, resized.width};
  shape.window_x = crop.x;
  shape.window_y = crop.y;
  shape.window_width = crop.width;
  shape.window_height = crop.height;
  epilogue->Fuse(spec, &shape);
  ResizeBilinear(w.pixels, shape, dst, &scratch->resize);
  return Status::Ok();
}

// The 32x32x3 source pixels of a CIFAR record: RAW bytes as they are, or a decoded PNG/JPEG.
Status CifarPixels(const SampleSpec& spec, std::string_view bytes, std::string_view format,
                   SampleScratch* scratch, const uint8_t** pixels) {
  const int size = spec.image_size;
  if (format == "RAW") {
    if (bytes.size() != static_cast<size_t>(size) * size * 3) {
      return Status::DataLoss("RAW image has " + std::to_string(bytes.size()) +
                              " bytes, expected " + std::to_string(size * size * 3) + " (" +
                              std::to_string(size) + "x" + std::to_string(size) + "x3)");
    }
    *pixels = reinterpret_cast<const uint8_t*>(bytes.data());
    scratch->decode_end = Now();
    return Status::Ok();
  }
  SLUICE_ASSIGN_OR_RETURN(formats::ImageInfo info, formats::ProbeImage(bytes));
  if (info.width != size || info.height != size) {
    return Status::InvalidArgument("image is " + std::to_string(info.width) + "x" +
                                   std::to_string(info.height) + ", the cifar presets expect " +
                                   std::to_string(size) + "x" + std::to_string(size));
  }
  CropDecodeOptions options;
  options.max_pixels = spec.max_pixels;
  options.fast_idct = true;  // TensorFlow's default, as above
  SLUICE_RETURN_IF_ERROR(DecodeCrop(bytes, {0, 0, size, size}, 1, &scratch->crop, options));
  *pixels = scratch->crop.pixels.data();
  scratch->decode_end = Now();
  return Status::Ok();
}

// cifar-train: pad-and-crop + flip as one gather into dst (uint8 or float).
template <typename T>
void CifarCrop(const uint8_t* src, int size, const CropWindow& window, bool flip, T* dst) {
  constexpr int kPad = 4;
  for (int y = 0; y < size; ++y) {
    const int sy = y + window.y - kPad;
    for (int x = 0; x < size; ++x) {
      const int sx = (flip ? size - 1 - x : x) + window.x - kPad;
      T* out = dst + (static_cast<size_t>(y) * size + x) * 3;
      if (sy < 0 || sy >= size || sx < 0 || sx >= size) {
        out[0] = out[1] = out[2] = 0;
      } else {
        const uint8_t* in = src + (static_cast<size_t>(sy) * size + sx) * 3;
        out[0] = in[0];
        out[1] = in[1];
        out[2] = in[2];
      }
    }
  }
}

void ToUint8(const float* src, size_t n, uint8_t* dst) {
  for (size_t i = 0; i < n; ++i) {
    dst[i] = static_cast<uint8_t>(std::clamp(std::nearbyint(src[i]), 0.0f, 255.0f));
  }
}

// The first bytes value of each spec.keep_features key ("" when absent or not bytes).
Status KeepFeatures(const SampleSpec& spec, std::string_view record, SampleScratch* scratch) {
  const size_t n = spec.keep_features.size();
  scratch->features.resize(n);
  if (n == 0) return Status::Ok();
  std::vector<std::string_view> keys(spec.keep_features.begin(), spec.keep_features.end());
  std::vector<formats::FeatureView> views(n);
  SLUICE_RETURN_IF_ERROR(formats::ScanExample(record, keys, views));
  for (size_t k = 0; k < n; ++k) {
    scratch->features[k].clear();
    if (views[k].kind != formats::FeatureKind::kBytes) continue;
    SLUICE_ASSIGN_OR_RETURN(std::string_view v, views[k].FirstBytes());
    scratch->features[k].assign(v);
  }
  return Status::Ok();
}

}  // namespace

Result<Preset> ParsePreset(std::string_view name) {
  for (size_t i = 0; i < kPresetNames.size(); ++i) {
    if (kPresetNames[i] == name) return static_cast<Preset>(i);
  }
  std::string valid;
  for (std::string_view n : kPresetNames) valid += (valid.empty() ? "" : ", ") + std::string(n);
  return Status::InvalidArgument("unknown preset '" + std::string(name) + "' (valid: " + valid +
                                 ")");
}

std::string_view PresetName(Preset preset) { return kPresetNames[static_cast<size_t>(preset)]; }

bool IsTrainPreset(Preset preset) {
  return preset == Preset::kResnetTrain || preset == Preset::kVggTrain ||
         preset == Preset::kCifarTrain;
}

bool IsCifarPreset(Preset preset) {
  return preset == Preset::kCifarTrain || preset == Preset::kCifarEval;
}

int DefaultImageSize(Preset preset) { return IsCifarPreset(preset) ? 32 : 224; }

Status ProcessSample(const SampleSpec& spec, std::string_view record, uint64_t seed, uint32_t epoch,
                     uint64_t index, SampleScratch* scratch, float* out_f32, uint8_t* out_u8,
                     int64_t* label) {
  const double start = Now();
  scratch->timings = {};
  scratch->parsed = false;
  scratch->augment = {};
  const std::array<std::string_view, 3> keys = {spec.image_key, spec.label_key, "image/format"};
  std::array<formats::FeatureView, 3> views;
  SLUICE_RETURN_IF_ERROR(formats::ScanExample(record, keys, views));
  for (int k = 0; k < 2; ++k) {
    if (views[k].kind == formats::FeatureKind::kNone) {
      return Status::InvalidArgument("Example has no feature '" + std::string(keys[k]) + "'");
    }
  }
  SLUICE_ASSIGN_OR_RETURN(std::string_view bytes, views[0].FirstBytes());
  SLUICE_ASSIGN_OR_RETURN(*label, views[1].FirstInt64());
  SLUICE_RETURN_IF_ERROR(KeepFeatures(spec, record, scratch));
  scratch->parsed = true;
  const double parsed = Now();
  scratch->timings.parse_s = parsed - start;
  scratch->decode_end = parsed;
  // Decode time ends inside the preset functions (decode_end); the rest is augmentation.
  struct Finish {
    SampleScratch* s;
    double parsed;
    ~Finish() {
      const double end = Now();
      s->timings.decode_s = s->decode_end - parsed;
      s->timings.augment_s = end - s->decode_end;
    }
  } finish{scratch, parsed};

  PhiloxStream rng(seed, epoch, index);
  const int size = spec.image_size;
  const size_t n = static_cast<size_t>(size) * size * 3;
  const bool u8 = spec.output == OutputType::kUint8;

  if (IsCifarPreset(spec.preset)) {
    std::string_view format = "PNG";
    if (views[2].kind == formats::FeatureKind::kBytes) {
      SLUICE_ASSIGN_OR_RETURN(format, views[2].FirstBytes());
    }
    const uint8_t* src = nullptr;
    SLUICE_RETURN_IF_ERROR(CifarPixels(spec, bytes, format, scratch, &src));
    CropWindow window{4, 4, size, size};  // eval: the unpadded image
    bool flip = false;
    if (spec.preset == Preset::kCifarTrain) {
      window = CifarRandomCrop(rng, size, 4);
      flip = rng.Bernoulli();
    }
    scratch->augment = {window, 0, flip};
    if (u8) {
      CifarCrop(src, size, window, flip, out_u8);
    } else {
      CifarCrop(src, size, window, flip, out_f32);
      PerImageStandardize(out_f32, static_cast<int64_t>(n));
    }
    return Status::Ok();
  }

  // resnet / vgg: resize into a float image (the output itself when it is float).
  float* image = out_f32;
  if (u8) {
    scratch->image.resize(n);
    image = scratch->image.data();
  }
  const bool resnet = spec.preset == Preset::kResnetTrain || spec.preset == Preset::kResnetEval;
  Epilogue epilogue;
  epilogue.train = IsTrainPreset(spec.preset);
  if (!u8) {
    for (int c = 0; c < 3; ++c) {
      // (x - mean) / std as x * (1 / std) - mean / std; vgg: x - mean.
      epilogue.scale[c] = resnet ? 1.0f / kResnetStd[c] : 1.0f;
      epilogue.bias[c] = resnet ? -kResnetMean[c] / kResnetStd[c] : -kVggMean[c];
    }
  }
  if (resnet) {
    SLUICE_RETURN_IF_ERROR(ResnetImage(spec, bytes, rng, scratch, &epilogue, image));
  } else {
    SLUICE_RETURN_IF_ERROR(VggImage(spec, bytes, rng, scratch, &epilogue, image));
  }
  if (spec.full_decode) {  // --basic: the unfused passes
    if (epilogue.flip) FlipHorizontal(image, size, size, 3);
    if (!u8 && resnet) {
      NormalizeMeanStd(image, static_cast<int64_t>(size) * size, kResnetMean, kResnetStd);
    } else if (!u8) {
      SubtractMean(image, static_cast<int64_t>(size) * size, kVggMean);
    }
  }
  if (u8) ToUint8(image, n, out_u8);
  return Status::Ok();
}

}  // namespace sluice::pipeline
