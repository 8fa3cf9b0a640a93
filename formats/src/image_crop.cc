// Crop-window JPEG (libjpeg-turbo) and PNG decode behind sluice/formats/image_crop.h.
//
// libjpeg reports errors through a handler that must not return: ours records the message and
// longjmps back to a setjmp (jpeg_codec.h, shared with image.cc). To
// keep that well defined in C++, the function that calls setjmp (RunJpeg... below) owns no object
// with a destructor and keeps all state that outlives a jump in a caller-owned struct; allocation
// and Status building happen in the callers, between Run... calls.
#include "sluice/formats/image_crop.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>

#include "jpeg_codec.h"  // shared libjpeg error handling (libjpeg types)

namespace sluice::formats {
namespace {

using internal::CheckPixelLimit;
using internal::CmykToRgb;
using internal::JpegDecoder;
using internal::JpegStatus;
using internal::RunJpegReadHeader;
using internal::TryResizePixels;

// Columns decoded beyond the window on each side (scaled pixels). jpeg_crop_scanline's output
// equals the full decode's except at the left and right edges of the cropped region, where
// libjpeg's "fancy" h2v1/h2v2 chroma upsampling sees no neighbour (libjpeg.txt, "Partial image
// decompression"); keeping the window two columns inside the region keeps its pixels exact.
constexpr JDIMENSION kCropMargin = 2;

std::string WindowString(const PixelWindow& w) {
  return "(x " + std::to_string(w.x) + ", y " + std::to_string(w.y) + ", " +
         std::to_string(w.width) + "x" + std::to_string(w.height) + ")";
}

// InvalidArgument unless the window has positive sides and lies inside a width x height image.
Status CheckWindow(const PixelWindow& w, int64_t width, int64_t height) {
  if (w.width <= 0 || w.height <= 0 || w.x < 0 || w.y < 0 || int64_t{w.x} + w.width > width ||
      int64_t{w.y} + w.height > height) {
    return Status::InvalidArgument("crop window " + WindowString(w) + " is not inside the " +
                                   std::to_string(width) + "x" + std::to_string(height) + " image");
  }
  return Status::Ok();
}

bool ValidScale(int d) { return d == 1 || d == 2 || d == 4 || d == 8; }

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// What RunJpegCropDecode needs, all owned by the caller.
struct CropJob {
  J_COLOR_SPACE out_space;  // JCS_RGB or JCS_CMYK
  J_DCT_METHOD dct;         // JDCT_ISLOW or JDCT_IFAST
  int eighths;              // output scale eighths / 8
  PixelWindow scaled;       // ScaledWindowEighths(window, eighths)
  uint8_t* row;             // scratch for one row: scaled image width * 4 bytes
  uint8_t* out;             // scaled.width * scaled.height * 3 bytes
};

// Decodes job->scaled's rows and columns of the 1/scale_denom image. The rest of the image is
// never decoded: rows above by jpeg_skip_scanlines, those below by aborting.
bool RunJpegCropDecode(JpegDecoder* d, const CropJob* job) {
  jpeg_decompress_struct* cinfo = &d->cinfo;
  if (setjmp(d->err.jump)) return false;
  cinfo->out_color_space = job->out_space;
  cinfo->dct_method = job->dct;
  cinfo->scale_num = static_cast<unsigned>(job->eighths);
  cinfo->scale_denom = 8;
  jpeg_start_decompress(cinfo);
  const PixelWindow& w = job->scaled;
  const JDIMENSION full_width = cinfo->output_width;
  // Requested columns with a margin (kCropMargin); libjpeg moves the start left to an iMCU
  // boundary.
  JDIMENSION x0 = static_cast<JDIMENSION>(w.x) > kCropMargin ? w.x - kCropMargin : 0;
  const JDIMENSION x1 = std::min<JDIMENSION>(full_width, w.x + w.width + kCropMargin);
  JDIMENSION crop_width = x1 - x0;
  if (x0 > 0 || crop_width < full_width) jpeg_crop_scanline(cinfo, &x0, &crop_width);
  const size_t skip = static_cast<size_t>(w.x) - x0;  // columns before the window in each row
  if (w.y > 0) jpeg_skip_scanlines(cinfo, static_cast<JDIMENSION>(w.y));
  const bool cmyk = job->out_space == JCS_CMYK;
  const bool inverted = cinfo->saw_Adobe_marker;
  const size_t out_stride = size_t(w.width) * 3;
  for (int r = 0; r < w.height; ++r) {
    JSAMPROW row = job->row;
    if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
      // Only a suspending data source returns 0; ours never suspends.
      std::snprintf(d->err.message, sizeof(d->err.message), "decoder stopped at row %u of %u",
                    cinfo->output_scanline, cinfo->output_height);
      d->err.msg_code = 0;
      return false;
    }
    uint8_t* dst = job->out + size_t(r) * out_stride;
    if (cmyk) {
      CmykToRgb(job->row + skip * 4, w.width, inverted, dst);
    } else {
      std::memcpy(dst, job->row + skip * 3, out_stride);
    }
  }
  jpeg_abort_decompress(cinfo);
  return true;
}

}  // namespace

