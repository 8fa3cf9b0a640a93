#include "sluice/pipeline/pacer.h"

#include <algorithm>
#include <thread>

#include "sluice/pipeline/clock.h"

namespace sluice::pipeline {

void FixedRatePacer::Pace(Stage stage, double item_start) {
  if (stage != stage_) return;
  constexpr double kPaceSlackS = 0.05;
  double deadline;
  {
    std::lock_guard<std::mutex> lock(mu_);
    deadline_ = std::max(deadline_ + seconds_, item_start - kPaceSlackS);
    deadline = deadline_;
  }
  const double left = deadline - Now();
  if (left > 0) std::this_thread::sleep_for(std::chrono::duration<double>(left));
}

}  // namespace sluice::pipeline
