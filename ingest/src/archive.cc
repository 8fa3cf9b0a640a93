#include "sluice/ingest/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "sluice/formats/file_util.h"

namespace sluice::ingest {
namespace {

namespace fs = std::filesystem;

// Members larger than this are refused rather than buffered (no image is anywhere near it).
constexpr uint64_t kMaxMemberBytes = uint64_t{1} << 30;
constexpr size_t kTarBlock = 512;

std::string NormalizeMemberPath(std::string_view p) {
  while (p.starts_with("./")) p.remove_prefix(2);
  return std::string(p);
}

Status ArchiveError(archive* a, const std::string& where) {
  const char* msg = archive_error_string(a);
  return Status::DataLoss(where + ": " + (msg ? msg : "unknown archive error"));
}

Status PreadAll(int fd, char* dst, uint64_t size, uint64_t offset, const std::string& what) {
  uint64_t done = 0;
  while (done < size) {
    ssize_t r = ::pread(fd, dst + done, size - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read " + what, errno);
    }
    if (r == 0) {
      return Status::DataLoss("truncated archive: " + what + " needs " + std::to_string(size) +
                              " bytes at offset " + std::to_string(offset) + ", only " +
                              std::to_string(done) + " present");
    }
    done += static_cast<uint64_t>(r);
  }
  return Status::Ok();
}

// Parses a tar numeric field: octal text, or GNU base-256 when the high bit of the first byte is set.
uint64_t TarNumber(const unsigned char* p, size_t n) {
  if (p[0] & 0x80) {
    uint64_t v = p[0] & 0x3f;
    for (size_t i = 1; i < n; ++i) v = (v << 8) | p[i];
    return v;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < n && p[i]; ++i) {
    if (p[i] >= '0' && p[i] <= '7') v = v * 8 + (p[i] - '0');
  }
  return v;
}

// libarchive tells where an entry's headers start; the data follows the last of them. Walks the chain
// of extension headers (pax 'x'/'g', GNU long name 'L' / long link 'K') to find the data offset.
Result<uint64_t> TarDataOffset(int fd, uint64_t base, uint64_t header_pos, const std::string& what) {
  std::array<unsigned char, kTarBlock> block;
  uint64_t pos = header_pos;
  for (int i = 0; i < 16; ++i) {
    SLUICE_RETURN_IF_ERROR(
        PreadAll(fd, reinterpret_cast<char*>(block.data()), kTarBlock, base + pos, what));
    const unsigned char type = block[156];
    if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
      uint64_t size = TarNumber(block.data() + 124, 12);
      pos += kTarBlock + (size + kTarBlock - 1) / kTarBlock * kTarBlock;
      continue;
    }
    return base + pos + kTarBlock;
  }
  return Status::DataLoss(what + ": more than 16 extension headers");
}

bool IsTarName(std::string_view name) {
  if (name.size() < 4) return false;
  std::string ext(name.substr(name.size() - 4));
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext == ".tar";
}

// Advances `a` to its next regular member whose path is safe, skipping (and counting in *unsafe)
// the others. false at the end of the archive. `where` and *last name the position in errors.
Result<bool> NextMember(archive* a, const std::string& where, std::string* last,
                        archive_entry** entry, std::string* name, uint64_t* unsafe) {
  for (;;) {
    int rc = archive_read_next_header(a, entry);
    if (rc == ARCHIVE_EOF) return false;
    if (rc < ARCHIVE_WARN) return ArchiveError(a, where + ": after member " + *last);
    if (archive_entry_filetype(*entry) != AE_IFREG) continue;
    *name = NormalizeMemberPath(archive_entry_pathname(*entry));
    *last = *name;
    if (IsUnsafeMemberPath(*name)) {
      ++*unsafe;
      continue;
    }
    return true;
  }
}

// ---------------------------------------------------------------------------------------------------

class DirectorySource : public InputSource {
 public:
  explicit DirectorySource(std::string path) : InputSource(std::move(path)) {}

