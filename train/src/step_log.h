// Internal to train/: what a run records as it goes. The step log (a line on stderr, the training
// scalars in DIR/events.out.tfevents.*, a line of DIR/metrics.jsonl) every log_every steps, and
// each evaluation's scalars in DIR/eval/ events and metrics.jsonl.
//
// Step time is split into input wait (inside the pipeline's Next()) and compute (forward, backward,
// update); the first step's wait (the pipeline filling) is left out of the run's totals.
#ifndef SLUICE_TRAIN_SRC_STEP_LOG_H_
#define SLUICE_TRAIN_SRC_STEP_LOG_H_

#include <cstdint>
#include <memory>
#include <string>

#include "sluice/formats/events.h"
#include "sluice/formats/status.h"
#include "sluice/train/inference.h"
#include "sluice/train/model.h"
#include "sluice/train/optimizer.h"

namespace sluice::train {

// Appends an evaluation's scalars to `events` (as TF's Estimator names them) and a line to
// DIR/metrics.jsonl; `checkpoint` is named when not empty (--mode eval).
Status RecordEval(formats::EventWriter* events, const std::string& dir, int64_t step,
                  const EvalResult& r, const std::string& checkpoint = "");

class StepLog {
 public:
  static Result<std::unique_ptr<StepLog>> Create(const std::string& model_dir, int64_t log_every,
                                                 int64_t train_steps);

  // One step: its input wait and compute seconds, images and mean cross-entropy. Writes the log
  // line and scalars when the step ends a window (every log_every steps, and the last step).
  Status Step(int64_t step, double wait_s, double compute_s, int images, double loss, double lr,
              const Model& model, const Optimizer& optimizer);
  Status Close();

  double total_wait_s() const { return total_wait_; }
  double total_compute_s() const { return total_compute_; }
  int64_t total_images() const { return total_images_; }

 private:
  StepLog(std::string dir, int64_t log_every, int64_t train_steps)
      : dir_(std::move(dir)), log_every_(log_every), train_steps_(train_steps) {}

  const std::string dir_;
  const int64_t log_every_, train_steps_;
  std::unique_ptr<formats::EventWriter> events_;
  double wait_ = 0, compute_ = 0, loss_sum_ = 0;  // the window
  int64_t images_ = 0, steps_ = 0;
  double total_wait_ = 0, total_compute_ = 0;
  int64_t total_images_ = 0;
};

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_SRC_STEP_LOG_H_
