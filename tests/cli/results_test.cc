// `sluice results` through RunCli, on events files written with formats::EventWriter: run discovery
// (DIR/, DIR/eval/, one level down), step alignment across runs, restarts, tag choice, the three
// formats, and the error paths. tests/cli/results_interop.py reads files written by Python.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "sluice/cli/cli.h"
#include "sluice/formats/events.h"
#include "sluice/formats/file_util.h"
#include "sluice/formats/index.h"

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;

struct Output {
  int rc = -1;
  std::string out;
  std::string err;
};

// Runs `sluice results ARGS...` and captures what it prints.
Output Results(std::vector<std::string> args) {
  args.insert(args.begin(), {"sluice", "results"});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  Output o;
  o.rc = RunCli(static_cast<int>(args.size()), argv.data());
  o.out = testing::internal::GetCapturedStdout();
  o.err = testing::internal::GetCapturedStderr();
  return o;
}

using Scalars = std::vector<std::tuple<int64_t, std::string, double>>;  // step, tag, value

class ResultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sluice_results_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) { return (dir_ / name).string(); }

  // Writes one events file in DIR (created) and returns its path. `start` orders the file names.
  std::string Write(const std::string& dir, double start, const Scalars& scalars) {
    formats::EventWriterOptions options;
    options.hostname = "testhost";
    options.start_time = start;
    auto w = formats::EventWriter::Create(Path(dir), options);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    for (const auto& [step, tag, value] : scalars) {
      EXPECT_TRUE((*w)->WriteScalar(step, tag, value, start + step).ok());
    }
    EXPECT_TRUE((*w)->Close().ok());
    return (*w)->path();
  }

  // EXP/a and EXP/b: training loss in RUN/, accuracy in RUN/eval/ at partly different steps.
  void WriteTwoRuns() {
    Write("exp/a", 1e9, {{0, "loss", 2.5}, {100, "loss", 1.5}, {200, "loss", 1.0}});
    Write("exp/a/eval", 1e9,
          {{100, "accuracy", 0.5}, {200, "accuracy", 0.625}, {300, "accuracy", 0.9}});
    Write("exp/b", 1e9, {{0, "loss", 2.25}, {250, "loss", 0.5}});
    Write("exp/b/eval", 1e9,
          {{100, "accuracy", 0.25}, {250, "accuracy", 0.375}, {300, "accuracy", 0.875}});
  }

  fs::path dir_;
};

std::string Pad(const std::string& s, size_t width) {
  return std::string(width - std::min(width, s.size()), ' ') + s;
}

TEST_F(ResultsTest, TwoRunsWithEvalSubdirsAlignByStep) {
  WriteTwoRuns();
  const std::string a = Path("exp/a"), b = Path("exp/b");
  Output o = Results({"--format", "csv", a, b});
  EXPECT_EQ(o.rc, kExitOk) << o.err;
  // 0.9 was stored as a float (simple_value): csv prints the float's shortest form.
  EXPECT_EQ(o.out,
            "step," + a + "," + b + "\n100,0.5,0.25\n200,0.625,\n250,,0.375\n300,0.9,0.875\n");
  EXPECT_NE(o.err.find("-- " + a + ": 'accuracy' from " + a +
                       "/eval (1 files): 3 steps 100..300; "
                       "last 0.9 @300; max 0.9 @300; min 0.5 @100"),
            std::string::npos)
      << o.err;

  // The experiment directory holds no events itself: its subdirectories are the runs.
  Output whole = Results({"--format", "csv", Path("exp")});
  EXPECT_EQ(whole.rc, kExitOk) << whole.err;
  EXPECT_EQ(whole.out, o.out);
  Output slash = Results({"--format", "csv", Path("exp") + "/"});
  EXPECT_EQ(slash.out, o.out);
}

TEST_F(ResultsTest, TableRightAlignsAccuracyToFourDecimals) {
  WriteTwoRuns();
  const std::string a = Path("exp/a"), b = Path("exp/b");
  Output o = Results({a, b});
  ASSERT_EQ(o.rc, kExitOk) << o.err;
  const size_t w = a.size();  // names are wider than the values
  auto row = [&](const std::string& step, const std::string& x, const std::string& y) {
    std::string line = Pad(step, 4) + "  " + Pad(x, w) + "  " + Pad(y, w);
    return line.erase(line.find_last_not_of(' ') + 1) + "\n";  // no trailing blanks
  };
  EXPECT_EQ(o.out, row("step", a, b) + row("100", "0.5000", "0.2500") + row("200", "0.6250", "") +
                       row("250", "", "0.3750") + row("300", "0.9000", "0.8750"));

  Output loss = Results({"--tag", "loss", a});
  ASSERT_EQ(loss.rc, kExitOk) << loss.err;
  EXPECT_EQ(loss.out, Pad("step", 4) + "  " + a + "\n" + Pad("0", 4) + "  " + Pad("2.5", w) + "\n" +
                          Pad("100", 4) + "  " + Pad("1.5", w) + "\n" + Pad("200", 4) + "  " +
                          Pad("1", w) + "\n");
}

