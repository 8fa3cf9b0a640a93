// The results library (train/results.h) called directly, on events files written with
// formats::EventWriter: run discovery, restarts, tag choice, eval-over-train shadowing, rendering,
// and CsvField's RFC 4180 quoting. tests/cli/results_test.cc covers the same through `sluice
// results`, byte for byte.
#include "sluice/train/results.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "sluice/formats/events.h"
#include "sluice/train/csv.h"

namespace sluice::train {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using Scalars = std::vector<std::tuple<int64_t, std::string, double>>;  // step, tag, value

class ResultsLibraryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sluice_results_lib_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) { return (dir_ / name).string(); }

  // Writes one events file in DIR (created). `start` orders the file names.
  void Write(const std::string& dir, double start, const Scalars& scalars) {
    formats::EventWriterOptions options;
    options.hostname = "testhost";
    options.start_time = start;
    auto w = formats::EventWriter::Create(Path(dir), options);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (const auto& [step, tag, value] : scalars) {
      ASSERT_TRUE((*w)->WriteScalar(step, tag, value, start + step).ok());
    }
    ASSERT_TRUE((*w)->Close().ok());
  }

  // ResolveRuns + LoadRun, failing the test on any error.
  std::vector<ResultsRun> Load(const std::string& arg) {
    auto runs = ResolveRuns(Path(arg));
    EXPECT_TRUE(runs.ok()) << runs.status().ToString();
    if (!runs.ok()) return {};
    for (ResultsRun& run : *runs) EXPECT_TRUE(LoadRun(&run).ok()) << run.name;
    return *std::move(runs);
  }

  fs::path dir_;
};

TEST_F(ResultsLibraryTest, RestartedRunsRepeatedStepKeepsTheLaterValue) {
  Write("run/eval", 1000, {{100, "accuracy", 0.5}, {200, "accuracy", 0.25}});
  // The restart's file sorts later and re-logs step 200.
  Write("run/eval", 2000, {{200, "accuracy", 0.75}, {300, "accuracy", 0.125}});
  std::vector<ResultsRun> runs = Load("run");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].FileCount(), 2u);
  auto column = FindTag(runs[0], "accuracy");
  ASSERT_TRUE(column.ok()) << column.status().ToString();
  EXPECT_EQ(column->series->points,
            (std::map<int64_t, double>{{100, 0.5}, {200, 0.75}, {300, 0.125}}));
  EXPECT_EQ(column->series->events, 4u);
  EXPECT_THAT(SummaryLine("accuracy", *column),
              HasSubstr("(2 files): 3 steps 100..300; last 0.125 @300; max 0.75 @200; min 0.125 "
                        "@300; steps logged again: 1 (the later value kept)"));
}

TEST_F(ResultsLibraryTest, ExperimentDirResolvesToItsRunSubdirsInNameOrder) {
  Write("exp/b/eval", 1, {{1, "accuracy", 0.5}});
  Write("exp/a", 1, {{1, "loss", 2}});
  fs::create_directories(Path("exp/no_events/eval"));
  auto runs = ResolveRuns(Path("exp") + "//");
  ASSERT_TRUE(runs.ok()) << runs.status().ToString();
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].name, Path("exp/a"));
  EXPECT_EQ((*runs)[1].name, Path("exp/b"));
  ASSERT_EQ((*runs)[1].dirs.size(), 1u);
  EXPECT_EQ((*runs)[1].dirs[0].dir, Path("exp/b/eval"));
}

TEST_F(ResultsLibraryTest, EvalDirWinsATagBothDirsHave) {
  Write("run", 1, {{10, "loss", 3}});
  Write("run/eval", 1, {{10, "loss", 2.5}});
  std::vector<ResultsRun> runs = Load("run");
  ASSERT_EQ(runs.size(), 1u);
  auto column = FindTag(runs[0], "loss");
  ASSERT_TRUE(column.ok());
  EXPECT_EQ(column->from->dir, Path("run/eval"));
  ASSERT_NE(column->shadowed, nullptr);
  EXPECT_EQ(column->shadowed->dir, Path("run"));
  EXPECT_EQ(RenderValues("loss", {&*column, 1}, ResultsFormat::kCsv),
            "step," + Path("run") + "\n10,2.5\n");
}

