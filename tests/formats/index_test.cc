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
    dir_ = std::filesystem::temp_directory_path() / ("sluice_index_test_" + std::to_string(getpid()));
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
