#include "sluice/formats/manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <limits>

#include "sluice/formats/file_util.h"

namespace sluice::formats {
namespace {

using ::testing::HasSubstr;

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("sluice_manifest_test_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Puts `text` where Read looks.
  void WriteRaw(const std::string& text) {
    ASSERT_TRUE(WriteFileAtomically(Manifest::PathIn(dir_), text).ok());
  }

  // A two-split manifest: flowers-like, labels 0-based with a gap.
  static Manifest Sample() {
    Manifest m;
    m.tool = "sluice 1.2.3";
    m.dataset = "flowers";
    m.inputs_json = R"([{"path":"/data/flower_photos.tgz","bytes":10}])";
    m.options_json = R"({"split":[0.8,0.2],"seed":7})";
    m.splits["train"] = {3, {{"train-00000-of-00001", 3, 100, "ab", {{2, 2}, {10, 1}}, 1}}};
    m.splits["validation"] = {2,
                              {{"validation-00000-of-00002", 1, 40, "cd", {{0, 1}}, 0},
                               {"validation-00001-of-00002", 1, 41, "ef", {{4, 1}}, 0}}};
    m.totals = {3, 5, 181, 1, 2};
    return m;
  }

  std::string dir_;
};

// ---------------------------------------------------------------------------------------------------
// Layout and round trip

// The bytes every reader of an ingest output sees (Python's json, the interop scripts): keys sorted
// at every level, so label "10" sorts before "2"; opaque fields re-serialized in the same style.
TEST_F(ManifestTest, SerializeWritesTheIngestLayout) {
  Manifest m = Sample();
  m.splits.erase("validation");
  m.totals = {1, 3, 100, 1, 0};
  auto text = m.Serialize();
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, R"({
  "dataset": "flowers",
  "inputs": [
    {
      "bytes": 10,
      "path": "/data/flower_photos.tgz"
    }
  ],
  "options": {
    "seed": 7,
    "split": [
      0.8,
      0.2
    ]
  },
  "splits": {
    "train": {
      "records": 3,
      "shards": [
        {
          "bytes": 100,
          "file": "train-00000-of-00001",
          "labels": {
            "10": 1,
            "2": 2
          },
          "records": 3,
          "reencoded": 1,
          "sha256": "ab"
        }
      ]
    }
  },
  "tool": "sluice 1.2.3",
  "totals": {
    "bytes": 100,
    "records": 3,
    "reencoded": 1,
    "rejected": 0,
    "shards": 1
  }
}
)");
}

TEST_F(ManifestTest, WriteThenReadRoundTrips) {
  Manifest m = Sample();
  m.splits["train"].shards[0].labels[-1] = 3;  // negative and extreme values survive too
  m.splits["train"].shards[0].bytes = std::numeric_limits<uint64_t>::max();
  ASSERT_TRUE(m.Write(dir_).ok());
  auto back = Manifest::Read(dir_);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  // Opaque fields come back re-serialized (keys sorted), so compare those by a second round trip.
  EXPECT_EQ(back->options_json, R"({"seed":7,"split":[0.8,0.2]})");
  Manifest again = *back;
  ASSERT_TRUE(again.Write(dir_).ok());
  EXPECT_EQ(*Manifest::Read(dir_), *back);
  back->inputs_json = m.inputs_json;
  back->options_json = m.options_json;
  EXPECT_EQ(*back, m);
  // Nothing left behind but the file itself (atomic write).
  EXPECT_FALSE(std::filesystem::exists(Manifest::PathIn(dir_) + ".tmp"));
}

TEST_F(ManifestTest, MissingOptionalFieldsReadAsDefaults) {
  WriteRaw(R"({"splits": {"train": {"shards": [{"file": "a"}]}}})");
  auto m = Manifest::Read(dir_);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->tool, "");
  EXPECT_EQ(m->inputs_json, "");
  EXPECT_EQ(m->totals, ManifestTotals());
  ASSERT_EQ(m->splits.at("train").shards.size(), 1u);
  EXPECT_EQ(m->splits.at("train").shards[0].file, "a");
  EXPECT_EQ(m->splits.at("train").records, 0u);
  // And an absent opaque field stays absent on write.
  auto text = m->Serialize();
  ASSERT_TRUE(text.ok());
  EXPECT_THAT(*text, ::testing::Not(HasSubstr("inputs")));
  EXPECT_THAT(*text, ::testing::Not(HasSubstr("tool")));
}

// ---------------------------------------------------------------------------------------------------
// Errors (the trainer's tests grep these messages)

TEST_F(ManifestTest, MissingFileIsNotFoundPointingAtIngest) {
  auto m = Manifest::Read(dir_);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(m.status().message(),
            dir_ + "/manifest.json not found: --data-dir must be an output of `sluice ingest`");
}

