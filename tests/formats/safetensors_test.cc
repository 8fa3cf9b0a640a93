#include "sluice/formats/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>

#include "sluice/formats/file_util.h"

namespace sluice::formats {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

constexpr char kName[] = "model.safetensors";

std::string Le64(uint64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);
  return s;
}

template <typename T>
std::string Bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// Owns a writer and the last serialized bytes; verbs build, damage and parse files in memory.
class SafetensorsTest : public ::testing::Test {
 protected:
  template <typename T>
  void Add(const std::string& name, std::vector<int64_t> shape, const std::vector<T>& values) {
    ASSERT_TRUE(writer_.Add(name, std::move(shape), std::span<const T>(values)).ok()) << name;
  }
  // Serializes the writer into bytes_.
  void Write() {
    Result<std::string> r = writer_.Serialize();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    bytes_ = std::move(r).value();
  }
  // A file with a hand-written header (padding is not required by readers).
  void WriteRaw(std::string_view json, std::string_view data) {
    bytes_ = Le64(json.size()) + std::string(json) + std::string(data);
  }
  void SetHeaderLength(uint64_t n) { std::memcpy(bytes_.data(), &n, 8); }
  void ShrinkSize(size_t n) { bytes_.resize(bytes_.size() - n); }
  Result<SafetensorsFile> Read() { return SafetensorsFile::Parse(bytes_, kName); }
  // The header JSON of bytes_ (spaces included).
  std::string HeaderText() const {
    uint64_t n;
    std::memcpy(&n, bytes_.data(), 8);
    return bytes_.substr(8, n);
  }
  // Parses bytes_, expecting failure with `code` and a message naming the file and `reason`.
  void ExpectError(StatusCode code, std::string_view reason) {
    Result<SafetensorsFile> r = Read();
    ASSERT_FALSE(r.ok()) << "parsed: " << HeaderText();
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_THAT(r.status().message(), HasSubstr(reason));
    EXPECT_THAT(r.status().message(), HasSubstr(kName));
  }

  SafetensorsWriter writer_;
  std::string bytes_;
};

TEST_F(SafetensorsTest, ExactBytesOfASmallFile) {
  Add<float>("w", {2}, {1.0f, -2.0f});
  writer_.SetMetadata("format", "pt");
  Write();
  std::string json =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  json.append((8 - json.size() % 8) % 8, ' ');
  EXPECT_EQ(bytes_, Le64(json.size()) + json + Bytes(std::vector<float>{1.0f, -2.0f}));
}

TEST_F(SafetensorsTest, HeaderIsSpacePaddedToAMultipleOfEight) {
  for (int len = 1; len <= 9; ++len) {
    writer_ = SafetensorsWriter();
    Add<uint8_t>(std::string(len, 'x'), {1}, {7});
    Write();
    EXPECT_EQ(HeaderText().size() % 8, 0u) << "name length " << len;
    EXPECT_EQ(bytes_.size(), 8 + HeaderText().size() + 1);
    EXPECT_EQ(bytes_.back(), 7);
  }
}

TEST_F(SafetensorsTest, RoundTripsEveryDtype) {
  const SafetensorsDtype dtypes[] = {
      SafetensorsDtype::kBool,   SafetensorsDtype::kU8,     SafetensorsDtype::kI8,
      SafetensorsDtype::kF8E5M2, SafetensorsDtype::kF8E4M3, SafetensorsDtype::kI16,
      SafetensorsDtype::kU16,    SafetensorsDtype::kF16,    SafetensorsDtype::kBF16,
      SafetensorsDtype::kI32,    SafetensorsDtype::kU32,    SafetensorsDtype::kF32,
      SafetensorsDtype::kI64,    SafetensorsDtype::kU64,    SafetensorsDtype::kF64};
  std::mt19937 rng(301);
  std::map<std::string, std::string> expected;
  for (SafetensorsDtype d : dtypes) {
    std::string name = "t_" + std::string(SafetensorsDtypeName(d));
    std::string data(2 * 3 * SafetensorsDtypeSize(d), '\0');
    for (char& c : data) c = static_cast<char>(d == SafetensorsDtype::kBool ? rng() % 2 : rng());
    ASSERT_TRUE(writer_.Add(name, d, {2, 3}, data).ok()) << name;
    expected[name] = data;
  }
  Write();
  Result<SafetensorsFile> file = Read();
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_EQ(file->size(), std::size(dtypes));
  for (SafetensorsDtype d : dtypes) {
    std::string name = "t_" + std::string(SafetensorsDtypeName(d));
    Result<SafetensorsTensor> t = file->Find(name);
    ASSERT_TRUE(t.ok()) << name;
    EXPECT_EQ(t->dtype, d) << name;
    EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3})) << name;
    EXPECT_EQ(t->data, expected[name]) << name;
    EXPECT_EQ(t->num_elements(), 6);
    EXPECT_EQ(ParseSafetensorsDtype(SafetensorsDtypeName(d)).value(), d);
  }
}

