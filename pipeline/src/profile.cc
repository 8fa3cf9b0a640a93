#include "sluice/pipeline/profile.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

namespace sluice::pipeline {

InputBound ClassifyInputWait(double fraction) {
  if (fraction >= 0.20) return InputBound::kHighly;
  if (fraction >= 0.05) return InputBound::kModerately;
  return InputBound::kNot;
}

std::string_view InputBoundName(InputBound b) {
  switch (b) {
    case InputBound::kHighly:
      return "highly input-bound";
    case InputBound::kModerately:
      return "moderately input-bound";
    case InputBound::kNot:
      break;
  }
  return "not input-bound";
}

void FinishStats(PipelineStats* stats) {
  double lowest = std::numeric_limits<double>::infinity();
  for (StageStats& s : stats->stages) {
    s.capacity_per_s = s.busy_s > 0 ? static_cast<double>(s.items) / s.busy_s * s.concurrency : 0;
    if (s.items > 0 && s.busy_s > 0 && s.capacity_per_s < lowest) {
      lowest = s.capacity_per_s;
      stats->limiting_stage = s.name;
    }
  }
  ConsumerStats& c = stats->consumer;
  const double total = c.wait_s + c.step_s;
  c.input_wait_fraction = total > 0 ? c.wait_s / total : 0;
  stats->images_per_s = stats->wall_s > 0 ? static_cast<double>(c.images) / stats->wall_s : 0;
}

std::string FormatStatsTable(const PipelineStats& s) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof(line), "%-12s %5s %10s %9s %9s %9s %12s\n", "stage", "thr", "items",
                "busy s", "in-wait s", "out-wait s", "capacity/s");
  out += line;
  for (const StageStats& st : s.stages) {
    std::snprintf(line, sizeof(line), "%-12s %5d %10llu %9.2f %9.2f %9.2f %12.1f%s\n",
                  st.name.c_str(), st.concurrency, static_cast<unsigned long long>(st.items),
                  st.busy_s, st.blocked_input_s, st.blocked_output_s, st.capacity_per_s,
                  st.name == s.limiting_stage ? "  <- limiting" : "");
    out += line;
  }
  for (const QueueStats& q : s.queues) {
    std::snprintf(line, sizeof(line), "queue %-16s mean %8.1f  max %6lld  capacity %6lld\n",
                  q.name.c_str(), q.mean, static_cast<long long>(q.max),
                  static_cast<long long>(q.capacity));
    out += line;
  }
  const ConsumerStats& c = s.consumer;
  std::snprintf(line, sizeof(line),
                "consumer: %llu batches, %llu images in %.2f s = %.1f images/s; warm-up %.2f s, "
                "then waiting in Next() %.2f s, stepping %.2f s\n",
                static_cast<unsigned long long>(c.batches),
                static_cast<unsigned long long>(c.images), s.wall_s, s.images_per_s, c.warmup_s,
                c.wait_s, c.step_s);
  out += line;
  if (s.bad_images > 0 || s.skipped_shards > 0) {
    std::snprintf(line, sizeof(line), "bad input: %llu images skipped, %llu shards cut short\n",
                  static_cast<unsigned long long>(s.bad_images),
                  static_cast<unsigned long long>(s.skipped_shards));
    out += line;
    for (const std::string& e : s.bad_examples) out += "  " + e + "\n";
  }
  const InputBound verdict = ClassifyInputWait(c.input_wait_fraction);
  std::snprintf(line, sizeof(line), "input wait: %.1f%% of step time -> %s; limiting stage: %s\n",
                100.0 * c.input_wait_fraction, std::string(InputBoundName(verdict)).c_str(),
                s.limiting_stage.empty() ? "-" : s.limiting_stage.c_str());
  out += line;
  return out;
}

std::string StatsToJson(const PipelineStats& s) {
  nlohmann::json j;
  j["wall_s"] = s.wall_s;
  j["threads"] = s.threads;
  j["images_per_s"] = s.images_per_s;
  j["limiting_stage"] = s.limiting_stage;
  for (const StageStats& st : s.stages) {
    j["stages"].push_back({{"name", st.name},
                           {"concurrency", st.concurrency},
                           {"items", st.items},
                           {"busy_s", st.busy_s},
                           {"blocked_input_s", st.blocked_input_s},
                           {"blocked_output_s", st.blocked_output_s},
                           {"capacity_per_s", st.capacity_per_s}});
  }
  for (const QueueStats& q : s.queues) {
    j["queues"].push_back(
        {{"name", q.name}, {"mean", q.mean}, {"max", q.max}, {"capacity", q.capacity}});
  }
  nlohmann::json occ = nlohmann::json::array();
  for (const OccupancySample& o : s.occupancy)
    occ.push_back({{"t_s", o.t_s}, {"values", o.values}});
  j["occupancy"] = occ;
  const ConsumerStats& c = s.consumer;
  const InputBound verdict = ClassifyInputWait(c.input_wait_fraction);
  j["consumer"] = {{"batches", c.batches},
                   {"images", c.images},
                   {"warmup_s", c.warmup_s},
                   {"wait_s", c.wait_s},
                   {"step_s", c.step_s},
                   {"input_wait_fraction", c.input_wait_fraction},
                   {"verdict", InputBoundName(verdict)}};
  j["bad_images"] = s.bad_images;
  j["skipped_shards"] = s.skipped_shards;
  j["bad_examples"] = s.bad_examples;
  return j.dump(2) + "\n";
}

}  // namespace sluice::pipeline
