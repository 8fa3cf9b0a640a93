// JPEG (libjpeg-turbo) and PNG (libpng 1.6) whole-image codecs behind sluice/formats/image.h (the
// crop-window decoder, image_crop.cc, shares their libjpeg plumbing through jpeg_codec.h). Longer
// than most files: probe, decode and encode of both formats, each with the library's error
// plumbing and colour-space handling (CMYK/YCCK, palette, 16-bit, alpha), in one section apiece.
//
// Both libraries report errors by calling a handler that must not return; ours record the library's
// message and longjmp back to a setjmp. To keep that well defined in C++, every function that calls
// setjmp ("Run..." below) owns no object with a destructor and keeps all state that outlives a jump
// in a caller-owned struct passed by pointer; the C++ work (allocation, Status building) happens in
// the callers, between Run... calls. Each Run... sets its own jump target before touching the
// codec. Callbacks that run C++ code which may throw (buffer growth) catch and turn it into a codec
// error, so no exception ever unwinds through libjpeg or libpng frames.
#include "sluice/formats/image.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

// jpeglib.h needs FILE from <cstdio> and must precede jerror.h.
// clang-format off
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "jpeg_codec.h"
// clang-format on

namespace sluice::formats {
namespace {

using internal::CheckPixelLimit;
using internal::CmykToRgb;
using internal::InitJpegErrorManager;
using internal::JpegDecoder;
using internal::JpegErrorManager;
using internal::JpegStatus;
using internal::RunJpegReadHeader;
using internal::TryResizePixels;

constexpr unsigned char kPngSignature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
constexpr size_t kMessageSize = 256;

bool StartsWith(std::string_view bytes, std::string_view prefix) {
  return bytes.substr(0, prefix.size()) == prefix;
}

// Unsupported, naming formats we recognise but do not decode, else the first bytes in hex.
Status UnknownFormat(std::string_view bytes) {
  std::string what;
  if (StartsWith(bytes, "GIF87a") || StartsWith(bytes, "GIF89a")) {
    what = "GIF";
  } else if (StartsWith(bytes, "BM")) {
    what = "BMP";
  } else if (bytes.size() >= 12 && StartsWith(bytes, "RIFF") && bytes.substr(8, 4) == "WEBP") {
    what = "WebP";
  } else if (StartsWith(bytes, std::string_view("II*\0", 4)) ||
             StartsWith(bytes, std::string_view("MM\0*", 4))) {
    what = "TIFF";
  }
  if (!what.empty())
    return Status::Unsupported(what + " images are not supported (JPEG and PNG are)");
  std::string hex;
  for (size_t i = 0; i < bytes.size() && i < 8; ++i) {
    char buf[4];
    std::snprintf(buf, sizeof(buf), "%s%02x", i ? " " : "", static_cast<unsigned char>(bytes[i]));
    hex += buf;
  }
  return Status::Unsupported("not a JPEG or PNG image (first bytes: " + hex + ")");
}

// Checks an Image handed to an encoder. max_side is the format's limit per dimension.
Status ValidateImage(const Image& image, int64_t max_side, std::string_view format) {
  if (image.width <= 0 || image.height <= 0 || image.width > max_side || image.height > max_side) {
    return Status::InvalidArgument(std::string(format) + ": image size " +
                                   std::to_string(image.width) + "x" +
                                   std::to_string(image.height) + " must be within 1.." +
                                   std::to_string(max_side) + " per side");
  }
  if (image.channels < 1 || image.channels > 4) {
    return Status::InvalidArgument(std::string(format) + ": channels must be 1..4, got " +
                                   std::to_string(image.channels));
  }
  // width, height < 2^31 and channels <= 4: the product fits in 64 bits.
  const uint64_t expected =
      uint64_t(image.width) * uint64_t(image.height) * uint64_t(image.channels);
  if (expected != image.pixels.size()) {
    return Status::InvalidArgument(
        std::string(format) + ": " + std::to_string(image.width) + "x" +
        std::to_string(image.height) + "x" + std::to_string(image.channels) + " image needs " +
        std::to_string(expected) + " bytes of pixels, has " + std::to_string(image.pixels.size()));
  }
  return Status::Ok();
}

// ------------------------------------------------------------------------------------------------
// libjpeg

// Decodes every row into `out` (height * width * out_channels, preallocated). For CMYK output,
// `cmyk_row` (width * 4) receives each row before conversion to RGB in `out`.
bool RunJpegDecode(JpegDecoder* d, J_COLOR_SPACE out_space, uint8_t* out, size_t out_stride,
                   uint8_t* cmyk_row) {
  jpeg_decompress_struct* cinfo = &d->cinfo;
  if (setjmp(d->err.jump)) return false;
  cinfo->out_color_space = out_space;
  jpeg_start_decompress(cinfo);
  const bool inverted = cinfo->saw_Adobe_marker;
  const JDIMENSION width = cinfo->output_width;
  while (cinfo->output_scanline < cinfo->output_height) {
    uint8_t* dst = out + size_t{cinfo->output_scanline} * out_stride;
    JSAMPROW row = cmyk_row != nullptr ? cmyk_row : dst;
    if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
      // Only a suspending data source returns 0; ours never suspends.
      std::snprintf(d->err.message, sizeof(d->err.message), "decoder stopped at row %u of %u",
                    cinfo->output_scanline, cinfo->output_height);
      d->err.msg_code = 0;
      return false;
    }
    if (cmyk_row != nullptr) CmykToRgb(cmyk_row, static_cast<int>(width), inverted, dst);
  }
  jpeg_finish_decompress(cinfo);
  return true;
}

ColorSpace JpegColorSpace(J_COLOR_SPACE space) {
  switch (space) {
    case JCS_GRAYSCALE:
      return ColorSpace::kGray;
    case JCS_RGB:
      return ColorSpace::kRgb;
    case JCS_YCbCr:
      return ColorSpace::kYCbCr;
    case JCS_CMYK:
      return ColorSpace::kCmyk;
    case JCS_YCCK:
      return ColorSpace::kYcck;
    default:
      return ColorSpace::kUnknown;
  }
}

ImageInfo JpegInfo(const jpeg_decompress_struct& cinfo) {
  ImageInfo info;
  info.format = ImageFormat::kJpeg;
  info.width = static_cast<int>(cinfo.image_width);
  info.height = static_cast<int>(cinfo.image_height);
  info.components = cinfo.num_components;
  info.color_space = JpegColorSpace(cinfo.jpeg_color_space);
  info.progressive = cinfo.progressive_mode;
  info.bit_depth = cinfo.data_precision;
  return info;
}

Result<ImageInfo> ProbeJpeg(std::string_view bytes) {
  // Lenient: probing should not reject what a lenient decoder reads; missing data is still fatal.
  JpegDecoder d(/*strict=*/false);
  if (!RunJpegReadHeader(&d, bytes)) return JpegStatus(d.err);
  return JpegInfo(d.cinfo);
}

Result<Image> DecodeJpeg(std::string_view bytes, const DecodeOptions& options) {
  JpegDecoder d(options.strict);
  if (!RunJpegReadHeader(&d, bytes)) return JpegStatus(d.err);
  const jpeg_decompress_struct& cinfo = d.cinfo;
  SLUICE_RETURN_IF_ERROR(CheckPixelLimit("JPEG", cinfo.image_width, cinfo.image_height,
                                         options.max_pixels, "DecodeOptions::max_pixels"));
  J_COLOR_SPACE out_space;
  int channels;
  bool cmyk = false;
  switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
      out_space = options.force_rgb ? JCS_RGB : JCS_GRAYSCALE;
      channels = options.force_rgb ? 3 : 1;
      break;
    case JCS_RGB:
    case JCS_YCbCr:
      out_space = JCS_RGB;
      channels = 3;
      break;
    case JCS_CMYK:
    case JCS_YCCK:  // libjpeg converts YCCK to CMYK; we take CMYK to RGB
      out_space = JCS_CMYK;
      channels = 3;
      cmyk = true;
      break;
    default:
      return Status::Unsupported("JPEG with " + std::to_string(cinfo.num_components) +
                                 " components in an unknown color space");
  }
  Image image;
  image.width = static_cast<int>(cinfo.image_width);
  image.height = static_cast<int>(cinfo.image_height);
  image.channels = channels;
  const size_t stride = size_t{cinfo.image_width} * channels;
  SLUICE_RETURN_IF_ERROR(TryResizePixels(&image.pixels, stride * cinfo.image_height));
  std::vector<uint8_t> cmyk_row;
  if (cmyk) SLUICE_RETURN_IF_ERROR(TryResizePixels(&cmyk_row, size_t{cinfo.image_width} * 4));
  if (!RunJpegDecode(&d, out_space, image.pixels.data(), stride,
                     cmyk ? cmyk_row.data() : nullptr)) {
    return JpegStatus(d.err);
  }
  return image;
}