TEST_F(SafetensorsTest, TypedHelpersWidenLosslessly) {
  Add<float>("f32", {3}, {1.5f, -0.25f, 3e38f});
  Add<double>("f64", {2}, {0.1, -1e300});
  Add<int64_t>("i64", {2}, {std::numeric_limits<int64_t>::min(), 42});
  Add<int32_t>("i32", {2}, {-7, 1 << 30});
  Add<uint8_t>("u8", {2}, {0, 255});
  Add<int8_t>("i8", {2}, {-128, 127});
  const bool mask[] = {true, false, true};  // not vector<bool>: it has no contiguous storage
  ASSERT_TRUE(writer_.Add("mask", {3}, std::span<const bool>(mask)).ok());
  Write();
  Result<SafetensorsFile> file = Read();
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->Floats("f32").value(), (std::vector<float>{1.5f, -0.25f, 3e38f}));
  EXPECT_EQ(file->Doubles("f32").value(), (std::vector<double>{1.5, -0.25, double{3e38f}}));
  EXPECT_EQ(file->Doubles("f64").value(), (std::vector<double>{0.1, -1e300}));
  EXPECT_EQ(file->Int64s("i64").value(),
            (std::vector<int64_t>{std::numeric_limits<int64_t>::min(), 42}));
  EXPECT_EQ(file->Int64s("i32").value(), (std::vector<int64_t>{-7, 1 << 30}));
  EXPECT_EQ(file->Int64s("u8").value(), (std::vector<int64_t>{0, 255}));
  EXPECT_EQ(file->Int64s("i8").value(), (std::vector<int64_t>{-128, 127}));
  EXPECT_EQ(file->Int64s("mask").value(), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(file->Find("mask")->dtype, SafetensorsDtype::kBool);
}

TEST_F(SafetensorsTest, HalfAndBFloat16WidenExactly) {
  std::vector<uint16_t> half = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x8000, 0x7c00, 0xfc00};
  std::vector<uint16_t> bf16 = {0x3f80, 0x4049, 0xff80, 0x0001};
  ASSERT_TRUE(writer_.Add("h", SafetensorsDtype::kF16, {8}, Bytes(half)).ok());
  ASSERT_TRUE(writer_.Add("b", SafetensorsDtype::kBF16, {4}, Bytes(bf16)).ok());
  Write();
  Result<SafetensorsFile> file = Read();
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> h = file->Floats("h").value();
  EXPECT_EQ(
      h, (std::vector<float>{1.0f, -2.0f, 65504.0f, 0x1p-24f, 1023 * 0x1p-24f, -0.0f, inf, -inf}));
  EXPECT_TRUE(std::signbit(h[5]));
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7e00)));
  EXPECT_EQ(file->Floats("b").value(), (std::vector<float>{1.0f, 3.140625f, -inf, 0x1p-133f}));
}

