#include "sluice/formats/events.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <regex>

#include "sluice/formats/file_util.h"
#include "sluice/formats/record_format.h"
#include "sluice/formats/record_reader.h"
#include "sluice/formats/record_writer.h"

namespace sluice::formats {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Protobuf wire format by hand (https://protobuf.dev/programming-guides/encoding/), so these tests
// check our field numbers against TensorFlow's .proto files independently of the generated code.
std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
  return out;
}
std::string Key(int field, int wire_type) {
  return Varint(static_cast<uint64_t>(field) << 3 | wire_type);
}
std::string VarintField(int field, uint64_t v) { return Key(field, 0) + Varint(v); }
std::string DoubleField(int field, double v) {
  std::string raw(8, '\0');
  std::memcpy(raw.data(), &v, 8);
  return Key(field, 1) + raw;
}
std::string FloatField(int field, float v) {
  std::string raw(4, '\0');
  std::memcpy(raw.data(), &v, 4);
  return Key(field, 5) + raw;
}
std::string BytesField(int field, std::string_view v) {
  return Key(field, 2) + Varint(v.size()) + std::string(v);
}
template <typename T>
std::string Raw(T v) {
  std::string raw(sizeof(T), '\0');
  std::memcpy(raw.data(), &v, sizeof(T));
  return raw;
}

// Event{wall_time=1, step=2, summary=5{value=1{...}}}.
std::string SummaryEvent(double wall_time, int64_t step, const std::vector<std::string>& values) {
  std::string summary;
  for (const std::string& v : values) summary += BytesField(1, v);
  return DoubleField(1, wall_time) + VarintField(2, static_cast<uint64_t>(step)) +
         BytesField(5, summary);
}
// Summary.Value{tag=1, simple_value=2}.
std::string SimpleValue(std::string_view tag, float v) {
  return BytesField(1, tag) + FloatField(2, v);
}
// SummaryMetadata{plugin_data=1{plugin_name=1}, data_class=4}.
std::string Metadata(std::string_view plugin, int data_class = 1) {
  return BytesField(1, BytesField(1, plugin)) + VarintField(4, data_class);
}
// TensorProto{dtype=1, tensor_shape=2{dim=2{size=1}}, ...}.
std::string Tensor(int dtype, const std::vector<int64_t>& dims, std::string_view values) {
  std::string shape;
  for (int64_t d : dims) shape += BytesField(2, VarintField(1, static_cast<uint64_t>(d)));
  return VarintField(1, dtype) + BytesField(2, shape) + std::string(values);
}
// Summary.Value{tag=1, metadata=9, tensor=8}.
std::string TensorValue(std::string_view tag, std::string_view tensor,
                        std::string_view metadata = "") {
  std::string v = BytesField(1, tag);
  if (!metadata.empty()) v += BytesField(9, metadata);
  return v + BytesField(8, tensor);
}
constexpr int kDtFloat = 1, kDtDouble = 2, kDtInt32 = 3;

class EventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/events_test_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    options_.start_time = 1700000000.25;
    options_.hostname = "testhost";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<EventWriter> Create() {
    Result<std::unique_ptr<EventWriter>> w = EventWriter::Create(dir_, options_);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return w.ok() ? std::move(w).value() : nullptr;
  }
  // Writes `events` (serialized Event protos) as a TFRecord file at file_, returning its bytes.
  void WriteRecords(const std::vector<std::string>& events) {
    std::string bytes;
    for (const std::string& e : events) AppendFramedRecord(e, &bytes);
    ASSERT_TRUE(CreateDirectories(dir_).ok());
    file_ = dir_ + "/events.out.tfevents.1700000000.handmade";
    SetContents(bytes);
  }
  std::string Contents() const { return ReadFile(file_).value(); }
  void SetContents(const std::string& bytes) {
    ASSERT_TRUE(WriteFileAtomically(file_, bytes).ok());
  }
  void IncrementByte(size_t offset, int delta) {
    std::string bytes = Contents();
    bytes[offset] = static_cast<char>(bytes[offset] + delta);
    SetContents(bytes);
  }
  void ShrinkSize(size_t n) {
    std::string bytes = Contents();
    bytes.resize(bytes.size() - n);
    SetContents(bytes);
  }
  Result<std::vector<ScalarEvent>> Read(const ReadScalarsOptions& options = {}) {
    return ReadScalars(file_, options);
  }
  // All records of file_ as strings.
  std::vector<std::string> Records() {
    std::vector<std::string> out;
    auto reader = RecordReader::Open(file_);
    EXPECT_TRUE(reader.ok());
    std::string_view r;
    while ((*reader)->ReadRecord(&r).ok()) out.emplace_back(r);
    return out;
  }
  void ExpectDataLoss(const Result<std::vector<ScalarEvent>>& r, std::string_view reason) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
    EXPECT_THAT(r.status().message(), HasSubstr(reason));
    EXPECT_THAT(r.status().message(), HasSubstr(file_));
  }

  std::string dir_;
  std::string file_;
  EventWriterOptions options_;
};

