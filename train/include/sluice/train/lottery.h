// Whole lottery-ticket experiments (`sluice lottery`): the dense run once, then for every density
// and retraining mode a prune + retrain run (trainer.h with TrainConfig's prune_* / reset_*
// fields), and a comparison of the results.
//
// Modes, as in Renda et al. 2020 (each retrains T - k steps, T the dense run's steps, k the rewind
// iteration):
//   weight-rewind  prune the previous run's final weights; weights, momentum, step and data
//                  position from the dense run's checkpoint at k; train to T
//   lr-rewind      prune the previous run's final weights and keep them; the step (LR schedule)
//                  and data position from the dense run's checkpoint at k; train to T
//   finetune       prune the previous run's final weights and keep them; constant finetune_lr
//                  for T - k more steps
// "Previous run" is the dense run (one-shot), or with `iterative` the same mode's previous level;
// densities are relative to the original count either way (80, 64, 51.2: 0.8 per level).
//
// Layout of out_dir (each run directory holds what `sluice train` writes, plus lottery_run.json,
// which says how the run was made and gives the equivalent `sluice train` command, and
// result.json once it is complete):
//   lottery.json                          the experiment's settings
//   dense/                                the dense run (checkpoints at 0, k, every N, final)
//   oneshot/<mode>/density_<D>/           one-shot runs
//   iterative/<mode>/level_<i>_density_<D>/
//   summary.csv, summary.json, summary.svg
// Interrupted experiments resume: complete runs (result.json) are kept, a run with checkpoints
// continues from its newest one (bit-identical to an uninterrupted run), a run without is redone.
#ifndef SLUICE_TRAIN_LOTTERY_H_
#define SLUICE_TRAIN_LOTTERY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "sluice/formats/status.h"
#include "sluice/train/prune.h"
#include "sluice/train/recipe.h"

namespace sluice::train {

struct LotteryConfig {
  // Recipe, model, data_dir, batch, seed, threads, evaluation and logging of every run;
  // train_steps is the dense run's (0 = the recipe's). model_dir and checkpoint_iters are set here.
  TrainConfig base;
  std::string out_dir;
  int64_t rewind_iter = -1;
  std::vector<double> densities;   // percent kept, e.g. {80, 64, 51.2}
  std::vector<std::string> modes;  // weight-rewind, lr-rewind, finetune
  bool iterative = false;
  PruneMethod::Scope scope = PruneMethod::Scope::kGlobal;
  double finetune_lr = 0.001;
  int64_t checkpoint_every = 0;  // checkpoints for resuming; 0 = a tenth of the dense run
};

// The modes, for --help and validation.
std::vector<std::string> LotteryModes();

struct LotteryRow {
  std::string mode;        // "dense" for the baseline
  double density = 100;    // requested, percent
  int level = 0;           // iterative level (1, 2, ...); 0 for the dense run and one-shot runs
  double measured_density = 1;
  int64_t start_step = 0, end_step = 0;
  double final_top1 = 0, final_top5 = 0, best_top1 = 0;
  int64_t best_step = 0;
  std::string dir;  // relative to out_dir
};

// Runs (or resumes) the experiment; rows: the dense run, then modes in order, densities in order.
Result<std::vector<LotteryRow>> RunLottery(const LotteryConfig& config);

// The comparison table as printed.
std::string LotteryTable(const std::vector<LotteryRow>& rows);
// OUT/summary.csv, OUT/summary.json and OUT/summary.svg (top-1 vs density, one line per mode, the
// dense run as a dashed line), each written atomically.
Status WriteLotterySummary(const LotteryConfig& config, const std::vector<LotteryRow>& rows);

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_LOTTERY_H_
