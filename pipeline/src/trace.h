// Internal to pipeline/: the Chrome-trace recorder (PipelineConfig::trace). One track per thread
// that ran a stage, each a bounded list of (stage, start, duration, item) events, plus the
// profiler's queue-occupancy samples as counter tracks when written out.
//
// Thread-safety: Record may be called from any thread (each thread appends to its own track;
// creating a track takes a lock); Write only after the graph has stopped.
#ifndef SLUICE_PIPELINE_SRC_TRACE_H_
#define SLUICE_PIPELINE_SRC_TRACE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "sluice/formats/status.h"
#include "sluice/pipeline/profile.h"

namespace sluice::pipeline {

class TraceRecorder {
 public:
  // Records nothing unless enabled; `origin` is the run's start time (the trace's zero).
  TraceRecorder(bool enabled, double origin) : enabled_(enabled), origin_(origin) {}

  bool enabled() const { return enabled_; }
  void Record(const char* name, double start, double end, uint64_t seq);
  // Trace-event JSON (Perfetto, chrome://tracing) with the occupancy of `stats` as counters.
  Status Write(const std::string& path, const PipelineStats& stats) const;

 private:
  struct Event {
    const char* name;
    double start;
    double duration;
    uint64_t seq;
  };
  struct Track {
    std::string name;
    std::vector<Event> events;
  };

  const bool enabled_;
  const double origin_;
  std::mutex mu_;
  std::deque<Track> tracks_;  // a deque: a thread's Track* stays valid while others are added
  const uint64_t id_ = next_id_++;  // tells apart recorders that reuse an address
  static inline std::atomic<uint64_t> next_id_{1};
  static thread_local uint64_t tls_owner_;
  static thread_local Track* tls_track_;
};

}  // namespace sluice::pipeline

#endif  // SLUICE_PIPELINE_SRC_TRACE_H_