TEST_F(SafetensorsTest, MetadataRoundTrips) {
  writer_.SetMetadata("format", "pt");
  writer_.SetMetadata("step", "71108");
  writer_.SetMetadata("note", "ünïcode \"quoted\"\n");
  writer_.SetMetadata("step", "71109");  // replaces
  Add<float>("x", {1}, {1.0f});
  Write();
  Result<SafetensorsFile> file = Read();
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->metadata(),
            (std::map<std::string, std::string>{
                {"format", "pt"}, {"step", "71109"}, {"note", "ünïcode \"quoted\"\n"}}));
  EXPECT_FALSE(file->contains("__metadata__"));
}

TEST_F(SafetensorsTest, NoMetadataWritesNoMetadataKey) {
  Add<float>("x", {1}, {1.0f});
  Write();
  EXPECT_THAT(HeaderText(), ::testing::Not(HasSubstr("__metadata__")));
  EXPECT_TRUE(Read()->metadata().empty());
}

TEST_F(SafetensorsTest, EmptyTensorsAndScalars) {
  Add<float>("empty", {0}, {});
  Add<float>("empty2d", {3, 0}, {});
  Add<double>("scalar", {}, {2.5});
  Add<int64_t>("zzz", {1}, {9});
  Write();
  Result<SafetensorsFile> file = Read();
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->Find("empty")->shape, (std::vector<int64_t>{0}));
  EXPECT_EQ(file->Find("empty")->num_elements(), 0);
  EXPECT_TRUE(file->Floats("empty2d")->empty());
  EXPECT_TRUE(file->Find("scalar")->shape.empty());
  EXPECT_EQ(file->Find("scalar")->num_elements(), 1);
  EXPECT_EQ(file->Doubles("scalar").value(), (std::vector<double>{2.5}));
  EXPECT_EQ(file->Int64s("zzz").value(), (std::vector<int64_t>{9}));
}

TEST_F(SafetensorsTest, EmptyFileHasEmptyHeader) {
  Write();
  EXPECT_EQ(bytes_, Le64(8) + "{}      ");
  Result<SafetensorsFile> file = Read();
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->size(), 0u);
}

TEST_F(SafetensorsTest, OutputIsDeterministicAndSortedByName) {
  Add<float>("b", {1}, {2.0f});
  Add<float>("a", {1}, {1.0f});
  Add<int64_t>("c", {1}, {3});
  writer_.SetMetadata("k2", "v2");
  writer_.SetMetadata("k1", "v1");
  Write();
  std::string first = bytes_;

  writer_ = SafetensorsWriter();
  writer_.SetMetadata("k1", "v1");
  Add<int64_t>("c", {1}, {3});
  Add<float>("a", {1}, {1.0f});
  writer_.SetMetadata("k2", "v2");
  Add<float>("b", {1}, {2.0f});
  Write();
  EXPECT_EQ(bytes_, first);

  std::string header = HeaderText();
  EXPECT_LT(header.find("\"a\""), header.find("\"b\""));
  EXPECT_LT(header.find("\"b\""), header.find("\"c\""));
  EXPECT_THAT(header, HasSubstr(R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})"));
  EXPECT_THAT(header, HasSubstr(R"("c":{"dtype":"I64","shape":[1],"data_offsets":[8,16]})"));
  EXPECT_EQ(Read()->names(), (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(SafetensorsTest, ReadsTensorsStoredOutOfNameOrder) {
  // Other writers (the reference one sorts by dtype first) need not store tensors by name.
  WriteRaw(
      R"({"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
      R"("a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]},"extra":{"dtype":"U8","shape":[0],)"
      R"("data_offsets":[3,3],"future_field":1}})",
      "\x01\x02\x03");
  Result<SafetensorsFile> file = Read();
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->names(), (std::vector<std::string>{"a", "b", "extra"}));
  EXPECT_EQ(file->Find("a")->data, "\x02\x03");
  EXPECT_EQ(file->Find("b")->data, "\x01");
}

TEST_F(SafetensorsTest, ViewsSurviveMovingTheFile) {
  Add<uint8_t>("x", {2}, {5, 6});
  Write();
  Result<SafetensorsFile> file = Read();
  ASSERT_TRUE(file.ok());
  std::string_view view = file->Find("x")->data;
  SafetensorsFile moved = std::move(file).value();
  EXPECT_EQ(view, "\x05\x06");
  EXPECT_EQ(moved.Find("x")->data.data(), view.data());
}

