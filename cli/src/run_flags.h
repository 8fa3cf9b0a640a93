// Internal to cli/: the flags `sluice train` and `sluice lottery` share, the recipe and the
// hyperparameters of a training run, and how they apply to a TrainConfig.
#ifndef SLUICE_CLI_SRC_RUN_FLAGS_H_
#define SLUICE_CLI_SRC_RUN_FLAGS_H_

#include <CLI/CLI.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sluice/formats/status.h"
#include "sluice/train/recipe.h"

namespace sluice::cli {

// A flag that sets one hyperparameter of the hparam table (train/recipe.h).
struct RunFlag {
  const char* name;  // "--batch"
  const char* key;   // "batch_size"
  const char* type;  // for --help: "INT"
  const char* help;
};
// The flags `sluice train` and `sluice lottery` share, and those of `sluice train` alone.
const std::vector<RunFlag>& RunFlagTable();
const std::vector<RunFlag>& TrainFlagTable();

struct RunFlags {
  std::string recipe = "tf-cifar-resnet";
  std::string data_dir, hparams;
  std::vector<std::string> sets;
  std::map<std::string, std::string> values;  // by flag name, as typed (RunFlagTable)
  int train_threads = 0, pipeline_threads = 0;
  CLI::App* app = nullptr;  // the command, to tell given flags from defaults
  bool Given(const char* flag) const { return app->count(flag) > 0; }
};

// Adds --recipe, --data-dir, RunFlagTable()'s flags (--train-steps with the given help text),
// --train-threads, --pipeline-threads, --hparams and --set to `app`.
void AddRunFlags(CLI::App* app, RunFlags* flags, const std::string& train_steps_help);

// Adds a table's flags (their values land in f->values) / applies the given ones with SetHparam;
// InvalidArgument naming the flag for a bad value.
void AddHparamFlags(CLI::App* app, const std::vector<RunFlag>& table, RunFlags* f);
Status ApplyHparamFlags(const std::vector<RunFlag>& table, const RunFlags& f,
                        train::TrainConfig* config);

// The run's configuration: the recipe < --hparams < --set < the flags given. InvalidArgument for
// an unknown recipe or key, a bad value, or an unreadable hparams file.
Status ApplyRunFlags(const RunFlags& flags, train::TrainConfig* config);

}  // namespace sluice::cli

#endif  // SLUICE_CLI_SRC_RUN_FLAGS_H_
