// The per-sample work of the preprocessing presets (DESIGN.md "Preprocessing presets"): parse a
// serialized tf.Example, decode the crop window of its image, augment, and write one output image.
// A pure function of (record bytes, seed, epoch, sample index): the graph's parse, decode+crop and
// augment stages call it, and tests call it directly.
//
//   resnet-train  crop = SampleDistortedCrop (whole image as the box, as tensorflow/tpu's
//                 imagenet_input does); decode only that window, DCT-scaled by the smallest of
//                 1/8, 1/4, 1/2, 1 that keeps the scaled window >= 224 on both sides (the scales
//                 libjpeg-turbo has SIMD IDCTs for); bicubic resize to 224x224;
//                 flip with p = 1/2; (x - mean) / std with resnet's constants.
//   resnet-eval   CenterCrop (224/256 of the short side); decode + resize as above; normalize.
//   vgg-train     short side ~ U{256..512}; the 224 crop at uniform offsets of the
//   aspect-preserving
//                 bilinear resize (only the crop's pixels are computed); flip; subtract vgg means.
//   vgg-eval      short side 256, central crop.
//   cifar-train   zero-pad to 40x40, random 32x32 crop, flip; per-image standardization.
//   cifar-eval    per-image standardization only.
// JPEGs are decoded with TensorFlow decode_jpeg's default IDCT (JDCT_IFAST), as the reference
// preprocessing does. Images are RGB: grayscale is replicated, CMYK converted, alpha dropped. CIFAR records may hold
// PNG or RAW (image/format "RAW": height x width x 3 bytes) images.
//
// Output: one image_size x image_size x 3 HWC image, float32 or (OutputType::kUint8) the augmented
// pixels before normalization, rounded and clamped to 0..255 (for resnet/vgg: the resized values).
//
// The Philox stream of a sample draws, in order: [vgg-train: resize side], crop, flip. Randomness
// never depends on the thread or on other samples.
//
// Thread-safety: ProcessSample is reentrant; each thread passes its own SampleScratch.
#ifndef SLUICE_PIPELINE_PRESET_H_
#define SLUICE_PIPELINE_PRESET_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/formats/image_crop.h"
#include "sluice/formats/status.h"
#include "sluice/pipeline/crop.h"
#include "sluice/pipeline/resize.h"

namespace sluice::pipeline {

enum class Preset { kResnetTrain, kResnetEval, kVggTrain, kVggEval, kCifarTrain, kCifarEval };

// "resnet-train", ... ; InvalidArgument listing the valid names otherwise.
Result<Preset> ParsePreset(std::string_view name);
std::string_view PresetName(Preset preset);
bool IsTrainPreset(Preset preset);
bool IsCifarPreset(Preset preset);
// 224 for resnet/vgg, 32 for cifar.
int DefaultImageSize(Preset preset);

enum class OutputType { kFloat32, kUint8 };

struct SampleSpec {
  Preset preset = Preset::kResnetTrain;
  int image_size = 224;  // output side
  OutputType output = OutputType::kFloat32;
  // The naive path (`pipeline bench --basic`): decode the whole image, copy the window out, no DCT
  // scaling, flip and normalize as separate passes. Same crop and flip draws; pixels differ only
  // where DCT scaling would have applied (and by float rounding).
  bool full_decode = false;
  std::string image_key = "image/encoded";
  std::string label_key = "image/class/label";
  // Bytes features copied out per sample (SampleScratch::features), e.g. "image/filename" for
  // predictions: the consumer never re-reads the record.
  std::vector<std::string> keep_features;
  int64_t max_pixels = formats::kDefaultMaxPixels;
};

// The random (or, for eval presets, fixed) choices that made a sample's pixels: see
// SampleOrigin in batch.h for the coordinates of each preset.
struct SampleAugment {
  CropWindow crop;
  int resize_side = 0;
  bool flip = false;
};

// Where the last ProcessSample call spent its time (the profiler's parse / decode+crop / augment
// stages), in seconds.
struct SampleTimings {
  double parse_s = 0;
  double decode_s = 0;
  double augment_s = 0;
};

// Per-thread buffers, reused across samples.
struct SampleScratch {
  SampleTimings timings;
  formats::DecodedCrop crop;
  formats::DecodedCrop full;  // --basic's whole-image decode
  ResizeScratch resize;
  std::vector<float> image;  // float result before it is written out
  double decode_end = 0;     // internal: when decoding finished
  SampleAugment augment;              // the last call's crop and flip
  std::vector<std::string> features;  // the last call's keep_features values ("" when absent)
  // Whether the last call got past parsing (its features were found): errors after this point are
  // the image's, before it the Example's.
  bool parsed = false;
};

// The sample's image and label. out_f32 (when spec.output is kFloat32) or out_u8 receives
// image_size * image_size * 3 values. Errors: a missing or wrong-kind feature is InvalidArgument
// naming the key; an undecodable image is DataLoss/Unsupported/InvalidArgument as
// formats::DecodeCrop says; a RAW image whose size disagrees with its height/width features is
// DataLoss.
Status ProcessSample(const SampleSpec& spec, std::string_view record, uint64_t seed, uint32_t epoch,
                     uint64_t index, SampleScratch* scratch, float* out_f32, uint8_t* out_u8,
                     int64_t* label);

}  // namespace sluice::pipeline

#endif  // SLUICE_PIPELINE_PRESET_H_