// Destination manager appending to a std::string. jpeg_mem_dest is not used because after an error
// its current buffer is private to libjpeg and can be neither freed nor reused.
struct JpegStringDest {
  jpeg_destination_mgr pub;  // first member: libjpeg passes &pub back as cinfo->dest
  std::string* out;
};

constexpr size_t kJpegInitialBuffer = 16384;

// Grows d->out to `size` bytes; on allocation failure raises a libjpeg error (which longjmps).
void GrowJpegOutput(j_compress_ptr cinfo, size_t size) {
  auto* dest = reinterpret_cast<JpegStringDest*>(cinfo->dest);
  bool ok = true;
  try {
    dest->out->resize(size);
  } catch (const std::exception&) {
    ok = false;
  }
  if (!ok) {
    cinfo->err->msg_code = JERR_OUT_OF_MEMORY;
    cinfo->err->msg_parm.i[0] = 0;
    (*cinfo->err->error_exit)(reinterpret_cast<j_common_ptr>(cinfo));
  }
}

void JpegInitDestination(j_compress_ptr cinfo) {
  auto* dest = reinterpret_cast<JpegStringDest*>(cinfo->dest);
  GrowJpegOutput(cinfo, kJpegInitialBuffer);
  dest->pub.next_output_byte = reinterpret_cast<JOCTET*>(dest->out->data());
  dest->pub.free_in_buffer = dest->out->size();
}

