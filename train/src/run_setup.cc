#include "sluice/train/run_setup.h"

#include <tbb/info.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "sluice/formats/file_util.h"

namespace sluice::train {

Result<DatasetInfo> ReadDatasetInfo(const std::string& data_dir, const std::string& train_split,
                                    const std::string& eval_split) {
  const std::string path = data_dir + "/manifest.json";
  auto bytes = formats::ReadFile(path);
  if (!bytes.ok())
    return Status::NotFound(path + " not found: --data-dir must be an output of `sluice ingest`");
  nlohmann::json m = nlohmann::json::parse(*bytes, nullptr, false);
  if (m.is_discarded() || !m.contains("splits"))
    return Status::DataLoss(path + ": not a sluice manifest (no \"splits\")");
  DatasetInfo info;
  const auto& splits = m["splits"];
  info.eval_split = eval_split;
  if (info.eval_split.empty()) info.eval_split = splits.contains("validation") ? "validation" : "test";
  for (const std::string& s : {train_split, info.eval_split})
    if (!splits.contains(s))
      return Status::NotFound(path + ": no split '" + s + "' (has " + [&] {
        std::string names;
        for (const auto& [k, v] : splits.items()) names += (names.empty() ? "" : ", ") + k;
        return names;
      }() + ")");
  info.train_images = splits[train_split].value("records", int64_t{0});
  info.eval_images = splits[info.eval_split].value("records", int64_t{0});
  int max_label = -1;
  for (const auto& [name, split] : splits.items())
    for (const auto& shard : split.value("shards", nlohmann::json::array())) {
      if (shard.contains("file") && shard["file"].is_string())
        info.files[name].push_back(data_dir + "/" + shard["file"].get<std::string>());
      if (shard.contains("labels"))
        for (const auto& [label, count] : shard["labels"].items())
          max_label = std::max(max_label, std::atoi(label.c_str()));
    }
  for (const std::string& split : {train_split, info.eval_split})
    if (info.files[split].empty())
      return Status::DataLoss(path + ": split '" + split + "' lists no shard files");
  info.num_classes = max_label + 1;
  if (info.train_images <= 0) return Status::InvalidArgument(path + ": the train split is empty");
  return info;
}

int64_t ResolveTrainSteps(const TrainConfig& c, int64_t train_images) {
  if (c.train_steps > 0) return c.train_steps;
  if (c.train_epochs > 0)
    return std::max<int64_t>(1, static_cast<int64_t>(c.train_epochs * static_cast<double>(train_images) /
                                                     c.batch_size));
  return std::max<int64_t>(
      1, std::llround(static_cast<double>(c.reference_steps) * train_images / c.reference_images *
                      c.reference_batch / c.batch_size));
}

LrSchedule ResolveSchedule(const TrainConfig& c, int64_t train_images, int64_t train_steps) {
  LrSchedule s;
  const double steps_per_epoch = static_cast<double>(train_images) / c.batch_size;
  s.base = c.base_learning_rate * c.batch_size / c.lr_batch_denominator;
  s.total_steps = train_steps;
  s.kind = c.lr_schedule;
  if (c.force_learning_rate > 0) {
    s.kind = LrSchedule::Kind::kConstant;
    s.base = c.force_learning_rate;
    return s;
  }
  s.warmup_steps = static_cast<int64_t>(std::llround(c.warmup_epochs * steps_per_epoch));
  for (double e : c.lr_boundary_epochs) {
    const double at = e * steps_per_epoch;
    s.boundaries.push_back(c.lr_boundary_rule == BoundaryRule::kTpu
                               ? static_cast<int64_t>(std::ceil(at)) - 1
                               : static_cast<int64_t>(at));
  }
  s.multipliers = c.lr_multipliers;
  s.decay_steps = static_cast<int64_t>(c.num_epochs_per_decay * steps_per_epoch);
  s.decay_factor = c.learning_rate_decay_factor;
  s.staircase = c.lr_staircase;
  s.end = c.end_learning_rate;
  s.power = c.polynomial_power;
  return s;
}

ThreadBudget ResolveThreads(const TrainConfig& c) {
  const int hw = std::max(1, tbb::info::default_concurrency());
  return {c.train_threads > 0 ? c.train_threads : hw,
          c.pipeline_threads > 0 ? c.pipeline_threads : std::max(1, hw / 4)};
}

}  // namespace sluice::train
