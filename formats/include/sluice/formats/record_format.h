// TFRecord framing (TensorFlow's tensorflow/core/lib/io/record_writer.cc), as constants.
//
// A file is a plain sequence of records, no header, no footer:
//
//   +------------------+----------------------------+-------------+---------------------------+
//   | length: u64 LE   | masked_crc32c(length): u32 | data[length]| masked_crc32c(data): u32  |
//   +------------------+----------------------------+-------------+---------------------------+
//        8 bytes               4 bytes                length bytes        4 bytes
//
// masked_crc32c is crc32c::Mask(crc32c::Value(bytes)), little-endian. A record for b"hello" is
//   05000000 00000000 eab2043e 68656c6c6f bb1f1c19.
// A file may end only at a record boundary. Optional GZIP or ZLIB compression wraps the whole file
// as one deflate stream (zlib window bits 16+15 and 15); the framing is inside it.
#ifndef SLUICE_FORMATS_RECORD_FORMAT_H_
#define SLUICE_FORMATS_RECORD_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::formats {

constexpr size_t kRecordLengthSize = 8;
constexpr size_t kRecordCrcSize = 4;
constexpr size_t kRecordHeaderSize = kRecordLengthSize + kRecordCrcSize;  // 12
constexpr size_t kRecordFooterSize = kRecordCrcSize;                      // 4
// Bytes a record of `n` data bytes occupies in the file (what DALI's .idx calls its size).
constexpr uint64_t FramedSize(uint64_t n) { return kRecordHeaderSize + n + kRecordFooterSize; }

// Decodes the 12-byte header at `header`: sets *length and returns true when the length's masked
// CRC matches, false otherwise.
bool ParseRecordHeader(const char* header, uint64_t* length);

enum class Compression { kNone, kGzip, kZlib };

// "none", "gzip", "zlib" (also "" = none).
bool ParseCompression(std::string_view name, Compression* out);
std::string_view CompressionName(Compression c);
// gzip for "*.gz", zlib for "*.zz", none otherwise: TensorFlow has no convention, these are ours.
Compression CompressionFromPath(std::string_view path);
// The compression a reader of `path` uses for a user's choice: ParseCompression's names, or "auto"
// for CompressionFromPath(path). False for any other name (the CLI and the Python package both
// offer exactly these choices).
bool ResolveCompression(std::string_view name, std::string_view path, Compression* out);

}  // namespace sluice::formats

#endif  // SLUICE_FORMATS_RECORD_FORMAT_H_
