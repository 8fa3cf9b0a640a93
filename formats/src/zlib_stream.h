// Internal: whole-file deflate/inflate streams for GZIP and ZLIB TFRecord files.
#ifndef SLUICE_FORMATS_SRC_ZLIB_STREAM_H_
#define SLUICE_FORMATS_SRC_ZLIB_STREAM_H_

#include <zlib.h>

#include <string>
#include <string_view>

#include "sluice/formats/record_format.h"
#include "sluice/formats/status.h"

namespace sluice::formats::internal {

// zlib window bits: 15 for a zlib header, 16 + 15 for a gzip header (what TensorFlow's
// ZlibCompressionOptions::GZIP() and ::DEFAULT() use).
inline int WindowBits(Compression c) { return c == Compression::kGzip ? 16 + MAX_WBITS : MAX_WBITS; }

// Compresses a stream of Append() calls; compressed bytes accumulate in output() for the caller to
// drain. Not thread-safe.
class Deflater {
 public:
  Deflater() = default;
  ~Deflater();
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  Status Init(Compression c, int level);
  Status Append(std::string_view data);
  Status Finish();
  std::string& output() { return out_; }

 private:
  Status Run(int flush);
  z_stream zs_{};
  bool initialized_ = false;
  std::string in_;
  std::string out_;
};

}  // namespace sluice::formats::internal

#endif  // SLUICE_FORMATS_SRC_ZLIB_STREAM_H_