TEST_F(EventsTest, WrittenScalarsReadBack) {
  auto w = Create();
  ASSERT_TRUE(w->WriteScalar(0, "loss", 2.5, 1700000001.5).ok());
  ASSERT_TRUE(w->WriteScalar(100, "loss", 0.75, 1700000002.0).ok());
  ASSERT_TRUE(w->WriteScalar(100, "train/accuracy", -0.125, 1700000002.0).ok());
  ASSERT_TRUE(w->WriteScalar(1LL << 40, "lr", 1e-3, 1700000003.0).ok());
  EXPECT_EQ(w->events_written(), 5u);
  ASSERT_TRUE(w->Close().ok());
  file_ = w->path();
  Result<std::vector<ScalarEvent>> r = Read();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(*r, ElementsAre(ScalarEvent{1700000001.5, 0, "loss", 2.5},
                              ScalarEvent{1700000002.0, 100, "loss", 0.75},
                              ScalarEvent{1700000002.0, 100, "train/accuracy", -0.125},
                              ScalarEvent{1700000003.0, 1LL << 40, "lr", double{1e-3f}}));
}

TEST_F(EventsTest, FirstRecordIsFileVersion) {
  auto w = Create();
  ASSERT_TRUE(w->Close().ok());
  file_ = w->path();
  std::vector<std::string> records = Records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0], DoubleField(1, 1700000000.25) + BytesField(3, "brain.Event:2"));
  Result<DecodedEvent> e = ParseEvent(records[0]);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->file_version, "brain.Event:2");
  EXPECT_EQ(e->wall_time, 1700000000.25);
  EXPECT_EQ(e->step, 0);
  EXPECT_TRUE(e->scalars.empty());
}

TEST_F(EventsTest, ScalarRecordMatchesHandEncodedEvent) {
  auto w = Create();
  ASSERT_TRUE(w->WriteScalar(42, "a/b", 1.5, 1700000005.5).ok());
  ASSERT_TRUE(w->Close().ok());
  file_ = w->path();
  std::vector<std::string> records = Records();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1], SummaryEvent(1700000005.5, 42, {SimpleValue("a/b", 1.5f)}));
}

TEST_F(EventsTest, FileNameFollowsTensorFlowPattern) {
  EXPECT_EQ(EventFileName(1700000000.9, "host"), "events.out.tfevents.1700000000.host");
  EXPECT_EQ(EventFileName(5, "h", ".v2"), "events.out.tfevents.0000000005.h.v2");
  options_ = EventWriterOptions();  // real clock and hostname
  auto w = Create();
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof(host) - 1), 0);
  std::string name = std::filesystem::path(w->path()).filename().string();
  EXPECT_TRUE(std::regex_match(
      name, std::regex(R"(events\.out\.tfevents\.\d{10}\.)" +
                       std::regex_replace(host, std::regex(R"([.\-])"), R"(\$&)"))))
      << name;
  EXPECT_EQ(std::filesystem::path(w->path()).parent_path(), std::filesystem::path(dir_));
}

TEST_F(EventsTest, SuffixIsAppended) {
  options_.filename_suffix = ".eval";
  auto w = Create();
  EXPECT_EQ(w->path(), dir_ + "/events.out.tfevents.1700000000.testhost.eval");
}

