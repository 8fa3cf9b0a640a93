// The one steady clock of the pipeline's timings and of its command-line bench, in seconds.
#ifndef SLUICE_PIPELINE_CLOCK_H_
#define SLUICE_PIPELINE_CLOCK_H_

#include <chrono>
#include <cstdint>

namespace sluice::pipeline {

inline double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
inline int64_t Nanos(double s) { return static_cast<int64_t>(s * 1e9); }
inline double Seconds(int64_t ns) { return static_cast<double>(ns) * 1e-9; }

}  // namespace sluice::pipeline

#endif  // SLUICE_PIPELINE_CLOCK_H_
