// Small POSIX file helpers shared by every writer and reader in sluice.
//
// AtomicFile is how every output file is produced: bytes go to "<path>.tmp", and only Commit() fsyncs
// and renames it to <path>. A writer destroyed without Commit() (an error, a crash, a kill -9 that
// leaves the .tmp behind) never leaves a file under the final name, so "exists" means "complete".
#ifndef SLUICE_FORMATS_FILE_UTIL_H_
#define SLUICE_FORMATS_FILE_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sluice/formats/status.h"

namespace sluice::formats {

// Reads a whole file. NotFound if it does not exist, IoError otherwise.
Result<std::string> ReadFile(const std::string& path);
// Opens a file read-only (O_CLOEXEC) and reports its size; InvalidArgument for a directory. The caller
// owns the descriptor.
struct OpenedFile {
  int fd = -1;
  uint64_t size = 0;
};
Result<OpenedFile> OpenForRead(const std::string& path);
// Size in bytes of a regular file.
Result<uint64_t> FileSize(const std::string& path);
bool FileExists(const std::string& path);
// mkdir -p.
Status CreateDirectories(const std::string& path);
// Writes `data` to path atomically (tmp + fsync + rename).
Status WriteFileAtomically(const std::string& path, std::string_view data);

// A file written under "<path>.tmp" and published by Commit(). Not thread-safe.
class AtomicFile {
 public:
  AtomicFile() = default;
  ~AtomicFile();  // Abandons (unlinks the .tmp) unless committed.
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&& other) noexcept;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  static Result<AtomicFile> Create(const std::string& path);

  // Buffered append.
  Status Append(std::string_view data);
  // Flushes, optionally fsyncs, closes and renames into place. The object is closed afterwards.
  Status Commit(bool sync = true);
  // Deletes the temporary file. Safe to call twice.
  void Abandon();

  const std::string& path() const { return path_; }
  std::string temp_path() const { return path_ + ".tmp"; }
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  Status FlushBuffer();
  void StartWriteback();

  std::string path_;
  int fd_ = -1;
  std::string buffer_;
  uint64_t bytes_written_ = 0;
  uint64_t writeback_start_ = 0;  // bytes before this offset have had writeback started
};

}  // namespace sluice::formats

#endif  // SLUICE_FORMATS_FILE_UTIL_H_