int ChooseScaleDenom(int crop_w, int crop_h, int out_w, int out_h) {
  if (crop_w <= 0 || crop_h <= 0 || out_w <= 0 || out_h <= 0) return 1;
  int best = 1;
  for (int d : kScaleDenoms) {
    if (CeilDiv(crop_w, d) >= out_w && CeilDiv(crop_h, d) >= out_h) best = d;
  }
  return best;
}

int ChooseScaleEighths(int crop_w, int crop_h, int out_w, int out_h) {
  if (crop_w <= 0 || crop_h <= 0 || out_w <= 0 || out_h <= 0) return 8;
  for (int n = 1; n < 8; ++n) {
    if (CeilDiv(int64_t{crop_w} * n, 8) >= out_w && CeilDiv(int64_t{crop_h} * n, 8) >= out_h) {
      return n;
    }
  }
  return 8;
}

PixelWindow ScaledWindowEighths(const PixelWindow& window, int eighths) {
  const int64_t n = eighths;
  PixelWindow s;
  s.x = static_cast<int>(int64_t{window.x} * n / 8);
  s.y = static_cast<int>(int64_t{window.y} * n / 8);
  s.width = static_cast<int>(CeilDiv((int64_t{window.x} + window.width) * n, 8) - s.x);
  s.height = static_cast<int>(CeilDiv((int64_t{window.y} + window.height) * n, 8) - s.y);
  return s;
}

PixelWindow ScaledWindow(const PixelWindow& window, int scale_denom) {
  return ScaledWindowEighths(window, 8 / scale_denom);
}

Status DecodeJpegCrop(std::string_view bytes, const PixelWindow& window, int scale_denom,
                      DecodedCrop* out, const CropDecodeOptions& options) {
  if (!ValidScale(scale_denom)) {
    return Status::InvalidArgument("JPEG scale denominator must be 1, 2, 4 or 8, got " +
                                   std::to_string(scale_denom));
  }
  return DecodeJpegCropEighths(bytes, window, 8 / scale_denom, out, options);
}

