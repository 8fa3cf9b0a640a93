#include "sluice/formats/index.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "sluice/formats/file_util.h"
#include "sluice/formats/record_writer.h"

namespace sluice::formats {
namespace {

class IndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("sluice_index_test_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(IndexTest, MatchesDaliLayout) {
  std::string path = (dir_ / "f").string();
  auto w = *RecordWriter::Create(path);
  ASSERT_TRUE(w->Write("hello").ok());
  ASSERT_TRUE(w->Write("").ok());
  ASSERT_TRUE(w->Write(std::string(1000, 'a')).ok());
  ASSERT_TRUE(w->Close().ok());
  auto idx = BuildIndex(path);
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  // tfrecord2idx: "<offset> <12 + len + 4>" per record.
  EXPECT_EQ(FormatIndex(*idx), "0 21\n21 16\n37 1016\n");
  ASSERT_TRUE(WriteIndexFile(path + ".idx", *idx).ok());
  auto back = ReadIndexFile(path + ".idx");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, *idx);
}

TEST_F(IndexTest, BuildOnCorruptFileFails) {
  std::string path = (dir_ / "g").string();
  std::string bytes;
  AppendFramedRecord("abc", &bytes);
  bytes.back() ^= 1;
  ASSERT_TRUE(WriteFileAtomically(path, bytes).ok());
  auto idx = BuildIndex(path);
  EXPECT_TRUE(idx.status().IsDataLoss());
}

// The header-only index equals the full one; a bad length CRC or a record running past the end is
// DataLoss naming its offset. A bad data CRC is not its business (the reader catches that).
TEST_F(IndexTest, IndexFromHeadersMatchesBuildIndexAndNamesBadOffsets) {
  std::string bytes;
  AppendFramedRecord("hello", &bytes);
  AppendFramedRecord("", &bytes);
  AppendFramedRecord(std::string(1000, 'a'), &bytes);
  const std::string path = (dir_ / "h").string();
  ASSERT_TRUE(WriteFileAtomically(path, bytes).ok());
  auto fast = IndexFromHeaders(path);
  ASSERT_TRUE(fast.ok()) << fast.status().ToString();
  EXPECT_EQ(FormatIndex(*fast), "0 21\n21 16\n37 1016\n");

  std::string data_crc = bytes;
  data_crc.back() ^= 1;
  ASSERT_TRUE(WriteFileAtomically(path, data_crc).ok());
  EXPECT_TRUE(IndexFromHeaders(path).ok());

  std::string length_crc = bytes;
  length_crc[21 + 8] ^= 1;  // the second record's length CRC
  ASSERT_TRUE(WriteFileAtomically(path, length_crc).ok());
  auto bad = IndexFromHeaders(path);
  EXPECT_TRUE(bad.status().IsDataLoss());
  EXPECT_NE(bad.status().message().find("at 21 in " + path), std::string::npos)
      << bad.status().ToString();

  ASSERT_TRUE(WriteFileAtomically(path, bytes.substr(0, bytes.size() - 3)).ok());
  bad = IndexFromHeaders(path);
  EXPECT_TRUE(bad.status().IsDataLoss());
  EXPECT_NE(bad.status().message().find("at 37 in"), std::string::npos) << bad.status().ToString();
}

TEST(ParseIndexTest, RejectsMalformedLinesWithLineNumbers) {
  EXPECT_TRUE(ParseIndex("", "x")->empty());
  auto bad = ParseIndex("0 21\nfoo\n", "x.idx");
  EXPECT_TRUE(bad.status().IsDataLoss());
  EXPECT_NE(bad.status().message().find("x.idx:2"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(ParseIndex("0 21\n22 16\n", "x").ok());  // gap
  EXPECT_FALSE(ParseIndex("0 3\n", "x").ok());          // smaller than a frame
  EXPECT_FALSE(ParseIndex("0 21 extra\n", "x").ok());
  EXPECT_FALSE(ParseIndex("-1 21\n", "x").ok());
}

}  // namespace
}  // namespace sluice::formats