// Called when the whole buffer is full.
boolean JpegEmptyOutputBuffer(j_compress_ptr cinfo) {
  auto* dest = reinterpret_cast<JpegStringDest*>(cinfo->dest);
  const size_t used = dest->out->size();
  GrowJpegOutput(cinfo, used * 2);
  dest->pub.next_output_byte = reinterpret_cast<JOCTET*>(dest->out->data()) + used;
  dest->pub.free_in_buffer = dest->out->size() - used;
  return TRUE;
}

void JpegTermDestination(j_compress_ptr cinfo) {
  auto* dest = reinterpret_cast<JpegStringDest*>(cinfo->dest);
  dest->out->resize(dest->out->size() - dest->pub.free_in_buffer);
}

struct JpegEncoder {
  jpeg_compress_struct cinfo{};
  JpegErrorManager err;
  JpegStringDest dest{};
  std::string out;
  JpegEncoder() { InitJpegErrorManager(&err, /*strict=*/true); }
  ~JpegEncoder() { jpeg_destroy_compress(&cinfo); }
  JpegEncoder(const JpegEncoder&) = delete;
  JpegEncoder& operator=(const JpegEncoder&) = delete;
};

bool RunJpegEncode(JpegEncoder* e, const Image& image, int quality,
                   const JpegEncodeOptions& options) {
  jpeg_compress_struct* cinfo = &e->cinfo;
  cinfo->err = &e->err.pub;
  if (setjmp(e->err.jump)) return false;
  jpeg_create_compress(cinfo);
  e->dest.out = &e->out;
  e->dest.pub.init_destination = JpegInitDestination;
  e->dest.pub.empty_output_buffer = JpegEmptyOutputBuffer;
  e->dest.pub.term_destination = JpegTermDestination;
  cinfo->dest = &e->dest.pub;
  cinfo->image_width = static_cast<JDIMENSION>(image.width);
  cinfo->image_height = static_cast<JDIMENSION>(image.height);
  cinfo->input_components = image.channels;
  cinfo->in_color_space =
      image.channels == 1 ? JCS_GRAYSCALE : (image.channels == 3 ? JCS_RGB : JCS_CMYK);
  // Picks YCbCr for RGB, CMYK (with an Adobe marker) for CMYK, 2x2 luma sampling.
  jpeg_set_defaults(cinfo);
  jpeg_set_quality(cinfo, quality, TRUE);
  if (image.channels == 3 && options.subsampling == ChromaSubsampling::k444) {
    cinfo->comp_info[0].h_samp_factor = 1;
    cinfo->comp_info[0].v_samp_factor = 1;
  }
  if (options.progressive) jpeg_simple_progression(cinfo);
  jpeg_start_compress(cinfo, TRUE);
  const size_t stride = size_t(image.width) * image.channels;
  while (cinfo->next_scanline < cinfo->image_height) {
    // libjpeg does not write through row pointers when compressing.
    JSAMPROW row = const_cast<JSAMPLE*>(image.pixels.data() + cinfo->next_scanline * stride);
    jpeg_write_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_compress(cinfo);
  return true;
}

// ------------------------------------------------------------------------------------------------
// libpng

struct PngReader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::string_view bytes;
  size_t offset = 0;
  // Largest single allocation libpng may make (its row buffers need about 8 bytes per column);
  // anything larger comes from a lying chunk length and is refused (see PngMalloc).
  size_t max_alloc = 0;
  size_t refused_alloc = 0;
  char message[kMessageSize] = {};

  ~PngReader() {
    if (png != nullptr) png_destroy_read_struct(&png, &info, nullptr);
  }
};

