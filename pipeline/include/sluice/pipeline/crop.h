// Crop-window samplers of the preprocessing presets (DESIGN.md "Preprocessing presets"). Pure
// functions of the image size and a PhiloxStream: they say which window to decode; the decoder and
// the resize kernels do the rest.
#ifndef SLUICE_PIPELINE_CROP_H_
#define SLUICE_PIPELINE_CROP_H_

#include <span>

#include "sluice/formats/image_crop.h"
#include "sluice/pipeline/philox.h"

namespace sluice::pipeline {

// A window of an image in pixels: columns [x, x + width), rows [y, y + height). The decoder's own
// window type, so a sampled window goes to formats::DecodeCrop as it is.
using CropWindow = formats::PixelWindow;

// A bounding box in normalized coordinates, TensorFlow's order (ymin, xmin, ymax, xmax), each in
// [0, 1].
struct NormalizedBox {
  float ymin = 0, xmin = 0, ymax = 1, xmax = 1;
};

// The constraints of TensorFlow's sample_distorted_bounding_box; defaults are resnet-train's
// (tensorflow/tpu resnet_preprocessing.py `_decode_and_random_crop`).
struct DistortedCropOptions {
  float min_object_covered = 0.1f;
  float aspect_ratio_min = 3.0f / 4.0f;  // width / height
  float aspect_ratio_max = 4.0f / 3.0f;
  float area_min = 0.08f;  // fraction of the image area
  float area_max = 1.0f;
  int max_attempts = 10;
  // The eval center crop used as the fallback.
  int image_size = 224;
  int crop_padding = 32;
};

// TensorFlow's sample_distorted_bounding_box (tensorflow/core/kernels/image/
// sample_distorted_bounding_box_op.cc) with use_image_if_no_bounding_boxes = true: up to
// max_attempts times, draw an aspect ratio r ~ U[min, max), a height uniform over the integers
// between round(sqrt(area_min * h * w / r)) and round(sqrt(area_max * h * w / r)) (clipped so that
// round(height * r) <= w and height <= h), width = round(height * r), nudged by one row if rounding
// left the area outside the range; the attempt fails if the area is still out of range, and
// otherwise y ~ U{0 .. h - height - 1} (0 when height == h), likewise x, and the crop is accepted
// if it covers at least min_object_covered of some box's area. Returns the whole image when every
// attempt fails. Boxes are scaled by truncation (x = int(xmin * w)); coordinates outside [0, 1] are
// clamped (TF would reject them). An empty list means the whole image. Requires height, width > 0.
CropWindow SampleDistortedBoundingBox(int height, int width, std::span<const NormalizedBox> boxes,
                                      const DistortedCropOptions& options, PhiloxStream& rng);

// resnet-train's crop: SampleDistortedBoundingBox, then resnet_preprocessing's rule that a result
// equal to the whole image (all of height, width and channels equal:
// `_at_least_x_are_equal(original_shape, tf.shape(image), 3)`) is "bad" and replaced by the eval
// CenterCrop. The whole image is returned when every attempt failed, but also when an attempt drew
// exactly the whole image; both become the center crop.
CropWindow SampleDistortedCrop(int height, int width, std::span<const NormalizedBox> boxes,
                               const DistortedCropOptions& options, PhiloxStream& rng);

// resnet-eval's crop (resnet_preprocessing `_decode_and_center_crop`): a square of side
// int(image_size / (image_size + crop_padding) * min(h, w)) (ratio as a double rounded to float,
// product in float as TF does), but at least 1, offsets ((h - side) + 1) / 2 and ((w - side) + 1)
// / 2.
CropWindow CenterCrop(int height, int width, int image_size = 224, int crop_padding = 32);

// vgg: the output size of slim vgg_preprocessing's `_aspect_preserving_resize`: scale =
// smallest_side / min(h, w) in float, each side rint(side * scale).
struct ImageSize {
  int height = 0;
  int width = 0;
  friend bool operator==(const ImageSize&, const ImageSize&) = default;
};
ImageSize AspectPreservingResizeSize(int height, int width, int smallest_side);

// vgg-train's short side: uniform over the integers [min_side, max_side] (slim: 256..512).
int SampleVggResizeSide(PhiloxStream& rng, int min_side = 256, int max_side = 512);

// vgg-train's crop of the resized image: offsets uniform over [0, h - crop] and [0, w - crop]
// (slim `_random_crop`). Requires crop <= height, width.
CropWindow VggRandomCrop(int height, int width, PhiloxStream& rng, int crop = 224);

// vgg-eval's crop: offsets (h - crop) / 2 and (w - crop) / 2, rounded down (slim `_central_crop`).
CropWindow VggCentralCrop(int height, int width, int crop = 224);

// cifar-train's crop (TF official cifar10_main.py: resize_image_with_crop_or_pad to size + 2 * pad,
// then random_crop of size x size): a window in the coordinates of the zero-padded image, offsets
// uniform over [0, 2 * pad]. Pixel (x, y) of the window is source pixel (x + window.x - pad, y +
// window.y - pad), or zero outside the source.
CropWindow CifarRandomCrop(PhiloxStream& rng, int size = 32, int pad = 4);

}  // namespace sluice::pipeline

#endif  // SLUICE_PIPELINE_CROP_H_
