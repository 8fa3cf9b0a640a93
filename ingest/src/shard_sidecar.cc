#include "shard_sidecar.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "sluice/formats/file_util.h"

namespace sluice::ingest {

namespace fs = std::filesystem;
using nlohmann::json;

std::string ShardSidecar::PathFor(const std::string& out_dir, const std::string& file) {
  return (fs::path(out_dir) / ".sluice" / (file + ".json")).string();
}

Status ShardSidecar::Write(const std::string& out_dir) const {
  const ShardResult& r = result;
  json labels = json::object();
  for (const auto& [label, n] : r.labels) labels[std::to_string(label)] = n;
  json rejects = json::array();
  for (const Reject& x : r.rejects) {
    rejects.push_back({{"archive", x.source}, {"member", x.member}, {"reason", x.reason}});
  }
  const json j = {{"file", r.file},
                  {"records", r.records},
                  {"bytes", r.bytes},
                  {"sha256", r.sha256},
                  {"labels", labels},
                  {"reencoded", r.reencoded},
                  {"input_bytes", r.input_bytes},
                  {"rejects", rejects},
                  {"plan_digest", plan_digest}};
  return formats::WriteFileAtomically(PathFor(out_dir, r.file), j.dump(1) + "\n");
}

Result<ShardSidecar> ShardSidecar::Read(const std::string& out_dir, const std::string& file) {
  const std::string path = PathFor(out_dir, file);
  SLUICE_ASSIGN_OR_RETURN(std::string text, formats::ReadFile(path));
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::DataLoss(path + ": invalid JSON");
  // A field of the wrong type makes nlohmann throw type_error; it ends here as DataLoss, so a
  // damaged sidecar reads as "not complete", never as an exception out of ingest.
  try {
    ShardSidecar s;
    ShardResult& r = s.result;
    r.file = j.value("file", file);
    r.records = j.value("records", uint64_t{0});
    r.bytes = j.value("bytes", uint64_t{0});
    r.sha256 = j.value("sha256", "");
    r.reencoded = j.value("reencoded", uint64_t{0});
    r.input_bytes = j.value("input_bytes", uint64_t{0});
    // Bound to locals: iterating items() of the temporary j.value() returns would dangle.
    const json labels = j.value("labels", json::object());
    for (const auto& [k, v] : labels.items()) r.labels[std::stoll(k)] = v.get<uint64_t>();
    const json rejects = j.value("rejects", json::array());
    for (const json& x : rejects) {
      r.rejects.push_back({x.value("archive", ""), x.value("member", ""), x.value("reason", "")});
    }
    s.plan_digest = j.value("plan_digest", "");
    return s;
  } catch (const std::exception& e) {  // nlohmann's type_error, std::stoll's invalid_argument
    return Status::DataLoss(path + ": not a shard sidecar (" + e.what() + ")");
  }
}

}  // namespace sluice::ingest
