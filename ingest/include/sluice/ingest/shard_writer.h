// Writes one dataset split as TFRecord shards: the part of ingest that every dataset shares.
//
// Given the split's samples in sorted order, the writer shuffles them with a seeded generator of our
// own (SplitMix64 + Fisher-Yates; the references use CPython's `random` over unsorted globs, which
// nobody can reproduce), cuts the permutation into `num_shards` contiguous runs whose sizes differ by at
// most one, and writes each shard as a unit of work: read its members (pread, or from a streamed
// batch for compressed archives), build each Example, write `<name>.tmp`, fsync, rename. Shards are
// independent, so output bytes do not depend on the thread count, and a task of a scale-out job
// (`task_index` of `num_tasks`) writes shards index % num_tasks == task_index of the same plan.
//
// Per completed shard a sidecar `DIR/.sluice/<shard>.json` records records, bytes, sha256, the label
// histogram, rejects and a digest of the plan that produced it; `resume` keeps a shard whose sidecar
// digest and file checksum match. manifest.json (written by the caller, last) is built from sidecars.
//
// Bad samples (the builder returns an error) are skipped and reported; more than `max_bad` in total
// fails the run. Errors reading the input itself are fatal at once.
#ifndef SLUICE_INGEST_SHARD_WRITER_H_
#define SLUICE_INGEST_SHARD_WRITER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sluice/formats/status.h"
#include "sluice/ingest/archive.h"

namespace sluice::ingest {

struct Sample {
  size_t member = 0;  // index into the split's member list
  int64_t label = 0;  // for the histogram
  size_t tag = 0;     // dataset-specific (an index into the caller's own tables)
};

// What the builder made of one sample.
struct BuiltRecord {
  std::string example;   // serialized tf.Example
  bool reencoded = false;
};

// Builds a record from a sample and its bytes. An error is a bad sample (skipped, reported).
using RecordBuilder = std::function<Result<BuiltRecord>(const Sample&, std::string&& bytes)>;

struct Reject {
  std::string source;
  std::string member;
  std::string reason;
};

struct ShardResult {
  std::string file;
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t input_bytes = 0;
  uint64_t reencoded = 0;
  std::string sha256;
  std::map<int64_t, uint64_t> labels;
  std::vector<Reject> rejects;
  bool resumed = false;  // kept from an earlier run
};

struct SplitSpec {
  std::string name;                      // "train"
  InputSource* source = nullptr;         // listed already
  const std::vector<Member>* members = nullptr;
  std::vector<Sample> samples;           // in sorted (canonical) order
  int num_shards = 1;
  // printf-style, given (index, num_shards): "train-%05d-of-%05d".
  std::string file_pattern;
  RecordBuilder build;
};

struct WriterOptions {
  std::string out_dir;
  uint64_t seed = 0;
  int threads = 0;                 // 0: all cores
  int num_tasks = 1;
  int task_index = 0;
  bool resume = false;
  int64_t max_bad = 100;
  bool write_index = false;        // DALI .idx beside each shard
  uint64_t memory_budget = uint64_t{1} << 30;  // bytes buffered per streamed batch
  // Mixed into the plan digest: everything besides the input that changes the bytes of a shard.
  std::string options_fingerprint;
};

// The shuffled, balanced assignment of sample positions to shards.
std::vector<std::vector<size_t>> PlanShards(size_t num_samples, int num_shards, uint64_t seed);

// Writes this task's shards of every split. Results for every shard of the plan that this task owns
// (in shard order) are appended to *results, keyed by split name.
Status WriteSplits(std::vector<SplitSpec>& splits, const WriterOptions& options,
                   std::map<std::string, std::vector<ShardResult>>* results);

std::string ShardFileName(const std::string& pattern, int index, int num_shards);

}  // namespace sluice::ingest

#endif  // SLUICE_INGEST_SHARD_WRITER_H_