TEST_F(ResultsTest, JsonHasEveryPointOfEveryRun) {
  WriteTwoRuns();
  Output o = Results({"--format", "json", Path("exp")});
  ASSERT_EQ(o.rc, kExitOk) << o.err;
  auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["tag"], "accuracy");
  ASSERT_EQ(j["runs"].size(), 2u);
  EXPECT_EQ(j["runs"][0]["run"], Path("exp/a"));
  EXPECT_EQ(j["runs"][1]["run"], Path("exp/b"));
  std::vector<std::pair<int64_t, double>> got;
  for (const auto& p : j["runs"][1]["points"]) got.emplace_back(p["step"], p["value"]);
  EXPECT_EQ(got,
            (std::vector<std::pair<int64_t, double>>{{100, 0.25}, {250, 0.375}, {300, 0.875}}));
  // Exact text: 0.9f prints as 0.9, which reads back as the same float.
  EXPECT_EQ(static_cast<float>(j["runs"][0]["points"][2]["value"].get<double>()), 0.9f);
}

TEST_F(ResultsTest, RestartedRunKeepsTheLaterValueOfARepeatedStep) {
  Write("run/eval", 1000, {{100, "accuracy", 0.5}, {200, "accuracy", 0.25}});
  // The restart (a later file) re-logs step 200, and logs step 300 twice.
  Write("run/eval", 2000,
        {{200, "accuracy", 0.75}, {300, "accuracy", 0.125}, {300, "accuracy", 1}});
  Output o = Results({"--format", "csv", Path("run")});
  ASSERT_EQ(o.rc, kExitOk) << o.err;
  EXPECT_EQ(o.out, "step," + Path("run") + "\n100,0.5\n200,0.75\n300,1\n");
  EXPECT_NE(o.err.find("(2 files): 3 steps 100..300"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("steps logged again: 2 (the later value kept)"), std::string::npos) << o.err;
}

TEST_F(ResultsTest, DefaultTagIsTheFirstPresentOfTheDocumentedOrder) {
  Write("r1", 1, {{1, "Accuracy", 0.25}, {1, "eval/accuracy", 0.375}, {1, "accuracy", 0.5}});
  Write("r2", 1, {{1, "Accuracy", 0.25}, {1, "eval/accuracy", 0.375}});
  Write("r3", 1, {{1, "Accuracy", 0.25}, {1, "top_1_accuracy", 0.125}, {1, "accuracy", 0.5}});
  const std::vector<std::pair<std::string, std::string>> want = {
      {"r1", "0.5"}, {"r2", "0.375"}, {"r3", "0.125"}};
  for (const auto& [run, value] : want) {
    Output o = Results({"--format", "csv", Path(run)});
    EXPECT_EQ(o.rc, kExitOk) << o.err;
    EXPECT_EQ(o.out, "step," + Path(run) + "\n1," + value + "\n") << run;
  }
  Output any = Results({"--format", "csv", "--tag", "Accuracy", Path("r1")});
  EXPECT_EQ(any.out, "step," + Path("r1") + "\n1,0.25\n");
}

TEST_F(ResultsTest, TagInBothRunDirAndEvalDirIsShownFromEval) {
  Write("run", 1, {{10, "loss", 3}, {20, "loss", 2}});
  Write("run/eval", 1, {{20, "loss", 2.5}});
  Output o = Results({"--format", "csv", "--tag", "loss", Path("run")});
  ASSERT_EQ(o.rc, kExitOk) << o.err;
  EXPECT_EQ(o.out, "step," + Path("run") + "\n20,2.5\n");
  EXPECT_NE(o.err.find(Path("run") + " also has 'loss' (not shown)"), std::string::npos) << o.err;
}

TEST_F(ResultsTest, AnEventsFileArgumentIsARun) {
  const std::string file = Write("run/eval", 1, {{5, "accuracy", 0.5}});
  Output o = Results({"--format", "csv", file});
  ASSERT_EQ(o.rc, kExitOk) << o.err;
  EXPECT_EQ(o.out, "step," + file + "\n5,0.5\n");
}

TEST_F(ResultsTest, ListTagsCountsStepsPerRunAndDir) {
  WriteTwoRuns();
  Output o = Results({"--list-tags", "--format", "csv", Path("exp")});
  ASSERT_EQ(o.rc, kExitOk) << o.err;
  const std::string a = Path("exp/a"), b = Path("exp/b");
  EXPECT_EQ(o.out, "run,tag,dir,steps,first_step,last_step\n" + a + ",loss," + a + ",3,0,200\n" +
                       a + ",accuracy," + a + "/eval,3,100,300\n" + b + ",loss," + b +
                       ",2,0,250\n" + b + ",accuracy," + b + "/eval,3,100,300\n");
}

TEST_F(ResultsTest, TagNotFoundListsTheRunsTags) {
  WriteTwoRuns();
  Output o = Results({"--tag", "top_5", Path("exp/a")});
  EXPECT_EQ(o.rc, kExitFailure);
  EXPECT_EQ(o.out, "");
  EXPECT_NE(o.err.find("tag 'top_5' not found in " + Path("exp/a") +
                       " (2 events files); its tags: accuracy, loss"),
            std::string::npos)
      << o.err;

  Write("only_loss", 1, {{1, "loss", 1}});
  Output none = Results({Path("only_loss")});
  EXPECT_EQ(none.rc, kExitFailure);
  EXPECT_NE(none.err.find("none of the default tags"), std::string::npos) << none.err;
  EXPECT_NE(none.err.find("pass --tag, one of: loss"), std::string::npos) << none.err;
}

TEST_F(ResultsTest, ARunWithoutTheTagFailsButTheOthersPrint) {
  WriteTwoRuns();
  Write("loss_only", 1, {{100, "loss", 1}});
  Output o = Results({"--format", "csv", Path("exp/a"), Path("loss_only")});
  EXPECT_EQ(o.rc, kExitFailure);
  EXPECT_EQ(o.out, "step," + Path("exp/a") + "\n100,0.5\n200,0.625\n300,0.9\n");
  EXPECT_NE(o.err.find("tag 'accuracy' not found in " + Path("loss_only")), std::string::npos);
}

TEST_F(ResultsTest, MissingPathOrNoEventsFilesFails) {
  WriteTwoRuns();
  Output o = Results({"--format", "csv", Path("absent"), Path("exp/a")});
  EXPECT_EQ(o.rc, kExitFailure);
  EXPECT_NE(o.err.find("no such file or directory: " + Path("absent")), std::string::npos) << o.err;
  EXPECT_NE(o.out.find("300,0.9"), std::string::npos);  // the good run is still printed

  fs::create_directories(Path("empty/sub/eval"));
  Output empty = Results({Path("empty")});
  EXPECT_EQ(empty.rc, kExitFailure);
  EXPECT_EQ(empty.out, "");
  EXPECT_NE(empty.err.find("no events files"), std::string::npos) << empty.err;
  EXPECT_NE(empty.err.find(Path("empty")), std::string::npos) << empty.err;
}

TEST_F(ResultsTest, CorruptRecordFailsNamingFileAndOffset) {
  const std::string file = Write("run", 1, {{1, "accuracy", 0.5}, {2, "accuracy", 0.75}});
  auto index = formats::BuildIndex(file);
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  ASSERT_EQ(index->size(), 3u);  // file_version + 2 scalars
  std::string bytes = *formats::ReadFile(file);
  const uint64_t offset = (*index)[2].offset;
  bytes[offset + 14] ^= 0x20;  // in the payload: the data CRC no longer matches
  { std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes; }
  Output o = Results({Path("run")});
  EXPECT_EQ(o.rc, kExitFailure);
  EXPECT_EQ(o.out, "");
  EXPECT_NE(o.err.find("corrupted record at " + std::to_string(offset) + " in " + file),
            std::string::npos)
      << o.err;
}

TEST_F(ResultsTest, TruncatedTailOfAFileBeingWrittenIsIgnored) {
  const std::string file = Write("run", 1, {{1, "accuracy", 0.5}, {2, "accuracy", 0.75}});
  std::string bytes = *formats::ReadFile(file);
  { std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 3); }
  Output o = Results({"--format", "csv", Path("run")});
  EXPECT_EQ(o.rc, kExitOk) << o.err;
  EXPECT_EQ(o.out, "step," + Path("run") + "\n1,0.5\n");
}

TEST_F(ResultsTest, UsageErrorsExitTwoAndHelpDocumentsEveryFlag) {
  EXPECT_EQ(Results({}).rc, kExitUsage);  // a path is required
  EXPECT_EQ(Results({"--format", "xml", "d"}).rc, kExitUsage);
  EXPECT_EQ(Results({"--tag", "loss", "--list-tags", "d"}).rc, kExitUsage);
  Output help = Results({"--help"});
  EXPECT_EQ(help.rc, kExitOk);
  for (const char* text : {"--tag", "--list-tags", "--format", "table", "csv", "json", "eval/",
                           "top_1_accuracy, accuracy, eval/accuracy, Accuracy", "later value",
                           "EXAMPLES", "sluice results runs"}) {
    EXPECT_NE(help.out.find(text), std::string::npos) << text << "\n" << help.out;
  }
}

}  // namespace
}  // namespace sluice::cli
