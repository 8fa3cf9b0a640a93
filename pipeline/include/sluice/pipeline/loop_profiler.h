// The consumer's side of the stall profile, for any input loop (sluice.profile wraps a PyTorch
// DataLoader with it): the loop's wall time split into waiting for the next item and the loop body,
// with the same verdict as the pipeline's own profile (profile.h). The first wait is the warm-up
// (the input filling), reported apart.
//
//   for (;;) { p.StartWait(); item = next(); p.EndWait(n); body(item); }   // then p.Finish()
//
// Thread-compatibility: one loop at a time; Stats() from any thread.
#ifndef SLUICE_PIPELINE_LOOP_PROFILER_H_
#define SLUICE_PIPELINE_LOOP_PROFILER_H_

#include <cstdint>
#include <mutex>

#include "sluice/pipeline/profile.h"

namespace sluice::pipeline {

struct LoopStats {
  ConsumerStats consumer;  // batches = items, images = samples
  double wall_s = 0;       // first StartWait to the last EndWait (or Finish)
  double items_per_s = 0;
  double samples_per_s = 0;
  InputBound verdict = InputBound::kNot;
};

class LoopProfiler {
 public:
  void StartWait();
  // An item arrived, holding `samples` samples (a batch's size; 1 for a single item).
  void EndWait(int64_t samples);
  // The input ended (the last StartWait found no item): its wait counts, no item does.
  void EndOfInput();
  LoopStats Stats() const;

 private:
  mutable std::mutex mu_;
  double start_ = 0, wait_started_ = 0, last_end_ = 0, end_ = 0;
  ConsumerStats c_;
};

}  // namespace sluice::pipeline

#endif  // SLUICE_PIPELINE_LOOP_PROFILER_H_