TEST_F(ResultsLibraryTest, DefaultTagFollowsTheDocumentedOrderAcrossRuns) {
  Write("r1", 1, {{1, "Accuracy", 0.25}});
  Write("r2", 1, {{1, "accuracy", 0.5}});
  Write("r3", 1, {{1, "loss", 1}});
  std::vector<ResultsRun> runs = Load("r1");
  for (const char* r : {"r2", "r3"}) {
    for (ResultsRun& run : Load(r)) runs.push_back(std::move(run));
  }
  EXPECT_EQ(DefaultTag(runs), "accuracy");
  EXPECT_EQ(DefaultTag({runs.data() + 2, 1}), "");
  Status none = NoDefaultTagError(runs[2]);
  EXPECT_EQ(none.code(), StatusCode::kNotFound);
  EXPECT_EQ(none.message(), Path("r3") +
                                " has none of the default tags (top_1_accuracy, accuracy, "
                                "eval/accuracy, Accuracy); pass --tag, one of: loss");
}

TEST_F(ResultsLibraryTest, TableAlignsRunsAndLeavesMissingStepsEmpty) {
  Write("a", 1, {{1, "acc", 0.5}, {2, "acc", 0.75}});
  Write("b", 1, {{2, "acc", 0.25}});
  std::vector<ResultsRun> runs = Load("a");
  for (ResultsRun& run : Load("b")) runs.push_back(std::move(run));
  std::vector<TagColumn> columns;
  for (const ResultsRun& run : runs) columns.push_back(*FindTag(run, "acc"));
  const std::string a = Path("a"), b = Path("b");
  const std::string pad(a.size() - 6, ' ');  // "0.5000" right-aligned under the run's name
  EXPECT_EQ(RenderValues("acc", columns, ResultsFormat::kTable),
            "step  " + a + "  " + b + "\n   1  " + pad + "0.5000\n   2  " + pad + "0.7500  " +
                pad + "0.2500\n");
  EXPECT_EQ(RenderValues("acc", columns, ResultsFormat::kJson),
            "{\"tag\":\"acc\",\"runs\":[{\"run\":\"" + a +
                "\",\"points\":[{\"step\":1,\"value\":0.5},{\"step\":2,\"value\":0.75}]},"
                "{\"run\":\"" +
                b + "\",\"points\":[{\"step\":2,\"value\":0.25}]}]}\n");
  EXPECT_EQ(RenderTagList(runs, ResultsFormat::kCsv),
            "run,tag,dir,steps,first_step,last_step\n" + a + ",acc," + a + ",2,1,2\n" + b +
                ",acc," + b + ",1,2,2\n");
}

TEST_F(ResultsLibraryTest, ErrorsNameWhatIsMissing) {
  auto absent = ResolveRuns(Path("absent"));
  EXPECT_EQ(absent.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(absent.status().message(), HasSubstr("no such file or directory"));
  fs::create_directories(Path("empty/sub"));
  auto empty = ResolveRuns(Path("empty"));
  EXPECT_EQ(empty.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(empty.status().message(), HasSubstr("no events files"));

  Write("run", 1, {{1, "loss", 1}, {1, "lr", 0.1}});
  std::vector<ResultsRun> runs = Load("run");
  ASSERT_EQ(runs.size(), 1u);
  auto missing = FindTag(runs[0], "accuracy");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(),
            "tag 'accuracy' not found in " + Path("run") + " (1 events files); its tags: loss, lr");

  EXPECT_EQ(ParseResultsFormat("xml").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseResultsFormat("csv"), ResultsFormat::kCsv);
}

TEST(CsvFieldTest, QuotesOnlyFieldsWithCommaQuoteOrLineBreak) {
  EXPECT_EQ(CsvField("plain text"), "plain text");
  EXPECT_EQ(CsvField(""), "");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("line\nbreak"), "\"line\nbreak\"");
  EXPECT_EQ(CsvField("cr\r"), "\"cr\r\"");
}

}  // namespace
}  // namespace sluice::train
