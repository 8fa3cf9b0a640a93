#include "sluice/ingest/image_prep.h"

#include <algorithm>
#include <cctype>

namespace sluice::ingest {

namespace {

// The end-of-image marker must be present; tolerate up to 4 KiB of trailing bytes after it (some
// cameras pad files).
bool HasJpegEoi(std::string_view b) {
  const size_t start = b.size() > 4096 ? b.size() - 4096 : 0;
  for (size_t i = b.size(); i >= start + 2; --i) {
    if (static_cast<unsigned char>(b[i - 2]) == 0xFF && static_cast<unsigned char>(b[i - 1]) == 0xD9) {
      return true;
    }
  }
  return false;
}

}  // namespace

bool HasImageExtension(std::string_view name) {
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return false;
  std::string ext(name.substr(dot + 1));
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == "jpg" || ext == "jpeg" || ext == "png";
}

Result<PreparedImage> PrepareImage(std::string&& bytes, const PrepOptions& options) {
  if (bytes.empty()) return Status::DataLoss("empty file (0 bytes)");
  PreparedImage out;
  out.original = formats::SniffFormat(bytes);
  if (out.original == formats::ImageFormat::kUnknown) {
    return Status::Unsupported("not a JPEG or PNG image");
  }
  SLUICE_ASSIGN_OR_RETURN(formats::ImageInfo info, formats::ProbeImage(bytes));
  if (static_cast<int64_t>(info.width) * info.height > options.max_pixels) {
    return Status::InvalidArgument("header claims " + std::to_string(info.width) + "x" +
                                   std::to_string(info.height) + " pixels, over the cap of " +
                                   std::to_string(options.max_pixels));
  }
  const bool fix = out.original == formats::ImageFormat::kPng || info.IsCmyk();
  if (!fix && !HasJpegEoi(bytes)) {
    return Status::DataLoss("truncated JPEG (no end-of-image marker)");
  }
  if (fix) {
    SLUICE_ASSIGN_OR_RETURN(out.bytes, formats::ReencodeAsRgbJpeg(bytes, options.reencode_quality));
    out.reencoded = true;
    out.channels = 3;
  } else {
    if (options.verify_decode) {
      formats::DecodeOptions d;
      d.max_pixels = options.max_pixels;
      d.strict = false;  // what TensorFlow's decode_jpeg accepts
      SLUICE_RETURN_IF_ERROR(formats::DecodeImage(bytes, d).status());
    }
    out.bytes = std::move(bytes);
    out.channels = info.components;
  }
  out.width = info.width;
  out.height = info.height;
  return out;
}

}  // namespace sluice::ingest
