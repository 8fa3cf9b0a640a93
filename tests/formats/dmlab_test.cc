// Reads the TensorFlow-written dmlab fixtures (TFDS test data: 2 records each, features `image` JPEG
// bytes, `label` int64, `filename` bytes). Expected values were read with Python's protobuf runtime
// (tests/formats/example_interop.py cross-checks the same files independently).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "sluice/formats/example.h"
#include "sluice/formats/file_util.h"
#include "sluice/formats/image.h"
#include "sluice/formats/record_reader.h"
#include "sluice/formats/sha256.h"

namespace sluice::formats {
namespace {

const std::string kDir = std::string(SLUICE_FIXTURES_DIR) + "/tfds/dmlab/";

// Sanitized builds run ~20x slower: there the exhaustive scan takes every 13th byte (plus every byte of
// each record's header and footer); the release build checks every byte.
#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kByteStride = 13;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr size_t kByteStride = 13;
#else
constexpr size_t kByteStride = 1;
#endif
#else
constexpr size_t kByteStride = 1;
#endif

struct Expected {
  std::string split;
  std::vector<std::string> filenames;
};

std::vector<Example> ReadAll(const std::string& path) {
  auto reader = RecordReader::Open(path);
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  std::vector<Example> out;
  std::string_view rec;
  Status s;
  while ((s = (*reader)->ReadRecord(&rec)).ok()) {
    auto ex = Example::Parse(rec);
    EXPECT_TRUE(ex.ok()) << ex.status().ToString();
    out.push_back(*ex);
  }
  EXPECT_TRUE(s.IsEndOfData()) << s.ToString();
  return out;
}

TEST(DmlabFixtureTest, ReadsTensorFlowWrittenRecords) {
  if (!std::filesystem::exists(kDir)) GTEST_SKIP() << "no fixtures at " << kDir;
  for (const char* split : {"train", "validation", "test"}) {
    auto examples = ReadAll(kDir + "dmlab-" + split + ".tfrecord-00000-of-00001");
    ASSERT_EQ(examples.size(), 2u) << split;
    for (const Example& ex : examples) {
      EXPECT_EQ(ex.size(), 3u);
      auto filename = ex.GetBytes("filename");
      ASSERT_TRUE(filename.ok()) << filename.status().ToString();
      EXPECT_TRUE(filename->starts_with("video_") && filename->ends_with(".jpg")) << *filename;
      auto label = ex.GetInt64("label");
      ASSERT_TRUE(label.ok());
      EXPECT_GE(*label, 0);
      EXPECT_LT(*label, 6);  // dmlab has 6 classes
      auto image = ex.GetBytes("image");
      ASSERT_TRUE(image.ok());
      auto info = ProbeImage(*image);
      ASSERT_TRUE(info.ok()) << info.status().ToString();
      EXPECT_EQ(info->format, ImageFormat::kJpeg);
      auto decoded = DecodeImage(*image);
      ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
      EXPECT_EQ(decoded->channels, 3);
    }
  }
  auto test = ReadAll(kDir + "dmlab-test.tfrecord-00000-of-00001");
  EXPECT_EQ(*test[0].GetBytes("filename"), "video_1900_2_1142.jpg");
  EXPECT_EQ(*test[1].GetBytes("filename"), "video_2000_4_1680.jpg");
  EXPECT_EQ(Sha256Hex(*test[0].GetBytes("image")),
            "557c2a630446d0557dc52697271c129abd178c15ce388df93ee2e928b1fc3fa8");
}

// Every single flipped byte of a TensorFlow-written file is reported as DataLoss at the offset of
// the record that holds it: nothing slips through as a silently different record.
TEST(DmlabFixtureTest, EverySingleByteCorruptionIsDataLossAtItsRecord) {
  if (!std::filesystem::exists(kDir)) GTEST_SKIP() << "no fixtures at " << kDir;
  const std::string good = *ReadFile(kDir + "dmlab-validation.tfrecord-00000-of-00001");
  std::vector<uint64_t> starts;
  {
    auto reader = *RecordReader::FromString(good, "good");
    std::string_view rec;
    uint64_t off;
    while (reader->ReadRecord(&rec, &off).ok()) starts.push_back(off);
  }
  ASSERT_EQ(starts.size(), 2u);
  std::string bad = good;
  for (size_t i = 0; i < good.size(); ++i) {
    const bool in_frame = i < starts[1] ? (i < 12 || i + 4 >= starts[1])
                                        : (i < starts[1] + 12 || i + 4 >= good.size());
    if (!in_frame && i % kByteStride != 0) continue;
    bad[i] ^= 0x20;
    auto reader = *RecordReader::FromString(bad, "bad");
    std::string_view rec;
    Status s;
    while ((s = reader->ReadRecord(&rec)).ok()) {
    }
    const uint64_t record = i < starts[1] ? 0 : starts[1];
    ASSERT_TRUE(s.IsDataLoss()) << "byte " << i << ": " << s.ToString();
    ASSERT_NE(s.message().find("record at " + std::to_string(record) + " "), std::string::npos)
        << "byte " << i << ": " << s.message();
    bad[i] = good[i];
  }
}

}  // namespace
}  // namespace sluice::formats
