#include "sluice/pipeline/loop_profiler.h"

#include "sluice/pipeline/clock.h"

namespace sluice::pipeline {

void LoopProfiler::StartWait() {
  const double t = Now();
  std::lock_guard<std::mutex> lock(mu_);
  if (start_ == 0) start_ = t;
  if (last_end_ > 0) c_.step_s += t - last_end_;  // the loop body since the last item
  wait_started_ = t;
}

void LoopProfiler::EndWait(int64_t samples) {
  const double t = Now();
  std::lock_guard<std::mutex> lock(mu_);
  (c_.batches == 0 ? c_.warmup_s : c_.wait_s) += t - wait_started_;
  ++c_.batches;
  c_.images += static_cast<uint64_t>(samples);
  last_end_ = end_ = t;
}

void LoopProfiler::EndOfInput() {
  const double t = Now();
  std::lock_guard<std::mutex> lock(mu_);
  if (c_.batches > 0) c_.wait_s += t - wait_started_;
  last_end_ = 0;
  end_ = t;
}

LoopStats LoopProfiler::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  LoopStats s;
  s.consumer = c_;
  const double total = c_.wait_s + c_.step_s;
  s.consumer.input_wait_fraction = total > 0 ? c_.wait_s / total : 0;
  s.wall_s = start_ > 0 ? (end_ > 0 ? end_ : Now()) - start_ : 0;
  s.items_per_s = s.wall_s > 0 ? static_cast<double>(c_.batches) / s.wall_s : 0;
  s.samples_per_s = s.wall_s > 0 ? static_cast<double>(c_.images) / s.wall_s : 0;
  s.verdict = ClassifyInputWait(s.consumer.input_wait_fraction);
  return s;
}

}  // namespace sluice::pipeline
