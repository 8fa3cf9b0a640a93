#include "sluice/train/results.h"

#include <algorithm>
#include <cctype>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>

#include "sluice/formats/events.h"
#include "sluice/train/csv.h"

namespace sluice::train {
namespace {

namespace fs = std::filesystem;

using Rows = std::vector<std::vector<std::string>>;

// ---------------------------------------------------------------------------------------------
// Finding runs

std::string TrimSlashes(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// The directories of DIR as a run: DIR/ and DIR/eval/, those holding events files only.
Result<std::vector<EventsDir>> RunDirs(const fs::path& dir) {
  std::vector<EventsDir> out;
  for (const fs::path& d : {dir, dir / "eval"}) {
    std::error_code ec;
    if (!fs::is_directory(d, ec)) continue;
    SLUICE_ASSIGN_OR_RETURN(std::vector<std::string> files, formats::ListEventFiles(d.string()));
    if (!files.empty()) out.push_back(EventsDir{d.string(), std::move(files), {}});
  }
  return out;
}

std::string Join(const std::set<std::string>& items) {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out.empty() ? "(none)" : out;
}

// ---------------------------------------------------------------------------------------------
// Number and row formatting

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

// Rows with each column right-aligned to its widest cell, two spaces apart.
std::string Table(const Rows& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      if (c) line += "  ";
      line += std::string(width[c] - row[c].size(), ' ') + row[c];
    }
    line.erase(line.find_last_not_of(' ') + 1);  // a row ending in empty cells
    out += line + "\n";
  }
  return out;
}

std::string Csv(const Rows& rows) {
  std::string out;
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      if (c) out += ',';
      out += CsvField(row[c]);
    }
    out += "\n";
  }
  return out;
}

// Accuracy-like columns (the tag's name contains "acc", every value is in [0, 1]) print as %.4f so
// they line up; anything else as %.6g.
bool AccuracyLike(const std::string& tag, std::span<const TagColumn> columns) {
  std::string lower = tag;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("acc") == std::string::npos) return false;
  for (const TagColumn& column : columns) {
    for (const auto& [step, v] : column.series->points) {
      if (!(v >= 0 && v <= 1)) return false;
    }
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Runs

size_t ResultsRun::FileCount() const {
  size_t n = 0;
  for (const EventsDir& d : dirs) n += d.files.size();
  return n;
}

std::set<std::string> ResultsRun::Tags() const {
  std::set<std::string> tags;
  for (const EventsDir& d : dirs) {
    for (const auto& [tag, series] : d.tags) tags.insert(tag);
  }
  return tags;
}

Result<ResultsFormat> ParseResultsFormat(std::string_view name) {
  if (name == "table") return ResultsFormat::kTable;
  if (name == "csv") return ResultsFormat::kCsv;
  if (name == "json") return ResultsFormat::kJson;
  return Status::InvalidArgument("unknown results format '" + std::string(name) +
                                 "' (table, csv or json)");
}

Result<std::vector<ResultsRun>> ResolveRuns(const std::string& arg) {
  const std::string name = TrimSlashes(arg);
  std::error_code ec;
  const fs::file_status st = fs::status(name, ec);
  if (!fs::exists(st)) return Status::NotFound("no such file or directory: " + arg);
  std::vector<ResultsRun> runs;
  if (!fs::is_directory(st)) {
    runs.push_back(ResultsRun{name, {EventsDir{name, {name}, {}}}});
    return runs;
  }
  SLUICE_ASSIGN_OR_RETURN(std::vector<EventsDir> own, RunDirs(name));
  if (!own.empty()) {
    runs.push_back(ResultsRun{name, std::move(own)});
    return runs;
  }
  std::vector<fs::path> subdirs;
  fs::directory_iterator it(name, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_directory(type_ec)) subdirs.push_back(it->path());
  }
  if (ec) return Status::IoError("list " + name + ": " + ec.message());
  std::sort(subdirs.begin(), subdirs.end());
  for (const fs::path& sub : subdirs) {
    SLUICE_ASSIGN_OR_RETURN(std::vector<EventsDir> dirs, RunDirs(sub));
    if (!dirs.empty()) runs.push_back(ResultsRun{sub.string(), std::move(dirs)});
  }
  if (runs.empty()) {
    return Status::NotFound("no events files (names containing \"tfevents\") in " + name + ", " +
                            name + "/eval or their subdirectories one level down");
  }
  return runs;
}

