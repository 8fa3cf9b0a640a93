// sluice lottery: a whole pruning experiment (train/lottery.h) behind flags.
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "command.h"
#include "run_flags.h"
#include "sluice/cli/cli.h"
#include "sluice/train/lottery.h"

namespace sluice::cli {
namespace {

struct LotteryFlags {
  RunFlags run;
  std::string out;
  int64_t rewind_iter = -1;
  std::string densities = "80,64,51.2";
  std::string modes = "weight-rewind,lr-rewind,finetune";
  std::string pruning = "global";
  bool iterative = false;
  int levels = 0;
  int64_t checkpoint_every = 0;
  double finetune_lr = 0.001;
  bool Given(const char* flag) const { return run.Given(flag); }
};

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

int RunLotteryCommand(const LotteryFlags& f) {
  train::LotteryConfig lc;
  train::TrainConfig& c = lc.base;
  Status s = ApplyRunFlags(f.run, &c);
  for (const std::string& d : Split(f.densities)) {
    if (!s.ok()) break;
    char* end = nullptr;
    const double v = std::strtod(d.c_str(), &end);
    if (*end != '\0' || !std::isfinite(v)) s = Status::InvalidArgument("--densities: '" + d + "' is not a number");
    lc.densities.push_back(v);
  }
  if (s.ok() && f.pruning != "global" && f.pruning != "layerwise")
    s = Status::InvalidArgument("--pruning: '" + f.pruning + "' (global, layerwise)");
  if (s.ok() && f.Given("--levels")) {
    // --levels N: N iterative levels of the first density's ratio (80 -> 80, 64, 51.2, ...).
    if (lc.densities.size() != 1 || f.levels < 1)
      s = Status::InvalidArgument("--levels N takes one --densities value (the keep ratio per level) and N >= 1");
    else
      for (int i = 1; i < f.levels; ++i) lc.densities.push_back(100 * std::pow(lc.densities[0] / 100, i + 1));
  }
  if (!s.ok()) {
    PrintError(s);
    return kExitUsage;
  }
  lc.out_dir = f.out;
  lc.rewind_iter = f.rewind_iter;
  lc.modes = Split(f.modes);
  lc.iterative = f.iterative || f.Given("--levels");
  lc.scope = f.pruning == "global" ? train::PruneMethod::Scope::kGlobal : train::PruneMethod::Scope::kLayerwise;
  lc.finetune_lr = f.finetune_lr;
  lc.checkpoint_every = f.checkpoint_every;
  auto rows = train::RunLottery(lc);
  if (!rows.ok()) {
    PrintError(rows.status());
    return rows.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
  }
  if (Status w = train::WriteLotterySummary(lc, *rows); !w.ok()) {
    PrintError(w);
    return kExitFailure;
  }
  std::printf("%s\nwrote %s/summary.csv, summary.json, summary.svg\n", train::LotteryTable(*rows).c_str(),
              f.out.c_str());
  return kExitOk;
}

}  // namespace

Command AddLotteryCommand(CLI::App& root) {
  auto f = std::make_shared<LotteryFlags>();
  CLI::App* app = root.add_subcommand(
      "lottery",
      "Run a whole pruning experiment: the dense run, then prune + retrain (weight rewinding, LR "
      "rewinding, fine-tuning) at each density, one-shot or iterative, and compare");
  AddRunFlags(app, &f->run, "Steps of the dense run (default: the recipe's, scaled to the data and batch)");
  app->add_option("--out", f->out, "Experiment directory (resumed when it exists)")->required();
  app->add_option("--rewind-iter", f->rewind_iter,
                  "Step k to rewind to (the dense run checkpoints there), e.g. 4701")
      ->required();
  app->add_option("--densities", f->densities, "Percent of prunable weights kept, comma-separated")
      ->capture_default_str();
  app->add_option("--modes", f->modes, "Retraining modes: weight-rewind, lr-rewind, finetune")
      ->capture_default_str();
  app->add_flag("--iterative", f->iterative,
                "Each density prunes the previous level's result (default: each prunes the dense run)");
  app->add_option("--levels", f->levels,
                  "Iterative levels of one --densities ratio: --densities 80 --levels 4 = 80,64,51.2,40.96");
  app->add_option("--pruning", f->pruning, "global (one threshold) or layerwise")->capture_default_str();
  app->add_option("--finetune-lr", f->finetune_lr, "Constant learning rate of fine-tuning")
      ->capture_default_str();
  app->add_option("--checkpoint-every", f->checkpoint_every,
                  "Checkpoint every N steps in every run, for resuming (default: a tenth of the dense run)");
  app->footer(
      "\nEach retraining run trains T - k steps (T: the dense run's steps, k: --rewind-iter):\n"
      "  weight-rewind  prune the final weights, rewind weights, momentum and LR schedule to step k\n"
      "  lr-rewind      prune the final weights, keep them, rewind the LR schedule to step k\n"
      "  finetune       prune the final weights, keep them, train at --finetune-lr\n"
      "Densities are relative to the original count (iterative 80, 64, 51.2 = 0.8 per level).\n"
      "\nOutput: OUT/dense, OUT/oneshot/<mode>/density_<D> (or OUT/iterative/<mode>/level_<i>_density_<D>),\n"
      "each a `sluice train` run directory with lottery_run.json (how it was made) and result.json;\n"
      "OUT/summary.csv, summary.json and summary.svg (top-1 vs density). Run the same command\n"
      "again to resume an interrupted experiment.\n"
      "\nExample (the paper's CIFAR-10 ResNet-20, about 40 h on 2 cores):\n"
      "  sluice lottery --recipe tf-cifar-resnet --model resnet20 --data-dir shards/cifar10 \\\n"
      "      --out exp/r20 --rewind-iter 4701 --densities 80,64,51.2 \\\n"
      "      --modes weight-rewind,lr-rewind,finetune --eval-every 4000\n");
  return {app, [f] { return RunLotteryCommand(*f); }};
}

}  // namespace sluice::cli
