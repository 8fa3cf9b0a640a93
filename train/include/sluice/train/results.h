// The results table: one scalar of TensorBoard events files as a (step, value) table, one column
// per run, aligned by step. `sluice results` is flag parsing over this header, and the Python
// package calls the same functions, so both print the same bytes. Depends only on
// formats/events.h; nothing here prints: rendering returns strings and errors are Statuses.
//
// What a run is:
//   - a FILE argument is one run: that events file (any name);
//   - a DIR argument is one run when DIR/ or DIR/eval/ holds events files (names containing
//     "tfevents"): our trainer, like TensorFlow's Estimator, writes training scalars to DIR/ and
//     evaluation scalars to DIR/eval/;
//   - otherwise each direct subdirectory SUB of DIR that is a run by the rule above is one, named
//     DIR/SUB, so `sluice results EXP` and `sluice results EXP/*` print the same table. Only one
//     level is searched.
// Within a run, files are read in name order (for one host, the order they were created) and a
// step seen twice (a restarted run re-logs the steps after its last checkpoint) keeps the value of
// the later event. A tag written both in DIR/ and DIR/eval/ is two different series (Estimator's
// train and eval "loss"): DIR/eval/'s is shown, and the summary line says so.
//
// Thread-safety: plain data and free functions; a ResultsRun is not shared while LoadRun fills it.
#ifndef SLUICE_TRAIN_RESULTS_H_
#define SLUICE_TRAIN_RESULTS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/formats/status.h"

namespace sluice::train {

// One tag in one directory of a run: step -> value, a later event of a step replacing the earlier.
struct ScalarSeries {
  std::map<int64_t, double> points;
  uint64_t events = 0;  // events read, replaced ones included
};

// Where some of a run's events files live (DIR/, DIR/eval/, or the one file given) and, once
// LoadRun has read them, their series by tag.
struct EventsDir {
  std::string dir;                 // as shown to the user
  std::vector<std::string> files;  // name order
  std::map<std::string, ScalarSeries> tags;
};

struct ResultsRun {
  std::string name;             // the argument, or DIR/SUB when found one level down
  std::vector<EventsDir> dirs;  // DIR/eval/ last: it wins a tag both have

  size_t FileCount() const;
  // Every tag of every directory, sorted.
  std::set<std::string> Tags() const;
};

enum class ResultsFormat {
  kTable,  // right-aligned columns for people: accuracy-like values %.4f, others %.6g
  kCsv,    // exact values (the shortest text that reads back as the stored float32/double)
  kJson,   // exact values; non-finite ones as null
};

// "table", "csv", "json"; InvalidArgument otherwise.
Result<ResultsFormat> ParseResultsFormat(std::string_view name);

// The tag shown when none is asked for: the first of these that any run has.
inline constexpr std::array<std::string_view, 4> kDefaultResultTags = {"top_1_accuracy", "accuracy",
                                                                       "eval/accuracy", "Accuracy"};

// The runs `arg` names (see the rules above), with their files listed but not read. NotFound for a
// missing path or a directory without events files at either level; IoError when a directory
// cannot be listed.
Result<std::vector<ResultsRun>> ResolveRuns(const std::string& arg);

// Reads every file of the run into its directories' tags. A truncated last record is the end of a
// file still being written; anything else wrong (a corrupted record, a record that is not an
// Event) is the reader's error, naming the file and the record's offset.
Status LoadRun(ResultsRun* run);

// The first of kDefaultResultTags that any of `runs` has; empty when none has one.
std::string DefaultTag(std::span<const ResultsRun> runs);

// NotFound for a run that has none of kDefaultResultTags, listing the tags it has.
Status NoDefaultTagError(const ResultsRun& run);

// One run's series of one tag: a column of the table. Points into the ResultsRun it came from.
struct TagColumn {
  const ResultsRun* run = nullptr;
  const ScalarSeries* series = nullptr;
  const EventsDir* from = nullptr;      // the directory whose series is shown
  const EventsDir* shadowed = nullptr;  // another directory with the tag (not shown), or null
};

// The column of `tag` in `run`, from DIR/eval/ when both directories have it. NotFound, listing
// the run's tags, when no directory has it.
Result<TagColumn> FindTag(const ResultsRun& run, const std::string& tag);

// The table of `tag`: a header row (step, then each run's name) and one row per step any column
// has, an empty cell where a run lacks the step. json:
//   {"tag":T,"runs":[{"run":NAME,"points":[{"step":S,"value":V},...]},...]}
// Every line ends in '\n'. Requires columns of a loaded run.
std::string RenderValues(const std::string& tag, std::span<const TagColumn> columns,
                         ResultsFormat format);

// Each run's tags with their directory, step count, first and last step (table and csv: one row
// each under the header run,tag,dir,steps,first_step,last_step; json:
// {"runs":[{"run":NAME,"tags":[{"tag":T,"dir":D,"steps":N,"first_step":A,"last_step":B},...]}]}).
std::string RenderTagList(std::span<const ResultsRun> runs, ResultsFormat format);

// "-- RUN: 'tag' from DIR (N files): S steps A..B; last V @B; max V @S; min V @S", then the number
// of steps logged again and the shadowed directory when there are any. No trailing newline.
std::string SummaryLine(const std::string& tag, const TagColumn& column);

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_RESULTS_H_
