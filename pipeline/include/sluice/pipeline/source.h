// The epoch plan and the record reader of the pipeline: the graph's serial `source` + `read`
// stages. Given the shard files, it yields the serialized records of one epoch in plan order.
//
// Plan of epoch e (all draws from Philox keyed by the run seed and e, so the same on every run,
// rank and thread count):
//   1. files in sorted order, shuffled per epoch when `shuffle`;
//   2. worker sharding: file k of that order belongs to worker k % num_workers;
//   3. interleave: `cycle_length` files open at once, one record from each in turn (TensorFlow's
//      interleave with block_length 1); an exhausted file is replaced by the next in the plan;
//   4. a shuffle buffer of `shuffle_buffer` records (TensorFlow's shuffle: fill, then emit a random
//      slot and refill it), when `shuffle`;
//   5. with num_workers > 1, every worker stops after the same number of records: the smallest
//      worker's record count rounded down to whole batches (counts come from the .idx files beside
//      the shards when present, otherwise from a header-only walk of each file).
// With `global_shuffle`, steps 1-4 are replaced by one uniform permutation of every record of the
// worker's share of the data (records read at random offsets: needs the per-file record index,
// built as in 5).
//
// Every record's CRCs are checked. A corrupt or truncated record fails the epoch with the file and
// offset (OnCorrupt::kFail), or (kSkipShard) ends that file there, counts it in
// skipped_shards(), and the epoch goes on.
//
// Memory: cycle_length read buffers plus shuffle_buffer records.
// Thread-compatibility: one thread at a time (the graph's serial source stage).
#ifndef SLUICE_PIPELINE_SOURCE_H_
#define SLUICE_PIPELINE_SOURCE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/formats/status.h"

namespace sluice::pipeline {

enum class OnCorrupt { kFail, kSkipShard };

struct SourceOptions {
  // Shard files or globs ("DIR/train-*"): Create expands them (ExpandInputs) and sorts the result.
  std::vector<std::string> files;
  uint64_t seed = 0;
  // Shuffle files and records per epoch. Unset: RecordSource shuffles; a Pipeline shuffles for the
  // train presets only.
  std::optional<bool> shuffle;
  bool global_shuffle = false;
  int cycle_length = 4;
  int shuffle_buffer = 256;
  int num_workers = 1;
  int worker_index = 0;
  int batch_size = 1;  // for equal per-worker record counts (step 5); a Pipeline sets its own
  OnCorrupt on_corrupt = OnCorrupt::kFail;
};

// Where a record came from, for error messages and the trace.
struct RecordOrigin {
  int file = -1;        // index into files()
  uint64_t record = 0;  // the record's number in its file
  uint64_t offset = 0;  // byte offset of its header
};

// Expands each argument that contains a glob character (* ? [) into the matching files, sorted;
// other arguments are taken as they are. NotFound when a pattern matches nothing or a named file
// is missing. ".idx" files are never matched by a pattern.
Result<std::vector<std::string>> ExpandInputs(const std::vector<std::string>& patterns);

class RecordSource {
 public:
  ~RecordSource();
  static Result<std::unique_ptr<RecordSource>> Create(SourceOptions options);

  // Starts epoch `epoch` (any order; a resumed run may start at any epoch).
  Status StartEpoch(uint32_t epoch);
  // The next record of the epoch: *record stays valid until the next call. EndOfData at the end of
  // the epoch; DataLoss/IoError naming file and offset otherwise.
  Status Next(std::string_view* record, RecordOrigin* origin);

  const std::vector<std::string>& files() const { return options_.files; }
  // Records this worker yields per epoch; -1 when unknown (num_workers 1 without global shuffle:
  // the files are not counted up front).
  int64_t records_per_epoch() const { return records_per_epoch_; }
  uint64_t skipped_shards() const { return skipped_shards_; }

  class Impl;

 private:
  explicit RecordSource(SourceOptions options);
  SourceOptions options_;
  int64_t records_per_epoch_ = -1;
  uint64_t skipped_shards_ = 0;
  std::unique_ptr<Impl> impl_;
};

// A record of the run and where the plan put it.
struct PlannedRecord {
  RecordOrigin origin;
  uint32_t epoch = 0;
  uint64_t index = 0;  // position in the epoch's plan
};

// The run's records across epochs: epoch after epoch of a RecordSource, from a start position
// (epoch, records of it to drop unread: a resumed run) to the end (`epochs` = the epoch index to
// stop before; 0 = endless). Dropped records keep their plan positions, so the records that follow
// are numbered as in an uninterrupted run. The graph's serial source stage; one thread at a time.
class RunReader {
 public:
  // `source` is borrowed and must outlive the reader.
  RunReader(RecordSource* source, int epochs, uint32_t start_epoch, uint64_t skip_records)
      : source_(source), epochs_(epochs), epoch_(start_epoch), skip_(skip_records) {}
  // The next record (valid until the next call). EndOfData after the last epoch; InvalidArgument
  // when an epoch has no records for this worker; the source's error otherwise.
  Status Next(std::string_view* record, PlannedRecord* where);

 private:
  RecordSource* source_;
  const int epochs_;
  uint32_t epoch_;
  uint64_t skip_;
  bool started_ = false;
  uint64_t index_ = 0;
};

}  // namespace sluice::pipeline

#endif  // SLUICE_PIPELINE_SOURCE_H_
