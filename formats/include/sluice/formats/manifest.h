// The ingest manifest, DIR/manifest.json: the one contract between `sluice ingest` and every reader
// of its output (the trainer, predict, the Python interop scripts). This type is its only writer
// and its only parser; nobody else builds or walks that JSON.
//
// `sluice ingest` writes it last, so its presence means every shard of every split is complete.
// Layout (JSON, keys sorted, 2-space indent, trailing newline; formats/doc/formats.md):
//   {
//     "dataset": "imagenet",                       the ingest front-end
//     "inputs":  [{"path": ..., "bytes": ...}],     opaque here: whatever ingest recorded
//     "options": {...},                             opaque here: what changes the output bytes
//     "splits":  {"train": {"records": N,
//                           "shards": [{"bytes": B, "file": "train-00000-of-00004",
//                                       "labels": {"<label>": count, ...}, "records": n,
//                                       "reencoded": r, "sha256": "<hex>"}, ...]}, ...},
//     "tool":    "sluice <version>",
//     "totals":  {"bytes": ..., "records": ..., "reencoded": ..., "rejected": ..., "shards": ...}
//   }
// Only "splits" is required on read; a missing field reads as its default, and a field the writer
// leaves empty (tool, dataset, inputs, options) is omitted on write.
#ifndef SLUICE_FORMATS_MANIFEST_H_
#define SLUICE_FORMATS_MANIFEST_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sluice/formats/status.h"

namespace sluice::formats {

// One shard file, as it was when its writer committed it.
struct ManifestShard {
  std::string file;  // relative to the output directory
  uint64_t records = 0;
  uint64_t bytes = 0;
  std::string sha256;                  // lowercase hex of the file's bytes
  std::map<int64_t, uint64_t> labels;  // label -> records with that label
  uint64_t reencoded = 0;              // images re-encoded to fix them (CMYK, PNG named .JPEG)

  bool operator==(const ManifestShard&) const = default;
};

struct ManifestSplit {
  uint64_t records = 0;               // the sum over `shards`, as the writer counted it
  std::vector<ManifestShard> shards;  // in shard-index order

  bool operator==(const ManifestSplit&) const = default;
};

struct ManifestTotals {
  uint64_t shards = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t reencoded = 0;
  uint64_t rejected = 0;  // bad images skipped (listed in DIR/rejects.jsonl)

  bool operator==(const ManifestTotals&) const = default;
};

// A value type: copy it, compare it, no hidden state. Not tied to a directory; the functions that
// need one take it.
struct Manifest {
  std::string tool;         // "sluice 0.4.0"
  std::string dataset;      // "imagenet", "flowers", "folder", "cifar10"
  std::string inputs_json;  // serialized JSON value ("" = absent); ingest's business, kept verbatim
  std::string options_json;  // serialized JSON value ("" = absent)
  std::map<std::string, ManifestSplit> splits;
  ManifestTotals totals;

  bool operator==(const Manifest&) const = default;

  // DIR/manifest.json (spelled dir + "/manifest.json", as messages show it).
  static std::string PathIn(const std::string& dir);

  // Reads DIR/manifest.json. NotFound "<path> not found: --data-dir must be an output of `sluice
  // ingest`" when there is none; DataLoss "<path>: not a sluice manifest (no "splits")" when it is
  // not JSON or lacks "splits"; DataLoss naming the field when a field has the wrong type.
  static Result<Manifest> Read(const std::string& dir);
  // The same, from the file's text; `path` only names it in messages.
  static Result<Manifest> Parse(const std::string& text, const std::string& path);

  // Writes DIR/manifest.json atomically (tmp + fsync + rename). InvalidArgument when inputs_json or
  // options_json is not valid JSON.
  Status Write(const std::string& dir) const;
  // The file's bytes, as Write would write them.
  Result<std::string> Serialize() const;

  // Split names, sorted.
  std::vector<std::string> SplitNames() const;
  // The split the trainer evaluates on when the user names none: "validation" if present, else
  // "test".
  std::string DefaultEvalSplit() const;
  // NotFound "no split 'X' (has a, b)" without a path: callers prefix it with PathIn(dir)
  // (WithPrefix).
  Result<const ManifestSplit*> FindSplit(const std::string& name) const;
  // dir + "/" + file for each shard of `split`, in shard order; FindSplit's NotFound when it is
  // absent.
  Result<std::vector<std::string>> ShardPaths(const std::string& dir,
                                              const std::string& split) const;
  // 1 + the largest label in any split's histograms (0 when no shard has labels). Labels are
  // 0-based for flowers/folder/cifar10 and 1-based (0 = background) for imagenet, so this is the
  // width of the classifier either way.
  int64_t NumClasses() const;
};

}  // namespace sluice::formats

#endif  // SLUICE_FORMATS_MANIFEST_H_
