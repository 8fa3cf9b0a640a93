#include "run_start.h"

#include <cstdio>

#include "sluice/train/prune.h"

namespace sluice::train {
namespace {

// A checkpoint's step and data position; DataLoss naming the file when it has none.
Result<RunStart> PositionOf(const CheckpointMetadata& meta, const std::string& path) {
  if (!meta.has_position)
    return Status::DataLoss(path + ": metadata has no step and data position "
                            "(step, data_epoch, data_samples): cannot start from it");
  RunStart at;
  at.step = meta.step;
  at.data = meta.data;
  return at;
}

// The start of a lottery run (TrainConfig's prune_* / reset_* fields): masks from prune_at's
// magnitudes, then weights, momentum, BN statistics, step and data position from reset_to (or
// prune_at), then the step and data position from reset_global_step_to; the masks are applied
// last, so every pruned weight and its momentum start at exactly zero.
Result<RunStart> StartFromCheckpoints(const TrainConfig& c, Model* model, Optimizer* optimizer) {
  if (c.lottery.prune_method.empty() != c.lottery.prune_at.empty())
    return Status::InvalidArgument(c.lottery.prune_method.empty()
                                       ? "--prune-at needs --prune-method (e.g. prune_all_to_global_80.0)"
                                       : "--prune-method needs --prune-at CHECKPOINT");
  std::vector<Tensor> masks;
  if (!c.lottery.prune_method.empty()) {
    SLUICE_ASSIGN_OR_RETURN(PruneMethod method, ParsePruneMethod(c.lottery.prune_method));
    SLUICE_RETURN_IF_ERROR(LoadCheckpoint(c.lottery.prune_at, model, nullptr).status());
    const double before = PrunableDensity(model->params());
    SLUICE_ASSIGN_OR_RETURN(PruneReport report, Prune(model->params(), method));
    std::fprintf(stderr,
                 "train: %s at %s: kept %lld of %lld prunable weights (density %.4f, was %.4f; "
                 "smallest kept |w| %.4g)\n",
                 c.lottery.prune_method.c_str(), c.lottery.prune_at.c_str(), static_cast<long long>(report.kept),
                 static_cast<long long>(report.total), report.density(), before, report.threshold);
    for (Param& p : model->params()) masks.push_back(p.mask);
  }
  const std::string& start = c.lottery.reset_to.empty() ? c.lottery.prune_at : c.lottery.reset_to;
  if (start.empty())
    return Status::InvalidArgument("--reset-global-step-to needs --reset-to or --prune-at (the weights to start from)");
  SLUICE_ASSIGN_OR_RETURN(CheckpointMetadata meta, LoadCheckpoint(start, model, optimizer));
  SLUICE_ASSIGN_OR_RETURN(RunStart at, PositionOf(meta, start));
  std::fprintf(stderr, "train: weights, momentum and step %lld from %s\n",
               static_cast<long long>(at.step), start.c_str());
  if (!c.lottery.reset_global_step_to.empty()) {
    SLUICE_ASSIGN_OR_RETURN(CheckpointMetadata rewind, ReadCheckpointMetadata(c.lottery.reset_global_step_to));
    SLUICE_ASSIGN_OR_RETURN(at, PositionOf(rewind, c.lottery.reset_global_step_to));
    std::fprintf(stderr, "train: global step (learning-rate schedule) and data position rewound to %lld from %s\n",
                 static_cast<long long>(at.step), c.lottery.reset_global_step_to.c_str());
  }
  if (!masks.empty()) {
    size_t k = 0;
    for (Param& p : model->params()) p.mask = std::move(masks[k++]);
    ApplyMasks(model->params(), optimizer);
  }
  at.from_checkpoints = true;
  return at;
}

}  // namespace

Result<RunStart> StartRun(const TrainConfig& c, const std::vector<CheckpointEntry>& existing,
                          int64_t train_steps, Model* model, Optimizer* optimizer,
                          MovingAverage* ema) {
  if (!existing.empty() && !c.run.resume)
    return Status::InvalidArgument(c.run.model_dir + " already holds checkpoints (" + existing.back().path +
                                   "): pass --resume to continue that run, or use a new --model-dir");
  RunStart start;
  const bool from_checkpoints = c.lottery.starts_from_checkpoints();
  if (c.run.resume && !existing.empty()) {
    const CheckpointEntry& newest = existing.back();
    SLUICE_ASSIGN_OR_RETURN(CheckpointMetadata meta,
                            LoadCheckpoint(newest.path, model, optimizer, {.ema = ema}));
    SLUICE_ASSIGN_OR_RETURN(start, PositionOf(meta, newest.path));
    start.resumed = true;
    start.from_checkpoints = from_checkpoints;
    std::fprintf(stderr, "train: resuming from %s (step %lld, density %.4f)\n", newest.path.c_str(),
                 static_cast<long long>(start.step), PrunableDensity(model->params()));
    if (newest.final && start.step >= train_steps)
      std::fprintf(stderr, "train: the run is already complete\n");
  } else if (from_checkpoints) {
    SLUICE_ASSIGN_OR_RETURN(start, StartFromCheckpoints(c, model, optimizer));
    const std::string at = std::to_string(start.step);
    if (start.step >= train_steps)
      return Status::InvalidArgument(
          "the run starts at step " + at + " and --train-steps is " + std::to_string(train_steps) +
          ": nothing to train (train_steps is the global step to stop at; fine-tuning for M steps "
          "from step " + at + " needs --train-steps " + at + " + M)");
  } else {
    model->Initialize(c.init, c.run.seed);
    if (!c.transfer.init_from.empty()) {
      SLUICE_ASSIGN_OR_RETURN(InitReport r, InitFromCheckpoint(c.transfer.init_from, c.transfer.init_exclude, model));
      std::fprintf(stderr, "train: %d tensors from %s, %d excluded (left at their initialization)\n",
                   r.loaded, c.transfer.init_from.c_str(), r.excluded);
    }
  }
  if (ema && ema->shadows().empty()) ema->Reset(*model);
  return start;
}

Status SetTrainable(const std::vector<std::string>& patterns, Model* model) {
  if (patterns.empty()) return Status::Ok();
  for (const std::string& pattern : patterns) {
    bool any = false;
    for (const Param& p : model->params()) any |= MatchesPattern(p.name, {pattern});
    if (!any)
      return Status::InvalidArgument("--trainable pattern '" + pattern + "' matches no parameter of " +
                                     model->config().name + " (names like " +
                                     model->params().back().name + ")");
  }
  int64_t trainable = 0;
  for (Param& p : model->params()) {
    p.trainable = MatchesPattern(p.name, patterns);
    if (p.trainable) trainable += p.value.size();
  }
  std::fprintf(stderr, "train: training %lld of %lld parameters (--trainable); the rest are frozen\n",
               static_cast<long long>(trainable), static_cast<long long>(model->num_parameters()));
  return Status::Ok();
}

}  // namespace sluice::train
