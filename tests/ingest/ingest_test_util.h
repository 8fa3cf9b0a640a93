// Helpers shared by the ingest tests: temporary directories, tar writing with libarchive, shard reading.
#ifndef SLUICE_TESTS_INGEST_INGEST_TEST_UTIL_H_
#define SLUICE_TESTS_INGEST_INGEST_TEST_UTIL_H_

#include <archive.h>
#include <archive_entry.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sluice/formats/example.h"
#include "sluice/formats/file_util.h"
#include "sluice/formats/record_reader.h"

namespace sluice::ingest::testing_util {

namespace fs = std::filesystem;

// Asserts `r` failed with `code` and that its message contains every one of `parts`.
template <typename T>
void ExpectError(const Result<T>& r, StatusCode code,
                 std::initializer_list<std::string_view> parts) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  for (std::string_view part : parts) {
    EXPECT_THAT(r.status().message(), ::testing::HasSubstr(std::string(part)));
  }
}

inline fs::path TempDir(const std::string& tag) {
  fs::path p = fs::temp_directory_path() /
               ("sluice_" + tag + "_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// Writes a ustar (optionally gzip) archive of (name, bytes) members, in the order given. A name ending
// in '/' is a directory entry (its bytes are ignored).
inline void WriteTar(const std::string& path,
                     const std::vector<std::pair<std::string, std::string>>& members,
                     bool gzip = false) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  for (const auto& [name, bytes] : members) {
    const bool dir = name.ends_with('/');
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, dir ? 0 : static_cast<la_int64_t>(bytes.size()));
    archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e, dir ? 0755 : 0644);
    archive_write_header(a, e);
    if (!dir) archive_write_data(a, bytes.data(), bytes.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

// Reads a tar into memory: name -> bytes (test-side reference reader).
inline std::map<std::string, std::string> ReadTar(const std::string& path_or_bytes, bool from_memory) {
  std::map<std::string, std::string> out;
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  int rc = from_memory ? archive_read_open_memory(a, path_or_bytes.data(), path_or_bytes.size())
                       : archive_read_open_filename(a, path_or_bytes.c_str(), 1 << 16);
  EXPECT_EQ(rc, ARCHIVE_OK);
  archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    std::string data(static_cast<size_t>(archive_entry_size(e)), '\0');
    if (!data.empty()) archive_read_data(a, data.data(), data.size());
    std::string name = archive_entry_pathname(e);
    while (name.starts_with("./")) name = name.substr(2);
    out[name] = std::move(data);
  }
  archive_read_free(a);
  return out;
}

// Every Example of every file matching prefix* in dir, in file then record order.
inline std::vector<formats::Example> ReadShards(const fs::path& dir, const std::string& prefix,
                                                size_t* num_files = nullptr) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (n.starts_with(prefix) && !n.ends_with(".idx") && !n.ends_with(".tmp")) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  if (num_files) *num_files = files.size();
  std::vector<formats::Example> out;
  for (const auto& f : files) {
    auto r = formats::RecordReader::Open(f);
    EXPECT_TRUE(r.ok());
    std::string_view rec;
    while ((*r)->ReadRecord(&rec).ok()) {
      auto ex = formats::Example::Parse(rec);
      EXPECT_TRUE(ex.ok());
      out.push_back(*ex);
    }
  }
  return out;
}

// Bytes of every shard file (name -> content), for byte-identity comparisons.
inline std::map<std::string, std::string> ShardBytes(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (e.is_regular_file() && n != "manifest.json" && n != "rejects.jsonl" && n != "labels.txt") {
      out[n] = *formats::ReadFile(e.path());
    }
  }
  return out;
}

}  // namespace sluice::ingest::testing_util

#endif  // SLUICE_TESTS_INGEST_INGEST_TEST_UTIL_H_
