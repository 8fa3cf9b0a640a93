// Internal: the steps every dataset front-end shares once its splits are described.
#ifndef SLUICE_INGEST_SRC_RUN_INGEST_H_
#define SLUICE_INGEST_SRC_RUN_INGEST_H_

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "sluice/formats/example.h"
#include "sluice/ingest/datasets.h"
#include "sluice/ingest/shard_writer.h"

namespace sluice::ingest {

// Writes run.json, the shards of this task, and (single task) the manifest. `options_json` holds
// everything that changes output bytes; it becomes the resume fingerprint.
Result<IngestSummary> RunIngest(const std::string& dataset, const nlohmann::json& inputs,
                                const nlohmann::json& options_json, std::vector<SplitSpec>& splits,
                                const CommonOptions& common);

// {"path": p, "bytes": size} for the manifest's input list.
nlohmann::json InputJson(const std::string& path);

// Sets "image/encoded" by moving the bytes in (the image is the bulk of every record).
void SetEncodedImage(formats::Example* example, std::string&& bytes);

// Last path component: "a/b/c.JPEG" -> "c.JPEG".
std::string Basename(const std::string& path);

}  // namespace sluice::ingest

#endif  // SLUICE_INGEST_SRC_RUN_INGEST_H_
