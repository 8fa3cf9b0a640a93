// Prepares an image for a shard the way TensorFlow's readers need it, by content and never by name:
// JPEG passes through byte for byte; PNG bytes (ImageNet has one named .JPEG) and CMYK/YCCK JPEGs (22
// in ImageNet; TensorFlow's decode_jpeg rejects them) are re-encoded to baseline RGB JPEG at quality
// 100, as build_imagenet_data.py does.
//
// Checks, cheapest first: empty file; unknown format; header (probe) errors; dimensions over the pixel
// cap (refused before any decode allocates); a JPEG without its end-of-image marker (a truncated file).
// With verify_decode every image is fully decoded as well (what the reference does, at ~2 ms per
// ImageNet image); without it, a corrupt entropy-coded segment inside an intact file goes unnoticed
// until training decodes it (`sluice verify --decode` finds those).
#ifndef SLUICE_INGEST_IMAGE_PREP_H_
#define SLUICE_INGEST_IMAGE_PREP_H_

#include <cstdint>
#include <string>

#include "sluice/formats/image.h"
#include "sluice/formats/status.h"

namespace sluice::ingest {

struct PrepOptions {
  int64_t max_pixels = formats::kDefaultMaxPixels;
  bool verify_decode = false;
  int reencode_quality = 100;
};

struct PreparedImage {
  std::string bytes;  // JPEG
  int width = 0;
  int height = 0;
  int channels = 0;  // as stored (1 for grayscale JPEGs, which pass through unchanged)
  bool reencoded = false;
  formats::ImageFormat original = formats::ImageFormat::kUnknown;
};

// Errors are the reason a sample is rejected (the caller adds archive and member).
Result<PreparedImage> PrepareImage(std::string&& bytes, const PrepOptions& options);

// True for names ending in .jpg, .jpeg or .png (any case): what a class folder's images look like.
bool HasImageExtension(std::string_view name);

}  // namespace sluice::ingest

#endif  // SLUICE_INGEST_IMAGE_PREP_H_
