#include "sluice/ingest/cifar.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ingest_test_util.h"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "sluice/formats/file_util.h"

namespace sluice::ingest {
namespace {

using testing_util::ExpectError;

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::string_view_literals;

const fs::path kCifarDir =
    fs::path(SLUICE_FIXTURES_DIR) / "tfds" / "cifar10" / "cifar-10-batches-bin";


// n records with labels[i] and pixel byte p of record i = (i * 7 + p) & 0xff.
std::string MakeBinary(const std::vector<uint8_t>& labels) {
  std::string out;
  for (size_t i = 0; i < labels.size(); ++i) {
    out.push_back(static_cast<char>(labels[i]));
    for (size_t p = 0; p < kCifarImageBytes; ++p)
      out.push_back(static_cast<char>((i * 7 + p) & 0xff));
  }
  return out;
}

// ---- Binary batches
// -----------------------------------------------------------------------------------

TEST(CifarBinaryTest, ParsesRecords) {
  auto r = ParseCifarBinary(MakeBinary({3, 0, 9}), "b.bin");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].label, 3);
  EXPECT_EQ((*r)[1].label, 0);
  EXPECT_EQ((*r)[2].label, 9);
  for (size_t i = 0; i < 3; ++i) {
    for (size_t p : {size_t{0}, size_t{1}, size_t{1024}, size_t{3071}}) {
      EXPECT_EQ((*r)[i].pixels_chw[p], (i * 7 + p) & 0xff) << "record " << i << " byte " << p;
    }
  }
}

TEST(CifarBinaryTest, SizeNotAMultipleOf3073IsDataLossWithTheSize) {
  std::string bytes = MakeBinary({1, 2});
  ExpectError(ParseCifarBinary(bytes.substr(0, 6145), "data_batch_1.bin"), StatusCode::kDataLoss,
              {"data_batch_1.bin", "size 6145", "3073", "1 whole records + 3072 bytes"});
  ExpectError(ParseCifarBinary(bytes + "x", "data_batch_1.bin"), StatusCode::kDataLoss,
              {"data_batch_1.bin", "size 6147"});
  ExpectError(ParseCifarBinary(bytes.substr(0, 100), "t.bin"), StatusCode::kDataLoss,
              {"t.bin", "size 100"});
}

TEST(CifarBinaryTest, EmptyFileIsDataLoss) {
  ExpectError(ParseCifarBinary("", "empty.bin"), StatusCode::kDataLoss, {"empty.bin", "empty"});
}

TEST(CifarBinaryTest, LabelOutOfRangeNamesRecordAndOffset) {
  ExpectError(ParseCifarBinary(MakeBinary({1, 2, 10, 3}), "b.bin"), StatusCode::kDataLoss,
              {"b.bin", "record 2 at byte 6146", "label 10"});
  ExpectError(ParseCifarBinary(MakeBinary({255}), "b.bin"), StatusCode::kDataLoss,
              {"record 0 at byte 0", "label 255"});
}

TEST(CifarMetaTest, ParsesNamesIgnoringBlankLines) {
  auto r =
      ParseCifarMeta("airplane\nautomobile\n\nbird\ncat\r\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n",
                     "batches.meta.txt");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(*r, ElementsAre("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                              "horse", "ship", "truck"));
}

TEST(CifarMetaTest, WrongCountIsDataLoss) {
  ExpectError(ParseCifarMeta("a\nb\nc\nd\ne\nf\ng\nh\ni\n", "m.txt"), StatusCode::kDataLoss,
              {"m.txt", "has 9 class names, want 10"});
  ExpectError(ParseCifarMeta("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk", "m.txt"), StatusCode::kDataLoss,
              {"has 11 class names"});
  ExpectError(ParseCifarMeta("", "m.txt"), StatusCode::kDataLoss, {"has 0 class names"});
}

TEST(CifarLayoutTest, PlanarToInterleaved) {
  CifarRecord record;
  for (size_t p = 0; p < kCifarImageBytes; ++p)
    record.pixels_chw[p] = static_cast<uint8_t>(p * 31 + 5);
  std::array<uint8_t, kCifarImageBytes> hwc = CifarToHwc(record);
  for (int y = 0; y < kCifarHeight; ++y) {
    for (int x = 0; x < kCifarWidth; ++x) {
      for (int c = 0; c < kCifarChannels; ++c) {
        ASSERT_EQ(hwc[(y * kCifarWidth + x) * kCifarChannels + c],
                  record.pixels_chw[c * kCifarHeight * kCifarWidth + y * kCifarWidth + x])
            << "y=" << y << " x=" << x << " c=" << c;
      }
    }
  }
  // A non-square, 2-channel case of the general helper.
  const uint8_t planar[12] = {1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16};  // (2, 2, 3)
  uint8_t interleaved[12];
  PlanarToInterleaved(planar, 2, 3, 2, interleaved);
  EXPECT_THAT(interleaved, ElementsAre(1, 11, 2, 12, 3, 13, 4, 14, 5, 15, 6, 16));
}

// ---- The TFDS fixture binaries
// ---------------------------------------------------------------------------

class CifarFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kCifarDir)) GTEST_SKIP() << "no fixtures at " << kCifarDir;
  }
  static std::string Read(const char* file) {
    auto r = formats::ReadFile((kCifarDir / file).string());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::string();
  }
};

