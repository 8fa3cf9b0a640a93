// End-to-end tests of the `sluice` commands through RunCli, on TensorFlow-written fixtures and on
// files we corrupt byte by byte.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../ingest/ingest_test_util.h"  // WriteTar (libarchive)
#include "sluice/cli/cli.h"
#include "sluice/formats/example.h"
#include "sluice/formats/file_util.h"
#include "sluice/formats/index.h"
#include "sluice/formats/record_format.h"
#include "sluice/formats/record_writer.h"

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;

int Sluice(std::vector<std::string> args) {
  args.insert(args.begin(), "sluice");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return RunCli(static_cast<int>(args.size()), argv.data());
}

const std::string kDmlab = std::string(SLUICE_FIXTURES_DIR) + "/tfds/dmlab/";

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sluice_cli_test_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) { return (dir_ / name).string(); }
  static bool HaveFixtures() { return fs::exists(kDmlab); }
  fs::path dir_;
};

TEST_F(CliTest, UsageErrorsExitTwo) {
  testing::internal::CaptureStderr();
  testing::internal::CaptureStdout();
  EXPECT_EQ(Sluice({}), kExitUsage);
  EXPECT_EQ(Sluice({"no-such-command"}), kExitUsage);
  EXPECT_EQ(Sluice({"verify"}), kExitUsage);  // files required
  EXPECT_EQ(Sluice({"inspect", "--limit", "x", "f"}), kExitUsage);
  EXPECT_EQ(Sluice({"inspect", "--compression", "lz4", "f"}), kExitUsage);
  EXPECT_EQ(Sluice({"--help"}), kExitOk);
  EXPECT_EQ(Sluice({"verify", "--help"}), kExitOk);
  std::string out = testing::internal::GetCapturedStdout();
  testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("EXIT STATUS"), std::string::npos);
  EXPECT_NE(out.find("--decode"), std::string::npos);
}

TEST_F(CliTest, VerifyDmlabFixturesDecodesTwoGoodRecordsEach) {
  if (!HaveFixtures()) GTEST_SKIP() << "no fixtures at " << kDmlab;
  for (const char* split : {"train", "validation", "test"}) {
    std::string file = kDmlab + "dmlab-" + split + ".tfrecord-00000-of-00001";
    testing::internal::CaptureStdout();
    testing::internal::CaptureStderr();
    EXPECT_EQ(Sluice({"verify", "--decode", file}), kExitOk) << split;
    std::string out = testing::internal::GetCapturedStdout();
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(out.find("2 records\t2 good\t0 problems\t2 images decoded"), std::string::npos)
        << out << err;
  }
}

// A single corrupted byte of a TensorFlow-written file makes verify exit 1 and name the offset of the
// record holding it. Every header and footer byte of both records, and a stride through the payloads;
// tests/formats/dmlab_test.cc covers every byte through the library, in memory.
TEST_F(CliTest, CorruptedBytesOfAFixtureFailVerifyWithTheirRecordOffset) {
  if (!HaveFixtures()) GTEST_SKIP() << "no fixtures at " << kDmlab;
  const std::string good = *formats::ReadFile(kDmlab + "dmlab-test.tfrecord-00000-of-00001");
  auto index = formats::BuildIndex(kDmlab + "dmlab-test.tfrecord-00000-of-00001");
  ASSERT_TRUE(index.ok());
  ASSERT_EQ(index->size(), 2u);
  std::vector<size_t> positions;
  for (const auto& e : *index) {
    for (size_t k = 0; k < 16; ++k) positions.push_back(e.offset + k);                  // header
    for (size_t k = 1; k <= 4; ++k) positions.push_back(e.offset + e.framed_size - k);  // footer
  }
  for (size_t i = 16; i < good.size(); i += 211) positions.push_back(i);
  const std::string path = Path("corrupt.tfrecord");
  for (size_t i : positions) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    { std::ofstream(path, std::ios::binary | std::ios::trunc) << bad; }
    testing::internal::CaptureStdout();
    testing::internal::CaptureStderr();
    int rc = Sluice({"verify", path});
    std::string out = testing::internal::GetCapturedStdout();
    std::string err = testing::internal::GetCapturedStderr();
    const bool in_first = i < (*index)[1].offset;
    const uint64_t record = in_first ? 0 : (*index)[1].offset;
    ASSERT_EQ(rc, kExitFailure) << "byte " << i;
    ASSERT_NE(err.find("record at " + std::to_string(record)), std::string::npos)
        << "byte " << i << ": " << err;
    // The records before the broken one are good (TensorFlow yields them before its DataLossError);
    // a framing error is a problem but no record.
    ASSERT_NE(out.find(std::string(in_first ? "\t0 good" : "\t1 good") + "\t1 problems"), std::string::npos)
        << "byte " << i << ": " << out;
  }
}

