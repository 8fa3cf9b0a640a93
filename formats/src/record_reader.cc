#include "sluice/formats/record_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "sluice/formats/crc32c.h"
#include "sluice/formats/file_util.h"
#include "zlib_stream.h"

namespace sluice::formats {

// A byte stream the reader pulls from. Offsets are in the (uncompressed) record stream.
class RecordReader::Source {
 public:
  virtual ~Source() = default;
  // Reads up to n bytes; 0 only at the end of the stream.
  virtual Result<size_t> Read(char* dst, size_t n) = 0;
  // Positions the stream at `offset`.
  virtual Status SeekTo(uint64_t offset) = 0;
  // Total stream size when known without reading it (uncompressed inputs).
  virtual std::optional<uint64_t> size() const = 0;
};

namespace {

class FileSource : public RecordReader::Source {
 public:
  FileSource(int fd, uint64_t size, std::string name)
      : fd_(fd), size_(size), name_(std::move(name)) {}
  ~FileSource() override { ::close(fd_); }

  Result<size_t> Read(char* dst, size_t n) override {
    for (;;) {
      ssize_t r = ::read(fd_, dst, n);
      if (r >= 0) return static_cast<size_t>(r);
      if (errno != EINTR) return Status::FromErrno("read " + name_, errno);
    }
  }
  Status SeekTo(uint64_t offset) override {
    if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) {
      return Status::FromErrno("seek " + name_, errno);
    }
    return Status::Ok();
  }
  std::optional<uint64_t> size() const override { return size_; }

 private:
  int fd_;
  uint64_t size_;
  std::string name_;
};

class MemorySource : public RecordReader::Source {
 public:
  explicit MemorySource(std::string data) : data_(std::move(data)) {}
  Result<size_t> Read(char* dst, size_t n) override {
    size_t k = std::min(n, data_.size() - pos_);
    std::memcpy(dst, data_.data() + pos_, k);
    pos_ += k;
    return k;
  }
  Status SeekTo(uint64_t offset) override {
    pos_ = static_cast<size_t>(std::min<uint64_t>(offset, data_.size()));
    return Status::Ok();
  }
  std::optional<uint64_t> size() const override { return data_.size(); }

 private:
  std::string data_;
  size_t pos_ = 0;
};

// Inflates a whole-file GZIP or ZLIB stream read from `raw`. Concatenated gzip members are accepted
// (as gzip(1) does). A stream that ends before its trailer is DataLoss.
class InflateSource : public RecordReader::Source {
 public:
  InflateSource(std::unique_ptr<RecordReader::Source> raw, Compression c, std::string name)
      : raw_(std::move(raw)), compression_(c), name_(std::move(name)), in_(1 << 16, '\0') {}
  ~InflateSource() override {
    if (initialized_) inflateEnd(&zs_);
  }

  Status Init() {
    if (inflateInit2(&zs_, internal::WindowBits(compression_)) != Z_OK) {
      return Status::IoError("inflateInit2 failed for " + name_);
    }
    initialized_ = true;
    return Status::Ok();
  }

  Result<size_t> Read(char* dst, size_t n) override {
    zs_.next_out = reinterpret_cast<Bytef*>(dst);
    zs_.avail_out = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    const uInt want = zs_.avail_out;
    while (zs_.avail_out == want && !done_) {
      if (zs_.avail_in == 0) {
        SLUICE_ASSIGN_OR_RETURN(size_t got, raw_->Read(in_.data(), in_.size()));
        if (got == 0) {
          if (stream_ended_) {
            done_ = true;
            break;
          }
          return Status::DataLoss("truncated " + std::string(CompressionName(compression_)) +
                                  " stream in " + name_ + " after " + std::to_string(produced_) +
                                  " uncompressed bytes");
        }
        zs_.next_in = reinterpret_cast<Bytef*>(in_.data());
        zs_.avail_in = static_cast<uInt>(got);
      }
      if (stream_ended_) {  // more bytes after a complete member: a concatenated gzip member
        if (compression_ != Compression::kGzip) {
          return Status::DataLoss("trailing bytes after zlib stream in " + name_);
        }
        inflateReset(&zs_);
        stream_ended_ = false;
      }
      int rc = inflate(&zs_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        stream_ended_ = true;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return Status::DataLoss("corrupt " + std::string(CompressionName(compression_)) +
                                " stream in " + name_ + " after " + std::to_string(produced_) +
                                " uncompressed bytes: " + (zs_.msg ? zs_.msg : "inflate error"));
      }
    }
    size_t k = want - zs_.avail_out;
    produced_ += k;
    return k;
  }

  Status SeekTo(uint64_t offset) override {
    if (offset < produced_) {  // restart from the beginning
      SLUICE_RETURN_IF_ERROR(raw_->SeekTo(0));
      inflateReset(&zs_);
      zs_.avail_in = 0;
      produced_ = 0;
      stream_ended_ = done_ = false;
    }
    std::string scratch(1 << 16, '\0');
    while (produced_ < offset) {
      SLUICE_ASSIGN_OR_RETURN(
          size_t got, Read(scratch.data(), std::min<uint64_t>(scratch.size(), offset - produced_)));
      if (got == 0) break;  // seeking past the end: the next read reports EndOfData
    }
    return Status::Ok();
  }
  std::optional<uint64_t> size() const override { return std::nullopt; }

