// What a training run resolves before its first step: the dataset (from the ingest manifest), the
// number of steps, the learning-rate schedule and the thread budget.
#ifndef SLUICE_TRAIN_RUN_SETUP_H_
#define SLUICE_TRAIN_RUN_SETUP_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sluice/formats/status.h"
#include "sluice/train/optimizer.h"
#include "sluice/train/recipe.h"

namespace sluice::train {

// What the data directory holds (from DIR/manifest.json of `sluice ingest`).
struct DatasetInfo {
  int64_t train_images = 0;
  int64_t eval_images = 0;
  int num_classes = 0;  // max label + 1
  std::string eval_split;
  // Every split's shard files (paths under the data directory), from the manifest: ImageNet's
  // "train-00000-of-01024" and flowers' "flowers_train_00000-of-00005.tfrecord" alike.
  std::map<std::string, std::vector<std::string>> files;
};
Result<DatasetInfo> ReadDatasetInfo(const std::string& data_dir, const std::string& train_split,
                                    const std::string& eval_split);

// Steps of the run and its schedule, from the config and the dataset size.
int64_t ResolveTrainSteps(const TrainConfig& config, int64_t train_images);
LrSchedule ResolveSchedule(const TrainConfig& config, int64_t train_images, int64_t train_steps);

// The one thread-budget rule of a run: the model's forward/backward gets train_threads (default all
// cores), the pipeline pipeline_threads (default a quarter of the cores, at least 1: CIFAR decoding
// is light; give ImageNet runs disjoint budgets). The two are separate TBB arenas.
struct ThreadBudget {
  int train = 1;
  int pipeline = 1;
};
ThreadBudget ResolveThreads(const TrainConfig& config);

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_RUN_SETUP_H_
