// The stall profile of a pipeline run: per stage work and waiting, queue occupancy, the
// consumer's wait, and the verdicts of the TPU input-pipeline analyzer:
//   input-wait % = time in Next() / (time in Next() + time between calls) over the consumer's run,
//   after the first batch (the pipeline's fill time is reported apart, as warm-up);
//   >= 20 % "highly input-bound", 5-20 % "moderately input-bound", < 5 % "not input-bound".
// The limiting stage is the one with the lowest capacity: items per busy second, times every
// thread for the parallel stages (what it could reach if given all threads), times one for the
// serial ones.
#ifndef SLUICE_PIPELINE_PROFILE_H_
#define SLUICE_PIPELINE_PROFILE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::pipeline {

struct StageStats {
  std::string name;
  int concurrency = 1;  // threads that may run it at once
  uint64_t items = 0;
  double busy_s = 0;            // summed over threads
  double blocked_input_s = 0;   // idle for want of input (parallel stages: idle worker time)
  double blocked_output_s = 0;  // finished, waiting for downstream room
  double capacity_per_s = 0;    // items/s it could sustain with all its threads
};

struct QueueStats {
  std::string name;  // "read->process", "process->batch", "prefetch"
  double mean = 0;
  int64_t max = 0;
  int64_t capacity = 0;
};

// One sample of the queue occupancies (for the trace's counter tracks).
struct OccupancySample {
  double t_s = 0;
  std::vector<int64_t> values;  // in QueueStats order
};

struct ConsumerStats {
  uint64_t batches = 0;
  uint64_t images = 0;
  double warmup_s = 0;  // inside the first Next(), while the pipeline fills (not in wait_s)
  double wait_s = 0;    // inside the other Next() calls
  double step_s = 0;    // between calls
  double input_wait_fraction = 0;
};

struct PipelineStats {
  double wall_s = 0;
  int threads = 0;
  std::vector<StageStats> stages;  // read, parse, decode+crop, augment, batch
  std::vector<QueueStats> queues;
  std::vector<OccupancySample> occupancy;
  ConsumerStats consumer;
  uint64_t bad_images = 0;
  uint64_t skipped_shards = 0;
  std::vector<std::string> bad_examples;  // the first few, "FILE@OFFSET: reason"
  std::string limiting_stage;
  double images_per_s = 0;  // consumer's images / wall
};

enum class InputBound { kNot, kModerately, kHighly };
InputBound ClassifyInputWait(double fraction);
std::string_view InputBoundName(InputBound b);  // "not input-bound", ...

// Fills capacity_per_s and limiting_stage from the stage figures.
void FinishStats(PipelineStats* stats);

// The human table (stderr of `pipeline bench`).
std::string FormatStatsTable(const PipelineStats& stats);
// Every figure as JSON (the --json file).
std::string StatsToJson(const PipelineStats& stats);

}  // namespace sluice::pipeline

#endif  // SLUICE_PIPELINE_PROFILE_H_
