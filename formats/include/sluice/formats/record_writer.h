// Writes TFRecord files (framing in record_format.h), atomically.
//
// Records go to "<path>.tmp"; Close() flushes (and finishes the deflate stream), fsyncs and renames to
// <path>, returning the first error met. A writer destroyed without a successful Close() removes its
// temporary file, so no half-written file ever carries the final name. Not thread-safe.
#ifndef SLUICE_FORMATS_RECORD_WRITER_H_
#define SLUICE_FORMATS_RECORD_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sluice/formats/record_format.h"
#include "sluice/formats/status.h"

namespace sluice::formats {

struct RecordWriterOptions {
  Compression compression = Compression::kNone;
  int compression_level = 6;  // zlib level, 0..9, when compressed
  bool sync = true;           // fsync before the rename in Close()
};

// Frames one record (header + data + footer) into `out` (appended). Exposed for tests and in-memory use.
void AppendFramedRecord(std::string_view data, std::string* out);
// The 12-byte header and 4-byte footer that frame `data`, for writers that place the data themselves.
void EncodeRecordFrame(std::string_view data, char header[kRecordHeaderSize],
                       char footer[kRecordFooterSize]);

class RecordWriter {
 public:
  ~RecordWriter();
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;

  static Result<std::unique_ptr<RecordWriter>> Create(const std::string& path,
                                                      const RecordWriterOptions& options = {});

  Status Write(std::string_view record);
  // Finishes the file and publishes it under its final name. Must be called once; later calls fail.
  Status Close();

  uint64_t records_written() const { return records_; }
  // Uncompressed framed bytes written so far (the offset of the next record).
  uint64_t offset() const { return offset_; }
  const std::string& path() const { return path_; }

 private:
  class Impl;
  explicit RecordWriter(std::string path);

  std::string path_;
  std::unique_ptr<Impl> impl_;
  uint64_t records_ = 0;
  uint64_t offset_ = 0;
  bool closed_ = false;
};

}  // namespace sluice::formats

#endif  // SLUICE_FORMATS_RECORD_WRITER_H_
