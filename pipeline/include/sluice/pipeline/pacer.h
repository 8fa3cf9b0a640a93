// Test hook of the pipeline, injected through PipelineHooks (never a field of PipelineConfig): a
// pacer makes one stage take a known time per item, so the profiler can be checked against ground
// truth (tests/pipeline/pipeline_test.cc, and the Python package's profile tests).
#ifndef SLUICE_PIPELINE_PACER_H_
#define SLUICE_PIPELINE_PACER_H_

#include <memory>
#include <mutex>

namespace sluice::pipeline {

enum class Stage { kRead, kDecode, kBatch };

// Called by the graph at the end of each item of every stage with the item's start time (steady
// clock seconds); returns when the item may finish. Thread-safe: the decode stage calls it from
// every worker.
class StagePacer {
 public:
  virtual ~StagePacer() = default;
  virtual void Pace(Stage stage, double item_start) = 0;
};

// Items of `stage` finish on a schedule of one per `seconds`: item k not before t0 + k * seconds.
// A late wake-up is caught up by the next items, so the long-run rate is exactly 1 / seconds; after
// the stage has been idle (blocked downstream) at most 50 ms of lost time is made up.
class FixedRatePacer : public StagePacer {
 public:
  FixedRatePacer(Stage stage, double seconds) : stage_(stage), seconds_(seconds) {}
  void Pace(Stage stage, double item_start) override;

 private:
  const Stage stage_;
  const double seconds_;
  std::mutex mu_;
  double deadline_ = 0;
};

struct PipelineHooks {
  std::shared_ptr<StagePacer> pacer;  // null: no pacing
};

}  // namespace sluice::pipeline

#endif  // SLUICE_PIPELINE_PACER_H_
