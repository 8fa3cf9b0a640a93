#include "trace.h"

#include <nlohmann/json.hpp>

#include "sluice/formats/file_util.h"

namespace sluice::pipeline {
namespace {
constexpr size_t kMaxEventsPerThread = 200000;  // bounded memory for any run length
}  // namespace

thread_local uint64_t TraceRecorder::tls_owner_ = 0;
thread_local TraceRecorder::Track* TraceRecorder::tls_track_ = nullptr;

void TraceRecorder::Record(const char* name, double start, double end, uint64_t seq) {
  if (!enabled_) return;
  if (tls_owner_ != id_) {
    std::lock_guard<std::mutex> lock(mu_);
    tracks_.emplace_back();
    tracks_.back().name = "thread " + std::to_string(tracks_.size() - 1);
    tls_track_ = &tracks_.back();
    tls_owner_ = id_;
  }
  if (tls_track_->events.size() < kMaxEventsPerThread) {
    tls_track_->events.push_back({name, start, end - start, seq});
  }
}

Status TraceRecorder::Write(const std::string& path, const PipelineStats& stats) const {
  nlohmann::json events = nlohmann::json::array();
  int tid = 0;
  for (const Track& track : tracks_) {
    events.push_back({{"name", "thread_name"},
                      {"ph", "M"},
                      {"pid", 1},
                      {"tid", tid},
                      {"args", {{"name", track.name}}}});
    for (const Event& e : track.events) {
      events.push_back({{"name", e.name},
                        {"ph", "X"},
                        {"pid", 1},
                        {"tid", tid},
                        {"ts", (e.start - origin_) * 1e6},
                        {"dur", e.duration * 1e6},
                        {"args", {{"seq", e.seq}}}});
    }
    ++tid;
  }
  for (const OccupancySample& o : stats.occupancy) {
    nlohmann::json args;
    for (size_t i = 0; i < o.values.size() && i < stats.queues.size(); ++i) {
      args[stats.queues[i].name] = o.values[i];
    }
    events.push_back({{"name", "queue occupancy"},
                      {"ph", "C"},
                      {"pid", 1},
                      {"ts", o.t_s * 1e6},
                      {"args", args}});
  }
  nlohmann::json doc = {{"traceEvents", events}, {"displayTimeUnit", "ms"}};
  return formats::WriteFileAtomically(path, doc.dump() + "\n");
}

}  // namespace sluice::pipeline
