#include "sluice/formats/file_util.h"

#include <fcntl.h>  // sync_file_range (with _GNU_SOURCE, which g++ defines)
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <utility>

namespace sluice::formats {
namespace {

constexpr size_t kWriteBufferSize = 1 << 20;
constexpr uint64_t kWritebackChunk = 8 << 20;

Status WriteAll(int fd, const char* data, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("write " + path, errno);
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  std::string out;
  struct stat st;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof(buf));
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return Status::FromErrno("read " + path, e);
    }
    if (r == 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  ::close(fd);
  return out;
}

Result<OpenedFile> OpenForRead(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Status::FromErrno("stat " + path, e);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument(path + " is a directory");
  }
  return OpenedFile{fd, static_cast<uint64_t>(st.st_size)};
}

Result<uint64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno("stat " + path, errno);
  return static_cast<uint64_t>(st.st_size);
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Status CreateDirectories(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::IoError("mkdir " + path + ": " + ec.message());
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view data) {
  SLUICE_ASSIGN_OR_RETURN(AtomicFile file, AtomicFile::Create(path));
  SLUICE_RETURN_IF_ERROR(file.Append(data));
  return file.Commit();
}

AtomicFile::~AtomicFile() { Abandon(); }

AtomicFile::AtomicFile(AtomicFile&& other) noexcept { *this = std::move(other); }

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    Abandon();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    buffer_ = std::move(other.buffer_);
    bytes_written_ = other.bytes_written_;
    writeback_start_ = other.writeback_start_;
  }
  return *this;
}

Result<AtomicFile> AtomicFile::Create(const std::string& path) {
  AtomicFile f;
  f.path_ = path;
  f.fd_ = ::open(f.temp_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (f.fd_ < 0) return Status::FromErrno("create " + f.temp_path(), errno);
  f.buffer_.reserve(kWriteBufferSize);
  return f;
}

Status AtomicFile::FlushBuffer() {
  if (buffer_.empty()) return Status::Ok();
  Status s = WriteAll(fd_, buffer_.data(), buffer_.size(), temp_path());
  buffer_.clear();
  StartWriteback();
  return s;
}

// Starts writeback of what is written so far without waiting for it, so the fsync in Commit() finds
// little left to do and the disk writes while we compute (Linux sync_file_range; a no-op elsewhere).
void AtomicFile::StartWriteback() {
#ifdef SYNC_FILE_RANGE_WRITE
  const uint64_t written = bytes_written_ - buffer_.size();
  if (written - writeback_start_ >= kWritebackChunk) {
    ::sync_file_range(fd_, static_cast<off_t>(writeback_start_),
                      static_cast<off_t>(written - writeback_start_), SYNC_FILE_RANGE_WRITE);
    writeback_start_ = written;
  }
#endif
}

Status AtomicFile::Append(std::string_view data) {
  if (fd_ < 0) return Status::InvalidArgument("append to closed file " + path_);
  bytes_written_ += data.size();
  if (buffer_.size() + data.size() <= kWriteBufferSize) {
    buffer_.append(data);
    return Status::Ok();
  }
  SLUICE_RETURN_IF_ERROR(FlushBuffer());
  if (data.size() >= kWriteBufferSize) {
    SLUICE_RETURN_IF_ERROR(WriteAll(fd_, data.data(), data.size(), temp_path()));
    StartWriteback();
    return Status::Ok();
  }
  buffer_.append(data);
  return Status::Ok();
}

Status AtomicFile::Commit(bool sync) {
  if (fd_ < 0) return Status::InvalidArgument("commit of closed file " + path_);
  Status s = FlushBuffer();
  if (s.ok() && sync && ::fsync(fd_) != 0) s = Status::FromErrno("fsync " + temp_path(), errno);
  if (::close(fd_) != 0 && s.ok()) s = Status::FromErrno("close " + temp_path(), errno);
  fd_ = -1;
  if (s.ok() && ::rename(temp_path().c_str(), path_.c_str()) != 0) {
    s = Status::FromErrno("rename " + temp_path() + " -> " + path_, errno);
  }
  if (!s.ok()) ::unlink(temp_path().c_str());
  path_.clear();
  return s;
}

void AtomicFile::Abandon() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!path_.empty()) {
    ::unlink(temp_path().c_str());
    path_.clear();
  }
}

}  // namespace sluice::formats
