#include "run_flags.h"

#include <algorithm>

namespace sluice::cli {

// Each run setting is defined once, in train/recipe.cc's hparam table: a flag here only names the
// key it sets (and its help); its value is parsed and applied by train::SetHparam, as a --set or
// --hparams value of that key would be. tests/cli/run_flags_test.cc checks every key exists.
const std::vector<RunFlag>& RunFlagTable() {
  static const std::vector<RunFlag> table = {
      {"--model", "model", "NAME", "Architecture (default: the recipe's)"},
      {"--train-steps", "train_steps", "INT", ""},  // help from the command
      {"--batch", "batch_size", "INT", "Images per step (default: the recipe's)"},
      {"--eval-every", "eval_every", "INT", "Evaluate every N steps (and always at the end)"},
      {"--eval-limit", "eval_limit", "INT", "Evaluate on at most N images (default all)"},
      {"--log-every", "log_every", "INT", "Steps per progress line and training scalar"},
      {"--seed", "seed", "UINT", "Seed of initialization, shuffle and augmentation"},
      {"--width", "width", "INT", "small-resnet: channels of the first stage"},
      {"--blocks", "blocks", "INT", "small-resnet: residual blocks per stage"},
      {"--learning-rate", "base_learning_rate", "FLOAT",
       "Base learning rate (scaled by batch / lr_batch_denominator)"},
      {"--optimizer", "optimizer", "NAME",
       "slim's optimizers: sgd, momentum, rmsprop, adam, adagrad, adadelta, ftrl (their "
       "hyperparameters by --set, e.g. adam_beta1=0.8; default: the recipe's)"},
      {"--train-epochs", "train_epochs", "FLOAT",
       "Train for N epochs of the train split (steps = N x images / batch), unless --train-steps "
       "is given"},
  };
  return table;
}

const std::vector<RunFlag>& TrainFlagTable() {
  static const std::vector<RunFlag> table = {
      {"--prune-method", "prune_method", "METHOD",
       "Lottery: prune_all_to_global_<D> (keep D % of all conv + dense weights, one magnitude "
       "threshold) or prune_all_to_layerwise_<D> (D % of each)"},
      {"--prune-at", "prune_at", "CHECKPOINT",
       "Lottery: the checkpoint whose weight magnitudes (and masks) define the mask"},
      {"--reset-to", "reset_to", "CHECKPOINT",
       "Lottery: start from this checkpoint's weights, momentum and step (weight rewinding; "
       "default --prune-at)"},
      {"--reset-global-step-to", "reset_global_step_to", "CHECKPOINT",
       "Lottery: restart the LR schedule (and data position) at this checkpoint's step (LR "
       "rewinding)"},
      {"--force-learning-rate", "force_learning_rate", "FLOAT",
       "Constant learning rate instead of the schedule (fine-tuning)"},
      {"--init-from", "init_from", "CHECKPOINT",
       "Transfer learning: start from this safetensors checkpoint (ours, or torchvision-named "
       "weights), except the --exclude tensors"},
      {"--exclude", "init_exclude", "PATTERNS",
       "With --init-from: comma-separated names or prefixes left at their initialization (e.g. fc: "
       "a new head for a new class count); globs with * ? [ too"},
      {"--trainable", "trainable", "PATTERNS",
       "Comma-separated names or prefixes to train (default all); the others are frozen and their "
       "batch norms run in inference mode"},
      {"--steps-per-eval", "eval_every", "INT", "train_and_eval: evaluate every N steps (= --eval-every)"},
  };
  return table;
}

void AddHparamFlags(CLI::App* app, const std::vector<RunFlag>& table, RunFlags* f) {
  for (const RunFlag& flag : table)
    app->add_option(flag.name, f->values[flag.name], flag.help)->type_name(flag.type);
}

Status ApplyHparamFlags(const std::vector<RunFlag>& table, const RunFlags& f,
                        train::TrainConfig* c) {
  for (const RunFlag& flag : table) {
    if (!f.Given(flag.name)) continue;
    if (Status s = train::SetHparam(c, flag.key, f.values.at(flag.name)); !s.ok())
      return Status::InvalidArgument(std::string(flag.name) + ": " + s.message());
  }
  return Status::Ok();
}

void AddRunFlags(CLI::App* app, RunFlags* f, const std::string& train_steps_help) {
  f->app = app;
  app->add_option("--recipe", f->recipe, "Hyperparameters and schedule (`sluice train --help` lists them)")
      ->capture_default_str();
  app->add_option("--data-dir", f->data_dir, "Output directory of `sluice ingest` (manifest.json)")
      ->required();
  for (const RunFlag& flag : RunFlagTable()) {
    app->add_option(flag.name, f->values[flag.name],
                    flag.name == std::string("--train-steps") ? train_steps_help : flag.help)
        ->type_name(flag.type);
  }
  app->add_option("--train-threads", f->train_threads,
                  "Threads for forward/backward (default: all cores)");
  app->add_option("--pipeline-threads", f->pipeline_threads,
                  "Threads for decoding and augmentation (default: a quarter of the cores, >= 1)");
  app->add_option("--hparams", f->hparams, "YAML file of hyperparameters (keys: `sluice train --help`)");
  app->add_option("--set", f->sets, "Override one hyperparameter: key=value (repeatable)");
}

Status ApplyRunFlags(const RunFlags& f, train::TrainConfig* c) {
  SLUICE_RETURN_IF_ERROR(train::ApplyRecipe(f.recipe, c));
  if (!f.hparams.empty()) SLUICE_RETURN_IF_ERROR(train::ApplyHparamsFile(f.hparams, c));
  for (const std::string& kv : f.sets) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) return Status::InvalidArgument("--set '" + kv + "': expected key=value");
    SLUICE_RETURN_IF_ERROR(train::SetHparam(c, kv.substr(0, eq), kv.substr(eq + 1)));
  }
  c->data.dir = f.data_dir;
  SLUICE_RETURN_IF_ERROR(ApplyHparamFlags(RunFlagTable(), f, c));
  // Epochs given on the command line win over a recipe's step count (unless steps are given too).
  if (f.Given("--train-epochs") && !f.Given("--train-steps")) c->schedule.train_steps = 0;
  if (c->run.log_every < 1) c->run.log_every = 1;
  c->run.train_threads = f.train_threads;
  c->pipeline.threads = f.pipeline_threads;
  return Status::Ok();
}

}  // namespace sluice::cli
