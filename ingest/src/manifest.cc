#include "sluice/ingest/manifest.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "run_info.h"
#include "shard_sidecar.h"
#include "sluice/formats/file_util.h"
#include "sluice/formats/manifest.h"

namespace sluice::ingest {

namespace fs = std::filesystem;
using nlohmann::json;

Status RemoveManifest(const std::string& out_dir) {
  const std::string path = formats::Manifest::PathIn(out_dir);
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) return Status::IoError("remove " + path + ": " + ec.message());
  return Status::Ok();
}

Result<ManifestSummary> WriteManifest(const std::string& out_dir) {
  SLUICE_ASSIGN_OR_RETURN(RunInfo run, RunInfo::Read(out_dir));
  formats::Manifest manifest;
  manifest.tool = run.tool;
  manifest.dataset = run.dataset;
  if (!run.inputs.is_null()) manifest.inputs_json = run.inputs.dump();
  if (!run.options.is_null()) manifest.options_json = run.options.dump();

  ManifestSummary summary;
  std::string rejects;  // DIR/rejects.jsonl: one JSON object per skipped image
  for (const auto& [split, files] : run.splits) {
    formats::ManifestSplit& out = manifest.splits[split];
    for (const std::string& file : files) {
      auto sidecar = ShardSidecar::Read(out_dir, file);
      if ((!sidecar.ok() && sidecar.status().IsNotFound()) ||
          !formats::FileExists((fs::path(out_dir) / file).string())) {
        return Status::NotFound("shard " + file + " of split " + split + " is not complete (no " +
                                ShardSidecar::PathFor(out_dir, file) +
                                "); run the missing tasks (or --resume) first");
      }
      if (!sidecar.ok()) return sidecar.status();
      const ShardResult& r = sidecar->result;
      for (const Reject& x : r.rejects) {
        rejects += json({{"split", split},
                         {"shard", file},
                         {"archive", x.source},
                         {"member", x.member},
                         {"reason", x.reason}})
                       .dump() +
                   "\n";
        ++summary.rejects;
      }
      out.records += r.records;
      summary.records += r.records;
      summary.bytes += r.bytes;
      summary.reencoded += r.reencoded;
      ++summary.shards;
      out.shards.push_back({file, r.records, r.bytes, r.sha256, r.labels, r.reencoded});
    }
  }
  manifest.totals = {summary.shards, summary.records, summary.bytes, summary.reencoded,
                     summary.rejects};
  SLUICE_RETURN_IF_ERROR(
      formats::WriteFileAtomically((fs::path(out_dir) / "rejects.jsonl").string(), rejects));
  SLUICE_RETURN_IF_ERROR(manifest.Write(out_dir));
  return summary;
}

}  // namespace sluice::ingest
