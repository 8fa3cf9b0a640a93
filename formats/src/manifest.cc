#include "sluice/formats/manifest.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "sluice/formats/file_util.h"

namespace sluice::formats {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------------
// Field readers: a missing key keeps the default (older manifests lack "tool" and "totals"); a
// present key of the wrong type is DataLoss naming the field, never an exception out of nlohmann.

Status GetUint(const json& obj, const char* key, const std::string& where, uint64_t* out) {
  auto it = obj.find(key);
  if (it == obj.end()) return Status::Ok();
  if (it->is_number_unsigned()) {
    *out = it->get<uint64_t>();
  } else if (it->is_number_integer() && it->get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(it->get<int64_t>());
  } else {
    return Status::DataLoss(where + "." + key + " is not a count: " + it->dump());
  }
  return Status::Ok();
}

Status GetString(const json& obj, const char* key, const std::string& where, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end()) return Status::Ok();
  if (!it->is_string())
    return Status::DataLoss(where + "." + key + " is not a string: " + it->dump());
  *out = it->get<std::string>();
  return Status::Ok();
}

Status CheckObject(const json& j, const std::string& where) {
  if (!j.is_object()) return Status::DataLoss(where + " is not an object: " + j.dump());
  return Status::Ok();
}

Result<ManifestShard> ParseShard(const json& j, const std::string& where) {
  SLUICE_RETURN_IF_ERROR(CheckObject(j, where));
  ManifestShard shard;
  SLUICE_RETURN_IF_ERROR(GetString(j, "file", where, &shard.file));
  if (shard.file.empty()) return Status::DataLoss(where + " names no file");
  SLUICE_RETURN_IF_ERROR(GetUint(j, "records", where, &shard.records));
  SLUICE_RETURN_IF_ERROR(GetUint(j, "bytes", where, &shard.bytes));
  SLUICE_RETURN_IF_ERROR(GetString(j, "sha256", where, &shard.sha256));
  SLUICE_RETURN_IF_ERROR(GetUint(j, "reencoded", where, &shard.reencoded));
  if (auto labels = j.find("labels"); labels != j.end()) {
    SLUICE_RETURN_IF_ERROR(CheckObject(*labels, where + ".labels"));
    for (const auto& [key, count] : labels->items()) {
      // Keys are decimal labels because JSON object keys must be strings.
      int64_t label = 0;
      auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), label);
      if (ec != std::errc() || end != key.data() + key.size()) {
        return Status::DataLoss(where + ".labels: '" + key + "' is not an integer label");
      }
      uint64_t n = 0;
      SLUICE_RETURN_IF_ERROR(GetUint(*labels, key.c_str(), where + ".labels", &n));
      shard.labels[label] = n;
    }
  }
  return shard;
}

// `text` must hold one JSON value; "" means the field is absent.
Status EmbedOpaque(const std::string& text, const char* key, json* out) {
  if (text.empty()) return Status::Ok();
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return Status::InvalidArgument(std::string("manifest ") + key + " is not JSON: " + text);
  }
  (*out)[key] = std::move(value);
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Reading and writing

std::string Manifest::PathIn(const std::string& dir) { return dir + "/manifest.json"; }

Result<Manifest> Manifest::Read(const std::string& dir) {
  const std::string path = PathIn(dir);
  auto text = ReadFile(path);
  if (!text.ok()) {
    if (text.status().IsNotFound()) {
      return Status::NotFound(path + " not found: --data-dir must be an output of `sluice ingest`");
    }
    return text.status();
  }
  return Parse(*text, path);
}