TEST_F(CliTest, VerifyReportsUnparseableExampleAndUndecodableImage) {
  const std::string path = Path("mixed.tfrecord");
  auto w = *formats::RecordWriter::Create(path);
  formats::Example good_shape;
  good_shape.SetBytes("image/encoded", "\xff\xd8\xff not really a jpeg").SetInt64("label", 1);
  ASSERT_TRUE(w->Write("\x0a\x10garbage").ok());          // record 0: not an Example
  ASSERT_TRUE(w->Write(good_shape.Serialize()).ok());    // record 1: undecodable image
  ASSERT_TRUE(w->Close().ok());
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  EXPECT_EQ(Sluice({"verify", path}), kExitFailure);  // record 0 fails even without --decode
  EXPECT_EQ(Sluice({"verify", "--decode", path}), kExitFailure);
  testing::internal::GetCapturedStdout();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("offset 0: record 0: not a valid tf.Example"), std::string::npos) << err;
  EXPECT_NE(err.find("offset " + std::to_string(formats::FramedSize(9)) + ": record 1: feature 'image/encoded'"),
            std::string::npos)
      << err;
}

TEST_F(CliTest, MissingFileFailsAndOthersStillRun) {
  if (!HaveFixtures()) GTEST_SKIP();
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  int rc = Sluice({"verify", Path("absent"), kDmlab + "dmlab-test.tfrecord-00000-of-00001"});
  std::string out = testing::internal::GetCapturedStdout();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, kExitFailure);
  EXPECT_NE(err.find("absent"), std::string::npos);
  EXPECT_NE(out.find("2 good"), std::string::npos);
}

TEST_F(CliTest, IndexWritesDaliIndexBesideOrIntoOutDir) {
  if (!HaveFixtures()) GTEST_SKIP();
  fs::copy_file(kDmlab + "dmlab-train.tfrecord-00000-of-00001", Path("train"));
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  EXPECT_EQ(Sluice({"index", Path("train")}), kExitOk);
  EXPECT_EQ(Sluice({"index", "--out", Path("idx"), Path("train")}), kExitOk);
  testing::internal::GetCapturedStdout();
  testing::internal::GetCapturedStderr();
  auto beside = formats::ReadIndexFile(Path("train.idx"));
  ASSERT_TRUE(beside.ok()) << beside.status().ToString();
  ASSERT_EQ(beside->size(), 2u);
  EXPECT_EQ((*beside)[0].offset, 0u);
  EXPECT_EQ((*beside)[0].offset + (*beside)[0].framed_size, (*beside)[1].offset);
  EXPECT_EQ((*beside)[1].offset + (*beside)[1].framed_size, fs::file_size(Path("train")));
  EXPECT_EQ(*formats::ReadFile(Path("idx/train.idx")), *formats::ReadFile(Path("train.idx")));
}

TEST_F(CliTest, CompressedFilesByExtensionAndFlag) {
  formats::RecordWriterOptions opt;
  opt.compression = formats::Compression::kGzip;
  auto w = *formats::RecordWriter::Create(Path("a.gz"), opt);
  formats::Example ex;
  ex.SetInt64("label", 7);
  ASSERT_TRUE(w->Write(ex.Serialize()).ok());
  ASSERT_TRUE(w->Close().ok());
  fs::copy_file(Path("a.gz"), Path("a_gzip_noext"));
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  EXPECT_EQ(Sluice({"inspect", Path("a.gz")}), kExitOk);
  EXPECT_EQ(Sluice({"verify", Path("a_gzip_noext")}), kExitFailure);  // read as plain: garbage
  EXPECT_EQ(Sluice({"verify", "--compression", "gzip", Path("a_gzip_noext")}), kExitOk);
  std::string out = testing::internal::GetCapturedStdout();
  testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("label=int64[1]{7}"), std::string::npos) << out;
}

}  // namespace
}  // namespace sluice::cli

