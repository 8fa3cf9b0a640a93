// Record index files, exactly as NVIDIA DALI's `tfrecord2idx` writes them: one text line per
// record,
// "<offset> <framed_size>\n", where offset is the record's first byte in the (uncompressed) file
// and framed_size = 12 + length + 4. DALI's TFRecord reader needs one per file; our pipeline uses
// them for random access and record-level sharding.
#ifndef SLUICE_FORMATS_INDEX_H_
#define SLUICE_FORMATS_INDEX_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/formats/record_reader.h"
#include "sluice/formats/status.h"

namespace sluice::formats {

struct IndexEntry {
  uint64_t offset = 0;
  uint64_t framed_size = 0;
  bool operator==(const IndexEntry&) const = default;
};

// Reads every record of a TFRecord file (CRCs checked) and returns its index.
Result<std::vector<IndexEntry>> BuildIndex(const std::string& tfrecord_path,
                                           const RecordReaderOptions& options = {});
// The index from the record headers alone, for uncompressed files: reads the 12-byte header of
// each record (length CRC checked) and seeks over the data, whose CRC is not checked (the reader
// checks it when the record is read). DataLoss naming the offset for a bad header or a record
// running past the end of the file.
Result<std::vector<IndexEntry>> IndexFromHeaders(const std::string& tfrecord_path);
std::string FormatIndex(const std::vector<IndexEntry>& entries);
// Parses index text; DataLoss naming the line for malformed lines or entries that do not tile the
// file (each offset must equal the previous offset + size).
Result<std::vector<IndexEntry>> ParseIndex(std::string_view text, std::string_view name);
Result<std::vector<IndexEntry>> ReadIndexFile(const std::string& path);
// Writes atomically.
Status WriteIndexFile(const std::string& path, const std::vector<IndexEntry>& entries);

}  // namespace sluice::formats

#endif  // SLUICE_FORMATS_INDEX_H_