 private:
  std::unique_ptr<RecordReader::Source> raw_;
  Compression compression_;
  std::string name_;
  std::string in_;
  z_stream zs_{};
  bool initialized_ = false;
  bool stream_ended_ = false;
  bool done_ = false;
  uint64_t produced_ = 0;
};

uint32_t DecodeFixed32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

Result<std::unique_ptr<RecordReader::Source>> Wrap(std::unique_ptr<RecordReader::Source> raw,
                                                   Compression c, const std::string& name) {
  if (c == Compression::kNone) return raw;
  auto inflater = std::make_unique<InflateSource>(std::move(raw), c, name);
  SLUICE_RETURN_IF_ERROR(inflater->Init());
  return std::unique_ptr<RecordReader::Source>(std::move(inflater));
}

}  // namespace

RecordReader::RecordReader(std::string name, const RecordReaderOptions& options)
    : name_(std::move(name)), options_(options) {
  options_.buffer_size = std::max<size_t>(options_.buffer_size, 64);
}
RecordReader::~RecordReader() = default;

Result<std::unique_ptr<RecordReader>> RecordReader::Open(const std::string& path,
                                                         const RecordReaderOptions& options) {
  SLUICE_ASSIGN_OR_RETURN(OpenedFile file, OpenForRead(path));
  const int fd = file.fd;
#ifdef POSIX_FADV_SEQUENTIAL
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  std::unique_ptr<RecordReader> r(new RecordReader(path, options));
  SLUICE_ASSIGN_OR_RETURN(r->source_, Wrap(std::make_unique<FileSource>(fd, file.size, path),
                                           options.compression, path));
  return r;
}

Result<std::unique_ptr<RecordReader>> RecordReader::FromString(std::string data, std::string name,
                                                               const RecordReaderOptions& options) {
  std::unique_ptr<RecordReader> r(new RecordReader(name, options));
  SLUICE_ASSIGN_OR_RETURN(
      r->source_, Wrap(std::make_unique<MemorySource>(std::move(data)), options.compression, name));
  return r;
}

Status RecordReader::Fail(Status s) {
  error_ = s;
  return s;
}

Result<size_t> RecordReader::Fill(size_t n) {
  size_t avail = limit_ - pos_;
  if (avail >= n) return avail;
  // Compact the unread tail to the front, then grow (only as bytes arrive) and read.
  if (pos_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + pos_, avail);
    pos_ = 0;
    limit_ = avail;
  }
  while (limit_ < n) {
    if (buffer_.size() < n) {
      // Grow geometrically towards n, never by more than what has already arrived plus the
      // configured buffer size: a corrupt length field cannot make us allocate it up front.
      size_t target = std::max(options_.buffer_size, std::min(n, 2 * std::max(limit_, size_t{1})));
      if (target > buffer_.size()) buffer_.resize(std::max(target, buffer_.size()));
    }
    if (buffer_.empty()) buffer_.resize(options_.buffer_size);
    SLUICE_ASSIGN_OR_RETURN(size_t got,
                            source_->Read(buffer_.data() + limit_, buffer_.size() - limit_));
    if (got == 0) break;
    limit_ += got;
  }
  return limit_ - pos_;
}

Status RecordReader::ReadRecord(std::string_view* record, uint64_t* offset) {
  if (!error_.ok()) return error_;
  const uint64_t start = offset_;
  auto at = [&](const char* what) {
    return std::string(what) + " record at " + std::to_string(start) + " in " + name_;
  };

  SLUICE_ASSIGN_OR_RETURN(size_t avail, Fill(kRecordHeaderSize));
  if (avail == 0) return Status::EndOfData();
  if (avail < kRecordHeaderSize) {
    return Fail(
        Status::DataLoss(at("truncated") + " (header: " + std::to_string(avail) + " of 12 bytes)"));
  }
  uint64_t length = 0;
  const bool length_ok = ParseRecordHeader(buffer_.data() + pos_, &length);
  if (options_.verify_crc && !length_ok) {
    return Fail(Status::DataLoss(at("corrupted") + " (length crc mismatch)"));
  }
  if (length > options_.max_record_size) {
    return Fail(Status::DataLoss(at("corrupted") + " (length " + std::to_string(length) +
                                 " exceeds the limit of " +
                                 std::to_string(options_.max_record_size) + ")"));
  }
  const uint64_t framed = FramedSize(length);
  if (auto total = source_->size(); total && start + framed > *total) {
    return Fail(Status::DataLoss(at("truncated") + " (needs " + std::to_string(framed) +
                                 " bytes, file has " + std::to_string(*total - start) + " left)"));
  }
  SLUICE_ASSIGN_OR_RETURN(avail, Fill(static_cast<size_t>(framed)));
  if (avail < framed) {
    return Fail(Status::DataLoss(at("truncated") + " (needs " + std::to_string(framed) +
                                 " bytes, stream has " + std::to_string(avail) + " left)"));
  }
  const char* data = buffer_.data() + pos_ + kRecordHeaderSize;
  if (options_.verify_crc && crc32c::Unmask(DecodeFixed32(data + length)) !=
                                 crc32c::Value(data, static_cast<size_t>(length))) {
    return Fail(Status::DataLoss(at("corrupted") + " (data crc mismatch)"));
  }
  *record = std::string_view(data, static_cast<size_t>(length));
  if (offset) *offset = start;
  pos_ += static_cast<size_t>(framed);
  offset_ += framed;
  return Status::Ok();
}

Status RecordReader::Seek(uint64_t offset) {
  error_ = Status::Ok();
  pos_ = limit_ = 0;
  offset_ = offset;
  return source_->SeekTo(offset).WithPrefix("seek to " + std::to_string(offset));
}

}  // namespace sluice::formats