Result<Manifest> Manifest::Parse(const std::string& text, const std::string& path) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("splits")) {
    return Status::DataLoss(path + ": not a sluice manifest (no \"splits\")");
  }
  Manifest m;
  SLUICE_RETURN_IF_ERROR(GetString(j, "tool", path, &m.tool));
  SLUICE_RETURN_IF_ERROR(GetString(j, "dataset", path, &m.dataset));
  if (auto it = j.find("inputs"); it != j.end()) m.inputs_json = it->dump();
  if (auto it = j.find("options"); it != j.end()) m.options_json = it->dump();
  const json& splits = j["splits"];
  SLUICE_RETURN_IF_ERROR(CheckObject(splits, path + ": splits"));
  for (const auto& [name, split_json] : splits.items()) {
    const std::string where = path + ": splits." + name;
    SLUICE_RETURN_IF_ERROR(CheckObject(split_json, where));
    ManifestSplit& split = m.splits[name];
    SLUICE_RETURN_IF_ERROR(GetUint(split_json, "records", where, &split.records));
    if (auto shards = split_json.find("shards"); shards != split_json.end()) {
      if (!shards->is_array()) return Status::DataLoss(where + ".shards is not an array");
      for (size_t i = 0; i < shards->size(); ++i) {
        SLUICE_ASSIGN_OR_RETURN(
            ManifestShard shard,
            ParseShard((*shards)[i], where + ".shards[" + std::to_string(i) + "]"));
        split.shards.push_back(std::move(shard));
      }
    }
  }
  if (auto totals = j.find("totals"); totals != j.end()) {
    const std::string where = path + ": totals";
    SLUICE_RETURN_IF_ERROR(CheckObject(*totals, where));
    SLUICE_RETURN_IF_ERROR(GetUint(*totals, "shards", where, &m.totals.shards));
    SLUICE_RETURN_IF_ERROR(GetUint(*totals, "records", where, &m.totals.records));
    SLUICE_RETURN_IF_ERROR(GetUint(*totals, "bytes", where, &m.totals.bytes));
    SLUICE_RETURN_IF_ERROR(GetUint(*totals, "reencoded", where, &m.totals.reencoded));
    SLUICE_RETURN_IF_ERROR(GetUint(*totals, "rejected", where, &m.totals.rejected));
  }
  return m;
}

Result<std::string> Manifest::Serialize() const {
  // nlohmann's default object is a std::map, so keys come out sorted at every level: the layout
  // readers (and the byte-identity tests of scale-out against one process) see.
  json j = json::object();
  if (!tool.empty()) j["tool"] = tool;
  if (!dataset.empty()) j["dataset"] = dataset;
  SLUICE_RETURN_IF_ERROR(EmbedOpaque(inputs_json, "inputs", &j));
  SLUICE_RETURN_IF_ERROR(EmbedOpaque(options_json, "options", &j));
  json splits_json = json::object();
  for (const auto& [name, split] : splits) {
    json shards = json::array();
    for (const ManifestShard& s : split.shards) {
      json labels = json::object();
      for (const auto& [label, n] : s.labels) labels[std::to_string(label)] = n;
      shards.push_back({{"file", s.file},
                        {"records", s.records},
                        {"bytes", s.bytes},
                        {"sha256", s.sha256},
                        {"labels", std::move(labels)},
                        {"reencoded", s.reencoded}});
    }
    splits_json[name] = {{"records", split.records}, {"shards", std::move(shards)}};
  }
  j["splits"] = std::move(splits_json);
  j["totals"] = {{"shards", totals.shards},
                 {"records", totals.records},
                 {"bytes", totals.bytes},
                 {"reencoded", totals.reencoded},
                 {"rejected", totals.rejected}};
  return j.dump(2) + "\n";
}

Status Manifest::Write(const std::string& dir) const {
  SLUICE_ASSIGN_OR_RETURN(std::string text, Serialize());
  return WriteFileAtomically(PathIn(dir), text);
}

// ---------------------------------------------------------------------------------------------------
// Queries for readers of an ingest output

std::vector<std::string> Manifest::SplitNames() const {
  std::vector<std::string> names;
  for (const auto& [name, split] : splits) names.push_back(name);
  return names;
}

std::string Manifest::DefaultEvalSplit() const {
  return splits.contains("validation") ? "validation" : "test";
}

Result<const ManifestSplit*> Manifest::FindSplit(const std::string& name) const {
  auto it = splits.find(name);
  if (it != splits.end()) return &it->second;
  std::string names;
  for (const auto& [n, split] : splits) names += (names.empty() ? "" : ", ") + n;
  return Status::NotFound("no split '" + name + "' (has " + names + ")");
}

Result<std::vector<std::string>> Manifest::ShardPaths(const std::string& dir,
                                                      const std::string& split) const {
  SLUICE_ASSIGN_OR_RETURN(const ManifestSplit* s, FindSplit(split));
  std::vector<std::string> paths;
  for (const ManifestShard& shard : s->shards) paths.push_back(dir + "/" + shard.file);
  return paths;
}

int64_t Manifest::NumClasses() const {
  int64_t max_label = -1;
  for (const auto& [name, split] : splits) {
    for (const ManifestShard& shard : split.shards) {
      if (!shard.labels.empty()) max_label = std::max(max_label, shard.labels.rbegin()->first);
    }
  }
  return max_label + 1;
}

}  // namespace sluice::formats