TEST_F(ManifestTest, NotJsonOrNoSplitsIsDataLoss) {
  for (const char* text : {"{not json", "[1, 2]", R"({"totals": {}})"}) {
    WriteRaw(text);
    auto m = Manifest::Read(dir_);
    ASSERT_FALSE(m.ok()) << text;
    EXPECT_EQ(m.status().code(), StatusCode::kDataLoss) << text;
    EXPECT_EQ(m.status().message(), dir_ + "/manifest.json: not a sluice manifest (no \"splits\")");
  }
}

TEST_F(ManifestTest, FieldOfTheWrongTypeIsDataLossNamingIt) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"splits": []})", "splits is not an object"},
      {R"({"splits": {"train": {"records": "ten"}}})", "splits.train.records is not a count"},
      {R"({"splits": {"train": {"records": -1}}})", "splits.train.records is not a count"},
      {R"({"splits": {"train": {"shards": {}}}})", "splits.train.shards is not an array"},
      {R"({"splits": {"t": {"shards": [{"file": 3}]}}})",
       "splits.t.shards[0].file is not a string"},
      {R"({"splits": {"t": {"shards": [{"records": 1}]}}})", "splits.t.shards[0] names no file"},
      {R"({"splits": {"t": {"shards": [{"file": "a", "labels": {"x1": 2}}]}}})",
       "'x1' is not an integer label"},
      {R"({"splits": {"t": {"shards": [{"file": "a", "labels": {"1": 2.5}}]}}})",
       "splits.t.shards[0].labels.1 is not a count"},
      {R"({"splits": {}, "totals": {"bytes": null}})", "totals.bytes is not a count"},
  };
  for (const auto& [text, expected] : cases) {
    WriteRaw(text);
    auto m = Manifest::Read(dir_);
    ASSERT_FALSE(m.ok()) << text;
    EXPECT_EQ(m.status().code(), StatusCode::kDataLoss) << text;
    EXPECT_THAT(m.status().message(), HasSubstr(expected)) << text;
    EXPECT_THAT(m.status().message(), HasSubstr(Manifest::PathIn(dir_))) << text;
  }
}

TEST_F(ManifestTest, OpaqueFieldThatIsNotJsonIsInvalidArgumentOnWrite) {
  Manifest m = Sample();
  m.options_json = "{seed: 7";
  Status s = m.Write(dir_);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("options"));
  EXPECT_FALSE(std::filesystem::exists(Manifest::PathIn(dir_)));
}

// ---------------------------------------------------------------------------------------------------
// What the trainer asks of it

TEST_F(ManifestTest, DefaultEvalSplitPrefersValidationThenTest) {
  Manifest m = Sample();
  EXPECT_EQ(m.DefaultEvalSplit(), "validation");
  m.splits["test"] = {};
  EXPECT_EQ(m.DefaultEvalSplit(), "validation");
  m.splits.erase("validation");
  EXPECT_EQ(m.DefaultEvalSplit(), "test");
  EXPECT_EQ(m.SplitNames(), (std::vector<std::string>{"test", "train"}));
}

TEST_F(ManifestTest, FindSplitNamesTheSplitsThereAre) {
  Manifest m = Sample();
  auto train = m.FindSplit("train");
  ASSERT_TRUE(train.ok());
  EXPECT_EQ((*train)->records, 3u);
  auto test = m.FindSplit("test");
  ASSERT_FALSE(test.ok());
  EXPECT_EQ(test.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(test.status().message(), "no split 'test' (has train, validation)");
  auto paths = m.ShardPaths("/d", "test");
  EXPECT_EQ(paths.status().message(), test.status().message());
}

TEST_F(ManifestTest, ShardPathsAreUnderTheDirectoryInShardOrder) {
  auto paths = Sample().ShardPaths("/data/out", "validation");
  ASSERT_TRUE(paths.ok());
  EXPECT_EQ(*paths, (std::vector<std::string>{"/data/out/validation-00000-of-00002",
                                              "/data/out/validation-00001-of-00002"}));
}

TEST_F(ManifestTest, NumClassesIsOnePlusTheLargestLabelOfAnySplit) {
  Manifest m = Sample();
  EXPECT_EQ(m.NumClasses(), 11);  // train's label 10
  m.splits["train"].shards[0].labels = {{1, 3}};
  EXPECT_EQ(m.NumClasses(), 5);  // validation's label 4
  m.splits["validation"].shards.clear();
  EXPECT_EQ(m.NumClasses(), 2);  // 1-based (imagenet): background 0 counts as a class
  m.splits["train"].shards[0].labels.clear();
  EXPECT_EQ(m.NumClasses(), 0);
}

}  // namespace
}  // namespace sluice::formats
