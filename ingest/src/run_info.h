// Internal: the run description DIR/.sluice/run.json. Every task of a run writes it first
// (run_ingest.cc); the manifest join reads it (manifest.cc) to learn which shards make the output
// complete and copies its description fields into manifest.json. This is its only writer and
// parser.
//
// Layout (JSON, keys sorted, 2-space indent): tool, dataset, inputs, options (what the front-end
// recorded), splits {name: [shard file, ...] in shard-index order}.
#ifndef SLUICE_INGEST_SRC_RUN_INFO_H_
#define SLUICE_INGEST_SRC_RUN_INFO_H_

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sluice/formats/status.h"

namespace sluice::ingest {

struct RunInfo {
  std::string tool;        // "sluice <version>"
  std::string dataset;     // "imagenet", "flowers", "folder", "cifar10"
  nlohmann::json inputs;   // [{"path", "bytes"}, ...] (InputJson)
  nlohmann::json options;  // everything besides the inputs that changes the output bytes
  std::map<std::string, std::vector<std::string>> splits;

  // Creates DIR/.sluice and writes run.json there atomically.
  Status Write(const std::string& out_dir) const;
  // NotFound when there is none (no run started in DIR); DataLoss when it is not a run description.
  static Result<RunInfo> Read(const std::string& out_dir);
};

}  // namespace sluice::ingest

#endif  // SLUICE_INGEST_SRC_RUN_INFO_H_