struct PngWriter {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::string out;
  char message[kMessageSize] = {};

  ~PngWriter() {
    if (png != nullptr) png_destroy_write_struct(&png, &info);
  }
};

// libpng's default handlers print to stderr; errors then longjmp, which we keep.
template <typename State>
[[noreturn]] void PngError(png_structp png, png_const_charp message) {
  auto* state = static_cast<State*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof(state->message), "%s", message);
  png_longjmp(png, 1);
}

// libpng warnings are about ancillary data (a bad CRC in a text chunk, an odd ICC profile); the
// pixels are unaffected, so they are dropped, never printed.
void PngWarning(png_structp, png_const_charp) {}

void PngRead(png_structp png, png_bytep data, size_t length) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (length > r->bytes.size() - r->offset) {
    char message[kMessageSize];
    std::snprintf(message, sizeof(message),
                  "truncated PNG: needed %zu bytes at offset %zu, file has %zu", length, r->offset,
                  r->bytes.size());
    png_error(png, message);
  }
  std::memcpy(data, r->bytes.data() + r->offset, length);
  r->offset += length;
}

void PngWrite(png_structp png, png_bytep data, size_t length) {
  auto* w = static_cast<PngWriter*>(png_get_io_ptr(png));
  bool ok = true;
  try {
    w->out.append(reinterpret_cast<const char*>(data), length);
  } catch (const std::exception&) {
    ok = false;
  }
  if (!ok) png_error(png, "out of memory");
}

void PngFlush(png_structp) {}

Status PngStatus(const char* message) {
  return Status::DataLoss(std::string("corrupt PNG: ") + message);
}

