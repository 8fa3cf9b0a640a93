// TFRecord writer/reader tests, after leveldb's log_test: a fixture owning the bytes, small verbs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "sluice/formats/crc32c.h"
#include "sluice/formats/file_util.h"
#include "sluice/formats/record_reader.h"
#include "sluice/formats/record_writer.h"

namespace sluice::formats {
namespace {

std::string BigString(std::string_view partial, size_t n) {
  std::string s;
  while (s.size() < n) s.append(partial);
  s.resize(n);
  return s;
}

std::string RandomBytes(std::mt19937* rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>((*rng)());
  return s;
}

class RecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice_record_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(std::string_view name) const { return (dir_ / name).string(); }

  // In-memory verbs.
  void Write(std::string_view rec) { AppendFramedRecord(rec, &bytes_); }
  void IncrementByte(size_t offset, int delta) { bytes_[offset] = static_cast<char>(bytes_[offset] + delta); }
  void ShrinkSize(size_t n) { bytes_.resize(bytes_.size() - n); }
  void SetLength(size_t record_offset, uint64_t length, bool fix_crc) {
    std::memcpy(&bytes_[record_offset], &length, 8);
    if (fix_crc) {
      uint32_t masked = crc32c::Mask(crc32c::Value(&bytes_[record_offset], 8));
      std::memcpy(&bytes_[record_offset + 8], &masked, 4);
    }
  }

  // Reads everything; returns records, and the final status in *status.
  std::vector<std::string> ReadAll(Status* status, RecordReaderOptions options = {}) {
    auto reader = RecordReader::FromString(bytes_, "mem", options);
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    std::vector<std::string> out;
    std::string_view rec;
    for (;;) {
      *status = (*reader)->ReadRecord(&rec);
      if (!status->ok()) break;
      out.emplace_back(rec);
    }
    return out;
  }

  std::string Read() {
    Status s;
    auto recs = ReadAll(&s);
    EXPECT_TRUE(s.IsEndOfData()) << s.ToString();
    return recs.empty() ? "EOF" : recs[0];
  }

  std::filesystem::path dir_;
  std::string bytes_;
};

TEST_F(RecordTest, HelloMatchesTensorFlowBytes) {
  Write("hello");
  const unsigned char expected[] = {0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xea,
                                    0xb2, 0x04, 0x3e, 'h',  'e',  'l',  'l',  'o',  0xbb,
                                    0x1f, 0x1c, 0x19};
  ASSERT_EQ(bytes_, std::string(reinterpret_cast<const char*>(expected), sizeof(expected)));
}

TEST_F(RecordTest, EmptyFileIsEndOfData) {
  Status s;
  EXPECT_TRUE(ReadAll(&s).empty());
  EXPECT_TRUE(s.IsEndOfData());
}

TEST_F(RecordTest, ZeroLengthRecordRoundTrips) {
  Write("");
  Write("x");
  Status s;
  auto recs = ReadAll(&s);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0], "");
  EXPECT_EQ(recs[1], "x");
  EXPECT_TRUE(s.IsEndOfData());
}

TEST_F(RecordTest, ManyRecordsAcrossBufferBoundaries) {
  std::mt19937 rng(301);
  std::vector<std::string> written;
  for (int i = 0; i < 500; ++i) {
    written.push_back(RandomBytes(&rng, rng() % (i % 50 == 0 ? 20000 : 300)));
    Write(written.back());
  }
  // Tiny buffers force every record to straddle refills and to grow the buffer.
  for (size_t buffer_size : {size_t{64}, size_t{100}, size_t{4096}, size_t{1} << 22}) {
    RecordReaderOptions opt;
    opt.buffer_size = buffer_size;
    Status s;
    auto recs = ReadAll(&s, opt);
    EXPECT_TRUE(s.IsEndOfData()) << s.ToString();
    ASSERT_EQ(recs, written) << "buffer_size=" << buffer_size;
  }
}

