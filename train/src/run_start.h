// Internal to train/: where a training run starts. A fresh run initializes the model (and takes
// --init-from's tensors); --resume continues from the newest checkpoint in model_dir; a lottery run
// starts from checkpoints (prune_at's masks, reset_to's weights, reset_global_step_to's step).
#ifndef SLUICE_TRAIN_SRC_RUN_START_H_
#define SLUICE_TRAIN_SRC_RUN_START_H_

#include <cstdint>
#include <string>
#include <vector>

#include "sluice/formats/status.h"
#include "sluice/pipeline/batch.h"
#include "sluice/train/checkpoint.h"
#include "sluice/train/model.h"
#include "sluice/train/moving_average.h"
#include "sluice/train/optimizer.h"
#include "sluice/train/recipe.h"

namespace sluice::train {

struct RunStart {
  int64_t step = 0;
  pipeline::DataCursor data;     // where the data continues
  bool from_checkpoints = false;  // a lottery start (pruned, rewound)
  bool resumed = false;
};

// Sets up model, optimizer and averages (ema may be null) for the run's first step. `existing` are
// model_dir's checkpoints (ListCheckpoints).
Result<RunStart> StartRun(const TrainConfig& config, const std::vector<CheckpointEntry>& existing,
                          int64_t train_steps, Model* model, Optimizer* optimizer,
                          MovingAverage* ema);

// Marks the parameters matching `patterns` trainable and the others frozen (all trainable when
// empty); InvalidArgument when a pattern matches nothing (a typo would otherwise freeze everything).
Status SetTrainable(const std::vector<std::string>& patterns, Model* model);

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_SRC_RUN_START_H_