TEST_F(EventsTest, SameSecondDoesNotOverwriteAnotherFile) {
  auto first = Create();
  auto second = Create();
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->path(), first->path() + ".1");
  ASSERT_TRUE(first->WriteScalar(1, "x", 1, 1.0).ok());
  ASSERT_TRUE(second->WriteScalar(2, "y", 2, 2.0).ok());
  ASSERT_TRUE(first->Close().ok());
  ASSERT_TRUE(second->Close().ok());
  EXPECT_THAT(ReadScalars(first->path()).value(), ElementsAre(ScalarEvent{1.0, 1, "x", 1}));
  EXPECT_THAT(ReadScalars(second->path()).value(), ElementsAre(ScalarEvent{2.0, 2, "y", 2}));
}

TEST_F(EventsTest, CreatesTheRunDirectory) {
  dir_ += "/run/nested";
  auto w = Create();
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(FileExists(w->path()));
}

TEST_F(EventsTest, FlushMakesEventsVisibleWhileOpen) {
  options_.flush_bytes = size_t{1} << 20;
  auto w = Create();
  file_ = w->path();
  EXPECT_EQ(Records().size(), 1u);  // the version record is flushed by Create
  ASSERT_TRUE(w->WriteScalar(1, "loss", 3.0, 10.0).ok());
  EXPECT_TRUE(Read()->empty());  // buffered
  ASSERT_TRUE(w->Flush().ok());
  EXPECT_THAT(Read().value(), ElementsAre(ScalarEvent{10.0, 1, "loss", 3.0}));
  EXPECT_FALSE(FileExists(file_ + ".tmp"));
  ASSERT_TRUE(w->Close().ok());
}

TEST_F(EventsTest, FullBufferIsWrittenWithoutFlush) {
  options_.flush_bytes = 1;
  auto w = Create();
  file_ = w->path();
  ASSERT_TRUE(w->WriteScalar(1, "loss", 3.0, 10.0).ok());
  EXPECT_EQ(Read()->size(), 1u);
}

TEST_F(EventsTest, DestructorKeepsUnflushedEvents) {
  {
    auto w = Create();
    file_ = w->path();
    ASSERT_TRUE(w->WriteScalar(7, "loss", 1.0, 10.0).ok());
  }
  EXPECT_THAT(Read().value(), ElementsAre(ScalarEvent{10.0, 7, "loss", 1.0}));
}

TEST_F(EventsTest, ValuesAreStoredAsFloat) {
  auto w = Create();
  ASSERT_TRUE(w->WriteScalar(1, "x", 0.1, 1.0).ok());
  ASSERT_TRUE(w->Close().ok());
  file_ = w->path();
  EXPECT_EQ(Read()->at(0).value, static_cast<double>(0.1f));
}

TEST_F(EventsTest, DefaultWallTimeIsNow) {
  auto w = Create();
  double before = static_cast<double>(::time(nullptr)) - 1;
  ASSERT_TRUE(w->WriteScalar(1, "x", 1).ok());
  ASSERT_TRUE(w->Close().ok());
  file_ = w->path();
  double t = Read()->at(0).wall_time;
  EXPECT_GE(t, before);
  EXPECT_LE(t, before + 60);
}