TEST_F(RecordTest, OffsetsReportedAndSeekable) {
  Write("first");
  Write(BigString("ab", 1000));
  Write("third");
  auto reader = *RecordReader::FromString(bytes_, "mem");
  std::string_view rec;
  uint64_t off;
  ASSERT_TRUE(reader->ReadRecord(&rec, &off).ok());
  EXPECT_EQ(off, 0u);
  ASSERT_TRUE(reader->ReadRecord(&rec, &off).ok());
  EXPECT_EQ(off, FramedSize(5));
  ASSERT_TRUE(reader->ReadRecord(&rec, &off).ok());
  EXPECT_EQ(off, FramedSize(5) + FramedSize(1000));
  ASSERT_TRUE(reader->Seek(FramedSize(5)).ok());
  ASSERT_TRUE(reader->ReadRecord(&rec, &off).ok());
  EXPECT_EQ(rec, BigString("ab", 1000));
  ASSERT_TRUE(reader->Seek(0).ok());
  ASSERT_TRUE(reader->ReadRecord(&rec).ok());
  EXPECT_EQ(rec, "first");
}

// ---- Error paths: each names the offset of the bad record. ----

TEST_F(RecordTest, FlippedDataByteIsCorruptedAtItsRecordOffset) {
  Write("foo");
  Write("bar");
  IncrementByte(FramedSize(3) + kRecordHeaderSize + 1, 1);
  Status s;
  auto recs = ReadAll(&s);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_TRUE(s.IsDataLoss());
  EXPECT_NE(s.message().find("corrupted record at 19"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("mem"), std::string::npos);
}

TEST_F(RecordTest, EverySingleByteCorruptionIsDetected) {
  Write("alpha");
  Write("beta-gamma");
  const std::string good = bytes_;
  for (size_t i = 0; i < good.size(); ++i) {
    bytes_ = good;
    IncrementByte(i, 0x40);
    Status s;
    auto recs = ReadAll(&s);
    EXPECT_TRUE(s.IsDataLoss()) << "byte " << i << ": " << s.ToString();
    const uint64_t bad_record = i < FramedSize(5) ? 0 : FramedSize(5);
    EXPECT_NE(s.message().find("record at " + std::to_string(bad_record)), std::string::npos)
        << "byte " << i << ": " << s.message();
  }
}

TEST_F(RecordTest, BadLengthCrcIsCorrupted) {
  Write("foo");
  IncrementByte(8, 1);
  Status s;
  ReadAll(&s);
  EXPECT_TRUE(s.IsDataLoss());
  EXPECT_NE(s.message().find("length crc"), std::string::npos) << s.message();
}

TEST_F(RecordTest, BadDataCrcIsCorrupted) {
  Write("foo");
  IncrementByte(bytes_.size() - 1, 1);
  Status s;
  ReadAll(&s);
  EXPECT_TRUE(s.IsDataLoss());
  EXPECT_NE(s.message().find("data crc"), std::string::npos) << s.message();
}

TEST_F(RecordTest, TruncatedHeaderIsTruncated) {
  Write("foo");
  Write("bar");
  ShrinkSize(FramedSize(3) - 5);
  Status s;
  auto recs = ReadAll(&s);
  EXPECT_EQ(recs.size(), 1u);
  EXPECT_TRUE(s.IsDataLoss());
  EXPECT_NE(s.message().find("truncated record at 19"), std::string::npos) << s.message();
}

TEST_F(RecordTest, TruncatedPayloadIsTruncated) {
  Write("foo");
  Write(BigString("x", 100));
  ShrinkSize(50);
  Status s;
  auto recs = ReadAll(&s);
  EXPECT_EQ(recs.size(), 1u);
  EXPECT_NE(s.message().find("truncated record at 19"), std::string::npos) << s.message();
}

TEST_F(RecordTest, TruncatedFooterIsTruncated) {
  Write("foo");
  ShrinkSize(1);
  Status s;
  ReadAll(&s);
  EXPECT_NE(s.message().find("truncated record at 0"), std::string::npos) << s.message();
}

TEST_F(RecordTest, EveryTruncationPointIsReportedNeverCrashes) {
  Write("alpha");
  Write(BigString("z", 300));
  const std::string good = bytes_;
  for (size_t n = 1; n < good.size(); ++n) {
    bytes_ = good.substr(0, n);
    Status s;
    auto recs = ReadAll(&s);
    if (n == FramedSize(5)) {
      EXPECT_TRUE(s.IsEndOfData()) << n;  // a clean boundary
    } else {
      EXPECT_TRUE(s.IsDataLoss()) << n << " " << s.ToString();
      EXPECT_NE(s.message().find("truncated"), std::string::npos) << n << " " << s.message();
    }
  }
}

TEST_F(RecordTest, HugeLengthFieldIsTruncationWithoutAllocating) {
  Write("foo");
  SetLength(0, uint64_t{1} << 40, /*fix_crc=*/true);  // 1 TiB claimed by a valid-CRC header
  Status s;
  ReadAll(&s);
  EXPECT_TRUE(s.IsDataLoss());
  // The limit check fires before any allocation of the claimed size.
  EXPECT_NE(s.message().find("record at 0"), std::string::npos) << s.message();
}

TEST_F(RecordTest, LengthBeyondFileButUnderLimitIsTruncated) {
  Write("foo");
  SetLength(0, 1 << 20, /*fix_crc=*/true);
  Status s;
  ReadAll(&s);
  EXPECT_NE(s.message().find("truncated record at 0"), std::string::npos) << s.message();
}

TEST_F(RecordTest, ReaderStaysFailedAfterError) {
  Write("foo");
  IncrementByte(bytes_.size() - 1, 1);
  auto reader = *RecordReader::FromString(bytes_, "mem");
  std::string_view rec;
  Status s1 = reader->ReadRecord(&rec);
  Status s2 = reader->ReadRecord(&rec);
  EXPECT_TRUE(s1.IsDataLoss());
  EXPECT_EQ(s1.message(), s2.message());
}

TEST_F(RecordTest, CrcCheckCanBeDisabled) {
  Write("foo");
  IncrementByte(bytes_.size() - 1, 1);
  RecordReaderOptions opt;
  opt.verify_crc = false;
  Status s;
  auto recs = ReadAll(&s, opt);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0], "foo");
}

