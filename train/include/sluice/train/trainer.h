// The training loop: shards -> pipeline -> model -> SGD, with checkpoints, evaluation, TensorBoard
// events, metrics.jsonl and stall accounting.
//
// Each step's wall time is split into input wait (inside the pipeline's Next()) and compute
// (forward, backward, update). Every `log_every` steps a line on stderr gives the loss, the rate,
// images/s and the input-wait share of that window with the TPU analyzer's verdict (>= 20 %
// highly, 5-20 % moderately, < 5 % not input-bound); the summary at the end gives the totals and
// the pipeline's limiting stage.
//
// Files in model_dir:
//   hparams.yaml                                  every hyperparameter of the run
//   checkpoint_iter_<N>.safetensors, ..._final    checkpoint.h
//   events.out.tfevents.*                         loss, cross_entropy, learning_rate,
//                                                 images_per_sec, input_wait_fraction
//   eval/events.out.tfevents.*                    accuracy, top_1_accuracy, top_5_accuracy, loss
//   metrics.jsonl                                 one JSON object per log line and per evaluation
// Where things are: the setup (dataset, steps, schedule, threads) in run_setup.h; the start
// (fresh, --resume, lottery) in src/run_start.*; the step log in src/step_log.*; evaluation and
// predictions in inference.h; checkpoints and their metadata in checkpoint.h.
//
// Determinism: with the same config and thread counts, a run is bit-reproducible, and a run killed
// and continued with `resume` ends with the same weights as one that was not (the data position
// is in every checkpoint; the pipeline resumes there).
#ifndef SLUICE_TRAIN_TRAINER_H_
#define SLUICE_TRAIN_TRAINER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sluice/formats/status.h"
#include "sluice/pipeline/pipeline.h"
#include "sluice/train/inference.h"
#include "sluice/train/model.h"
#include "sluice/train/recipe.h"
#include "sluice/train/run_setup.h"

namespace sluice::train {

struct TrainSummary {
  int64_t first_step = 0;  // > 0 for a resumed run
  int64_t steps = 0;       // the step reached
  int64_t train_steps = 0;
  double seconds = 0;
  double images_per_sec = 0;
  double input_wait_fraction = 0;
  std::string limiting_stage;
  EvalResult final_eval;
  std::string final_checkpoint;
  std::string predictions;  // --mode predict: the CSV written
};

// Trains (or, for --mode eval|predict, runs inference from a checkpoint; inference.h) as the
// config says.
Result<TrainSummary> Train(const TrainConfig& config);

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_TRAINER_H_
