// Internal: the per-shard sidecar DIR/.sluice/<shard>.json, written when a shard is committed and
// read back by resume (shard_writer.cc) and by the manifest join (manifest.cc). This is its only
// writer and parser.
//
// Layout (JSON, keys sorted, 1-space indent): file, records, bytes, sha256, labels {"<label>": n},
// reencoded, input_bytes, rejects [{archive, member, reason}], plan_digest (the hash of everything
// that decides the shard's bytes; resume keeps a shard only when it matches).
#ifndef SLUICE_INGEST_SRC_SHARD_SIDECAR_H_
#define SLUICE_INGEST_SRC_SHARD_SIDECAR_H_

#include <string>

#include "sluice/formats/status.h"
#include "sluice/ingest/shard_writer.h"

namespace sluice::ingest {

struct ShardSidecar {
  ShardResult result;  // `resumed` is not stored: it describes a run, not the shard
  std::string plan_digest;

  // DIR/.sluice/<file>.json
  static std::string PathFor(const std::string& out_dir, const std::string& file);
  // NotFound when the shard has no sidecar (not complete); DataLoss when it is not a sidecar.
  static Result<ShardSidecar> Read(const std::string& out_dir, const std::string& file);
  // Atomic; DIR/.sluice must exist.
  Status Write(const std::string& out_dir) const;
};

}  // namespace sluice::ingest

#endif  // SLUICE_INGEST_SRC_SHARD_SIDECAR_H_
