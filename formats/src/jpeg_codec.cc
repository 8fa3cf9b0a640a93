#include "jpeg_codec.h"

#include <jerror.h>

#include <algorithm>
#include <exception>
#include <string>

namespace sluice::formats::internal {
namespace {

JpegErrorManager* ErrorManagerOf(j_common_ptr cinfo) {
  return reinterpret_cast<JpegErrorManager*>(cinfo->err);
}

[[noreturn]] void JpegErrorExit(j_common_ptr cinfo) {
  JpegErrorManager* err = ErrorManagerOf(cinfo);
  err->msg_code = cinfo->err->msg_code;
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// msg_level -1 is a warning, >= 0 a trace message. libjpeg reports most corrupt data as warnings
// and carries on (a truncated file gets a fake EOI and gray rows): we stop at the first one,
// except, when not strict, at corrupt-data warnings that TensorFlow's decode_jpeg also lets
// through.
void JpegEmitMessage(j_common_ptr cinfo, int msg_level) {
  if (msg_level >= 0) return;
  cinfo->err->num_warnings++;
  const int code = cinfo->err->msg_code;
  // Harmless: a newer JFIF minor version, an Adobe transform code we treat as "none", an ICC note.
  if (code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM || code == JWRN_BOGUS_ICC) return;
  if (!ErrorManagerOf(cinfo)->strict && code != JWRN_JPEG_EOF) return;
  JpegErrorExit(cinfo);
}

void JpegOutputMessage(j_common_ptr) {}

}  // namespace

void InitJpegErrorManager(JpegErrorManager* err, bool strict) {
  jpeg_std_error(&err->pub);
  err->pub.error_exit = JpegErrorExit;
  err->pub.emit_message = JpegEmitMessage;
  err->pub.output_message = JpegOutputMessage;
  err->message[0] = '\0';
  err->msg_code = 0;
  err->strict = strict;
}

Status JpegStatus(const JpegErrorManager& err) {
  const int code = err.msg_code;
  if (code == JERR_BAD_PRECISION || code == JERR_SOF_UNSUPPORTED || code == JERR_NOT_COMPILED ||
      code == JERR_CONVERSION_NOTIMPL) {
    return Status::Unsupported(std::string("JPEG: ") + err.message);
  }
  return Status::DataLoss(std::string("corrupt JPEG: ") + err.message);
}

bool RunJpegReadHeader(JpegDecoder* d, std::string_view bytes) {
  d->cinfo.err = &d->err.pub;
  if (setjmp(d->err.jump)) return false;
  jpeg_create_decompress(&d->cinfo);
  jpeg_mem_src(&d->cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&d->cinfo, TRUE);
  return true;
}

void CmykToRgb(const uint8_t* src, int width, bool inverted, uint8_t* dst) {
  for (int x = 0; x < width; ++x) {
    unsigned c = src[4 * x], m = src[4 * x + 1], y = src[4 * x + 2], k = src[4 * x + 3];
    if (!inverted) {
      c = 255 - c;
      m = 255 - m;
      y = 255 - y;
      k = 255 - k;
    }
    dst[3 * x] = static_cast<uint8_t>((c * k + 127) / 255);
    dst[3 * x + 1] = static_cast<uint8_t>((m * k + 127) / 255);
    dst[3 * x + 2] = static_cast<uint8_t>((y * k + 127) / 255);
  }
}

Status TryResizePixels(std::vector<uint8_t>* v, uint64_t size) {
  try {
    v->resize(size);
  } catch (const std::exception&) {
    return Status::InvalidArgument("cannot allocate " + std::to_string(size) + " bytes of pixels");
  }
  return Status::Ok();
}

Status CheckPixelLimit(std::string_view format, uint64_t width, uint64_t height, int64_t max_pixels,
                       std::string_view limit_name) {
  // Both sides come from 16-bit (JPEG) or 31-bit (PNG) header fields, so the product fits.
  const uint64_t pixels = width * height;
  if (pixels > static_cast<uint64_t>(std::max<int64_t>(max_pixels, 0))) {
    return Status::InvalidArgument(std::string(format) + " image is " + std::to_string(width) +
                                   "x" + std::to_string(height) + " = " + std::to_string(pixels) +
                                   " pixels, more than the limit of " + std::to_string(max_pixels) +
                                   " (" + std::string(limit_name) + ")");
  }
  return Status::Ok();
}

}  // namespace sluice::formats::internal