TEST_F(EventsTest, ReadsTf2TensorScalars) {
  const std::string scalars = Metadata("scalars");
  WriteRecords({
      DoubleField(1, 1.0) + BytesField(3, "brain.Event:2"),
      // float_val with metadata, then the same tag without metadata (as TF2 writes it)
      SummaryEvent(2.0, 1,
                   {TensorValue("loss", Tensor(kDtFloat, {}, BytesField(5, Raw(0.5f))), scalars)}),
      SummaryEvent(3.0, 2, {TensorValue("loss", Tensor(kDtFloat, {}, BytesField(5, Raw(0.25f))))}),
      // double_val, tensor_content (float and double), shape [1], an empty value list (zero)
      SummaryEvent(4.0, 3,
                   {TensorValue("d", Tensor(kDtDouble, {}, BytesField(6, Raw(0.1))), scalars),
                    TensorValue("c", Tensor(kDtFloat, {}, BytesField(4, Raw(-2.0f))), scalars),
                    TensorValue("cd", Tensor(kDtDouble, {1}, BytesField(4, Raw(1e300))), scalars),
                    TensorValue("z", Tensor(kDtFloat, {}, ""), scalars)}),
      // not scalars: a vector, an int32 tensor, a histogram-plugin tag, a non-tensor value (image)
      SummaryEvent(
          5.0, 4,
          {TensorValue("vec", Tensor(kDtFloat, {2}, BytesField(5, Raw(1.0f) + Raw(2.0f))), scalars),
           TensorValue("int", Tensor(kDtInt32, {}, BytesField(7, Varint(3))), scalars),
           TensorValue("h", Tensor(kDtFloat, {}, BytesField(5, Raw(9.0f))),
                       Metadata("histograms", 2)),
           BytesField(1, "img") + BytesField(4, VarintField(1, 32))}),
      SummaryEvent(6.0, 5, {TensorValue("h", Tensor(kDtFloat, {}, BytesField(5, Raw(9.0f))))}),
      // TF1 and TF2 in one file, two values in one event
      SummaryEvent(7.0, 6, {SimpleValue("s1", 1.5f), SimpleValue("s2", -1.5f)}),
  });
  Result<std::vector<ScalarEvent>> r = Read();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(*r, ElementsAre(ScalarEvent{2.0, 1, "loss", 0.5}, ScalarEvent{3.0, 2, "loss", 0.25},
                              ScalarEvent{4.0, 3, "d", 0.1}, ScalarEvent{4.0, 3, "c", -2.0},
                              ScalarEvent{4.0, 3, "cd", 1e300}, ScalarEvent{4.0, 3, "z", 0.0},
                              ScalarEvent{7.0, 6, "s1", 1.5}, ScalarEvent{7.0, 6, "s2", -1.5}));
}

TEST_F(EventsTest, ParseEventReportsPluginAndForm) {
  Result<DecodedEvent> e = ParseEvent(SummaryEvent(
      1.0, 9,
      {TensorValue("t", Tensor(kDtFloat, {}, BytesField(5, Raw(4.0f))), Metadata("scalars")),
       SimpleValue("s", 2.0f)}));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->step, 9);
  EXPECT_FALSE(e->file_version.has_value());
  ASSERT_EQ(e->scalars.size(), 2u);
  EXPECT_TRUE(e->scalars[0].from_tensor);
  EXPECT_EQ(e->scalars[0].plugin_name, "scalars");
  EXPECT_FALSE(e->scalars[1].from_tensor);
  EXPECT_EQ(e->scalars[1].value, 2.0);
}

TEST_F(EventsTest, NonUtf8TagInForeignFileStillParses) {
  WriteRecords({SummaryEvent(1.0, 1, {SimpleValue("bad\xff", 1.0f)})});
  Result<std::vector<ScalarEvent>> r = Read();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at(0).tag, "bad\xff");
}

TEST_F(EventsTest, ListEventFilesFindsOnlyEventFilesSorted) {
  ASSERT_TRUE(CreateDirectories(dir_ + "/sub.tfevents.dir").ok());
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/notes.txt", "x").ok());
  options_.start_time = 1700000100;
  auto later = Create();
  options_.start_time = 1600000000;
  auto earlier = Create();
  Result<std::vector<std::string>> files = ListEventFiles(dir_);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_THAT(*files, ElementsAre(earlier->path(), later->path()));
}

// ---- errors ---------------------------------------------------------------------------------

TEST_F(EventsTest, ListEventFilesOfMissingDirectoryIsNotFound) {
  Result<std::vector<std::string>> files = ListEventFiles(dir_ + "/missing");
  EXPECT_EQ(files.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(files.status().message(), HasSubstr("missing"));
}

TEST_F(EventsTest, BadTagsAreInvalidArgument) {
  auto w = Create();
  Status s = w->WriteScalar(1, "", 1.0);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("empty"));
  s = w->WriteScalar(1, "bad\xc3", 1.0);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("not UTF-8"));
  EXPECT_EQ(w->WriteScalar(1, "\xed\xa0\x80", 1.0).code(),
            StatusCode::kInvalidArgument);  // surrogate
  EXPECT_TRUE(w->WriteScalar(1, "r\xc3\xa9sum\xc3\xa9/\xf0\x9f\x93\x88", 1.0).ok());
  EXPECT_EQ(w->events_written(), 2u);
}