// ---- Files, compression, atomicity ----

TEST_F(RecordTest, FileRoundTripAllCompressions) {
  std::mt19937 rng(7);
  std::vector<std::string> written;
  for (int i = 0; i < 300; ++i) written.push_back(BigString(std::to_string(i), rng() % 5000));
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZlib}) {
    std::string path = Path("f." + std::string(CompressionName(c)));
    RecordWriterOptions wopt;
    wopt.compression = c;
    auto writer = *RecordWriter::Create(path, wopt);
    for (const auto& r : written) ASSERT_TRUE(writer->Write(r).ok());
    ASSERT_TRUE(writer->Close().ok());
    RecordReaderOptions ropt;
    ropt.compression = c;
    ropt.buffer_size = 1000;
    auto reader = *RecordReader::Open(path, ropt);
    std::string_view rec;
    size_t i = 0;
    Status s;
    while ((s = reader->ReadRecord(&rec)).ok()) {
      ASSERT_LT(i, written.size());
      ASSERT_EQ(rec, written[i++]) << CompressionName(c);
    }
    EXPECT_TRUE(s.IsEndOfData()) << s.ToString();
    EXPECT_EQ(i, written.size());
  }
}

TEST_F(RecordTest, GzipFileIsRealGzip) {
  std::string path = Path("a.gz");
  RecordWriterOptions wopt;
  wopt.compression = Compression::kGzip;
  auto writer = *RecordWriter::Create(path, wopt);
  ASSERT_TRUE(writer->Write("hello").ok());
  ASSERT_TRUE(writer->Close().ok());
  std::string bytes = *ReadFile(path);
  ASSERT_GE(bytes.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(bytes[0]), 0x1f);  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>(bytes[1]), 0x8b);
  // gzip(1) must agree: decompress with the system tool and compare with the plain framing.
  std::string cmd = "gzip -dc '" + path + "' > '" + Path("plain") + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::string plain;
  AppendFramedRecord("hello", &plain);
  EXPECT_EQ(*ReadFile(Path("plain")), plain);
}

TEST_F(RecordTest, CompressedSeekAndTruncation) {
  std::string path = Path("b.zz");
  RecordWriterOptions wopt;
  wopt.compression = Compression::kZlib;
  auto writer = *RecordWriter::Create(path, wopt);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(writer->Write(BigString(std::to_string(i), 777)).ok());
  ASSERT_TRUE(writer->Close().ok());
  RecordReaderOptions ropt;
  ropt.compression = Compression::kZlib;
  auto reader = *RecordReader::Open(path, ropt);
  ASSERT_TRUE(reader->Seek(FramedSize(777) * 42).ok());
  std::string_view rec;
  ASSERT_TRUE(reader->ReadRecord(&rec).ok());
  EXPECT_EQ(rec, BigString("42", 777));
  ASSERT_TRUE(reader->Seek(FramedSize(777) * 3).ok());  // backwards: restarts the stream
  ASSERT_TRUE(reader->ReadRecord(&rec).ok());
  EXPECT_EQ(rec, BigString("3", 777));

  std::string bytes = *ReadFile(path);
  auto truncated = *RecordReader::FromString(bytes.substr(0, bytes.size() / 2), "half.zz", ropt);
  Status s;
  while ((s = truncated->ReadRecord(&rec)).ok()) {
  }
  EXPECT_TRUE(s.IsDataLoss()) << s.ToString();
  EXPECT_NE(s.message().find("half.zz"), std::string::npos);
}