// libpng's allocator, capped: a chunk whose length field claims more than libpng's chunk limit
// is only a benign error (a warning on read), after which libpng allocates the claimed length for
// it. The cap turns such a claim into an error before any memory is taken.
png_voidp PngMalloc(png_structp png, png_alloc_size_t size) {
  auto* r = static_cast<PngReader*>(png_get_mem_ptr(png));
  if (size > r->max_alloc) {
    r->refused_alloc = size;
    return nullptr;
  }
  return std::malloc(size);
}

void PngFree(png_structp, png_voidp p) { std::free(p); }

// Ancillary chunks whose payload libpng would buffer whole (text, ICC profile, palettes, EXIF,
// calibration). Pixels never depend on them, so they are skipped unread.
constexpr png_byte kSkippedPngChunks[] = "iCCP\0tEXt\0zTXt\0iTXt\0sPLT\0eXIf\0pCAL\0sCAL\0";

// Reads everything before the first IDAT.
bool RunPngReadInfo(PngReader* r) {
  if (setjmp(png_jmpbuf(r->png))) return false;
  r->info = png_create_info_struct(r->png);
  if (r->info == nullptr) png_error(r->png, "out of memory");
  png_set_read_fn(r->png, r, PngRead);
  // libpng refuses widths or heights above 10^6 by default; our pixel limit is the one that speaks.
  png_set_user_limits(r->png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
  png_set_keep_unknown_chunks(r->png, PNG_HANDLE_CHUNK_NEVER, kSkippedPngChunks,
                              static_cast<int>(sizeof(kSkippedPngChunks) / 5));
  png_read_info(r->png, r->info);
  return true;
}

Status PngFailure(const PngReader& r) {
  if (r.refused_alloc != 0) {
    return Status::DataLoss("corrupt PNG: decoder asked for " + std::to_string(r.refused_alloc) +
                            " bytes, more than the image's size allows (lying chunk length?)");
  }
  return PngStatus(r.message);
}

// Creates the decoder over `bytes` (which must outlive r) and reads the header chunks. libpng's
// allocations are capped at what an image of max_pixels needs.
Status StartPng(PngReader* r, std::string_view bytes, int64_t max_pixels) {
  r->bytes = bytes;
  r->max_alloc = (size_t{1} << 20) + static_cast<size_t>(std::max<int64_t>(max_pixels, 0)) * 8;
  r->png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, r, PngError<PngReader>, PngWarning, r,
                                    PngMalloc, PngFree);
  if (r->png == nullptr) return Status::InvalidArgument("cannot create a PNG decoder");
  if (!RunPngReadInfo(r)) return PngFailure(*r);
  return Status::Ok();
}

ImageInfo PngInfo(png_structp png, png_infop info) {
  ImageInfo out;
  out.format = ImageFormat::kPng;
  out.width = static_cast<int>(png_get_image_width(png, info));
  out.height = static_cast<int>(png_get_image_height(png, info));
  out.components = png_get_channels(png, info);
  out.bit_depth = png_get_bit_depth(png, info);
  out.progressive = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;
  switch (png_get_color_type(png, info)) {
    case PNG_COLOR_TYPE_GRAY:
      out.color_space = ColorSpace::kGray;
      break;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
      out.color_space = ColorSpace::kGrayAlpha;
      break;
    case PNG_COLOR_TYPE_RGB:
      out.color_space = ColorSpace::kRgb;
      break;
    case PNG_COLOR_TYPE_RGB_ALPHA:
      out.color_space = ColorSpace::kRgba;
      break;
    case PNG_COLOR_TYPE_PALETTE:
      out.color_space = ColorSpace::kPalette;
      break;
    default:
      out.color_space = ColorSpace::kUnknown;
  }
  return out;
}

// Sets the 8-bit normalising transforms, then reads all rows into `rows` and the trailing chunks.
bool RunPngDecode(PngReader* r, bool force_rgb, int channels, png_bytep* rows) {
  png_structp png = r->png;
  png_infop info = r->info;
  if (setjmp(png_jmpbuf(png))) return false;
  const int color_type = png_get_color_type(png, info);
  png_set_scale_16(png);
  png_set_packing(png);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (force_rgb) {
    png_set_strip_alpha(png);
    png_set_gray_to_rgb(png);
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_channels(png, info) != channels || png_get_bit_depth(png, info) != 8 ||
      png_get_rowbytes(png, info) != size_t{png_get_image_width(png, info)} * channels) {
    png_error(png, "unexpected pixel layout after transforms");
  }
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return true;
}