TEST_F(EventsTest, UseAfterCloseIsInvalidArgument) {
  auto w = Create();
  ASSERT_TRUE(w->Close().ok());
  EXPECT_EQ(w->WriteScalar(1, "x", 1.0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w->Flush().code(), StatusCode::kInvalidArgument);
  Status s = w->Close();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("closed twice"));
}

TEST_F(EventsTest, CreateUnderAFileIsIoError) {
  ASSERT_TRUE(CreateDirectories(dir_).ok());
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/file", "x").ok());
  Result<std::unique_ptr<EventWriter>> w = EventWriter::Create(dir_ + "/file/run", options_);
  EXPECT_EQ(w.status().code(), StatusCode::kIoError) << w.status().ToString();
}

TEST_F(EventsTest, MissingFileIsNotFound) {
  file_ = dir_ + "/events.out.tfevents.0.none";
  EXPECT_EQ(Read().status().code(), StatusCode::kNotFound);
}

TEST_F(EventsTest, CorruptedRecordIsDataLossWithOffset) {
  const std::string version = DoubleField(1, 1.0) + BytesField(3, "brain.Event:2");
  WriteRecords({version, SummaryEvent(2.0, 1, {SimpleValue("x", 1.0f)})});
  const uint64_t second = FramedSize(version.size());
  IncrementByte(second + kRecordHeaderSize + 3, 1);
  ExpectDataLoss(Read(), "corrupted record at " + std::to_string(second));
  ExpectDataLoss(Read({.allow_truncated_tail = true}),
                 "corrupted record at " + std::to_string(second));
}

TEST_F(EventsTest, TruncatedRecordIsDataLossUnlessTolerated) {
  const std::string version = DoubleField(1, 1.0) + BytesField(3, "brain.Event:2");
  WriteRecords({version, SummaryEvent(2.0, 1, {SimpleValue("x", 1.0f)}),
                SummaryEvent(3.0, 2, {SimpleValue("x", 2.0f)})});
  ShrinkSize(3);
  const uint64_t third = FramedSize(version.size()) +
                         FramedSize(SummaryEvent(2.0, 1, {SimpleValue("x", 1.0f)}).size());
  ExpectDataLoss(Read(), "truncated record at " + std::to_string(third));
  Result<std::vector<ScalarEvent>> r = Read({.allow_truncated_tail = true});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(*r, ElementsAre(ScalarEvent{2.0, 1, "x", 1.0}));
}

TEST_F(EventsTest, RecordThatIsNotAnEventIsDataLossWithOffset) {
  const std::string version = DoubleField(1, 1.0) + BytesField(3, "brain.Event:2");
  WriteRecords({version, "\xff\xff\xff"});
  ExpectDataLoss(Read(), "unparseable event at " + std::to_string(FramedSize(version.size())));
  EXPECT_EQ(ParseEvent("\x0a\x05x").status().code(), StatusCode::kDataLoss);  // field past the end
}

TEST_F(EventsTest, ParseEventOfDamagedBytesNeverCrashes) {
  const std::string good = SummaryEvent(
      1.0, 3,
      {TensorValue("t", Tensor(kDtDouble, {1}, BytesField(4, Raw(2.0))), Metadata("scalars")),
       SimpleValue("s", 1.0f)});
  std::mt19937 rng(11);
  int parsed = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string bytes = good;
    for (int e = 0; e < 1 + static_cast<int>(rng() % 3); ++e) {
      if (rng() % 4 == 0) {
        bytes.resize(rng() % (bytes.size() + 1));
      } else if (!bytes.empty()) {
        bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
      }
    }
    Result<DecodedEvent> e = ParseEvent(bytes);
    if (e.ok()) {
      ++parsed;
      EXPECT_LE(e->scalars.size(), 2u) << "iteration " << i;
    } else {
      EXPECT_EQ(e.status().code(), StatusCode::kDataLoss) << "iteration " << i;
    }
  }
  EXPECT_GT(parsed, 0);
}

}  // namespace
}  // namespace sluice::formats
