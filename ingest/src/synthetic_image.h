// Synthetic "photos" for `sluice sample-data`: one class-dependent object (or two) on a photo-like
// background, with the object's pixel bounding box.
//
// A style (0..kNumStyles-1) fixes what a class looks like: the object's shape (circle, square,
// triangle, ring, cross, hexagon, crescent, ellipse, flower, frame), its hue, its surface texture
// (solid, stripes, checks, dots) and a tint of the background. Everything else is jitter drawn from
// the spec's seed: the position, size, rotation and squash of each object, the hue wobble, the
// background gradient, low-frequency mottling, a few soft blobs, and per-pixel sensor noise.
// Classes therefore differ in colour (visible even at 8x8) and in shape and texture (what a small
// CNN learns), while no two images of a class are alike.
//
// Rendering is a pure function of the spec (no global state), so images can be made in parallel in
// any order and still be byte-identical. A 500x375 image takes about 4 ms of one core to render
// (half of it the per-pixel noise) and 1 ms to encode as a q90 JPEG of about 60 KB.
#ifndef SLUICE_INGEST_SRC_SYNTHETIC_IMAGE_H_
#define SLUICE_INGEST_SRC_SYNTHETIC_IMAGE_H_

#include <cstdint>
#include <vector>

#include "sluice/formats/image.h"
#include "splitmix64.h"

namespace sluice::ingest {

// A seed for item `index` of stream `stream` under the user's seed: a hash, so nearby inputs give
// unrelated streams.
uint64_t MixSeed(uint64_t seed, uint64_t stream, uint64_t index);

// Fisher-Yates with our generator (std::shuffle's algorithm is implementation-defined).
template <typename T>
void SeededShuffle(std::vector<T>& v, SplitMix64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    std::swap(v[i - 1], v[static_cast<size_t>(rng.UniformInt(0, static_cast<int64_t>(i) - 1))]);
  }
}

inline constexpr int kNumStyles = 20;

// Pixel box with inclusive corners, as in ImageNet's PASCAL-VOC XML files.
struct PixelBox {
  int xmin = 0;
  int ymin = 0;
  int xmax = 0;
  int ymax = 0;
};

struct SyntheticImageSpec {
  int style = 0;    // 0..kNumStyles-1
  int width = 0;    // >= 8
  int height = 0;   // >= 8
  int objects = 1;  // 1 or 2
  uint64_t seed = 0;
};

struct SyntheticImage {
  formats::Image image;  // RGB, 3 channels
  // One per object, the pixels where the object covers at least half the pixel.
  std::vector<PixelBox> boxes;
};

SyntheticImage RenderSyntheticImage(const SyntheticImageSpec& spec);

// Variants used for the odd files ImageNet contains.
// Luma (BT.601) as a 1-channel image.
formats::Image ToGray(const formats::Image& rgb);
// 4 channels in libjpeg's Adobe CMYK convention (inverted: 255 = no ink), chosen so that
// formats::DecodeImage (R = C * K / 255) gives the RGB image back up to rounding.
formats::Image ToAdobeCmyk(const formats::Image& rgb);

}  // namespace sluice::ingest

#endif  // SLUICE_INGEST_SRC_SYNTHETIC_IMAGE_H_
