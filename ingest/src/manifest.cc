#include "sluice/ingest/manifest.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "sluice/formats/file_util.h"

namespace sluice::ingest {

namespace fs = std::filesystem;
using nlohmann::json;

Status WriteRunInfo(const std::string& out_dir, const std::string& run_json) {
  SLUICE_RETURN_IF_ERROR(formats::CreateDirectories((fs::path(out_dir) / ".sluice").string()));
  return formats::WriteFileAtomically((fs::path(out_dir) / ".sluice" / "run.json").string(),
                                      run_json);
}

Status RemoveManifest(const std::string& out_dir) {
  std::error_code ec;
  fs::remove(fs::path(out_dir) / "manifest.json", ec);
  if (ec) return Status::IoError("remove " + out_dir + "/manifest.json: " + ec.message());
  return Status::Ok();
}

Result<ManifestSummary> WriteManifest(const std::string& out_dir) {
  const std::string run_path = (fs::path(out_dir) / ".sluice" / "run.json").string();
  SLUICE_ASSIGN_OR_RETURN(std::string run_text, formats::ReadFile(run_path));
  json run = json::parse(run_text, nullptr, false);
  if (run.is_discarded() || !run.contains("splits")) {
    return Status::DataLoss(run_path + ": not a sluice run description");
  }
  ManifestSummary summary;
  json manifest = run;
  std::string rejects;
  json splits = json::object();
  for (const auto& [split, files] : run["splits"].items()) {
    json shards = json::array();
    uint64_t records = 0;
    for (const auto& f : files) {
      const std::string file = f.get<std::string>();
      const std::string sidecar = (fs::path(out_dir) / ".sluice" / (file + ".json")).string();
      auto text = formats::ReadFile(sidecar);
      if (!text.ok() || !formats::FileExists((fs::path(out_dir) / file).string())) {
        return Status::NotFound("shard " + file + " of split " + split +
                                " is not complete (no " + sidecar +
                                "); run the missing tasks (or --resume) first");
      }
      json s = json::parse(*text, nullptr, false);
      if (s.is_discarded()) return Status::DataLoss(sidecar + ": invalid JSON");
      for (const auto& r : s["rejects"]) {
        rejects += json({{"split", split}, {"shard", file}, {"archive", r["archive"]},
                         {"member", r["member"]}, {"reason", r["reason"]}})
                       .dump() +
                   "\n";
        ++summary.rejects;
      }
      records += s.value("records", uint64_t{0});
      summary.records += s.value("records", uint64_t{0});
      summary.bytes += s.value("bytes", uint64_t{0});
      summary.reencoded += s.value("reencoded", uint64_t{0});
      ++summary.shards;
      shards.push_back({{"file", file},
                        {"records", s["records"]},
                        {"bytes", s["bytes"]},
                        {"sha256", s["sha256"]},
                        {"labels", s["labels"]},
                        {"reencoded", s["reencoded"]}});
    }
    splits[split] = {{"records", records}, {"shards", shards}};
  }
  manifest["splits"] = splits;
  manifest["totals"] = {{"shards", summary.shards},
                        {"records", summary.records},
                        {"bytes", summary.bytes},
                        {"reencoded", summary.reencoded},
                        {"rejected", summary.rejects}};
  SLUICE_RETURN_IF_ERROR(
      formats::WriteFileAtomically((fs::path(out_dir) / "rejects.jsonl").string(), rejects));
  SLUICE_RETURN_IF_ERROR(formats::WriteFileAtomically((fs::path(out_dir) / "manifest.json").string(),
                                                      manifest.dump(2) + "\n"));
  return summary;
}

}  // namespace sluice::ingest