TEST_F(SafetensorsTest, WriteFileIsAtomicAndOpenReadsItBack) {
  std::string dir = ::testing::TempDir() + "/safetensors_test_" + std::to_string(::getpid());
  ASSERT_TRUE(CreateDirectories(dir).ok());
  std::string path = dir + "/ckpt.safetensors";
  Add<float>("w", {2, 2}, {1, 2, 3, 4});
  writer_.SetMetadata("format", "pt");
  ASSERT_TRUE(writer_.WriteFile(path).ok());
  EXPECT_FALSE(FileExists(path + ".tmp"));
  Write();
  EXPECT_EQ(ReadFile(path).value(), bytes_);
  Result<SafetensorsFile> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->name(), path);
  EXPECT_EQ(file->Floats("w").value(), (std::vector<float>{1, 2, 3, 4}));
  std::filesystem::remove_all(dir);
}

// ---- caller errors --------------------------------------------------------------------------

TEST_F(SafetensorsTest, WriterRejectsBadTensors) {
  ASSERT_TRUE(writer_.Add("a", SafetensorsDtype::kF32, {1}, "abcd").ok());
  struct Case {
    std::string name;
    std::vector<int64_t> shape;
    std::string bytes;
    std::string reason;
  } cases[] = {
      {"a", {1}, "abcd", "duplicate"},           {"", {1}, "abcd", "empty"},
      {"__metadata__", {1}, "abcd", "reserved"}, {"b", {2}, "abcd", "needs 8 bytes, got 4"},
      {"c", {-1}, "", "invalid shape [-1]"},     {"d", {1LL << 62, 1LL << 62}, "", "invalid shape"},
      {"bad\xff", {1}, "abcd", "not UTF-8"},
  };
  for (const Case& c : cases) {
    Status s = writer_.Add(c.name, SafetensorsDtype::kF32, c.shape, c.bytes);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.reason << ": " << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr(c.reason));
  }
  EXPECT_EQ(writer_.num_tensors(), 1u);
}

TEST_F(SafetensorsTest, WriterRejectsNonUtf8Metadata) {
  writer_.SetMetadata("k", "\xc3");
  Result<std::string> r = writer_.Serialize();
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("not UTF-8"));
  EXPECT_EQ(writer_.WriteFile(::testing::TempDir() + "/never.safetensors").code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(FileExists(::testing::TempDir() + "/never.safetensors"));
}

TEST_F(SafetensorsTest, UnknownTensorIsNotFound) {
  Add<float>("x", {1}, {1});
  Write();
  Result<SafetensorsFile> file = Read();
  Result<SafetensorsTensor> t = file->Find("y");
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(t.status().message(), HasSubstr("\"y\""));
  EXPECT_EQ(file->Floats("y").status().code(), StatusCode::kNotFound);
}