TEST_F(CifarFixtureTest, EveryBatchHasTwoRecordsWithTheLabelsOnDisk) {
  // Labels read with `od -An -tu1 -j0 -N1` and `-j3073 -N1` on each file (6146 bytes = 2 records).
  struct Expected {
    const char* file;
    uint8_t label0, label1;
  };
  for (const Expected& e : {Expected{"data_batch_1.bin", 8, 7}, Expected{"data_batch_2.bin", 3, 9},
                            Expected{"data_batch_3.bin", 9, 6}, Expected{"data_batch_4.bin", 6, 8},
                            Expected{"data_batch_5.bin", 4, 2}, Expected{"test_batch.bin", 2, 0}}) {
    std::string bytes = Read(e.file);
    ASSERT_EQ(bytes.size(), 6146u) << e.file;
    auto r = ParseCifarBinary(bytes, e.file);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->size(), bytes.size() / kCifarRecordBytes) << e.file;
    EXPECT_EQ((*r)[0].label, e.label0) << e.file;
    EXPECT_EQ((*r)[1].label, e.label1) << e.file;
  }
}

TEST_F(CifarFixtureTest, PixelsOfDataBatch1) {
  auto r = ParseCifarBinary(Read("data_batch_1.bin"), "data_batch_1.bin");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const CifarRecord& first = (*r)[0];
  EXPECT_EQ(first.pixels_chw[0], 54);      // R(0,0), file byte 1
  EXPECT_EQ(first.pixels_chw[1], 162);     // R(0,1)
  EXPECT_EQ(first.pixels_chw[1024], 136);  // G(0,0), file byte 1025
  EXPECT_EQ(first.pixels_chw[2048], 9);    // B(0,0), file byte 2049
  EXPECT_EQ(first.pixels_chw[3071], 54);   // B(31,31), file byte 3072
  EXPECT_THAT(std::vector<uint8_t>((*r)[1].pixels_chw.begin(), (*r)[1].pixels_chw.begin() + 4),
              ElementsAre(70, 185, 85, 130));  // file bytes 3074..3077
  EXPECT_EQ((*r)[1].pixels_chw[3071], 193);    // file byte 6145
  std::array<uint8_t, kCifarImageBytes> hwc = CifarToHwc(first);
  EXPECT_THAT(std::vector<uint8_t>(hwc.begin(), hwc.begin() + 4), ElementsAre(54, 136, 9, 162));
}

