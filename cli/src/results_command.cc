// sluice results DIR_OR_FILE... [--tag TAG | --list-tags] [--format table|csv|json]: one scalar of
// TensorBoard events files as a (step, value) table, one column per run, aligned by step.
//
// What a run is (the rules are repeated in --help):
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
#include <algorithm>
#include <array>
#include <cctype>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "command.h"
#include "sluice/cli/cli.h"
#include "sluice/formats/events.h"

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;

// The tag shown without --tag: the first of these that any run has.
constexpr std::array<std::string_view, 4> kDefaultTags = {"top_1_accuracy", "accuracy",
                                                          "eval/accuracy", "Accuracy"};

struct ResultsFlags {
  std::vector<std::string> paths;
  std::string tag;
  bool list_tags = false;
  std::string format = "table";
};

// One tag in one directory of a run: step -> value, a later event of a step replacing the earlier.
struct Series {
  std::map<int64_t, double> points;
  uint64_t events = 0;  // events read, replaced ones included
};

// Where a run's events files live: DIR/ and DIR/eval/ (or just the file given).
struct Source {
  std::string dir;  // shown to the user
  std::vector<std::string> files;
  std::map<std::string, Series> tags;
};

struct Run {
  std::string name;             // the argument, or DIR/SUB when found one level down
  std::vector<Source> sources;  // DIR/eval/ last: it wins a tag both have
  size_t Files() const {
    size_t n = 0;
    for (const Source& s : sources) n += s.files.size();
    return n;
  }
};

std::string TrimSlashes(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// The sources of DIR as a run: DIR/ and DIR/eval/, those holding events files only.
Result<std::vector<Source>> DirSources(const fs::path& dir) {
  std::vector<Source> out;
  for (const fs::path& d : {dir, dir / "eval"}) {
    std::error_code ec;
    if (!fs::is_directory(d, ec)) continue;
    SLUICE_ASSIGN_OR_RETURN(std::vector<std::string> files, formats::ListEventFiles(d.string()));
    if (!files.empty()) out.push_back(Source{d.string(), std::move(files), {}});
  }
  return out;
}

// Appends the runs an argument names (see the rules at the top of this file).
Status ResolveArgument(const std::string& arg, std::vector<Run>* runs) {
  const std::string name = TrimSlashes(arg);
  std::error_code ec;
  const fs::file_status st = fs::status(name, ec);
  if (!fs::exists(st)) return Status::NotFound("no such file or directory: " + arg);
  if (!fs::is_directory(st)) {
    runs->push_back(Run{name, {Source{name, {name}, {}}}});
    return Status::Ok();
  }
  SLUICE_ASSIGN_OR_RETURN(std::vector<Source> own, DirSources(name));
  if (!own.empty()) {
    runs->push_back(Run{name, std::move(own)});
    return Status::Ok();
  }
  std::vector<fs::path> subdirs;
  fs::directory_iterator it(name, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_directory(type_ec)) subdirs.push_back(it->path());
  }
  if (ec) return Status::IoError("list " + name + ": " + ec.message());
  std::sort(subdirs.begin(), subdirs.end());
  bool found = false;
  for (const fs::path& sub : subdirs) {
    SLUICE_ASSIGN_OR_RETURN(std::vector<Source> sources, DirSources(sub));
    if (sources.empty()) continue;
    runs->push_back(Run{sub.string(), std::move(sources)});
    found = true;
  }
  if (!found) {
    return Status::NotFound("no events files (names containing \"tfevents\") in " + name + ", " +
                            name + "/eval or their subdirectories one level down");
  }
  return Status::Ok();
}

// Reads every file of the run. A truncated last record is the end of a file still being written;
// anything else wrong (a corrupted record, a record that is not an Event) fails the run.
Status LoadRun(Run* run) {
  formats::ReadScalarsOptions options;
  options.allow_truncated_tail = true;
  for (Source& source : run->sources) {
    for (const std::string& file : source.files) {
      SLUICE_ASSIGN_OR_RETURN(std::vector<formats::ScalarEvent> scalars,
                              formats::ReadScalars(file, options));
      for (formats::ScalarEvent& e : scalars) {
        Series& series = source.tags[e.tag];
        series.points.insert_or_assign(e.step, e.value);
        ++series.events;
      }
    }
  }
  return Status::Ok();
}

