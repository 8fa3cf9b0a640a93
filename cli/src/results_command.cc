// sluice results DIR_OR_FILE... [--tag TAG | --list-tags] [--format table|csv|json]: flags over
// train/results.h, which owns the rules (what a run is, which tag, how steps align) and renders
// the output; this file only prints it: the table on stdout, errors and one summary line per run
// on stderr.
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "command.h"
#include "sluice/cli/cli.h"
#include "sluice/train/results.h"

namespace sluice::cli {
namespace {

struct ResultsFlags {
  std::vector<std::string> paths;
  std::string tag;
  bool list_tags = false;
  std::string format = "table";
};

// Soft errors (a missing path, a corrupt file, a run without the tag) are printed and make the
// exit status 1, but the other runs are still shown.
int RunResults(const ResultsFlags& flags) {
  auto format = train::ParseResultsFormat(flags.format);
  if (!format.ok()) {  // not reached from the command line: --format's check refuses it first
    PrintError(format.status());
    return kExitUsage;
  }
  int exit_code = kExitOk;
  std::vector<train::ResultsRun> runs;
  for (const std::string& arg : flags.paths) {
    auto found = train::ResolveRuns(arg);
    if (!found.ok()) {
      PrintError(found.status());
      exit_code = kExitFailure;
      continue;
    }
    for (train::ResultsRun& run : *found) {
      Status s = train::LoadRun(&run);
      if (!s.ok()) {
        PrintError(s);  // DataLoss names the file and the record's offset
        exit_code = kExitFailure;
        continue;
      }
      runs.push_back(std::move(run));
    }
  }
  if (runs.empty()) return kExitFailure;
  if (flags.list_tags) {
    std::fputs(train::RenderTagList(runs, *format).c_str(), stdout);
    std::fflush(stdout);
    return exit_code;
  }

  std::string tag = flags.tag.empty() ? train::DefaultTag(runs) : flags.tag;
  if (tag.empty()) {
    for (const train::ResultsRun& run : runs) PrintError(train::NoDefaultTagError(run));
    return kExitFailure;
  }
  // The runs that have the tag become the columns.
  std::vector<train::TagColumn> columns;
  for (const train::ResultsRun& run : runs) {
    auto column = train::FindTag(run, tag);
    if (!column.ok()) {
      PrintError(column.status());
      exit_code = kExitFailure;
      continue;
    }
    columns.push_back(*column);
  }
  if (columns.empty()) return kExitFailure;
  std::fputs(train::RenderValues(tag, columns, *format).c_str(), stdout);
  std::fflush(stdout);
  for (const train::TagColumn& column : columns) {
    std::fprintf(stderr, "%s\n", train::SummaryLine(tag, column).c_str());
  }
  return exit_code;
}

}  // namespace

Command AddResultsCommand(CLI::App& root) {
  auto flags = std::make_shared<ResultsFlags>();
  CLI::App* app = root.add_subcommand(
      "results",
      "Print one scalar (default: accuracy) of TensorBoard events files as a (step, value) table, "
      "one column per run");
  app->footer(
      "RUNS: a FILE is one run (any events file: ours, TF1, TF2, PyTorch). A DIR is one\n"
      "run when DIR/ or DIR/eval/ holds events files (names containing \"tfevents\"; sluice\n"
      "train, like TensorFlow's Estimator, writes training scalars to DIR/ and eval scalars\n"
      "to DIR/eval/); otherwise each subdirectory SUB of DIR that is a run by that rule is\n"
      "one, named DIR/SUB (one level only), so 'sluice results EXP' and 'sluice results\n"
      "EXP/*' agree.\n"
      "TAG: without --tag, the first of top_1_accuracy, accuracy, eval/accuracy, Accuracy\n"
      "that any run has. A tag in both DIR/ and DIR/eval/ is shown from DIR/eval/.\n"
      "STEPS: files are read in name order (creation order); a step logged twice (a\n"
      "restarted run) keeps the later value. Rows are the union of the runs' steps; a run\n"
      "without a step has an empty cell. A truncated last record (a file being written)\n"
      "ends that file quietly.\n"
      "OUTPUT: the table on stdout (accuracy-like values %.4f, others %.6g; csv and json\n"
      "print the shortest text that reads back as the stored float32/double); one summary\n"
      "line per run on stderr (steps, last, max, min). json:\n"
      "  {\"tag\":T,\"runs\":[{\"run\":NAME,\"points\":[{\"step\":S,\"value\":V},...]},...]}\n"
      "EXIT STATUS: 1 if a path is missing or has no events files, a run lacks the tag (the\n"
      "error lists its tags), or a record is corrupt (the error names the file and the\n"
      "record's offset); the other runs are still printed. 2 on a usage error.\n"
      "EXAMPLES:\n"
      "  sluice results runs/resnet20           # eval accuracy by step\n"
      "  sluice results runs/*  --tag loss      # one column per run\n"
      "  sluice results runs --list-tags        # every tag, with its step count, per run\n"
      "  sluice results runs --format csv > accuracy.csv");
  app->add_option("paths", flags->paths,
                  "Run directories or events files (DIR_OR_FILE...; see RUNS below)")
      ->required();
  CLI::Option* tag = app->add_option(
      "--tag", flags->tag,
      "The scalar to show, e.g. --tag loss (default: top_1_accuracy, accuracy, eval/accuracy "
      "or Accuracy, the first present)");
  app->add_flag("--list-tags", flags->list_tags,
                "Instead of values, list each run's tags: directory, steps, first and last step "
                "(e.g. sluice results runs --list-tags)")
      ->excludes(tag);
  app->add_option("--format", flags->format,
                  "table (aligned, for people), csv (step,RUN...; empty where a run lacks the "
                  "step) or json, e.g. --format csv")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  return {app, [flags] { return RunResults(*flags); }};
}

}  // namespace sluice::cli
