#include "sluice/train/run_setup.h"

#include <tbb/info.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "sluice/formats/manifest.h"

namespace sluice::train {

Result<DatasetInfo> ReadDatasetInfo(const std::string& data_dir, const std::string& train_split,
                                    const std::string& eval_split) {
  SLUICE_ASSIGN_OR_RETURN(formats::Manifest m, formats::Manifest::Read(data_dir));
  const std::string path = formats::Manifest::PathIn(data_dir);
  DatasetInfo info;
  info.eval_split = eval_split.empty() ? m.DefaultEvalSplit() : eval_split;
  for (const std::string& s : {train_split, info.eval_split})
    if (auto split = m.FindSplit(s); !split.ok()) return split.status().WithPrefix(path);
  for (const std::string& name : m.SplitNames()) {
    SLUICE_ASSIGN_OR_RETURN(info.files[name], m.ShardPaths(data_dir, name));
  }
  for (const std::string& s : {train_split, info.eval_split})
    if (info.files[s].empty())
      return Status::DataLoss(path + ": split '" + s + "' lists no shard files");
  info.train_images = static_cast<int64_t>(m.splits.at(train_split).records);
  info.eval_images = static_cast<int64_t>(m.splits.at(info.eval_split).records);
  info.num_classes = static_cast<int>(m.NumClasses());
  if (info.train_images <= 0) return Status::InvalidArgument(path + ": the train split is empty");
  return info;
}

int64_t ResolveTrainSteps(const TrainConfig& c, int64_t train_images) {
  if (c.schedule.train_steps > 0) return c.schedule.train_steps;
  if (c.schedule.train_epochs > 0)
    return std::max<int64_t>(1, static_cast<int64_t>(c.schedule.train_epochs * static_cast<double>(train_images) /
                                                     c.optimization.batch_size));
  return std::max<int64_t>(
      1, std::llround(static_cast<double>(c.schedule.reference_steps) * train_images / c.schedule.reference_images *
                      c.schedule.reference_batch / c.optimization.batch_size));
}

LrSchedule ResolveSchedule(const TrainConfig& c, int64_t train_images, int64_t train_steps) {
  LrSchedule s;
  const double steps_per_epoch = static_cast<double>(train_images) / c.optimization.batch_size;
  s.base = c.schedule.base_learning_rate * c.optimization.batch_size / c.schedule.lr_batch_denominator;
  s.total_steps = train_steps;
  s.kind = c.schedule.lr_schedule;
  if (c.schedule.force_learning_rate > 0) {
    s.kind = LrSchedule::Kind::kConstant;
    s.base = c.schedule.force_learning_rate;
    return s;
  }
  s.warmup_steps = static_cast<int64_t>(std::llround(c.schedule.warmup_epochs * steps_per_epoch));
  for (double e : c.schedule.lr_boundary_epochs) {
    const double at = e * steps_per_epoch;
    s.boundaries.push_back(c.schedule.lr_boundary_rule == BoundaryRule::kTpu
                               ? static_cast<int64_t>(std::ceil(at)) - 1
                               : static_cast<int64_t>(at));
  }
  s.multipliers = c.schedule.lr_multipliers;
  s.decay_steps = static_cast<int64_t>(c.schedule.num_epochs_per_decay * steps_per_epoch);
  s.decay_factor = c.schedule.learning_rate_decay_factor;
  s.staircase = c.schedule.lr_staircase;
  s.end = c.schedule.end_learning_rate;
  s.power = c.schedule.polynomial_power;
  return s;
}

ThreadBudget ResolveThreads(const TrainConfig& c) {
  const int hw = std::max(1, tbb::info::default_concurrency());
  return {c.run.train_threads > 0 ? c.run.train_threads : hw,
          c.pipeline.threads > 0 ? c.pipeline.threads : std::max(1, hw / 4)};
}

}  // namespace sluice::train