  Status List(std::vector<Member>* members) override {
    members->clear();
    std::error_code ec;
    std::vector<Member> found;
    for (auto it = fs::recursive_directory_iterator(path_, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      Member m;
      m.path = fs::relative(it->path(), path_, ec).generic_string();
      m.size = it->file_size(ec);
      found.push_back(std::move(m));
    }
    if (ec) return Status::IoError("walk " + path_ + ": " + ec.message());
    std::sort(found.begin(), found.end(),
              [](const Member& a, const Member& b) { return a.path < b.path; });
    bytes_ = 0;
    for (size_t i = 0; i < found.size(); ++i) {
      found[i].ordinal = i;
      bytes_ += found[i].size;
    }
    *members = std::move(found);
    return Status::Ok();
  }
  bool random_access() const override { return true; }
  Result<std::string> Read(const Member& m) const override {
    return formats::ReadFile((fs::path(path_) / m.path).string());
  }
  Status Stream(const std::vector<bool>& wanted,
                const std::function<Status(size_t, std::string&&)>& fn) override {
    return Status::Unsupported("directories are read at random, not streamed");
  }
  uint64_t input_bytes() const override { return bytes_; }

 private:
  uint64_t bytes_ = 0;
};

// ---------------------------------------------------------------------------------------------------

// A window [base, base + size) of a file, read through pread: how a nested tar is opened without
// reading the outer archive's stream.
struct Window {
  int fd;
  uint64_t base;
  uint64_t size;
  uint64_t pos = 0;
  std::string buffer = std::string(64 << 10, '\0');
};

la_ssize_t WindowRead(archive* a, void* ctx, const void** out) {
  auto* w = static_cast<Window*>(ctx);
  uint64_t n = std::min<uint64_t>(w->buffer.size(), w->size - w->pos);
  if (n == 0) return 0;
  ssize_t r;
  do {
    r = ::pread(w->fd, w->buffer.data(), n, static_cast<off_t>(w->base + w->pos));
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    archive_set_error(a, errno, "read failed: %s", std::strerror(errno));
    return -1;
  }
  w->pos += static_cast<uint64_t>(r);
  *out = w->buffer.data();
  return r;
}

la_int64_t WindowSkip(archive*, void* ctx, la_int64_t request) {
  auto* w = static_cast<Window*>(ctx);
  uint64_t k = std::min<uint64_t>(static_cast<uint64_t>(request), w->size - w->pos);
  w->pos += k;
  return static_cast<la_int64_t>(k);
}

la_int64_t WindowSeek(archive*, void* ctx, la_int64_t offset, int whence) {
  auto* w = static_cast<Window*>(ctx);
  int64_t target = whence == SEEK_SET   ? offset
                   : whence == SEEK_CUR ? static_cast<int64_t>(w->pos) + offset
                                        : static_cast<int64_t>(w->size) + offset;
  if (target < 0) return ARCHIVE_FATAL;
  w->pos = std::min<uint64_t>(static_cast<uint64_t>(target), w->size);
  return static_cast<la_int64_t>(w->pos);
}

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

class ArchiveSource : public InputSource {
 public:
  ArchiveSource(std::string path, SourceOptions options, int fd, uint64_t size)
      : InputSource(std::move(path)), options_(options), fd_(fd), size_(size) {}
  ~ArchiveSource() override { ::close(fd_); }

  // Opens the outer archive as a stream (libarchive picks format and compression filters).
  Result<ArchivePtr> OpenStream() const {
    ArchivePtr a(archive_read_new());
    archive_read_support_filter_all(a.get());
    archive_read_support_format_all(a.get());
    if (archive_read_open_filename(a.get(), path_.c_str(), 1 << 20) != ARCHIVE_OK) {
      return ArchiveError(a.get(), path_);
    }
    return a;
  }