TEST_F(RecordTest, CorruptGzipStreamIsDataLoss) {
  std::string path = Path("c.gz");
  RecordWriterOptions wopt;
  wopt.compression = Compression::kGzip;
  auto writer = *RecordWriter::Create(path, wopt);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(writer->Write(BigString("data", 1000 + i)).ok());
  ASSERT_TRUE(writer->Close().ok());
  std::string bytes = *ReadFile(path);
  bytes[bytes.size() / 2] ^= 0x55;
  RecordReaderOptions ropt;
  ropt.compression = Compression::kGzip;
  auto reader = *RecordReader::FromString(bytes, "c.gz", ropt);
  std::string_view rec;
  Status s;
  while ((s = reader->ReadRecord(&rec)).ok()) {
  }
  EXPECT_TRUE(s.IsDataLoss()) << s.ToString();
}

TEST_F(RecordTest, UnclosedWriterLeavesNoFile) {
  std::string path = Path("never");
  {
    auto writer = *RecordWriter::Create(path);
    ASSERT_TRUE(writer->Write("x").ok());
    EXPECT_TRUE(FileExists(path + ".tmp"));
    EXPECT_FALSE(FileExists(path));
  }
  EXPECT_FALSE(FileExists(path));
  EXPECT_FALSE(FileExists(path + ".tmp"));
}

TEST_F(RecordTest, CloseTwiceAndWriteAfterCloseFail) {
  auto writer = *RecordWriter::Create(Path("twice"));
  ASSERT_TRUE(writer->Write("x").ok());
  ASSERT_TRUE(writer->Close().ok());
  EXPECT_FALSE(writer->Close().ok());
  EXPECT_EQ(writer->Write("y").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(writer->records_written(), 1u);
  EXPECT_EQ(writer->offset(), FramedSize(1));
}

TEST_F(RecordTest, MissingFileIsNotFound) {
  auto r = RecordReader::Open(Path("absent"));
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("absent"), std::string::npos);
}

TEST_F(RecordTest, CreateInMissingDirectoryIsError) {
  auto w = RecordWriter::Create(Path("no/such/dir/file"));
  EXPECT_FALSE(w.ok());
}

TEST_F(RecordTest, OnDiskTruncationNamesFile) {
  std::string path = Path("trunc");
  auto writer = *RecordWriter::Create(path);
  ASSERT_TRUE(writer->Write("hello").ok());
  ASSERT_TRUE(writer->Write("world").ok());
  ASSERT_TRUE(writer->Close().ok());
  ASSERT_EQ(::truncate(path.c_str(), FramedSize(5) + 7), 0);
  auto reader = *RecordReader::Open(path);
  std::string_view rec;
  ASSERT_TRUE(reader->ReadRecord(&rec).ok());
  Status s = reader->ReadRecord(&rec);
  EXPECT_EQ(s.message().substr(0, 23), "truncated record at 21 ");
  EXPECT_NE(s.message().find(path), std::string::npos);
}

TEST(CompressionTest, NamesAndExtensions) {
  Compression c;
  EXPECT_TRUE(ParseCompression("gzip", &c));
  EXPECT_EQ(c, Compression::kGzip);
  EXPECT_TRUE(ParseCompression("zlib", &c));
  EXPECT_EQ(c, Compression::kZlib);
  EXPECT_TRUE(ParseCompression("none", &c));
  EXPECT_EQ(c, Compression::kNone);
  EXPECT_FALSE(ParseCompression("lz4", &c));
  EXPECT_EQ(CompressionFromPath("x/train-00000.gz"), Compression::kGzip);
  EXPECT_EQ(CompressionFromPath("x.zz"), Compression::kZlib);
  EXPECT_EQ(CompressionFromPath("train-00000-of-01024"), Compression::kNone);
}

}  // namespace
}  // namespace sluice::formats
