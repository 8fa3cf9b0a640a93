// Private to formats/src (not on any include path outside the formats library): the libjpeg
// plumbing and the checks that the whole-image codecs (image.cc) and the crop-window decoder
// (image_crop.cc) share. It is the one sluice header that exposes a libjpeg type, which is why it
// sits in src/: no other module can include it, so libjpeg stays a private dependency of formats.
//
// libjpeg's default error manager prints to stderr and calls exit(). JpegErrorManager formats the
// message and longjmps back instead; every libjpeg call must sit below a setjmp(err.jump) in the
// same function. Strict mode makes every corrupt-data warning an error; lenient mode lets through
// the ones TensorFlow's decode_jpeg accepts, but never running out of data.
#ifndef SLUICE_FORMATS_SRC_JPEG_CODEC_H_
#define SLUICE_FORMATS_SRC_JPEG_CODEC_H_

#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <vector>

// jpeglib.h needs size_t and FILE declared before it.
#include <jpeglib.h>

#include "sluice/formats/status.h"

namespace sluice::formats::internal {

struct JpegErrorManager {
  jpeg_error_mgr pub;  // first member: libjpeg passes &pub back to us as cinfo->err
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  int msg_code;
  bool strict;
};

void InitJpegErrorManager(JpegErrorManager* err, bool strict);

// Unsupported for precisions and processes libjpeg was built without; DataLoss otherwise.
Status JpegStatus(const JpegErrorManager& err);

// Decompressor and its error manager. cinfo is zeroed so destroying it is safe even when
// jpeg_create_decompress failed part way (jpeg_destroy checks cinfo->mem). Not copyable.
struct JpegDecoder {
  jpeg_decompress_struct cinfo{};
  JpegErrorManager err;
  explicit JpegDecoder(bool strict) { InitJpegErrorManager(&err, strict); }
  ~JpegDecoder() { jpeg_destroy_decompress(&cinfo); }
  JpegDecoder(const JpegDecoder&) = delete;
  JpegDecoder& operator=(const JpegDecoder&) = delete;
};

// Creates the decompressor over `bytes` (which must outlive d) and reads the headers. false on a
// libjpeg error (then JpegStatus(d->err) says why).
bool RunJpegReadHeader(JpegDecoder* d, std::string_view bytes);

// Converts `width` pixels of libjpeg's CMYK to RGB. Adobe writes inverted CMYK (255 = no ink):
// R = C * K / 255; plain CMYK: R = (255 - C) * (255 - K) / 255. TensorFlow's convention.
void CmykToRgb(const uint8_t* src, int width, bool inverted, uint8_t* dst);

// Resizes a pixel buffer without letting std::bad_alloc escape our APIs.
Status TryResizePixels(std::vector<uint8_t>* v, uint64_t size);

// InvalidArgument when a width x height image (as its header claims, before anything is
// allocated) has more than max_pixels pixels; a negative limit refuses every image. format
// ("JPEG", "PNG") and limit_name (the option the caller set, e.g. "DecodeOptions::max_pixels")
// only shape the message, so the user learns which knob to turn.
Status CheckPixelLimit(std::string_view format, uint64_t width, uint64_t height, int64_t max_pixels,
                       std::string_view limit_name);

}  // namespace sluice::formats::internal

#endif  // SLUICE_FORMATS_SRC_JPEG_CODEC_H_