TEST_F(SafetensorsTest, TypedHelperOfWrongDtypeIsInvalidArgument) {
  Add<int64_t>("i", {1}, {1});
  Add<float>("f", {1}, {1});
  Add<uint64_t>("u", {1}, {1});
  Write();
  Result<SafetensorsFile> file = Read();
  EXPECT_EQ(file->Floats("i").status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(file->Floats("i").status().message(), HasSubstr("has dtype I64"));
  EXPECT_EQ(file->Doubles("i").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(file->Int64s("f").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(file->Int64s("u").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SafetensorsTest, MissingFileIsNotFound) {
  Result<SafetensorsFile> r = SafetensorsFile::Open("/nonexistent/x.safetensors");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("/nonexistent/x.safetensors"));
}

// ---- malformed files ------------------------------------------------------------------------

TEST_F(SafetensorsTest, FileShorterThanLengthIsDataLoss) {
  bytes_ = std::string("\x08\x00\x00", 3);
  ExpectError(StatusCode::kDataLoss, "too short");
}

TEST_F(SafetensorsTest, HeaderLengthLargerThanFileIsDataLoss) {
  Add<float>("x", {1}, {1});
  Write();
  SetHeaderLength(bytes_.size() - 7);
  ExpectError(StatusCode::kDataLoss, "larger than the file");
}

TEST_F(SafetensorsTest, TruncatedDataIsDataLoss) {
  Add<float>("x", {2}, {1, 2});
  Write();
  ShrinkSize(1);
  ExpectError(StatusCode::kDataLoss, "out of range");
}

TEST_F(SafetensorsTest, AbsurdHeaderLengthIsDataLoss) {
  Add<float>("x", {1}, {1});
  Write();
  SetHeaderLength(uint64_t{1} << 40);
  ExpectError(StatusCode::kDataLoss, "absurd");
  SetHeaderLength(~uint64_t{0});
  ExpectError(StatusCode::kDataLoss, "absurd");
}

TEST_F(SafetensorsTest, InvalidJsonIsDataLoss) {
  WriteRaw(R"({"x":{"dtype":"F32",)", "");
  ExpectError(StatusCode::kDataLoss, "invalid JSON");
  WriteRaw("{} trailing", "");
  ExpectError(StatusCode::kDataLoss, "invalid JSON");
  WriteRaw("", "");
  ExpectError(StatusCode::kDataLoss, "invalid JSON");
  WriteRaw("{\"\xff\":1}", "");
  ExpectError(StatusCode::kDataLoss, "invalid JSON");
}

TEST_F(SafetensorsTest, NonObjectHeaderIsDataLoss) {
  WriteRaw("[1, 2]", "");
  ExpectError(StatusCode::kDataLoss, "not an object");
}

TEST_F(SafetensorsTest, DeeplyNestedJsonIsDataLoss) {
  WriteRaw(std::string(100000, '[') + std::string(100000, ']'), "");
  ExpectError(StatusCode::kDataLoss, "nested deeper");
}

TEST_F(SafetensorsTest, NonObjectEntryIsDataLoss) {
  WriteRaw(R"({"x": [1]})", "");
  ExpectError(StatusCode::kDataLoss, "entry is not an object: tensor \"x\"");
}

TEST_F(SafetensorsTest, UnknownDtypeIsUnsupported) {
  WriteRaw(R"({"x":{"dtype":"F128","shape":[],"data_offsets":[0,16]}})", std::string(16, '\0'));
  ExpectError(StatusCode::kUnsupported, "unknown safetensors dtype \"F128\"");
}

TEST_F(SafetensorsTest, MissingOrMistypedFieldsAreDataLoss) {
  struct Case {
    const char* json;
    const char* reason;
  } cases[] = {
      {R"({"x":{"shape":[1],"data_offsets":[0,1]}})", "dtype"},
      {R"({"x":{"dtype":8,"shape":[1],"data_offsets":[0,1]}})", "dtype"},
      {R"({"x":{"dtype":"U8","data_offsets":[0,1]}})", "shape"},
      {R"({"x":{"dtype":"U8","shape":1,"data_offsets":[0,1]}})", "shape"},
      {R"({"x":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", "shape"},
      {R"({"x":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}})", "shape"},
      {R"({"x":{"dtype":"U8","shape":["1"],"data_offsets":[0,1]}})", "shape"},
      {R"({"x":{"dtype":"U8","shape":[1]}})", "data_offsets"},
      {R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", "data_offsets"},
      {R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}})", "data_offsets"},
      {R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", "data_offsets"},
      {R"({"x":{"dtype":"U8","shape":[1],"data_offsets":{"a":0}}})", "data_offsets"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.json);
    WriteRaw(c.json, "a");
    ExpectError(StatusCode::kDataLoss, c.reason);
  }
}

TEST_F(SafetensorsTest, ShapeNotMatchingOffsetSpanIsDataLoss) {
  WriteRaw(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0'));
  ExpectError(StatusCode::kDataLoss, "does not match the offset span of 8 bytes");
  WriteRaw(R"({"x":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})", "");
  ExpectError(StatusCode::kDataLoss, "does not match");
}

TEST_F(SafetensorsTest, ReversedOffsetsAreDataLoss) {
  WriteRaw(R"({"x":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}})", "a");
  ExpectError(StatusCode::kDataLoss, "reversed");
}

TEST_F(SafetensorsTest, OffsetsPastTheDataAreDataLoss) {
  WriteRaw(R"({"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", "a");
  ExpectError(StatusCode::kDataLoss, "out of range");
  WriteRaw(R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,0]}})", "a");
  ExpectError(StatusCode::kDataLoss, "data_offsets");
}

TEST_F(SafetensorsTest, OverlappingTensorsAreDataLoss) {
  WriteRaw(R"({"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
           R"("y":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})",
           "abc");
  ExpectError(StatusCode::kDataLoss, "overlaps");
  WriteRaw(R"({"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
           R"("y":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})",
           "ab");
  ExpectError(StatusCode::kDataLoss, "overlaps");
}

TEST_F(SafetensorsTest, GapBetweenTensorsIsDataLoss) {
  WriteRaw(R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
           R"("y":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}})",
           "abc");
  ExpectError(StatusCode::kDataLoss, "gap before tensor \"y\" at data offset 1");
  WriteRaw(R"({"y":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", "ab");
  ExpectError(StatusCode::kDataLoss, "gap before tensor \"y\" at data offset 0");
}

TEST_F(SafetensorsTest, TrailingBytesAreDataLoss) {
  Add<float>("x", {1}, {1});
  Write();
  bytes_ += "junk";
  ExpectError(StatusCode::kDataLoss, "4 trailing bytes");
}

TEST_F(SafetensorsTest, BadMetadataIsDataLoss) {
  WriteRaw(R"({"__metadata__":{"step":100}})", "");
  ExpectError(StatusCode::kDataLoss, "metadata value for \"step\" is not a string");
  WriteRaw(R"({"__metadata__":"pt"})", "");
  ExpectError(StatusCode::kDataLoss, "__metadata__ is not an object");
}

TEST_F(SafetensorsTest, DuplicateNamesAreDataLoss) {
  WriteRaw(R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
           R"("x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
           "ab");
  ExpectError(StatusCode::kDataLoss, "duplicate key \"x\"");
  WriteRaw(R"({"x":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "a");
  ExpectError(StatusCode::kDataLoss, "duplicate key \"dtype\"");
}

TEST_F(SafetensorsTest, RandomDamageNeverCrashes) {
  Add<float>("conv1.weight", {2, 1, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  Add<int64_t>("step", {}, {71108});
  Add<uint8_t>("mask", {3}, {1, 0, 1});
  writer_.SetMetadata("format", "pt");
  Write();
  const std::string good = bytes_;
  std::mt19937 rng(7);
  int parsed = 0;
  for (int i = 0; i < 3000; ++i) {
    bytes_ = good;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 3) {
        case 0:
          bytes_[rng() % bytes_.size()] ^= static_cast<char>(1 + rng() % 255);
          break;
        case 1:
          bytes_.resize(rng() % (bytes_.size() + 1));
          break;
        default:
          bytes_.insert(rng() % (bytes_.size() + 1), 1, static_cast<char>(rng()));
          break;
      }
      if (bytes_.empty()) break;
    }
    Result<SafetensorsFile> file = Read();
    if (!file.ok()) {
      EXPECT_NE(file.status().code(), StatusCode::kOk);
      continue;
    }
    ++parsed;
    for (const std::string& name : file->names()) {
      Result<SafetensorsTensor> t = file->Find(name);
      ASSERT_TRUE(t.ok()) << "iteration " << i;
      EXPECT_EQ(static_cast<uint64_t>(t->num_elements()) * SafetensorsDtypeSize(t->dtype),
                t->data.size())
          << "iteration " << i;
    }
  }
  EXPECT_GT(parsed, 0);  // some damage (inside the data) leaves a valid file
}

}  // namespace
}  // namespace sluice::formats