TEST_F(CifarFixtureTest, MetaNamesTheTenClasses) {
  auto r = ParseCifarMeta(Read("batches.meta.txt"), "batches.meta.txt");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(*r, ElementsAre("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                              "horse", "ship", "truck"));
}

TEST_F(CifarFixtureTest, TruncatedFixtureIsDataLoss) {
  std::string bytes = Read("test_batch.bin");
  ExpectError(ParseCifarBinary(bytes.substr(0, bytes.size() - 1), "test_batch.bin"),
              StatusCode::kDataLoss, {"test_batch.bin", "size 6145"});
}

// ---- Python pickles
// --------------------------------------------------------------------------------------

// Builds pickles opcode by opcode, the way Python 2's cPickle writes CIFAR's files (protocol 2,
// SHORT_BINSTRING / BINSTRING for str, memo puts after each container).
class PickleBuilder {
 public:
  PickleBuilder& Raw(std::string_view bytes) {
    out_.append(bytes);
    return *this;
  }
  PickleBuilder& Op(char op) {
    out_.push_back(op);
    return *this;
  }
  PickleBuilder& Put() {
    out_.push_back('q');
    out_.push_back(static_cast<char>(memo_++));
    return *this;
  }
  PickleBuilder& Int(int v) {  // BININT1 / BININT2 / BININT
    if (v >= 0 && v < 256) {
      out_.push_back('K');
      out_.push_back(static_cast<char>(v));
    } else if (v >= 0 && v < 65536) {
      out_.push_back('M');
      Le(static_cast<uint32_t>(v), 2);
    } else {
      out_.push_back('J');
      Le(static_cast<uint32_t>(v), 4);
    }
    return *this;
  }
  PickleBuilder& Str(std::string_view s) {  // SHORT_BINSTRING / BINSTRING
    if (s.size() < 256) {
      out_.push_back('U');
      out_.push_back(static_cast<char>(s.size()));
    } else {
      out_.push_back('T');
      Le(static_cast<uint32_t>(s.size()), 4);
    }
    out_.append(s);
    return *this;
  }
  PickleBuilder& Global(std::string_view module, std::string_view name) {
    out_ += 'c';
    out_.append(module);
    out_ += '\n';
    out_.append(name);
    out_ += '\n';
    return *this;
  }
  // numpy.ndarray of `shape` (rows, cols), dtype code `dtype`, the given raw bytes.
  PickleBuilder& Array(int rows, int cols, std::string_view data, std::string_view dtype = "u1",
                       bool fortran = false) {
    Global("numpy.core.multiarray", "_reconstruct").Put().Global("numpy", "ndarray").Put();
    Int(0).Op('\x85').Str("b").Op('\x87').Op('R').Put();
    Op('(').Int(1).Int(rows).Int(cols).Op('\x86');
    Global("numpy", "dtype").Put().Str(dtype).Int(0).Int(1).Op('\x87').Op('R').Put();
    Op('(').Int(3).Str("|").Op('N').Op('N').Op('N').Int(-1).Int(-1).Int(0).Op('t').Op('b');
    Op(fortran ? '\x88' : '\x89').Str(data).Op('t').Op('b');
    return *this;
  }
  std::string Done() { return out_ + "."; }

 private:
  void Le(uint32_t v, int n) {
    for (int k = 0; k < n; ++k) out_.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
  }
  std::string out_ = "\x80\x02";
  int memo_ = 1;
};

struct BatchSpec {
  std::vector<int> labels = {3, 9};
  int rows = 2;
  int data_rows = 2;  // rows the raw bytes actually hold
  int cols = 3072;
  std::string dtype = "u1";
  bool fortran = false;
  bool with_data = true;
  std::vector<std::string> filenames = {"a_s_000001.png", "b_s_000002.png"};
};

std::string PixelBytes(int rows) {
  std::string data(static_cast<size_t>(rows) * kCifarImageBytes, '\0');
  for (size_t p = 0; p < data.size(); ++p) data[p] = static_cast<char>((p * 13 + p / 3072) & 0xff);
  return data;
}

std::string MakeBatchPickle(const BatchSpec& spec = {}) {
  PickleBuilder b;
  b.Op('}').Put().Op('(');
  if (spec.with_data) {
    b.Str("data").Put().Array(spec.rows, spec.cols,
                              PixelBytes(spec.data_rows).substr(0, spec.data_rows * spec.cols),
                              spec.dtype, spec.fortran);
  }
  b.Str("labels").Put().Op(']').Put().Op('(');
  for (int label : spec.labels) b.Int(label);
  b.Op('e');
  b.Str("batch_label").Put().Str("training batch 1 of 5");
  b.Str("filenames").Put().Op(']').Put().Op('(');
  for (const std::string& f : spec.filenames) b.Str(f);
  b.Op('e').Op('u');
  return b.Done();
}

TEST(CifarPickleTest, ParsesAPython2StyleBatch) {
  auto r = ParseCifarPythonBatch(MakeBatchPickle(), "data_batch_1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->batch_label, "training batch 1 of 5");
  EXPECT_THAT(r->filenames, ElementsAre("a_s_000001.png", "b_s_000002.png"));
  ASSERT_EQ(r->records.size(), 2u);
  EXPECT_EQ(r->records[0].label, 3);
  EXPECT_EQ(r->records[1].label, 9);
  std::string pixels = PixelBytes(2);
  EXPECT_EQ(std::string(r->records[0].pixels_chw.begin(), r->records[0].pixels_chw.end()),
            pixels.substr(0, 3072));
  EXPECT_EQ(std::string(r->records[1].pixels_chw.begin(), r->records[1].pixels_chw.end()),
            pixels.substr(3072));
}

TEST(CifarPickleTest, ParsesMeta) {
  PickleBuilder b;
  b.Op('}')
      .Put()
      .Op('(')
      .Str("num_cases_per_batch")
      .Int(10000)
      .Str("label_names")
      .Put()
      .Op(']')
      .Put()
      .Op('(');
  for (const char* n :
       {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}) {
    b.Str(n);
  }
  b.Op('e').Str("num_vis").Int(3072).Op('u');
  auto r = ParseCifarPythonMeta(b.Done(), "batches.meta");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size(), 10u);
  EXPECT_EQ(r->front(), "airplane");
  EXPECT_EQ(r->back(), "truck");

  PickleBuilder short_meta;
  short_meta.Op('}').Op('(').Str("label_names").Op(']').Op('(').Str("a").Str("b").Op('e').Op('u');
  ExpectError(ParseCifarPythonMeta(short_meta.Done(), "batches.meta"), StatusCode::kDataLoss,
              {"batches.meta", "label_names", "has 2 names, want 10"});
}

TEST(CifarPickleTest, IllShapedFieldsNameTheKey) {
  BatchSpec spec;
  spec.labels = {3};
  ExpectError(ParseCifarPythonBatch(MakeBatchPickle(spec), "d1"), StatusCode::kDataLoss,
              {"d1", "b\"labels\"", "has 1 entries for 2 images"});
  spec = {};
  spec.labels = {3, 10};
  ExpectError(ParseCifarPythonBatch(MakeBatchPickle(spec), "d1"), StatusCode::kDataLoss,
              {"b\"labels\"", "entry 1 is not an int in 0..9"});
  spec = {};
  spec.filenames = {"a.png"};
  ExpectError(ParseCifarPythonBatch(MakeBatchPickle(spec), "d1"), StatusCode::kDataLoss,
              {"b\"filenames\"", "has 1 entries for 2 images"});
  spec = {};
  spec.with_data = false;
  ExpectError(ParseCifarPythonBatch(MakeBatchPickle(spec), "d1"), StatusCode::kDataLoss,
              {"b\"data\"", "missing"});
  spec = {};
  spec.data_rows = 1;
  ExpectError(ParseCifarPythonBatch(MakeBatchPickle(spec), "d1"), StatusCode::kDataLoss,
              {"b\"data\"", "has 3072 bytes, shape needs 6144"});
  spec = {};
  spec.cols = 1024;
  ExpectError(ParseCifarPythonBatch(MakeBatchPickle(spec), "d1"), StatusCode::kDataLoss,
              {"b\"data\"", "shape is not (N, 3072)"});
  spec = {};
  spec.dtype = "f4";
  ExpectError(ParseCifarPythonBatch(MakeBatchPickle(spec), "d1"), StatusCode::kUnsupported,
              {"d1", "dtype f4"});
  spec = {};
  spec.fortran = true;
  ExpectError(ParseCifarPythonBatch(MakeBatchPickle(spec), "d1"), StatusCode::kUnsupported,
              {"d1", "Fortran"});
}

TEST(CifarPickleTest, MalformedPicklesAreErrorsWithOffsets) {
  ExpectError(ParseCifarPythonBatch(""sv, "d1"), StatusCode::kDataLoss, {"d1", "no STOP"});
  ExpectError(ParseCifarPythonBatch("\x80\x02]q\x01."sv, "d1"), StatusCode::kDataLoss,
              {"d1", "does not hold a dict"});
  ExpectError(ParseCifarPythonBatch("\x80\x02}h\x05."sv, "d1"), StatusCode::kDataLoss,
              {"d1", "pickle byte 3", "memo key 5 not defined"});
  ExpectError(ParseCifarPythonBatch("\x80\x02s."sv, "d1"), StatusCode::kDataLoss,
              {"pickle byte 2", "stack underflow"});
  ExpectError(ParseCifarPythonBatch("\x80\x02}}."sv, "d1"), StatusCode::kDataLoss,
              {"STOP with a malformed stack"});
  ExpectError(ParseCifarPythonBatch("\x80\x02T\x10\x00\x00\x00"
                                    "abc"sv,
                                    "d1"),
              StatusCode::kDataLoss, {"d1", "truncated"});
  // Protocol 0 text opcodes are not something CIFAR's files contain.
  ExpectError(ParseCifarPythonBatch("(dp0\nS'data'\n"sv, "d1"), StatusCode::kUnsupported,
              {"d1", "pickle byte 1", "opcode 0x64"});
}

TEST(CifarPickleTest, EveryTruncationIsAnErrorNeverACrash) {
  std::string full = MakeBatchPickle();
  for (size_t n = 0; n < full.size(); ++n) {
    auto r = ParseCifarPythonBatch(std::string_view(full).substr(0, n), "d1");
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes";
    ASSERT_EQ(r.status().code(), StatusCode::kDataLoss) << n << ": " << r.status().ToString();
  }
}

TEST(CifarPickleTest, RandomDamageNeverCrashes) {
  std::string full = MakeBatchPickle();
  std::mt19937 rng(20240611);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string damaged = full;
    // Damage the opcode-dense parts (everything but the pixel bytes) more often than not.
    for (int k = 0; k < 3; ++k) {
      size_t at = rng() % 2 ? rng() % 400 : rng() % damaged.size();
      damaged[at] = static_cast<char>(rng());
    }
    auto r = ParseCifarPythonBatch(damaged, "d1");
    if (!r.ok()) {
      EXPECT_THAT(r.status().message(), HasSubstr("d1")) << "trial " << trial;
    }
  }
}

// Cross-check with an independent writer: CPython's pickle with numpy, at protocols 2 (the CIFAR
// layout, where Python 3 writes bytes as _codecs.encode(str, "latin1")), 3 and 4. The script also
// writes the same records in the binary layout, which ParseCifarBinary reads as the expectation.
class CifarPythonInteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    python_ = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
    if (std::system((python_ + " -c 'import numpy' >/dev/null 2>&1").c_str()) != 0) {
      GTEST_SKIP() << "no python3 with numpy";
    }
    dir_ = fs::path(::testing::TempDir()) / "cifar_pickle_interop";
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string python_;
  fs::path dir_;
};

