// Crop-window decode: decodes only a window of an encoded image, for JPEG optionally DCT-scaled by
// 1/2, 1/4 or 1/8 (or any N/8), into RGB uint8 HWC. The pipeline's decode stage (DESIGN.md
// "Modules and data flow") calls it once per image, with a DecodedCrop it reuses so the pixel
// buffer is allocated once per worker. It lives beside image.h because it is an image codec: the
// one module that links libjpeg and libpng (formats) owns every call into them, and no libjpeg or
// libpng type appears in this header. Headers are read with ProbeImage (width, height,
// components, colour space).
//
// Errors: a window not inside the image or a bad scale is InvalidArgument; an image whose header
// claims more than max_pixels pixels is InvalidArgument, refused before any allocation; corrupt or
// truncated data is DataLoss (libjpeg's corrupt-data warnings are errors, as in DecodeImage with
// strict = true); 12-bit JPEGs and unknown formats are Unsupported. Rows after the window are
// never decoded, so a baseline JPEG truncated below the window decodes fine (progressive JPEGs are
// read whole by libjpeg before the first row, so truncation anywhere is DataLoss).
//
// Thread-safety: every function is reentrant; calls on different DecodedCrops may run in parallel.
#ifndef SLUICE_FORMATS_IMAGE_CROP_H_
#define SLUICE_FORMATS_IMAGE_CROP_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "sluice/formats/image.h"
#include "sluice/formats/status.h"

namespace sluice::formats {

// A window of an image in pixels: columns [x, x + width), rows [y, y + height). The pipeline's
// crop samplers produce them (pipeline::CropWindow is this type).
struct PixelWindow {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
  friend bool operator==(const PixelWindow&, const PixelWindow&) = default;
};

// RGB pixels of a decoded window: pixels[(y * width + x) * 3 + c], rows top to bottom, no padding.
// pixels.size() == width * height * 3 after a successful decode; on error the contents are
// unspecified. The vector keeps its capacity between calls.
struct DecodedCrop {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;
};

struct CropDecodeOptions {
  // Images whose header claims more than width * height pixels are refused before allocation.
  int64_t max_pixels = kDefaultMaxPixels;
  // libjpeg's inverse DCT: false = JDCT_ISLOW (accurate; PIL's and TurboJPEG's default), true =
  // JDCT_IFAST, what TensorFlow's decode_jpeg / decode_and_crop_jpeg use unless dct_method is
  // "INTEGER_ACCURATE" (the reference preprocessing never sets it). Pixels differ by a few levels.
  bool fast_idct = false;
};

// The scale denominators libjpeg's DCT scaling gives us (scale_num = 1).
inline constexpr int kScaleDenoms[] = {1, 2, 4, 8};

// The largest of 1, 2, 4, 8 such that a crop_w x crop_h window decoded at 1/d is still at least
// out_w x out_h (each side ceil(crop / d) >= out), so the resize never has to enlarge what a full
// decode would have had to shrink. 1 when any argument is not positive.
int ChooseScaleDenom(int crop_w, int crop_h, int out_w, int out_h);

// Where a full-resolution window lands in an image decoded at 1/scale_denom. libjpeg's scaled image
// is ceil(W / d) x ceil(H / d), output pixel i covering source pixels [i * d, (i + 1) * d); the
// window [x, x + w) becomes [floor(x / d), ceil((x + w) / d)), i.e. every output pixel touched by
// the window (so the scaled window may reach up to d - 1 source pixels outside it on each side).
// Likewise for rows. Requires a window inside the image with positive sides.
PixelWindow ScaledWindow(const PixelWindow& window, int scale_denom);

// Decodes ScaledWindow(window, scale_denom) of a JPEG into out (width, height, RGB pixels).
// scale_denom is one of kScaleDenoms. Grayscale is replicated to RGB; CMYK and YCCK are converted
// to RGB as DecodeImage does (Adobe marker: inverted samples, R = C * K / 255). At scale 1
// the pixels equal the same window cut out of DecodeImage's full decode; scaled, they
// equal the window of a full libjpeg decode at the same scale. Only the iMCU columns and rows that
// hold the window are decoded (jpeg_crop_scanline, jpeg_skip_scanlines).
Status DecodeJpegCrop(std::string_view bytes, const PixelWindow& window, int scale_denom,
                      DecodedCrop* out, const CropDecodeOptions& options = {});

// Finer DCT scaling: libjpeg-turbo scales by any N/8, N = 1..8 (the scaled image is
// ceil(W * N / 8) x ceil(H * N / 8); output pixel i covers source pixels [8i/N, 8(i+1)/N)).
// ChooseScaleEighths gives the smallest N whose scaled window is still at least out_w x out_h (8
// when any argument is not positive); ScaledWindowEighths and DecodeJpegCropEighths are
// ScaledWindow and DecodeJpegCrop at N/8 (DecodeJpegCrop(d) is DecodeJpegCropEighths(8 / d)), with
// the same exactness: the window equals the same region of a whole-image decode at N/8.
// Cost: libjpeg-turbo 2.1's IDCTs for 3/8, 5/8, 6/8, 7/8 (and, with 4:2:0 chroma, the 2N x 2N ones
// chroma then needs) are plain C; decoding at those scales measured slower than at 8/8
// (bench/pipeline/preset_bench), so the presets use ChooseScaleDenom.
int ChooseScaleEighths(int crop_w, int crop_h, int out_w, int out_h);
PixelWindow ScaledWindowEighths(const PixelWindow& window, int eighths);
Status DecodeJpegCropEighths(std::string_view bytes, const PixelWindow& window, int eighths,
                             DecodedCrop* out, const CropDecodeOptions& options = {});

// PNG has no partial decode: decodes the whole image (DecodeImage, RGB, alpha dropped) and
// copies the window out. Full resolution only.
Status DecodePngCrop(std::string_view bytes, const PixelWindow& window, DecodedCrop* out,
                     const CropDecodeOptions& options = {});

// Dispatches on the content (SniffFormat): JPEG to DecodeJpegCrop, PNG to DecodePngCrop,
// where scale_denom is ignored (the output is the full-resolution window: callers read out->width
// and out->height). Unsupported for other formats.
Status DecodeCrop(std::string_view bytes, const PixelWindow& window, int scale_denom,
                  DecodedCrop* out, const CropDecodeOptions& options = {});

}  // namespace sluice::formats

#endif  // SLUICE_FORMATS_IMAGE_CROP_H_