Status LoadRun(ResultsRun* run) {
  formats::ReadScalarsOptions options;
  options.allow_truncated_tail = true;
  for (EventsDir& dir : run->dirs) {
    for (const std::string& file : dir.files) {
      SLUICE_ASSIGN_OR_RETURN(std::vector<formats::ScalarEvent> scalars,
                              formats::ReadScalars(file, options));
      for (formats::ScalarEvent& e : scalars) {
        ScalarSeries& series = dir.tags[e.tag];
        series.points.insert_or_assign(e.step, e.value);
        ++series.events;
      }
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Choosing the tag

std::string DefaultTag(std::span<const ResultsRun> runs) {
  for (std::string_view candidate : kDefaultResultTags) {
    for (const ResultsRun& run : runs) {
      if (run.Tags().count(std::string(candidate))) return std::string(candidate);
    }
  }
  return "";
}

Status NoDefaultTagError(const ResultsRun& run) {
  std::string defaults;
  for (std::string_view tag : kDefaultResultTags) {
    defaults += (defaults.empty() ? "" : ", ") + std::string(tag);
  }
  return Status::NotFound(run.name + " has none of the default tags (" + defaults +
                          "); pass --tag, one of: " + Join(run.Tags()));
}

Result<TagColumn> FindTag(const ResultsRun& run, const std::string& tag) {
  TagColumn column;
  column.run = &run;
  // Newest directory first: DIR/eval/ comes last in run.dirs and wins.
  for (auto d = run.dirs.rbegin(); d != run.dirs.rend(); ++d) {
    auto it = d->tags.find(tag);
    if (it == d->tags.end()) continue;
    if (column.series == nullptr) {
      column.series = &it->second;
      column.from = &*d;
    } else if (column.shadowed == nullptr) {
      column.shadowed = &*d;
    }
  }
  if (column.series == nullptr) {
    return Status::NotFound("tag '" + tag + "' not found in " + run.name + " (" +
                            std::to_string(run.FileCount()) +
                            " events files); its tags: " + Join(run.Tags()));
  }
  return column;
}

// ---------------------------------------------------------------------------------------------
// Rendering

std::string RenderValues(const std::string& tag, std::span<const TagColumn> columns,
                         ResultsFormat format) {
  if (format == ResultsFormat::kJson) {
    std::string out = "{\"tag\":" + JsonString(tag) + ",\"runs\":[";
    for (size_t c = 0; c < columns.size(); ++c) {
      out += std::string(c ? "," : "") + "{\"run\":" + JsonString(columns[c].run->name) +
             ",\"points\":[";
      bool first = true;
      for (const auto& [step, v] : columns[c].series->points) {
        out += std::string(first ? "" : ",") + "{\"step\":" + std::to_string(step) +
               ",\"value\":" + JsonNumber(v) + "}";
        first = false;
      }
      out += "]}";
    }
    return out + "]}\n";
  }
  std::set<int64_t> steps;
  for (const TagColumn& column : columns) {
    for (const auto& [step, v] : column.series->points) steps.insert(step);
  }
  const bool csv = format == ResultsFormat::kCsv;
  const bool accuracy = AccuracyLike(tag, columns);
  Rows rows(1, {"step"});
  for (const TagColumn& column : columns) rows[0].push_back(column.run->name);
  for (int64_t step : steps) {
    std::vector<std::string> row = {std::to_string(step)};
    for (const TagColumn& column : columns) {
      auto it = column.series->points.find(step);
      if (it == column.series->points.end()) {
        row.emplace_back();
      } else if (csv) {
        row.push_back(ExactNumber(it->second));
      } else {
        row.push_back(Printf(accuracy ? "%.4f" : "%.6g", it->second));
      }
    }
    rows.push_back(std::move(row));
  }
  return csv ? Csv(rows) : Table(rows);
}

std::string RenderTagList(std::span<const ResultsRun> runs, ResultsFormat format) {
  if (format == ResultsFormat::kJson) {
    std::string out = "{\"runs\":[";
    for (size_t r = 0; r < runs.size(); ++r) {
      out += std::string(r ? "," : "") + "{\"run\":" + JsonString(runs[r].name) + ",\"tags\":[";
      bool first = true;
      for (const EventsDir& d : runs[r].dirs) {
        for (const auto& [tag, series] : d.tags) {
          out += std::string(first ? "" : ",") + "{\"tag\":" + JsonString(tag) +
                 ",\"dir\":" + JsonString(d.dir) +
                 ",\"steps\":" + std::to_string(series.points.size()) +
                 ",\"first_step\":" + std::to_string(series.points.begin()->first) +
                 ",\"last_step\":" + std::to_string(series.points.rbegin()->first) + "}";
          first = false;
        }
      }
      out += "]}";
    }
    return out + "]}\n";
  }
  Rows rows = {{"run", "tag", "dir", "steps", "first_step", "last_step"}};
  for (const ResultsRun& run : runs) {
    for (const EventsDir& d : run.dirs) {
      for (const auto& [tag, series] : d.tags) {
        rows.push_back({run.name, tag, d.dir, std::to_string(series.points.size()),
                        std::to_string(series.points.begin()->first),
                        std::to_string(series.points.rbegin()->first)});
      }
    }
  }
  return format == ResultsFormat::kCsv ? Csv(rows) : Table(rows);
}

std::string SummaryLine(const std::string& tag, const TagColumn& column) {
  const ScalarSeries& series = *column.series;
  const auto& points = series.points;
  auto max = points.begin(), min = points.begin();
  for (auto it = points.begin(); it != points.end(); ++it) {
    if (it->second > max->second) max = it;
    if (it->second < min->second) min = it;
  }
  std::string line =
      "-- " + column.run->name + ": '" + tag + "' from " + column.from->dir + " (" +
      std::to_string(column.from->files.size()) + " files): " + std::to_string(points.size()) +
      " steps " + std::to_string(points.begin()->first) + ".." +
      std::to_string(points.rbegin()->first) + "; last " + Printf("%.6g", points.rbegin()->second) +
      " @" + std::to_string(points.rbegin()->first) + "; max " + Printf("%.6g", max->second) +
      " @" + std::to_string(max->first) + "; min " + Printf("%.6g", min->second) + " @" +
      std::to_string(min->first);
  if (series.events > points.size()) {
    line += "; steps logged again: " + std::to_string(series.events - points.size()) +
            " (the later value kept)";
  }
  if (column.shadowed != nullptr) {
    line += "; " + column.shadowed->dir + " also has '" + tag + "' (not shown)";
  }
  return line;
}

}  // namespace sluice::train
