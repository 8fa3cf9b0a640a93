// Writing the ingest manifest: DIR/manifest.json (its layout and its reader: formats::Manifest, in
// sluice/formats/manifest.h), written last, so its presence means the output is complete.
//
// At the start of a run every task writes DIR/.sluice/run.json (tool version, dataset, inputs with
// sizes, options, and each split's shard file names; src/run_info.h); each completed shard has its
// sidecar DIR/.sluice/<shard>.json (src/shard_sidecar.h). WriteManifest joins them: it fails, naming the first missing shard, unless
// every shard of every split is complete, then writes manifest.json (per shard: records, bytes,
// sha256, label histogram) and DIR/rejects.jsonl (archive, member, reason per skipped image). A
// single-process run calls it at the end; `sluice ingest merge-manifests DIR` calls it after the tasks
// of a scale-out job have all finished.
#ifndef SLUICE_INGEST_MANIFEST_H_
#define SLUICE_INGEST_MANIFEST_H_

#include <string>

#include "sluice/formats/status.h"

namespace sluice::ingest {

// Removes DIR/manifest.json (a new run must not leave an old manifest claiming completeness).
Status RemoveManifest(const std::string& out_dir);

struct ManifestSummary {
  uint64_t shards = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t rejects = 0;
  uint64_t reencoded = 0;
};
Result<ManifestSummary> WriteManifest(const std::string& out_dir);

}  // namespace sluice::ingest

#endif  // SLUICE_INGEST_MANIFEST_H_