  Status List(std::vector<Member>* members) override {
    members->clear();
    SLUICE_ASSIGN_OR_RETURN(ArchivePtr a, OpenStream());
    archive_entry* entry = nullptr;
    std::string last = "(start)", name;
    bool first = true;
    for (;;) {
      SLUICE_ASSIGN_OR_RETURN(bool more, NextMember(a.get(), path_, &last, &entry, &name, &unsafe_members_));
      if (first) {
        // Only an uncompressed tar has stable byte offsets we can pread later.
        random_access_ = archive_filter_count(a.get()) == 1 &&
                         (archive_format(a.get()) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_TAR;
        first = false;
      }
      if (!more) break;
      if (archive_entry_sparse_count(entry) > 0) {
        return Status::Unsupported(path_ + ": sparse member " + name + " is not supported");
      }
      const uint64_t size = static_cast<uint64_t>(archive_entry_size(entry));
      if (options_.expand_nested_tars && IsTarName(name)) {
        if (!random_access_) {
          return Status::Unsupported(path_ + ": nested tar " + name +
                                     " inside a compressed archive; decompress the outer archive "
                                     "first (a plain tar is read without extracting)");
        }
        SLUICE_ASSIGN_OR_RETURN(uint64_t data, DataOffset(a.get(), 0, name));
        SLUICE_RETURN_IF_ERROR(ListNested(name, data, size, members));
        continue;
      }
      Member m;
      m.path = std::move(name);
      m.size = size;
      if (random_access_) {
        SLUICE_ASSIGN_OR_RETURN(m.offset, DataOffset(a.get(), 0, m.path));
        if (m.offset + m.size > size_) {
          return Status::DataLoss("truncated archive " + path_ + ": member " + m.path + " needs " +
                                  std::to_string(m.size) + " bytes at offset " +
                                  std::to_string(m.offset) + ", file has " +
                                  std::to_string(size_));
        }
      }
      m.ordinal = members->size();
      members->push_back(std::move(m));
    }
    return Status::Ok();
  }

  bool random_access() const override { return random_access_; }

  Result<std::string> Read(const Member& m) const override {
    if (!random_access_) return Status::Unsupported(path_ + " is compressed: stream it");
    if (m.size > kMaxMemberBytes) {
      return Status::InvalidArgument(m.Display(path_) + " is " + std::to_string(m.size) +
                                     " bytes, over the 1 GiB member limit");
    }
    std::string bytes(m.size, '\0');
    SLUICE_RETURN_IF_ERROR(PreadAll(fd_, bytes.data(), m.size, m.offset, m.Display(path_)));
    return bytes;
  }

  void Prefetch(const Member& m) const override {
    if (random_access_) {
      ::posix_fadvise(fd_, static_cast<off_t>(m.offset), static_cast<off_t>(m.size),
                      POSIX_FADV_WILLNEED);
    }
  }

  Status Stream(const std::vector<bool>& wanted,
                const std::function<Status(size_t, std::string&&)>& fn) override {
    SLUICE_ASSIGN_OR_RETURN(ArchivePtr a, OpenStream());
    archive_entry* entry = nullptr;
    size_t ordinal = 0;
    uint64_t unsafe = 0;
    std::string last = "(start)", name;
    for (;;) {
      SLUICE_ASSIGN_OR_RETURN(bool more, NextMember(a.get(), path_, &last, &entry, &name, &unsafe));
      if (!more) break;
      const size_t this_ordinal = ordinal++;
      if (this_ordinal >= wanted.size() || !wanted[this_ordinal]) continue;
      const uint64_t size = static_cast<uint64_t>(archive_entry_size(entry));
      if (size > kMaxMemberBytes) {
        return Status::InvalidArgument(path_ + ":" + name + " is over the 1 GiB member limit");
      }
      std::string bytes(size, '\0');
      uint64_t got = 0;
      while (got < size) {
        la_ssize_t r = archive_read_data(a.get(), bytes.data() + got, size - got);
        if (r < 0) return ArchiveError(a.get(), path_ + ": member " + name);
        if (r == 0) {
          return Status::DataLoss(path_ + ": member " + name + " truncated after " +
                                  std::to_string(got) + " of " + std::to_string(size) + " bytes");
        }
        got += static_cast<uint64_t>(r);
      }
      SLUICE_RETURN_IF_ERROR(fn(this_ordinal, std::move(bytes)));
    }
    return Status::Ok();
  }

  uint64_t input_bytes() const override { return size_; }

 private:
  Result<uint64_t> DataOffset(archive* a, uint64_t base, const std::string& name) const {
    return TarDataOffset(fd_, base, static_cast<uint64_t>(archive_read_header_position(a)),
                         path_ + ":" + name);
  }

  // Lists the members of the tar stored at [data, data + size) of the outer file.
  Status ListNested(const std::string& container, uint64_t data, uint64_t size,
                    std::vector<Member>* members) {
    if (data + size > size_) {
      return Status::DataLoss("truncated archive " + path_ + ": nested tar " + container +
                              " needs " + std::to_string(size) + " bytes at offset " +
                              std::to_string(data));
    }
    Window window{fd_, data, size};
    ArchivePtr inner(archive_read_new());
    archive_read_support_format_tar(inner.get());
    archive_read_set_callback_data(inner.get(), &window);
    archive_read_set_read_callback(inner.get(), WindowRead);
    archive_read_set_skip_callback(inner.get(), WindowSkip);
    archive_read_set_seek_callback(inner.get(), WindowSeek);
    const std::string where = path_ + ":" + container;
    if (archive_read_open1(inner.get()) != ARCHIVE_OK) return ArchiveError(inner.get(), where);
    archive_entry* entry = nullptr;
    std::string last = "(start)", name;
    for (;;) {
      SLUICE_ASSIGN_OR_RETURN(bool more,
                              NextMember(inner.get(), where, &last, &entry, &name, &unsafe_members_));
      if (!more) break;
      Member m;
      m.path = std::move(name);
      m.container = container;
      m.size = static_cast<uint64_t>(archive_entry_size(entry));
      SLUICE_ASSIGN_OR_RETURN(
          m.offset, TarDataOffset(fd_, data,
                                  static_cast<uint64_t>(archive_read_header_position(inner.get())),
                                  where + "/" + m.path));
      if (m.offset + m.size > data + size) {
        return Status::DataLoss(where + ": member " + m.path + " runs past the end of its tar");
      }
      m.ordinal = members->size();
      members->push_back(std::move(m));
    }
    return Status::Ok();
  }

  SourceOptions options_;
  int fd_;
  uint64_t size_;
  bool random_access_ = false;
};

}  // namespace

std::string Member::Display(std::string_view source) const {
  std::string s(source);
  s += ':';
  if (!container.empty()) {
    s += container;
    s += '/';
  }
  s += path;
  return s;
}

bool IsUnsafeMemberPath(std::string_view path) {
  if (path.empty() || path.front() == '/') return true;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

Result<std::unique_ptr<InputSource>> InputSource::Open(const std::string& path,
                                                       const SourceOptions& options) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return std::unique_ptr<InputSource>(new DirectorySource(path));
  SLUICE_ASSIGN_OR_RETURN(formats::OpenedFile file, formats::OpenForRead(path));
  return std::unique_ptr<InputSource>(
      new ArchiveSource(path, options, file.fd, file.size));
}

}  // namespace sluice::ingest