// The series of `tag` in `run` and where it came from: DIR/eval/'s when both directories have it.
// `shadowed` gets the other directory having it, if any.
const Series* FindTag(const Run& run, const std::string& tag, const Source** from,
                      const Source** shadowed) {
  const Series* found = nullptr;
  *from = *shadowed = nullptr;
  for (auto s = run.sources.rbegin(); s != run.sources.rend(); ++s) {
    auto it = s->tags.find(tag);
    if (it == s->tags.end()) continue;
    if (found == nullptr) {
      found = &it->second;
      *from = &*s;
    } else if (*shadowed == nullptr) {
      *shadowed = &*s;
    }
  }
  return found;
}

std::set<std::string> TagsOf(const Run& run) {
  std::set<std::string> tags;
  for (const Source& s : run.sources) {
    for (const auto& [tag, series] : s.tags) tags.insert(tag);
  }
  return tags;
}

std::string Join(const std::set<std::string>& items) {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out.empty() ? "(none)" : out;
}

// Shortest text that reads back as the same number: as a float when the value is one (simple_value
// is a float, so 0.9f prints "0.9", not "0.899999976"), else as a double.
std::string ExactNumber(double v) {
  char buf[64];
  std::to_chars_result r;
  if (std::isfinite(v) && std::fabs(v) <= FLT_MAX &&
      static_cast<double>(static_cast<float>(v)) == v) {
    r = std::to_chars(buf, buf + sizeof(buf), static_cast<float>(v));
  } else {
    r = std::to_chars(buf, buf + sizeof(buf), v);
  }
  return std::string(buf, r.ptr);
}

std::string Printf(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

std::string JsonString(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string JsonNumber(double v) { return std::isfinite(v) ? ExactNumber(v) : "null"; }

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// Prints rows with each column right-aligned to its widest cell, two spaces apart.
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      if (c) line += "  ";
      line += std::string(width[c] - row[c].size(), ' ') + row[c];
    }
    line.erase(line.find_last_not_of(' ') + 1);  // a row ending in empty cells
    std::printf("%s\n", line.c_str());
  }
}

void PrintCsv(const std::vector<std::vector<std::string>>& rows) {
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      if (c) line += ',';
      line += CsvField(row[c]);
    }
    std::printf("%s\n", line.c_str());
  }
}

int ListTags(const std::vector<Run>& runs, const std::string& format) {
  if (format == "json") {
    std::string out = "{\"runs\":[";
    for (size_t r = 0; r < runs.size(); ++r) {
      out += std::string(r ? "," : "") + "{\"run\":" + JsonString(runs[r].name) + ",\"tags\":[";
      bool first = true;
      for (const Source& s : runs[r].sources) {
        for (const auto& [tag, series] : s.tags) {
          out += std::string(first ? "" : ",") + "{\"tag\":" + JsonString(tag) +
                 ",\"dir\":" + JsonString(s.dir) +
                 ",\"steps\":" + std::to_string(series.points.size()) +
                 ",\"first_step\":" + std::to_string(series.points.begin()->first) +
                 ",\"last_step\":" + std::to_string(series.points.rbegin()->first) + "}";
          first = false;
        }
      }
      out += "]}";
    }
    std::printf("%s]}\n", out.c_str());
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"run", "tag", "dir", "steps", "first_step", "last_step"}};
  for (const Run& run : runs) {
    for (const Source& s : run.sources) {
      for (const auto& [tag, series] : s.tags) {
        rows.push_back({run.name, tag, s.dir, std::to_string(series.points.size()),
                        std::to_string(series.points.begin()->first),
                        std::to_string(series.points.rbegin()->first)});
      }
    }
  }
  if (format == "csv") {
    PrintCsv(rows);
  } else {
    PrintTable(rows);
  }
  return kExitOk;
}

// Accuracy-like columns (the tag's name contains "acc", every value is in [0, 1]) print as %.4f so
// they line up; anything else as %.6g. csv and json print values exactly (ExactNumber).
bool AccuracyLike(const std::string& tag, const std::vector<const Series*>& columns) {
  std::string lower = tag;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("acc") == std::string::npos) return false;
  for (const Series* s : columns) {
    for (const auto& [step, v] : s->points) {
      if (!(v >= 0 && v <= 1)) return false;
    }
  }
  return true;
}