Status DecodeJpegCropEighths(std::string_view bytes, const PixelWindow& window, int eighths,
                             DecodedCrop* out, const CropDecodeOptions& options) {
  if (eighths < 1 || eighths > 8) {
    return Status::InvalidArgument("JPEG scale must be 1/8 .. 8/8, got " + std::to_string(eighths) +
                                   "/8");
  }
  if (bytes.empty()) return Status::DataLoss("empty image (0 bytes)");
  JpegDecoder d(/*strict=*/true);  // corrupt-data warnings are errors
  if (!RunJpegReadHeader(&d, bytes)) return JpegStatus(d.err);
  const jpeg_decompress_struct& cinfo = d.cinfo;
  SLUICE_RETURN_IF_ERROR(CheckPixelLimit("JPEG", cinfo.image_width, cinfo.image_height,
                                         options.max_pixels, "CropDecodeOptions::max_pixels"));
  SLUICE_RETURN_IF_ERROR(CheckWindow(window, cinfo.image_width, cinfo.image_height));
  CropJob job{};
  switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:  // libjpeg replicates gray to RGB
    case JCS_RGB:
    case JCS_YCbCr:
      job.out_space = JCS_RGB;
      break;
    case JCS_CMYK:
    case JCS_YCCK:  // libjpeg converts YCCK to CMYK; we take CMYK to RGB
      job.out_space = JCS_CMYK;
      break;
    default:
      return Status::Unsupported("JPEG with " + std::to_string(cinfo.num_components) +
                                 " components in an unknown color space");
  }
  job.dct = options.fast_idct ? JDCT_IFAST : JDCT_ISLOW;
  job.eighths = eighths;
  job.scaled = ScaledWindowEighths(window, eighths);
  std::vector<uint8_t> row;
  SLUICE_RETURN_IF_ERROR(
      TryResizePixels(&row, uint64_t(CeilDiv(int64_t{cinfo.image_width} * eighths, 8)) * 4));
  out->width = job.scaled.width;
  out->height = job.scaled.height;
  SLUICE_RETURN_IF_ERROR(
      TryResizePixels(&out->pixels, uint64_t(job.scaled.width) * uint64_t(job.scaled.height) * 3));
  job.row = row.data();
  job.out = out->pixels.data();
  if (!RunJpegCropDecode(&d, &job)) return JpegStatus(d.err);
  return Status::Ok();
}

Status DecodePngCrop(std::string_view bytes, const PixelWindow& window, DecodedCrop* out,
                     const CropDecodeOptions& options) {
  // Probe first so a window outside the image is refused without decoding anything.
  SLUICE_ASSIGN_OR_RETURN(ImageInfo info, ProbeImage(bytes));
  if (info.format != ImageFormat::kPng) return Status::Unsupported("not a PNG image");
  SLUICE_RETURN_IF_ERROR(CheckPixelLimit("PNG", info.width, info.height, options.max_pixels,
                                         "CropDecodeOptions::max_pixels"));
  SLUICE_RETURN_IF_ERROR(CheckWindow(window, info.width, info.height));
  SLUICE_ASSIGN_OR_RETURN(
      Image image,
      DecodeImage(bytes, {.max_pixels = options.max_pixels, .force_rgb = true, .strict = true}));
  out->width = window.width;
  out->height = window.height;
  const size_t out_stride = size_t(window.width) * 3;
  SLUICE_RETURN_IF_ERROR(TryResizePixels(&out->pixels, out_stride * window.height));
  const size_t in_stride = size_t(image.width) * 3;
  for (int r = 0; r < window.height; ++r) {
    std::memcpy(out->pixels.data() + r * out_stride,
                image.pixels.data() + (size_t(window.y) + r) * in_stride + size_t(window.x) * 3,
                out_stride);
  }
  return Status::Ok();
}

Status DecodeCrop(std::string_view bytes, const PixelWindow& window, int scale_denom,
                  DecodedCrop* out, const CropDecodeOptions& options) {
  switch (SniffFormat(bytes)) {
    case ImageFormat::kJpeg:
      return DecodeJpegCrop(bytes, window, scale_denom, out, options);
    case ImageFormat::kPng:
      return DecodePngCrop(bytes, window, out, options);
    case ImageFormat::kUnknown:
      break;
  }
  if (bytes.empty()) return Status::DataLoss("empty image (0 bytes)");
  return Status::Unsupported("not a JPEG or PNG image");
}

}  // namespace sluice::formats
