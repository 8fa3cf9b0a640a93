// Internal to pipeline/: the stall profiler's counters (profile.h says what they mean). Each stage
// reports its items and busy time here, the consumer its waits; a sampler thread records the queue
// occupancies every few milliseconds (halving its rate as the run grows, so memory is bounded);
// Stats() turns it all into PipelineStats.
//
// Thread-safety: every method may be called from any thread; the counters are atomics, the rest
// is under the profiler's own locks (never held while calling out, except the queue-size callback).
#ifndef SLUICE_PIPELINE_SRC_STAGE_PROFILER_H_
#define SLUICE_PIPELINE_SRC_STAGE_PROFILER_H_

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sluice/pipeline/preset.h"
#include "sluice/pipeline/profile.h"

namespace sluice::pipeline {

class StageProfiler {
 public:
  // `queue_capacity`: the three queues' capacities (read->process, process->batch, prefetch).
  StageProfiler(double start, int threads, std::array<int64_t, 3> queue_capacity);
  ~StageProfiler();

  // Starts the sampler thread: `prefetch_size` reads the consumer queue's length.
  void StartSampler(std::function<int64_t()> prefetch_size);
  void StopSampler();  // idempotent

  // read (serial): an item's busy time and the time since the previous item finished.
  void Read(double busy_s, double blocked_output_s, bool sample);
  void Emitted() { ++emitted_; }
  void SourceDone() { source_done_ = true; }
  void SkippedShards(uint64_t n) { skipped_shards_ = n; }
  // process (parallel).
  void Started() { ++started_; }
  void Processed(const SampleTimings& t, double busy_s);
  // Counts an undecodable image and keeps the first few descriptions; returns the count so far.
  uint64_t BadImage(const std::string& description);
  // batch (serial).
  void Batched() { ++batch_items_; }
  void BatchBusy(double s);
  // The consumer: time inside Next() (the first call is the warm-up), time between calls, and the
  // batches it took.
  void ConsumerWait(bool first, double s);
  void ConsumerStep(double s);
  void ConsumerTook(int images);

  // The end of the run's wall time (first call wins).
  void End(double t);
  PipelineStats Stats() const;

 private:
  void Sample();

  const double start_;
  const int threads_;
  const std::array<int64_t, 3> capacity_;
  std::function<int64_t()> prefetch_size_;

  std::atomic<int64_t> read_items_{0}, read_busy_ns_{0}, read_out_wait_ns_{0};
  std::atomic<int64_t> process_items_{0}, parse_ns_{0}, decode_ns_{0}, augment_ns_{0},
      process_busy_ns_{0};
  std::atomic<int64_t> batch_items_{0}, batch_busy_ns_{0};
  std::atomic<int64_t> emitted_{0}, started_{0};
  std::atomic<bool> source_done_{false};
  std::atomic<uint64_t> bad_images_{0}, skipped_shards_{0};

  mutable std::mutex mu_;  // the fields below, up to the sampler's
  std::vector<std::string> bad_examples_;
  ConsumerStats consumer_;
  double end_ = 0;
  std::vector<OccupancySample> occupancy_;
  double period_;
  std::array<double, 3> occ_sum_{};
  std::array<int64_t, 3> occ_max_{};
  int64_t occ_n_ = 0;

  std::thread sampler_;
  std::mutex sampler_mu_;
  std::condition_variable sampler_cv_;
  bool stop_sampler_ = false;
};

}  // namespace sluice::pipeline

#endif  // SLUICE_PIPELINE_SRC_STAGE_PROFILER_H_
