#include "sluice/formats/record_format.h"

#include <cstring>

#include "sluice/formats/crc32c.h"

namespace sluice::formats {

bool ParseRecordHeader(const char* header, uint64_t* length) {
  uint32_t masked;
  std::memcpy(length, header, kRecordLengthSize);  // little-endian, as x86 and ARM store it
  std::memcpy(&masked, header + kRecordLengthSize, kRecordCrcSize);
  return crc32c::Unmask(masked) == crc32c::Value(header, kRecordLengthSize);
}

bool ResolveCompression(std::string_view name, std::string_view path, Compression* out) {
  if (name == "auto") {
    *out = CompressionFromPath(path);
    return true;
  }
  return ParseCompression(name, out);
}

bool ParseCompression(std::string_view name, Compression* out) {
  if (name.empty() || name == "none") {
    *out = Compression::kNone;
  } else if (name == "gzip" || name == "GZIP") {
    *out = Compression::kGzip;
  } else if (name == "zlib" || name == "ZLIB") {
    *out = Compression::kZlib;
  } else {
    return false;
  }
  return true;
}

std::string_view CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone:
      return "none";
    case Compression::kGzip:
      return "gzip";
    case Compression::kZlib:
      return "zlib";
  }
  return "none";
}

Compression CompressionFromPath(std::string_view path) {
  if (path.ends_with(".gz")) return Compression::kGzip;
  if (path.ends_with(".zz")) return Compression::kZlib;
  return Compression::kNone;
}

}  // namespace sluice::formats
