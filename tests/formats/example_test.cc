#include "sluice/formats/example.h"

#include <gtest/gtest.h>

#include <random>

namespace sluice::formats {
namespace {

// Hand-encoded protobuf wire bytes, independent of the protobuf library.
std::string Varint(uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s += static_cast<char>(v | 0x80);
    v >>= 7;
  }
  s += static_cast<char>(v);
  return s;
}
std::string Field(int number, std::string_view payload) {  // length-delimited
  return Varint((number << 3) | 2) + Varint(payload.size()) + std::string(payload);
}
std::string MapEntry(std::string_view key, std::string_view feature) {
  return Field(1, Field(1, key) + Field(2, feature));
}
std::string ExampleBytes(std::string_view entries) { return Field(1, entries); }

TEST(ExampleTest, BuilderAndTypedAccessors) {
  Example ex;
  ex.SetInt64("image/height", 375)
      .SetBytes("image/format", "JPEG")
      .SetFloatList("image/object/bbox/xmin", {0.1f, 0.5f})
      .SetInt64List("image/object/bbox/label", {})
      .SetBytesList("names", {"a", "b"});
  EXPECT_EQ(*ex.GetInt64("image/height"), 375);
  EXPECT_EQ(*ex.GetBytes("image/format"), "JPEG");
  auto xmin = *ex.GetFloatList("image/object/bbox/xmin");
  ASSERT_EQ(xmin.size(), 2u);
  EXPECT_FLOAT_EQ(xmin[1], 0.5f);
  EXPECT_TRUE(ex.GetInt64List("image/object/bbox/label")->empty());
  EXPECT_EQ(ex.GetBytesList("names")->size(), 2u);
  ex.SetInt64("image/height", 10);  // replaces
  EXPECT_EQ(*ex.GetInt64("image/height"), 10);
  EXPECT_EQ(ex.size(), 5u);
}

TEST(ExampleTest, AccessorErrorsNameTheKey) {
  Example ex;
  ex.SetInt64("label", 3).SetInt64List("two", {1, 2});
  auto missing = ex.GetInt64("image/encoded");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("image/encoded"), std::string::npos);
  auto wrong_kind = ex.GetBytes("label");
  EXPECT_EQ(wrong_kind.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong_kind.status().message().find("int64"), std::string::npos);
  auto not_single = ex.GetInt64("two");
  EXPECT_EQ(not_single.status().code(), StatusCode::kInvalidArgument);
}

TEST(ExampleTest, RoundTripRandomExamples) {
  std::mt19937 rng(42);
  for (int iter = 0; iter < 200; ++iter) {
    Example ex;
    int n = rng() % 8;
    for (int i = 0; i < n; ++i) {
      std::string key = "k" + std::to_string(rng() % 20);
      switch (rng() % 4) {
        case 0: {
          std::vector<std::string> v(rng() % 3);
          for (auto& s : v) s = std::string(rng() % 50, static_cast<char>(rng()));
          ex.SetBytesList(key, v);
          break;
        }
        case 1: {
          std::vector<float> v(rng() % 5);
          for (auto& f : v) f = static_cast<float>(rng()) / 7.0f;
          ex.SetFloatList(key, v);
          break;
        }
        case 2: {
          std::vector<int64_t> v(rng() % 5);
          for (auto& x : v) x = static_cast<int64_t>(rng()) - (int64_t{1} << 40);
          ex.SetInt64List(key, v);
          break;
        }
        default:
          ex.SetFeature(key, Feature{});
      }
    }
    std::string bytes = ex.Serialize();
    auto parsed = Example::Parse(bytes);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    ASSERT_EQ(*parsed, ex) << "iteration " << iter;
    EXPECT_EQ(parsed->Serialize(), bytes);  // deterministic
  }
}

TEST(ExampleTest, SerializationMatchesHandEncodingWithSortedKeys) {
  Example ex;
  ex.SetInt64("b", 300).SetBytes("a", "hi").SetFloat("c", 1.0f);
  // Int64List packed: field 1, length 2, varint 300 = ac 02.
  std::string int_feature = Field(3, Field(1, Varint(300)));
  std::string bytes_feature = Field(1, Field(1, "hi"));
  std::string float_feature = Field(2, Field(1, std::string("\x00\x00\x80\x3f", 4)));
  std::string expected = ExampleBytes(MapEntry("a", bytes_feature) + MapEntry("b", int_feature) +
                                      MapEntry("c", float_feature));
  EXPECT_EQ(ex.Serialize(), expected);
}

TEST(ExampleTest, ParsesUnpackedRepeatedValues) {
  // Int64List with two unpacked varints (tag 0x08) and FloatList with unpacked fixed32 (tag 0x0d).
  std::string ints = std::string("\x08\x07\x08\x09", 4);
  std::string floats = std::string("\x0d\x00\x00\x00\x40", 5);  // 2.0f
  std::string bytes =
      ExampleBytes(MapEntry("i", Field(3, ints)) + MapEntry("f", Field(2, floats)));
  auto ex = Example::Parse(bytes);
  ASSERT_TRUE(ex.ok()) << ex.status().ToString();
  auto i = *ex->GetInt64List("i");
  ASSERT_EQ(i.size(), 2u);
  EXPECT_EQ(i[0], 7);
  EXPECT_EQ(i[1], 9);
  EXPECT_FLOAT_EQ(*ex->GetFloat("f"), 2.0f);
}

TEST(ExampleTest, EmptyBytesIsEmptyExample) {
  auto ex = Example::Parse("");
  ASSERT_TRUE(ex.ok());
  EXPECT_EQ(ex->size(), 0u);
}

TEST(ExampleTest, GarbageIsDataLoss) {
  const std::string cases[] = {
      std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11),  // overlong varint tag
      std::string("\x0a\x10", 2),                                        // length past the end
      std::string("\x0a\x03\x0a\x05\x0a", 5),                           // nested length overrun
      std::string("\x07", 1),                                            // wire type 7
  };
  for (const auto& c : cases) {
    auto ex = Example::Parse(c);
    EXPECT_EQ(ex.status().code(), StatusCode::kDataLoss) << "case size " << c.size();
  }
}

TEST(ExampleTest, TruncationsOfAValidExampleNeverCrash) {
  Example ex;
  ex.SetBytes("image/encoded", std::string(100, 'x')).SetInt64("label", 5);
  std::string bytes = ex.Serialize();
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto parsed = Example::Parse(std::string_view(bytes).substr(0, n));
    if (parsed.ok()) {
      EXPECT_NE(*parsed, ex) << n;  // any prefix that parses must differ
    }
  }
}

}  // namespace
}  // namespace sluice::formats

namespace sluice::formats {
namespace {

// TensorFlow's fast parser takes any bytes as a feature key; so do we (and print nothing).
TEST(ExampleTest, NonUtf8KeyRoundTrips) {
  Example ex;
  ex.SetInt64(std::string("\xff\xfekey", 5), 1);
  testing::internal::CaptureStderr();
  auto parsed = Example::Parse(ex.Serialize());
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, ex);
}

}  // namespace
}  // namespace sluice::formats