Result<ImageInfo> ProbePng(std::string_view bytes) {
  PngReader r;
  SLUICE_RETURN_IF_ERROR(StartPng(&r, bytes, kDefaultMaxPixels));
  return PngInfo(r.png, r.info);
}

Result<Image> DecodePng(std::string_view bytes, const DecodeOptions& options) {
  PngReader r;
  SLUICE_RETURN_IF_ERROR(StartPng(&r, bytes, options.max_pixels));
  const uint32_t width = png_get_image_width(r.png, r.info);
  const uint32_t height = png_get_image_height(r.png, r.info);
  SLUICE_RETURN_IF_ERROR(
      CheckPixelLimit("PNG", width, height, options.max_pixels, "DecodeOptions::max_pixels"));
  const int color_type = png_get_color_type(r.png, r.info);
  const bool has_alpha =
      (color_type & PNG_COLOR_MASK_ALPHA) != 0 || png_get_valid(r.png, r.info, PNG_INFO_tRNS) != 0;
  const bool color = (color_type & PNG_COLOR_MASK_COLOR) != 0;
  const int channels = options.force_rgb ? 3 : (color ? 3 : 1) + (has_alpha ? 1 : 0);
  Image image;
  image.width = static_cast<int>(width);
  image.height = static_cast<int>(height);
  image.channels = channels;
  const size_t stride = size_t{width} * channels;
  SLUICE_RETURN_IF_ERROR(TryResizePixels(&image.pixels, stride * height));
  std::vector<png_bytep> rows;
  try {
    rows.resize(height);
  } catch (const std::exception&) {
    return Status::InvalidArgument("cannot allocate row table for " + std::to_string(height) +
                                   " rows");
  }
  for (uint32_t y = 0; y < height; ++y) rows[y] = image.pixels.data() + y * stride;
  if (!RunPngDecode(&r, options.force_rgb, channels, rows.data())) return PngFailure(r);
  return image;
}

bool RunPngEncode(PngWriter* w, const Image& image, png_bytep* rows) {
  if (setjmp(png_jmpbuf(w->png))) return false;
  w->info = png_create_info_struct(w->png);
  if (w->info == nullptr) png_error(w->png, "out of memory");
  png_set_write_fn(w->png, w, PngWrite, PngFlush);
  static constexpr int kColorTypes[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                        PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  png_set_IHDR(w->png, w->info, static_cast<png_uint_32>(image.width),
               static_cast<png_uint_32>(image.height), 8, kColorTypes[image.channels - 1],
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(w->png, w->info);
  png_write_image(w->png, rows);
  png_write_end(w->png, nullptr);
  return true;
}

}  // namespace

std::string_view ImageFormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg:
      return "JPEG";
    case ImageFormat::kPng:
      return "PNG";
    case ImageFormat::kUnknown:
      break;
  }
  return "unknown";
}

std::string_view ColorSpaceName(ColorSpace color_space) {
  switch (color_space) {
    case ColorSpace::kGray:
      return "gray";
    case ColorSpace::kRgb:
      return "rgb";
    case ColorSpace::kYCbCr:
      return "ycbcr";
    case ColorSpace::kCmyk:
      return "cmyk";
    case ColorSpace::kYcck:
      return "ycck";
    case ColorSpace::kGrayAlpha:
      return "gray+alpha";
    case ColorSpace::kRgba:
      return "rgba";
    case ColorSpace::kPalette:
      return "palette";
    case ColorSpace::kUnknown:
      break;
  }
  return "unknown";
}