namespace sluice::cli {
namespace {

const std::string kTrainTar =
    std::string(SLUICE_FIXTURES_DIR) + "/tfds/imagenet2012/ILSVRC2012_img_train.tar";

class IngestCliTest : public CliTest {
 protected:
  void TearDown() override {
    for (const char* v : {"JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN",
                          "SLURM_ARRAY_TASK_COUNT"}) {
      ::unsetenv(v);
    }
    CliTest::TearDown();
  }
  int Ingest(std::vector<std::string> extra) {
    std::vector<std::string> args = {"ingest", "imagenet", "--train-archive", kTrainTar,
                                     "--train-shards", "4", "--out", Path("out")};
    args.insert(args.end(), extra.begin(), extra.end());
    testing::internal::CaptureStderr();
    int rc = Sluice(args);
    err_ = testing::internal::GetCapturedStderr();
    return rc;
  }
  std::string err_;
};

TEST_F(IngestCliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Ingest({"--task-index", "2", "--num-tasks", "2"}), kExitUsage);
  EXPECT_EQ(Ingest({"--memory-budget", "lots"}), kExitUsage);
  ::setenv("JOB_COMPLETION_INDEX", "1", 1);
  EXPECT_EQ(Ingest({}), kExitUsage);  // an index from Kubernetes but no --num-tasks
  EXPECT_NE(err_.find("--num-tasks"), std::string::npos) << err_;
  testing::internal::CaptureStderr();
  EXPECT_EQ(Sluice({"ingest", "flowers", "--archive", "x", "--out", Path("f"), "--split", "a,b"}),
            kExitUsage);
  testing::internal::GetCapturedStderr();
}

TEST_F(IngestCliTest, SlurmArrayEnvironmentSelectsTheTask) {
  if (!HaveFixtures()) GTEST_SKIP();
  ::setenv("SLURM_ARRAY_TASK_ID", "5", 1);  // an array --array=4-5: this is task 1 of 2
  ::setenv("SLURM_ARRAY_TASK_MIN", "4", 1);
  ::setenv("SLURM_ARRAY_TASK_COUNT", "2", 1);
  ASSERT_EQ(Ingest({}), kExitOk) << err_;
  EXPECT_FALSE(fs::exists(Path("out/train-00000-of-00004")));
  EXPECT_TRUE(fs::exists(Path("out/train-00001-of-00004")));
  EXPECT_FALSE(fs::exists(Path("out/train-00002-of-00004")));
  EXPECT_TRUE(fs::exists(Path("out/train-00003-of-00004")));
  EXPECT_FALSE(fs::exists(Path("out/manifest.json")));
  EXPECT_NE(err_.find("merge-manifests"), std::string::npos) << err_;
  // Task 0 from Kubernetes' variable, then the merge.
  ::unsetenv("SLURM_ARRAY_TASK_ID");
  ::unsetenv("SLURM_ARRAY_TASK_MIN");
  ::unsetenv("SLURM_ARRAY_TASK_COUNT");
  ::setenv("JOB_COMPLETION_INDEX", "0", 1);
  ASSERT_EQ(Ingest({"--num-tasks", "2"}), kExitOk) << err_;
  testing::internal::CaptureStderr();
  EXPECT_EQ(Sluice({"ingest", "merge-manifests", Path("out")}), kExitOk);
  std::string merge = testing::internal::GetCapturedStderr();
  EXPECT_NE(merge.find("4 shards, 100 records"), std::string::npos) << merge;
  EXPECT_TRUE(fs::exists(Path("out/manifest.json")));
}

// An archive that holds no images is a failed run (exit 1) naming the archive, like a truncated one,
// and no manifest claims an output.
TEST_F(IngestCliTest, TrainArchiveWithoutImagesExitsOneNamingIt) {
  const std::string empty = Path("empty_train.tar");
  ingest::testing_util::WriteTar(empty, {{"train/", ""}, {"train/README", "no images here"}});
  testing::internal::CaptureStderr();
  EXPECT_EQ(Sluice({"ingest", "imagenet", "--train-archive", empty, "--out", Path("empty_out")}),
            kExitFailure);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find(empty + ": holds no images"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(Path("empty_out/manifest.json")));
}

TEST_F(IngestCliTest, MergeBeforeAllTasksFinishedFails) {
  if (!HaveFixtures()) GTEST_SKIP();
  ASSERT_EQ(Ingest({"--num-tasks", "3", "--task-index", "0"}), kExitOk) << err_;
  testing::internal::CaptureStderr();
  EXPECT_EQ(Sluice({"ingest", "merge-manifests", Path("out")}), kExitFailure);
  std::string merge = testing::internal::GetCapturedStderr();
  EXPECT_NE(merge.find("train-00001-of-00004"), std::string::npos) << merge;
}

}  // namespace
}  // namespace sluice::cli