// "-- RUN: 'tag' from DIR (N files): S steps A..B; last V @B; max V @S; min V @S".
std::string Summary(const Run& run, const std::string& tag, const Series& series,
                    const Source& from, const Source* shadowed) {
  const auto& points = series.points;
  auto max = points.begin(), min = points.begin();
  for (auto it = points.begin(); it != points.end(); ++it) {
    if (it->second > max->second) max = it;
    if (it->second < min->second) min = it;
  }
  std::string line =
      "-- " + run.name + ": '" + tag + "' from " + from.dir + " (" +
      std::to_string(from.files.size()) + " files): " + std::to_string(points.size()) + " steps " +
      std::to_string(points.begin()->first) + ".." + std::to_string(points.rbegin()->first) +
      "; last " + Printf("%.6g", points.rbegin()->second) + " @" +
      std::to_string(points.rbegin()->first) + "; max " + Printf("%.6g", max->second) + " @" +
      std::to_string(max->first) + "; min " + Printf("%.6g", min->second) + " @" +
      std::to_string(min->first);
  if (series.events > points.size()) {
    line += "; steps logged again: " + std::to_string(series.events - points.size()) +
            " (the later value kept)";
  }
  if (shadowed != nullptr) line += "; " + shadowed->dir + " also has '" + tag + "' (not shown)";
  return line;
}

int RunResults(const ResultsFlags& flags) {
  int exit_code = kExitOk;
  std::vector<Run> runs;
  for (const std::string& arg : flags.paths) {
    std::vector<Run> found;
    Status s = ResolveArgument(arg, &found);
    if (!s.ok()) {
      PrintError(s);
      exit_code = kExitFailure;
      continue;
    }
    for (Run& run : found) {
      s = LoadRun(&run);
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
    int rc = ListTags(runs, flags.format);
    std::fflush(stdout);
    return rc == kExitOk ? exit_code : rc;
  }

  std::string tag = flags.tag;
  if (tag.empty()) {
    for (std::string_view candidate : kDefaultTags) {
      for (const Run& run : runs) {
        if (TagsOf(run).count(std::string(candidate))) tag = candidate;
      }
      if (!tag.empty()) break;
    }
    if (tag.empty()) {
      for (const Run& run : runs) {
        PrintError(run.name + " has none of the default tags (top_1_accuracy, accuracy, " +
                   "eval/accuracy, Accuracy); pass --tag, one of: " + Join(TagsOf(run)));
      }
      return kExitFailure;
    }
  }

  // The runs that have the tag become the columns.
  std::vector<const Run*> shown;
  std::vector<const Series*> columns;
  std::vector<std::string> summaries;  // printed after the table, on stderr
  for (const Run& run : runs) {
    const Source* from = nullptr;
    const Source* shadowed = nullptr;
    const Series* series = FindTag(run, tag, &from, &shadowed);
    if (series == nullptr) {
      PrintError("tag '" + tag + "' not found in " + run.name + " (" + std::to_string(run.Files()) +
                 " events files); its tags: " + Join(TagsOf(run)));
      exit_code = kExitFailure;
      continue;
    }
    summaries.push_back(Summary(run, tag, *series, *from, shadowed));
    shown.push_back(&run);
    columns.push_back(series);
  }
  if (columns.empty()) return kExitFailure;

  if (flags.format == "json") {
    std::string out = "{\"tag\":" + JsonString(tag) + ",\"runs\":[";
    for (size_t c = 0; c < columns.size(); ++c) {
      out += std::string(c ? "," : "") + "{\"run\":" + JsonString(shown[c]->name) + ",\"points\":[";
      bool first = true;
      for (const auto& [step, v] : columns[c]->points) {
        out += std::string(first ? "" : ",") + "{\"step\":" + std::to_string(step) +
               ",\"value\":" + JsonNumber(v) + "}";
        first = false;
      }
      out += "]}";
    }
    std::printf("%s]}\n", out.c_str());
  } else {
    std::set<int64_t> steps;
    for (const Series* s : columns) {
      for (const auto& [step, v] : s->points) steps.insert(step);
    }
    const bool csv = flags.format == "csv";
    const bool accuracy = AccuracyLike(tag, columns);
    std::vector<std::vector<std::string>> rows(1, {"step"});
    for (const Run* run : shown) rows[0].push_back(run->name);
    for (int64_t step : steps) {
      std::vector<std::string> row = {std::to_string(step)};
      for (const Series* s : columns) {
        auto it = s->points.find(step);
        if (it == s->points.end()) {
          row.emplace_back();
        } else if (csv) {
          row.push_back(ExactNumber(it->second));
        } else {
          row.push_back(Printf(accuracy ? "%.4f" : "%.6g", it->second));
        }
      }
      rows.push_back(std::move(row));
    }
    if (csv) {
      PrintCsv(rows);
    } else {
      PrintTable(rows);
    }
  }
  std::fflush(stdout);
  for (const std::string& line : summaries) std::fprintf(stderr, "%s\n", line.c_str());
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