ImageFormat SniffFormat(std::string_view bytes) {
  if (StartsWith(bytes, "\xFF\xD8\xFF")) return ImageFormat::kJpeg;
  if (StartsWith(bytes, std::string_view(reinterpret_cast<const char*>(kPngSignature), 8))) {
    return ImageFormat::kPng;
  }
  return ImageFormat::kUnknown;
}

Result<ImageInfo> ProbeImage(std::string_view bytes) {
  if (bytes.empty()) return Status::DataLoss("empty image (0 bytes)");
  switch (SniffFormat(bytes)) {
    case ImageFormat::kJpeg:
      return ProbeJpeg(bytes);
    case ImageFormat::kPng:
      return ProbePng(bytes);
    case ImageFormat::kUnknown:
      break;
  }
  return UnknownFormat(bytes);
}

Result<Image> DecodeImage(std::string_view bytes, const DecodeOptions& options) {
  if (bytes.empty()) return Status::DataLoss("empty image (0 bytes)");
  switch (SniffFormat(bytes)) {
    case ImageFormat::kJpeg:
      return DecodeJpeg(bytes, options);
    case ImageFormat::kPng:
      return DecodePng(bytes, options);
    case ImageFormat::kUnknown:
      break;
  }
  return UnknownFormat(bytes);
}

Result<std::string> EncodeJpeg(const Image& image, int quality, const JpegEncodeOptions& options) {
  SLUICE_RETURN_IF_ERROR(ValidateImage(image, JPEG_MAX_DIMENSION, "EncodeJpeg"));
  if (quality < 1 || quality > 100) {
    return Status::InvalidArgument("EncodeJpeg: quality must be 1..100, got " +
                                   std::to_string(quality));
  }
  if (image.channels == 2 || (image.channels == 4 && !options.cmyk)) {
    return Status::InvalidArgument("EncodeJpeg: JPEG cannot store " +
                                   std::to_string(image.channels) +
                                   "-channel (alpha) images; drop alpha first, or set cmyk for "
                                   "4-channel CMYK");
  }
  if (options.cmyk && image.channels != 4) {
    return Status::InvalidArgument("EncodeJpeg: cmyk needs 4 channels, got " +
                                   std::to_string(image.channels));
  }
  JpegEncoder e;
  if (!RunJpegEncode(&e, image, quality, options)) {
    return Status::InvalidArgument(std::string("EncodeJpeg: ") + e.err.message);
  }
  return std::move(e.out);
}

Result<std::string> EncodePng(const Image& image) {
  SLUICE_RETURN_IF_ERROR(ValidateImage(image, PNG_UINT_31_MAX, "EncodePng"));
  std::vector<png_bytep> rows;
  try {
    rows.resize(image.height);
  } catch (const std::exception&) {
    return Status::InvalidArgument("EncodePng: cannot allocate row table");
  }
  const size_t stride = size_t(image.width) * image.channels;
  for (int y = 0; y < image.height; ++y) {
    // libpng does not write through row pointers without write transforms, which we never set.
    rows[y] = const_cast<png_bytep>(image.pixels.data() + y * stride);
  }
  PngWriter w;
  w.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w, PngError<PngWriter>, PngWarning);
  if (w.png == nullptr) return Status::InvalidArgument("EncodePng: cannot create a PNG encoder");
  if (!RunPngEncode(&w, image, rows.data())) {
    return Status::InvalidArgument(std::string("EncodePng: ") + w.message);
  }
  return std::move(w.out);
}

Result<std::string> ReencodeAsRgbJpeg(std::string_view bytes, int quality) {
  if (quality < 1 || quality > 100) {
    return Status::InvalidArgument("ReencodeAsRgbJpeg: quality must be 1..100, got " +
                                   std::to_string(quality));
  }
  // Lenient like the reference, whose tf.image.decode_jpeg/decode_png(channels=3) accepts what
  // libjpeg only warns about.
  SLUICE_ASSIGN_OR_RETURN(Image image, DecodeImage(bytes, {.force_rgb = true, .strict = false}));
  return EncodeJpeg(image, quality);
}

}  // namespace sluice::formats
