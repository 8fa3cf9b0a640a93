// Input sources for ingest: tar archives (plain, compressed, nested), zip and other libarchive formats,
// and plain directories, read without extracting anything to disk.
//
// Ingest reads its input twice. List() is pass 1: every regular member with its size, found by reading
// headers only. On an uncompressed tar on disk, member data is skipped by seeking, and a nested tar
// (ImageNet's train tar holds one tar per synset) is read through a window of the outer file, so the
// whole listing of a 147 GB archive reads a few hundred MB. Each member's data offset in the outer
// file is recorded, so pass 2 fetches any member with one pread: shards can be written in a shuffled
// order, in parallel, with memory that does not grow with the archive. A compressed archive has no
// random access; Stream() then decompresses it once per call and hands over the members asked for.
//
// Members whose path is absolute or contains ".." are never returned (they are counted, see
// unsafe_members()); nothing is ever written to disk under a member's name anyway.
// Thread-safety: after List(), Read() may be called concurrently; Stream() is not thread-safe.
#ifndef SLUICE_INGEST_ARCHIVE_H_
#define SLUICE_INGEST_ARCHIVE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/formats/status.h"

namespace sluice::ingest {

struct Member {
  // Path inside its innermost archive (or relative to the directory): "n01440764_10026.JPEG".
  std::string path;
  // For members of a nested tar, that tar's path in the outer archive: "n01440764.tar"; else empty.
  std::string container;
  uint64_t size = 0;
  // Random-access sources: the data's byte offset in the outer file. Streaming sources: unused.
  uint64_t offset = 0;
  // Position in listing order (the key Stream() uses).
  size_t ordinal = 0;

  // "archive.tar:n01440764.tar/n01440764_10026.JPEG", for messages.
  std::string Display(std::string_view source) const;
};

struct SourceOptions {
  // Members named *.tar are opened and their members listed instead (ImageNet's train archive).
  bool expand_nested_tars = false;
};

class InputSource {
 public:
  virtual ~InputSource() = default;

  // Opens a directory (walked recursively) or any archive libarchive reads (tar, tar.gz, tgz, zip...).
  static Result<std::unique_ptr<InputSource>> Open(const std::string& path,
                                                   const SourceOptions& options = {});

  // Pass 1: regular-file members in archive order (directories: sorted by path). DataLoss naming the
  // archive, the last member read and the reason for a truncated or corrupt archive.
  virtual Status List(std::vector<Member>* members) = 0;
  // True when Read() works (directories and uncompressed tars on disk).
  virtual bool random_access() const = 0;
  // Reads one member's bytes (random-access sources only).
  virtual Result<std::string> Read(const Member& member) const = 0;
  // Hints that `member` will be Read soon, so the kernel can fetch it in the background (shards read
  // members in shuffled order; without hints the disk sees one outstanding read per worker).
  virtual void Prefetch(const Member& member) const {}
  // Streams the archive once, calling fn(ordinal, bytes) for each listed member whose `wanted[ordinal]`
  // is true, in archive order. An error from fn stops the pass and is returned.
  virtual Status Stream(const std::vector<bool>& wanted,
                        const std::function<Status(size_t ordinal, std::string&& bytes)>& fn) = 0;

  const std::string& path() const { return path_; }
  uint64_t unsafe_members() const { return unsafe_members_; }
  // Bytes of the input on disk (archive size or total of the directory's files).
  virtual uint64_t input_bytes() const = 0;

 protected:
  explicit InputSource(std::string path) : path_(std::move(path)) {}
  std::string path_;
  uint64_t unsafe_members_ = 0;
};

// True for a member path that must be ignored: absolute, or with a ".." component.
bool IsUnsafeMemberPath(std::string_view path);

}  // namespace sluice::ingest

#endif  // SLUICE_INGEST_ARCHIVE_H_
