#include "sluice/pipeline/crop.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace sluice::pipeline {
namespace {

// An integer rectangle [min_x, max_x) x [min_y, max_y), as in the TF kernel.
struct Rect {
  int min_x = 0, min_y = 0, max_x = 0, max_y = 0;
  float Area() const { return static_cast<float>((max_x - min_x) * (max_y - min_y)); }
  Rect Intersect(const Rect& r) const {
    Rect out{std::max(min_x, r.min_x), std::max(min_y, r.min_y), std::min(max_x, r.max_x),
             std::min(max_y, r.max_y)};
    if (out.min_x > out.max_x || out.min_y > out.max_y) return Rect{};
    return out;
  }
};

int RoundToInt(float v) { return static_cast<int>(std::lrint(v)); }  // ties to even, like lrintf

// One attempt of GenerateRandomCrop: false when rounding leaves the area outside the range.
bool GenerateRandomCrop(int width, int height, float min_rel_area, float max_rel_area,
                        float aspect_ratio, PhiloxStream& rng, Rect* crop) {
  if (max_rel_area <= 0.0f || aspect_ratio <= 0.0f || width <= 0 || height <= 0 ||
      min_rel_area > max_rel_area) {
    return false;
  }
  const float min_area = min_rel_area * width * height;
  const float max_area = max_rel_area * width * height;
  int h = RoundToInt(std::sqrt(min_area / aspect_ratio));
  int max_h = RoundToInt(std::sqrt(max_area / aspect_ratio));
  if (RoundToInt(max_h * aspect_ratio) > width) {
    // The largest max_h with round(max_h * aspect_ratio) <= width, minus one if float rounding
    // still overshoots.
    const float kEps = 0.0000001f;
    max_h = static_cast<int>((width + 0.5 - kEps) / aspect_ratio);
    if (RoundToInt(max_h * aspect_ratio) > width) max_h -= 1;
  }
  max_h = std::min(max_h, height);
  h = std::min(h, max_h);
  if (h < max_h) h += static_cast<int>(rng.UniformUint(static_cast<uint32_t>(max_h - h + 1)));
  int w = RoundToInt(h * aspect_ratio);

  // Rounding may have pushed the area just outside the range: try one row more, then one row less.
  float area = static_cast<float>(w * h);
  if (area < min_area) {
    h += 1;
    w = RoundToInt(h * aspect_ratio);
    area = static_cast<float>(w * h);
  }
  if (area > max_area) {
    h -= 1;
    w = RoundToInt(h * aspect_ratio);
    area = static_cast<float>(w * h);
  }
  if (area < min_area || area > max_area || w > width || h > height || w <= 0 || h <= 0) {
    return false;
  }
  // As in TF, the offset excludes its largest value (Uniform(height - h) is in [0, height - h -
  // 1]).
  const int y =
      h < height ? static_cast<int>(rng.UniformUint(static_cast<uint32_t>(height - h))) : 0;
  const int x = w < width ? static_cast<int>(rng.UniformUint(static_cast<uint32_t>(width - w))) : 0;
  *crop = Rect{x, y, x + w, y + h};
  return true;
}

bool SatisfiesOverlap(const Rect& crop, float min_object_covered, const std::vector<Rect>& boxes) {
  constexpr float kMinArea = 1.0f;  // boxes (and crops) without a pixel never count
  if (crop.Area() < kMinArea) return false;
  for (const Rect& box : boxes) {
    const float object_area = box.Area();
    if (object_area < kMinArea) continue;
    if (crop.Intersect(box).Area() / object_area >= min_object_covered) return true;
  }
  return false;
}

float Clamp01(float v) { return std::clamp(v, 0.0f, 1.0f); }

}  // namespace

CropWindow SampleDistortedBoundingBox(int height, int width, std::span<const NormalizedBox> boxes,
                                      const DistortedCropOptions& options, PhiloxStream& rng) {
  std::vector<Rect> rects;
  rects.reserve(boxes.empty() ? 1 : boxes.size());
  for (const NormalizedBox& b : boxes) {
    rects.push_back(Rect{
        static_cast<int>(Clamp01(b.xmin) * width), static_cast<int>(Clamp01(b.ymin) * height),
        static_cast<int>(Clamp01(b.xmax) * width), static_cast<int>(Clamp01(b.ymax) * height)});
  }
  const Rect image{0, 0, width, height};
  if (rects.empty()) rects.push_back(image);

  for (int attempt = 0; attempt < options.max_attempts; ++attempt) {
    const float aspect_ratio =
        rng.UniformFloat() * (options.aspect_ratio_max - options.aspect_ratio_min) +
        options.aspect_ratio_min;
    Rect crop;
    if (GenerateRandomCrop(width, height, options.area_min, options.area_max, aspect_ratio, rng,
                           &crop) &&
        SatisfiesOverlap(crop, options.min_object_covered, rects)) {
      return CropWindow{crop.min_x, crop.min_y, crop.max_x - crop.min_x, crop.max_y - crop.min_y};
    }
  }
  return CropWindow{0, 0, width, height};
}

CropWindow SampleDistortedCrop(int height, int width, std::span<const NormalizedBox> boxes,
                               const DistortedCropOptions& options, PhiloxStream& rng) {
  const CropWindow crop = SampleDistortedBoundingBox(height, width, boxes, options, rng);
  if (crop.width == width && crop.height == height) {
    return CenterCrop(height, width, options.image_size, options.crop_padding);
  }
  return crop;
}

CropWindow CenterCrop(int height, int width, int image_size, int crop_padding) {
  const float ratio =
      static_cast<float>(static_cast<double>(image_size) / (image_size + crop_padding));
  // At least one pixel: TF would produce an empty (undecodable) window for a 1-pixel-wide image.
  const int side =
      std::max(1, static_cast<int>(ratio * static_cast<float>(std::min(height, width))));
  return CropWindow{((width - side) + 1) / 2, ((height - side) + 1) / 2, side, side};
}

ImageSize AspectPreservingResizeSize(int height, int width, int smallest_side) {
  const float h = static_cast<float>(height);
  const float w = static_cast<float>(width);
  const float scale = static_cast<float>(smallest_side) / (h > w ? w : h);
  return ImageSize{RoundToInt(h * scale), RoundToInt(w * scale)};
}

int SampleVggResizeSide(PhiloxStream& rng, int min_side, int max_side) {
  return rng.UniformInt(min_side, max_side);
}

CropWindow VggRandomCrop(int height, int width, PhiloxStream& rng, int crop) {
  const int y = rng.UniformInt(0, height - crop);
  const int x = rng.UniformInt(0, width - crop);
  return CropWindow{x, y, crop, crop};
}

CropWindow VggCentralCrop(int height, int width, int crop) {
  return CropWindow{(width - crop) / 2, (height - crop) / 2, crop, crop};
}

CropWindow CifarRandomCrop(PhiloxStream& rng, int size, int pad) {
  const int y = rng.UniformInt(0, 2 * pad);
  const int x = rng.UniformInt(0, 2 * pad);
  return CropWindow{x, y, size, size};
}

}  // namespace sluice::pipeline
