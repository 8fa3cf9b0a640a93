// Training configuration and the reference recipes (DESIGN.md "Training recipes").
//
// Precedence, lowest first: the recipe's values, an --hparams YAML file, --set key=value
// overrides, then explicit command-line flags. Keys are the snake_case names of TrainConfig's
// fields (HparamKeys() lists them); keys inside a nested YAML map apply as if at the top level.
#ifndef SLUICE_TRAIN_RECIPE_H_
#define SLUICE_TRAIN_RECIPE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/formats/status.h"
#include "sluice/pipeline/pipeline.h"
#include "sluice/pipeline/preset.h"
#include "sluice/train/model.h"
#include "sluice/train/optimizer.h"

namespace sluice::train {

// Where a piecewise schedule's epoch boundaries fall (hparam lr_boundary_rule):
//   tf   boundary = int(epoch * steps_per_epoch), new rate after it (tf.train.piecewise_constant)
//   tpu  the rate changes at the first step whose epoch (step / steps_per_epoch) reaches it
enum class BoundaryRule { kTf, kTpu };
Result<BoundaryRule> ParseBoundaryRule(std::string_view name);
std::string_view BoundaryRuleName(BoundaryRule rule);

// What `sluice train --mode` runs (TrainConfig::mode says what each does).
enum class RunMode { kTrain, kTrainAndEval, kEval, kPredict };
Result<RunMode> ParseRunMode(std::string_view name);
std::string_view RunModeName(RunMode mode);

// The data of a run: shards DIR/<train_split>-* and DIR/<eval_split>-* of `sluice ingest`, and
// DIR/manifest.json for the record counts and class count.
struct DataConfig {
  std::string dir;
  std::string train_split = "train";
  std::string eval_split;  // "" = "validation" if present, else "test"
  pipeline::Preset eval_preset = pipeline::Preset::kCifarEval;
};

struct OptimizationConfig {
  int batch_size = 128;  // images per step (the global batch)
  OptimizerConfig optimizer;
  double label_smoothing = 0;
  // > 0: keep an exponential moving average of the weights and BN statistics (TF's
  // ExponentialMovingAverage with num_updates = the global step: decay min(d, (1 + step) / (10 +
  // step))); evaluation uses it, and checkpoints hold it beside the raw weights as <name>.ema.
  double moving_average_decay = 0;
};

// The learning rate over the run, and the run's length.
struct ScheduleConfig {
  // base_learning_rate * batch_size / lr_batch_denominator (TF's linear scaling).
  double base_learning_rate = 0.1;
  int lr_batch_denominator = 128;
  LrSchedule::Kind lr_schedule = LrSchedule::Kind::kPiecewise;
  std::vector<double> lr_boundary_epochs = {91, 136};
  std::vector<double> lr_multipliers = {1, 0.1, 0.01};
  BoundaryRule lr_boundary_rule = BoundaryRule::kTf;
  double warmup_epochs = 0;
  double force_learning_rate = 0;  // > 0: constant rate (fine-tuning)
  // exponential: x learning_rate_decay_factor every num_epochs_per_decay epochs (staircase unless
  // lr_staircase is false); polynomial: to end_learning_rate over num_epochs_per_decay epochs
  // (slim's flags; slim's polynomial decays over num_epochs_per_decay too).
  double num_epochs_per_decay = 2.0;
  double learning_rate_decay_factor = 0.94;
  bool lr_staircase = true;
  double end_learning_rate = 0.0001;
  double polynomial_power = 1.0;
  // Steps: train_steps if > 0, else train_epochs * train_images / batch_size (truncated, as the TPU
  // scripts compute it) if train_epochs > 0, else reference_steps scaled to this dataset and batch:
  // round(reference_steps * (train_images / reference_images) * (reference_batch / batch_size)).
  int64_t train_steps = 0;
  double train_epochs = 0;
  int64_t reference_steps = 71108;
  int64_t reference_images = 50000;
  int reference_batch = 128;
};

// Lottery runs (prune.h; the reference's --lottery_* flags), for a run that starts from
// checkpoints instead of an initialization:
//   prune_method          prune_all_to_global_<D> | prune_all_to_layerwise_<D>
//   prune_at              the checkpoint whose magnitudes (and masks) define the new masks
//   reset_to              weights, momentum, BN statistics, step and data position from this
//                         checkpoint (weight rewinding); default prune_at
//   reset_global_step_to  then the step (the LR schedule) and data position from this one
//                         (LR rewinding)
// schedule.train_steps stays the global step to stop at: fine-tuning from the final step T for M
// more steps sets it to T + M.
struct LotteryStart {
  std::string prune_method;
  std::string prune_at;
  std::string reset_to;
  std::string reset_global_step_to;
  bool starts_from_checkpoints() const {
    return !prune_method.empty() || !prune_at.empty() || !reset_to.empty() ||
           !reset_global_step_to.empty();
  }
};

// Transfer learning (slim's --checkpoint_path, --checkpoint_exclude_scopes, --trainable_scopes):
// a fresh run starts from init_from's tensors except those matching init_exclude (left at their
// initialization: typically the classifier, sized for the new classes), and trains only the
// parameters matching `trainable` (all when empty); frozen batch norms run in inference mode.
// A pattern matches a name equal to it or starting with it and a dot ("layer4" matches
// "layer4.0.conv1.weight"), or, with * ? [, as a glob over the whole name.
struct TransferConfig {
  std::string init_from;
  std::vector<std::string> init_exclude;
  std::vector<std::string> trainable;
};

// Run control.
//   train           train only (no evaluation)
//   train_and_eval  train, evaluating every eval_every steps (--steps-per-eval) and at the end
//   eval            evaluate `checkpoint` (default: model_dir's newest) on the eval split
//   predict         write `predictions` (default model_dir/predictions.csv) for predict_split
//                   (default: the eval split): record, filename, label, top_k classes and
//                   probabilities
struct RunControl {
  RunMode mode = RunMode::kTrainAndEval;
  std::string checkpoint;
  std::string predict_split;
  std::string predictions;
  int top_k = 5;
  std::string model_dir;
  std::vector<int64_t> checkpoint_iters;
  int64_t eval_every = 0;  // 0 = only at the end
  int64_t eval_limit = 0;  // 0 = the whole eval split
  int64_t log_every = 50;
  // The model's TBB arena (0 = all cores); the pipeline's is pipeline.threads (0 = a quarter of
  // the cores, >= 1): run_setup.h's ResolveThreads is the one rule.
  int train_threads = 0;
  uint64_t seed = 0;  // initialization, the epoch plan, augmentation, dropout
  bool resume = false;
};

struct TrainConfig {
  std::string recipe = "tf-cifar-resnet";
  DataConfig data;
  ModelConfig model;
  InitScheme init = InitScheme::kTensorFlow;
  OptimizationConfig optimization;
  ScheduleConfig schedule;
  LotteryStart lottery;
  TransferConfig transfer;
  RunControl run;
  // The train input: preset (hparam train_preset), image_size (0 = the preset's) and threads
  // (hparam-free: --pipeline-threads), and the pipeline's other knobs at their defaults. The
  // trainer sets its batch size, seed, epochs and start position.
  pipeline::PipelineConfig pipeline = [] {
    pipeline::PipelineConfig p;
    p.preset = pipeline::Preset::kCifarTrain;
    return p;
  }();
};

// Recipe names, with a one-line description each (for --help).
std::vector<std::pair<std::string, std::string>> RecipeDescriptions();
// Resets *config to the recipe's values (keeping data_dir, model_dir and the run-control fields).
Status ApplyRecipe(const std::string& name, TrainConfig* config);
// Sets one hyperparameter from text: numbers, booleans (true/false), lists "a,b,c" or "[a, b]".
Status SetHparam(TrainConfig* config, const std::string& key, const std::string& value);
// Applies every key of a YAML file (a run's own hparams.yaml applies back unchanged).
Status ApplyHparamsFile(const std::string& path, TrainConfig* config);
std::vector<std::string> HparamKeys();
// Every hyperparameter as "key: value" lines (YAML), what a run records in DIR/hparams.yaml.
std::string HparamsToYaml(const TrainConfig& config);

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_RECIPE_H_