constexpr char kGenerator[] = R"PY(
import pickle, sys
import numpy as np
out = sys.argv[1]
rng = np.random.default_rng(7)
n = 25
data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
labels = [int(x) for x in rng.integers(0, 10, size=n)]
filenames = [("img_%03d.png" % i).encode() for i in range(n)]
batch = {b"batch_label": b"training batch 1 of 5", b"labels": labels, b"data": data,
         b"filenames": filenames}
meta = {b"num_cases_per_batch": 10000, b"label_names": [b"airplane", b"automobile", b"bird",
        b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"], b"num_vis": 3072}
for proto in (2, 3, 4):
    with open("%s/data_batch_p%d" % (out, proto), "wb") as f:
        pickle.dump(batch, f, protocol=proto)
    with open("%s/batches_p%d.meta" % (out, proto), "wb") as f:
        pickle.dump(meta, f, protocol=proto)
with open(out + "/data_batch.bin", "wb") as f:
    for i in range(n):
        f.write(bytes([labels[i]]) + data[i].tobytes())
)PY";

TEST_F(CifarPythonInteropTest, MatchesWhatNumpyPickled) {
  std::string script = (dir_ / "gen.py").string();
  ASSERT_TRUE(formats::WriteFileAtomically(script, kGenerator).ok());
  ASSERT_EQ(std::system((python_ + " " + script + " " + dir_.string()).c_str()), 0);
  auto expected = ParseCifarBinary(formats::ReadFile((dir_ / "data_batch.bin").string()).value(),
                                   "data_batch.bin");
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  ASSERT_EQ(expected->size(), 25u);
  for (int proto : {2, 3, 4}) {
    SCOPED_TRACE("protocol " + std::to_string(proto));
    std::string name = "data_batch_p" + std::to_string(proto);
    auto r = ParseCifarPythonBatch(formats::ReadFile((dir_ / name).string()).value(), name);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->batch_label, "training batch 1 of 5");
    ASSERT_EQ(r->records.size(), 25u);
    ASSERT_EQ(r->filenames.size(), 25u);
    EXPECT_EQ(r->filenames[24], "img_024.png");
    for (size_t i = 0; i < 25; ++i) {
      EXPECT_EQ(r->records[i].label, (*expected)[i].label) << i;
      EXPECT_TRUE(r->records[i].pixels_chw == (*expected)[i].pixels_chw) << i;
    }
    std::string meta_name = "batches_p" + std::to_string(proto) + ".meta";
    auto meta =
        ParseCifarPythonMeta(formats::ReadFile((dir_ / meta_name).string()).value(), meta_name);
    ASSERT_TRUE(meta.ok()) << meta.status().ToString();
    EXPECT_EQ(meta->at(1), "automobile");
  }
}

}  // namespace
}  // namespace sluice::ingest
