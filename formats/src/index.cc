#include "sluice/formats/index.h"

#include <unistd.h>

#include <charconv>

#include "sluice/formats/file_util.h"
#include "sluice/formats/record_format.h"

namespace sluice::formats {

Result<std::vector<IndexEntry>> BuildIndex(const std::string& tfrecord_path,
                                           const RecordReaderOptions& options) {
  SLUICE_ASSIGN_OR_RETURN(auto reader, RecordReader::Open(tfrecord_path, options));
  std::vector<IndexEntry> entries;
  for (;;) {
    std::string_view record;
    uint64_t offset = 0;
    Status s = reader->ReadRecord(&record, &offset);
    if (s.IsEndOfData()) break;
    SLUICE_RETURN_IF_ERROR(s);
    entries.push_back({offset, FramedSize(record.size())});
  }
  return entries;
}

Result<std::vector<IndexEntry>> IndexFromHeaders(const std::string& tfrecord_path) {
  SLUICE_ASSIGN_OR_RETURN(OpenedFile file, OpenForRead(tfrecord_path));
  std::vector<IndexEntry> entries;
  Status status;
  for (uint64_t offset = 0; offset < file.size;) {
    char header[kRecordHeaderSize];
    uint64_t length = 0;
    const ssize_t got = pread(file.fd, header, sizeof(header), static_cast<off_t>(offset));
    if (got != static_cast<ssize_t>(sizeof(header)) || !ParseRecordHeader(header, &length) ||
        FramedSize(length) > file.size - offset) {
      status = Status::DataLoss("truncated/corrupted record at " + std::to_string(offset) + " in " +
                                tfrecord_path);
      break;
    }
    entries.push_back({offset, FramedSize(length)});
    offset += FramedSize(length);
  }
  close(file.fd);
  if (!status.ok()) return status;
  return entries;
}

std::string FormatIndex(const std::vector<IndexEntry>& entries) {
  std::string out;
  out.reserve(entries.size() * 16);
  for (const IndexEntry& e : entries) {
    out += std::to_string(e.offset);
    out += ' ';
    out += std::to_string(e.framed_size);
    out += '\n';
  }
  return out;
}

Result<std::vector<IndexEntry>> ParseIndex(std::string_view text, std::string_view name) {
  std::vector<IndexEntry> entries;
  size_t line_no = 0;
  uint64_t expected_offset = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    auto bad = [&](std::string_view why) {
      return Status::DataLoss(std::string(name) + ":" + std::to_string(line_no) + ": " +
                              std::string(why));
    };
    IndexEntry e;
    const char* p = line.data();
    const char* end = line.data() + line.size();
    auto r1 = std::from_chars(p, end, e.offset);
    if (r1.ec != std::errc() || r1.ptr == end || *r1.ptr != ' ')
      return bad("expected '<offset> <size>'");
    auto r2 = std::from_chars(r1.ptr + 1, end, e.framed_size);
    if (r2.ec != std::errc() || r2.ptr != end) return bad("expected '<offset> <size>'");
    if (e.framed_size < FramedSize(0)) return bad("size smaller than an empty record (16)");
    if (e.offset != expected_offset) {
      return bad("offset " + std::to_string(e.offset) + " does not follow the previous record (" +
                 std::to_string(expected_offset) + ")");
    }
    expected_offset = e.offset + e.framed_size;
    entries.push_back(e);
  }
  return entries;
}

Result<std::vector<IndexEntry>> ReadIndexFile(const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseIndex(text, path);
}

Status WriteIndexFile(const std::string& path, const std::vector<IndexEntry>& entries) {
  return WriteFileAtomically(path, FormatIndex(entries));
}

}  // namespace sluice::formats
