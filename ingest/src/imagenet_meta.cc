#include "sluice/ingest/imagenet_meta.h"

#include <cctype>
#include <cstdio>
#include <string>

#include "text_util.h"

namespace sluice::ingest {
namespace {

constexpr std::string_view kValPrefix = "ILSVRC2012_val_";

// Splits text into lines (without '\n'); a final newline does not make an extra empty line.
std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) {
      lines.push_back(text);
      break;
    }
    lines.push_back(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
  return lines;
}

// Drops trailing lines that are blank after stripping.
void DropTrailingBlankLines(std::vector<std::string_view>* lines) {
  while (!lines->empty() && Strip(lines->back()).empty()) lines->pop_back();
}

Status LineError(std::string_view name, size_t line, std::string_view reason) {
  return Status::DataLoss(std::string(name) + ":" + std::to_string(line) + ": " +
                          std::string(reason));
}

}  // namespace

bool IsWnid(std::string_view s) {
  if (s.size() != 9 || s[0] != 'n') return false;
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

Result<std::vector<std::string>> ParseSynsetList(std::string_view text, std::string_view name) {
  std::vector<std::string_view> lines = SplitLines(text);
  DropTrailingBlankLines(&lines);
  if (lines.empty()) return Status::DataLoss(std::string(name) + ": synset list is empty");
  std::vector<std::string> synsets;
  synsets.reserve(lines.size());
  std::set<std::string_view> seen;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view wnid = Strip(lines[i]);
    if (wnid.empty()) return LineError(name, i + 1, "blank line inside the synset list");
    if (!IsWnid(wnid)) {
      return LineError(name, i + 1, "malformed synset " + Quote(wnid) + " (want 'n' + 8 digits)");
    }
    if (!seen.insert(wnid).second) {
      return LineError(name, i + 1, "duplicate synset " + std::string(wnid));
    }
    synsets.emplace_back(wnid);
  }
  return synsets;
}

Result<std::map<std::string, std::string>> ParseMetadata(std::string_view text,
                                                         std::string_view name) {
  std::vector<std::string_view> lines = SplitLines(text);
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (Strip(lines[i]).empty()) continue;
    // Split before stripping, so "wnid<TAB>" reads as empty text rather than as a missing tab.
    std::string_view line = lines[i];
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
    size_t tab = line.find('\t');
    if (tab == std::string_view::npos) {
      return LineError(name, i + 1, "no tab between synset and text in " + Quote(line));
    }
    std::string_view wnid = Strip(line.substr(0, tab));
    std::string_view human = Strip(line.substr(tab + 1));
    if (!IsWnid(wnid)) {
      return LineError(name, i + 1, "malformed synset " + Quote(wnid) + " (want 'n' + 8 digits)");
    }
    if (human.empty()) return LineError(name, i + 1, "empty text for " + std::string(wnid));
    if (human.find('\t') != std::string_view::npos) {
      return LineError(name, i + 1, "more than one tab in " + Quote(line));
    }
    if (!out.emplace(std::string(wnid), std::string(human)).second) {
      return LineError(name, i + 1, "duplicate synset " + std::string(wnid));
    }
  }
  if (out.empty()) return Status::DataLoss(std::string(name) + ": metadata file is empty");
  return out;
}

Result<std::vector<std::string>> ParseValidationLabels(std::string_view text, std::string_view name,
                                                       size_t expected_count,
                                                       const std::set<std::string>* known_synsets) {
  std::vector<std::string_view> lines = SplitLines(text);
  DropTrailingBlankLines(&lines);
  // The count is checked first: a wrong file (the synset list, a truncated download) is then
  // reported as such rather than by its first odd line.
  if (expected_count != 0 && lines.size() != expected_count) {
    return Status::DataLoss(std::string(name) + ": has " + std::to_string(lines.size()) +
                            " labels, expected " + std::to_string(expected_count) +
                            " (one synset per validation image)");
  }
  if (lines.empty())
    return Status::DataLoss(std::string(name) + ": validation label file is empty");
  std::vector<std::string> labels;
  labels.reserve(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view wnid = Strip(lines[i]);
    if (wnid.empty()) return LineError(name, i + 1, "blank line inside the label file");
    if (!IsWnid(wnid)) {
      return LineError(name, i + 1, "malformed synset " + Quote(wnid) + " (want 'n' + 8 digits)");
    }
    std::string label(wnid);
    if (known_synsets != nullptr && known_synsets->count(label) == 0) {
      return LineError(name, i + 1, "unknown synset " + label + " (not in the synset list)");
    }
    labels.push_back(std::move(label));
  }
  return labels;
}

Result<int> ValidationIndexFromName(std::string_view basename) {
  std::string_view s = basename;
  if (size_t slash = s.rfind('/'); slash != std::string_view::npos) s.remove_prefix(slash + 1);
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("validation image name " + Quote(basename) + ": " +
                                   std::string(why) +
                                   " (want ILSVRC2012_val_NNNNNNNN.JPEG, 7 or 8 digits)");
  };
  if (s.substr(0, kValPrefix.size()) != kValPrefix) return bad("no ILSVRC2012_val_ prefix");
  s.remove_prefix(kValPrefix.size());
  size_t dot = s.find('.');
  if (dot == std::string_view::npos) return bad("no extension");
  std::string_view digits = s.substr(0, dot);
  std::string_view ext = s.substr(dot);
  if (ext != ".JPEG" && ext != ".jpeg") return bad("extension is not .JPEG");
  if (digits.size() != 7 && digits.size() != 8) return bad("index is not 7 or 8 digits");
  int index = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return bad("index is not a number");
    index = index * 10 + (c - '0');  // At most 8 digits: cannot overflow int.
  }
  if (index == 0) return bad("index 0 (validation images count from 1)");
  return index;
}

}  // namespace sluice::ingest
