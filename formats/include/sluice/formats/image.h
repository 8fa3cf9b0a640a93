// Image codecs: sniff, probe, decode and encode JPEG and PNG held in memory.
//
// Used by `sluice verify --decode` (does every image decode?), by ingest (probe each image;
// re-encode the ones TensorFlow's decode_jpeg rejects: ImageNet's PNG named .JPEG and its 22 CMYK
// JPEGs) and by the sample-data generator. Decoding only a window of an image (the input pipeline's
// decode stage) is image_crop.h. libjpeg and libpng stay behind these two headers: formats is the
// only module that links them.
//
// Errors: a corrupt or truncated image is DataLoss carrying the library's own message ("Premature
// end of JPEG file", "truncated PNG: ..."); bytes that are no format we know are Unsupported; an
// image whose header claims more pixels than DecodeOptions::max_pixels is InvalidArgument, refused
// before any pixel buffer is allocated. Nothing is ever printed to stderr and nothing exits:
// libjpeg's corrupt-data warnings become errors (see DecodeOptions::strict), libpng's
// ancillary-chunk warnings are dropped.
//
// Thread-safety: every function is reentrant (no global state; each call owns its codec state).
#ifndef SLUICE_FORMATS_IMAGE_H_
#define SLUICE_FORMATS_IMAGE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/formats/status.h"

namespace sluice::formats {

enum class ImageFormat { kUnknown, kJpeg, kPng };

// "JPEG", "PNG", "unknown".
std::string_view ImageFormatName(ImageFormat format);

// Decides by magic bytes (content, never a file name): JPEG starts FF D8 FF, PNG with its 8-byte
// signature 89 'P' 'N' 'G' 0D 0A 1A 0A.
ImageFormat SniffFormat(std::string_view bytes);

// How the stored samples are to be interpreted.
enum class ColorSpace {
  kUnknown,
  kGray,       // JPEG or PNG, 1 component
  kRgb,        // JPEG stored as RGB (Adobe transform 0, rare) or PNG truecolor
  kYCbCr,      // the usual 3-component JPEG
  kCmyk,       // 4-component JPEG without transform; TensorFlow's decode_jpeg rejects it
  kYcck,       // 4-component JPEG with Adobe transform 2; also rejected by TensorFlow
  kGrayAlpha,  // PNG color type 4
  kRgba,       // PNG color type 6
  kPalette,    // PNG color type 3
};

// "gray", "rgb", "ycbcr", "cmyk", "ycck", "gray+alpha", "rgba", "palette", "unknown".
std::string_view ColorSpaceName(ColorSpace color_space);

struct ImageInfo {
  ImageFormat format = ImageFormat::kUnknown;
  int width = 0;
  int height = 0;
  // Components as stored: JPEG 1, 3 or 4; PNG 1 (gray, palette), 2, 3 or 4.
  int components = 0;
  ColorSpace color_space = ColorSpace::kUnknown;
  // JPEG: progressive (SOF2) rather than sequential. PNG: Adam7 interlaced.
  bool progressive = false;
  // Bits per sample as stored: JPEG 8 (12-bit JPEGs are Unsupported), PNG 1, 2, 4, 8 or 16.
  int bit_depth = 0;

  // True for the four-component JPEGs that must be re-encoded before TensorFlow can read them.
  bool IsCmyk() const {
    return color_space == ColorSpace::kCmyk || color_space == ColorSpace::kYcck;
  }
};

// Reads headers only (JPEG up to the first scan, PNG up to the first IDAT); no pixel is decoded, so
// a file truncated inside its image data still probes OK. Unsupported for unknown formats, DataLoss
// for empty or corrupt headers.
Result<ImageInfo> ProbeImage(std::string_view bytes);

// Decoded pixels, 8 bits per sample, interleaved HWC, rows top to bottom without padding:
// pixels[(y * width + x) * channels + c]. channels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;
};

// PIL's Image.MAX_IMAGE_PIXELS (2^31 / 4 / 3): above it PIL refuses to open a file as a possible
// decompression bomb. 65500 x 65500 is far above.
inline constexpr int64_t kDefaultMaxPixels = 178956970;

struct DecodeOptions {
  // Images whose header claims more than width * height pixels are refused before allocation.
  int64_t max_pixels = kDefaultMaxPixels;
  // true: always 3-channel RGB (gray is replicated, alpha is dropped as TensorFlow's channels=3
  // does). false: the stored layout (JPEG gray 1 / RGB 3; PNG 1, 2, 3 or 4). CMYK/YCCK JPEGs always
  // give RGB.
  bool force_rgb = true;
  // true: every libjpeg warning about corrupt data (bad Huffman code, extraneous bytes before a
  // marker) is DataLoss. false: such warnings are tolerated, as TensorFlow's decode_jpeg tolerates
  // them; errors and data ending early (a missing EOI included) still fail.
  bool strict = true;
};

// Decodes a JPEG (libjpeg) or PNG (libpng; palette, 1/2/4/16-bit, tRNS are normalised to 8-bit
// gray, gray+alpha, RGB or RGBA before force_rgb applies). CMYK and YCCK JPEGs are converted to
// RGB: with an Adobe marker the samples are taken as inverted (what Photoshop writes and libjpeg
// stores), so R = C * K / 255; without one, R = (255 - C) * (255 - K) / 255. This is TensorFlow's
// convention.
Result<Image> DecodeImage(std::string_view bytes, const DecodeOptions& options = {});

enum class ChromaSubsampling {
  k420,  // 2x2 chroma blocks: TensorFlow's encode_jpeg default, libjpeg's default
  k444,  // full-resolution chroma
};

struct JpegEncodeOptions {
  ChromaSubsampling subsampling = ChromaSubsampling::k420;
  // Writes a progressive JPEG (jpeg_simple_progression) instead of baseline.
  bool progressive = false;
  // Only for 4-channel images, which a JPEG cannot hold as RGBA: write the four channels as CMYK
  // with an Adobe marker (libjpeg's convention: samples already inverted, 255 = no ink).
  // DecodeImage then returns R = C * K / 255. Used to build CMYK test images like ImageNet's.
  bool cmyk = false;
};

// Encodes 1-channel (grayscale JPEG) or 3-channel RGB (YCbCr JPEG) images, or 4-channel with
// options.cmyk. quality is libjpeg's 1..100 scale. InvalidArgument for a malformed Image (pixel
// count not width * height * channels, a side above 65500, RGBA without cmyk) or quality out of
// range.
Result<std::string> EncodeJpeg(const Image& image, int quality,
                               const JpegEncodeOptions& options = {});

// Encodes 8-bit gray, gray+alpha, RGB or RGBA (channels 1..4), non-interlaced. Lossless:
// DecodeImage with force_rgb=false gives the same Image back.
Result<std::string> EncodePng(const Image& image);

// Decodes anything DecodeImage reads (force_rgb, not strict: alpha dropped, corrupt-data warnings
// tolerated as TensorFlow does) and writes a baseline RGB (YCbCr, 4:2:0) JPEG. This is how ingest
// fixes ImageNet's PNG-named-.JPEG and CMYK files; quality 100 matches build_imagenet_data.py,
// which re-encodes with tf.image.encode_jpeg(format='rgb', quality=100). Truncated input is still
// DataLoss.
Result<std::string> ReencodeAsRgbJpeg(std::string_view bytes, int quality = 100);

}  // namespace sluice::formats

#endif  // SLUICE_FORMATS_IMAGE_H_
