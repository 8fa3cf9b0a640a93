// Reads TFRecord files (framing in record_format.h), checking both CRCs of every record.
//
// Errors carry the file name and the byte offset of the record's start (in the uncompressed stream):
//   "truncated record at OFFSET in FILE"   a read ended inside a record (header, data or footer)
//   "corrupted record at OFFSET in FILE"   a length or data CRC does not match
// A clean end of file at a record boundary is Status::EndOfData. A length field larger than what
// remains of the file is reported as truncation without allocating it; for compressed streams the
// buffer grows only as bytes actually arrive. Not thread-safe; readers are cheap, use one per thread.
#ifndef SLUICE_FORMATS_RECORD_READER_H_
#define SLUICE_FORMATS_RECORD_READER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sluice/formats/record_format.h"
#include "sluice/formats/status.h"

namespace sluice::formats {

struct RecordReaderOptions {
  Compression compression = Compression::kNone;
  bool verify_crc = true;
  // Refuse records longer than this (DataLoss naming the offset), whatever the file size.
  uint64_t max_record_size = uint64_t{1} << 32;
  size_t buffer_size = size_t{4} << 20;
};

class RecordReader {
 public:
  ~RecordReader();
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;

  // Opens a file. `options.compression` is used as given (see CompressionFromPath for defaults).
  static Result<std::unique_ptr<RecordReader>> Open(const std::string& path,
                                                    const RecordReaderOptions& options = {});
  // Reads from bytes in memory (owned by the reader); `name` is used in messages.
  static Result<std::unique_ptr<RecordReader>> FromString(std::string data, std::string name,
                                                          const RecordReaderOptions& options = {});

  // Reads the next record. On success *record views bytes valid until the next call, and *offset (if
  // non-null) is the record's start. EndOfData at a clean end; DataLoss or IoError otherwise, after
  // which the reader is stuck at that error.
  Status ReadRecord(std::string_view* record, uint64_t* offset = nullptr);
  // Positions the reader so the next record starts at `offset` (a record boundary, e.g. from an
  // .idx file). Uncompressed: a direct seek. Compressed: decompresses and discards up to `offset`.
  Status Seek(uint64_t offset);

  // Offset of the next record to be read.
  uint64_t offset() const { return offset_; }
  const std::string& name() const { return name_; }

 public:
  class Source;  // internal byte stream (file, memory, inflate); defined in record_reader.cc

 private:
  RecordReader(std::string name, const RecordReaderOptions& options);
  Status Fail(Status s);
  // Ensures at least n bytes are buffered after pos_; returns how many are (< n only at end of input).
  Result<size_t> Fill(size_t n);

  std::string name_;
  RecordReaderOptions options_;
  std::unique_ptr<Source> source_;
  std::string buffer_;
  size_t pos_ = 0;    // start of unread bytes in buffer_
  size_t limit_ = 0;  // end of valid bytes in buffer_
  uint64_t offset_ = 0;
  Status error_;
};

}  // namespace sluice::formats

#endif  // SLUICE_FORMATS_RECORD_READER_H_
