// sluice train / sluice eval: the trainer (train/trainer.h) behind flags.
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "command.h"
#include "run_flags.h"
#include "sluice/cli/cli.h"
#include "sluice/formats/file_util.h"
#include "sluice/train/checkpoint.h"
#include "sluice/train/trainer.h"

namespace sluice::cli {
namespace {

struct TrainFlags {
  RunFlags run;
  std::string model_dir, checkpoint_iters;
  std::string mode = "train_and_eval", checkpoint, predict_split, predictions;
  int top_k = 5;
  bool resume = false;
  bool Given(const char* flag) const { return run.Given(flag); }
};

Result<std::vector<int64_t>> ParseSteps(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    try {
      size_t used = 0;
      const long long v = std::stoll(item, &used);
      if (used != item.size() || v < 0) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (...) {
      return Status::InvalidArgument("--checkpoint-iters: '" + item + "' is not a step number");
    }
  }
  return out;
}

// eval/predict on a run directory: its hparams.yaml (recipe, model, presets) is the base, unless
// --hparams names another file.
RunFlags WithRunHparams(const TrainFlags& f) {
  RunFlags run = f.run;
  if ((f.mode != "eval" && f.mode != "predict") || f.Given("--hparams")) return run;
  const std::string path = f.model_dir + "/hparams.yaml";
  auto text = formats::ReadFile(path);
  if (!text.ok() || !text->starts_with("recipe: ")) return run;
  run.recipe = text->substr(8, text->find('\n') - 8);
  run.hparams = path;
  std::fprintf(stderr, "%s: the run's settings from %s\n", f.mode.c_str(), path.c_str());
  return run;
}

int RunTrain(const TrainFlags& f) {
  train::TrainConfig c;
  if (Status s = ApplyRunFlags(WithRunHparams(f), &c); !s.ok()) {
    PrintError(s);
    return kExitUsage;
  }
  c.run.model_dir = f.model_dir;
  c.run.resume = f.resume;
  if (Status s = ApplyHparamFlags(TrainFlagTable(), f.run, &c); !s.ok()) {
    PrintError(s);
    return kExitUsage;
  }
  auto mode = train::ParseRunMode(f.mode);
  if (!mode.ok()) {
    PrintError(mode.status());
    return kExitUsage;
  }
  c.run.mode = *mode;
  c.run.checkpoint = f.checkpoint;
  c.run.predict_split = f.predict_split;
  c.run.predictions = f.predictions;
  c.run.top_k = f.top_k;
  auto iters = ParseSteps(f.checkpoint_iters);
  if (!iters.ok()) {
    PrintError(iters.status());
    return kExitUsage;
  }
  c.run.checkpoint_iters = *iters;
  auto summary = train::Train(c);
  if (!summary.ok()) {
    PrintError(summary.status());
    return kExitFailure;
  }
  if (c.run.mode == train::RunMode::kPredict) {
    std::printf("predictions %s  images %lld  top-1 %.4f  top-5 %.4f\n", summary->predictions.c_str(),
                static_cast<long long>(summary->final_eval.images), summary->final_eval.top1,
                summary->final_eval.top5);
    return kExitOk;
  }
  if (c.run.mode == train::RunMode::kTrain) {
    std::printf("steps %lld  %.1f img/s  input wait %.1f%%  (no evaluation: --mode train)\n",
                static_cast<long long>(summary->steps), summary->images_per_sec,
                100 * summary->input_wait_fraction);
    return kExitOk;
  }
  std::printf("steps %lld  top-1 %.4f  top-5 %.4f  eval loss %.4f  %.1f img/s  input wait %.1f%%\n",
              static_cast<long long>(summary->steps), summary->final_eval.top1,
              summary->final_eval.top5, summary->final_eval.loss, summary->images_per_sec,
              100 * summary->input_wait_fraction);
  return kExitOk;
}

std::string TrainFooter() {
  std::string s = "\nRecipes (--recipe):\n";
  for (const auto& [name, text] : train::RecipeDescriptions()) s += "  " + name + ": " + text + "\n";
  s += "\nModels (--model): ";
  for (const std::string& m : train::ModelNames()) s += m + " ";
  s += "\n\nHyperparameters (--hparams FILE.yaml with `key: value` lines, or --set key=value):\n  ";
  size_t col = 2;
  for (const std::string& k : train::HparamKeys()) {
    if (col + k.size() > 96) s += "\n  ", col = 2;
    s += k + " ";
    col += k.size() + 1;
  }
  s +=
      "\n\nPrecedence: recipe < --hparams < --set < the flags above. The run writes "
      "DIR/hparams.yaml with every value used.\n"
      "\nExample:\n"
      "  sluice train --model resnet20 --recipe tf-cifar-resnet --data-dir shards/cifar10 \\\n"
      "      --model-dir runs/r20 --checkpoint-iters 0,4701 --eval-every 2000\n"
      "  sluice results runs/r20     # the accuracy table\n"
      "\nLottery runs (--train-steps is the global step to stop at; `sluice lottery` runs whole "
      "experiments):\n"
      "  # prune to 80 %, rewind weights and LR to step 4701, retrain to 71108\n"
      "  sluice train ... --model-dir runs/wr80 --prune-method prune_all_to_global_80.0 \\\n"
      "      --prune-at runs/r20/checkpoint_iter_final.safetensors \\\n"
      "      --reset-to runs/r20/checkpoint_iter_4701.safetensors\n"
      "  # prune, keep the final weights, rewind only the LR schedule\n"
      "  sluice train ... --model-dir runs/lr80 --prune-method prune_all_to_global_80.0 \\\n"
      "      --prune-at runs/r20/checkpoint_iter_final.safetensors \\\n"
      "      --reset-global-step-to runs/r20/checkpoint_iter_4701.safetensors\n"
      "  # prune and fine-tune at 0.001 for 66407 steps past 71108\n"
      "  sluice train ... --model-dir runs/ft80 --prune-method prune_all_to_global_80.0 \\\n"
      "      --prune-at runs/r20/checkpoint_iter_final.safetensors --force-learning-rate 0.001 \\\n"
      "      --train-steps 137515\n"
      "\nTransfer learning (slim's --checkpoint_exclude_scopes / --trainable_scopes):\n"
      "  sluice train --recipe flowers-finetune --data-dir shards/flowers --model-dir runs/flowers \\\n"
      "      --init-from resnet50_imagenet.safetensors --exclude fc [--trainable layer4,fc]\n"
      "  sluice train --recipe flowers-finetune --data-dir shards/flowers --model-dir runs/flowers \\\n"
      "      --mode predict --top-k 3     # runs/flowers/predictions.csv\n";
  return s;
}

struct EvalFlags {
  std::string checkpoint;
  std::vector<std::string> data;
  std::string preset = "cifar-eval";
  int64_t limit = 0;
  int batch = 256;
  int threads = 0;
  int image_size = 0;
  std::string dump_inputs, dump_logits, dump_labels;
  bool moving_averages = false;
};

int RunEval(const EvalFlags& f) {
  auto preset = pipeline::ParsePreset(f.preset);
  if (!preset.ok()) {
    PrintError(preset.status());
    return kExitUsage;
  }
  train::CheckpointEval request;
  request.checkpoint = f.checkpoint;
  request.averages = f.moving_averages ? train::Averages::kRequired : train::Averages::kRaw;
  request.eval.data.source.files = f.data;
  request.eval.data.preset = *preset;
  request.eval.data.image_size = f.image_size;
  request.eval.data.batch_size = f.batch;
  request.eval.data.threads = f.threads;
  request.eval.limit = f.limit;
  request.eval.dump_inputs = f.dump_inputs;
  request.eval.dump_logits = f.dump_logits;
  request.eval.dump_labels = f.dump_labels;
  auto r = train::EvaluateCheckpoint(request);
  if (!r.ok()) {
    PrintError(r.status());
    return kExitFailure;
  }
  std::printf("images %lld  top-1 %.4f  top-5 %.4f  loss %.4f\n",
              static_cast<long long>(r->eval.images), r->eval.top1, r->eval.top5, r->eval.loss);
  return kExitOk;
}

}  // namespace

Command AddTrainCommand(CLI::App& root) {
  auto f = std::make_shared<TrainFlags>();
  CLI::App* app = root.add_subcommand(
      "train",
      "Train a CNN on shards from `sluice ingest`, with checkpoints, evaluation, TensorBoard events "
      "and input-stall accounting");
  AddRunFlags(app, &f->run, "Steps to train (default: the recipe's, scaled to this dataset and batch)");
  app->add_option("--model-dir", f->model_dir, "Run directory: checkpoints, events, metrics.jsonl")
      ->required();
  app->add_option("--checkpoint-iters", f->checkpoint_iters,
                  "Comma-separated steps to checkpoint at, e.g. 0,4701 (the end always is)");
  AddHparamFlags(app, TrainFlagTable(), &f->run);
  app->add_option("--mode", f->mode,
                  "train | train_and_eval (evaluate every --steps-per-eval and at the end) | eval "
                  "(a checkpoint on the eval split) | predict (write predictions.csv)")
      ->check(CLI::IsMember({"train", "train_and_eval", "eval", "predict"}))
      ->capture_default_str();
  app->add_option("--checkpoint", f->checkpoint,
                  "eval/predict: the checkpoint (default: the newest in --model-dir)");
  app->add_option("--predict-split", f->predict_split, "predict: the split (default: the eval split)");
  app->add_option("--predictions", f->predictions,
                  "predict: the CSV to write (default: MODEL_DIR/predictions.csv)");
  app->add_option("--top-k", f->top_k, "predict: classes per image")->capture_default_str();
  app->add_flag("--resume", f->resume, "Continue from the newest checkpoint in --model-dir");
  app->footer(TrainFooter());
  return {app, [f] { return RunTrain(*f); }};
}

Command AddEvalCommand(CLI::App& root) {
  auto f = std::make_shared<EvalFlags>();
  CLI::App* app = root.add_subcommand(
      "eval", "Evaluate a checkpoint on shards: top-1, top-5, loss; optionally dump the network's "
              "exact inputs and logits as .npy");
  app->add_option("--checkpoint", f->checkpoint, "A checkpoint_iter_*.safetensors")->required();
  app->add_option("--data", f->data, "Shard files or globs, e.g. 'DIR/test-*'")->required();
  app->add_option("--preset", f->preset, "Eval preprocessing: cifar-eval|resnet-eval|vgg-eval")
      ->capture_default_str();
  app->add_option("--image-size", f->image_size, "Output side (default: the preset's)");
  app->add_option("--limit", f->limit, "At most N images (default all)");
  app->add_option("--batch", f->batch, "Images per forward pass")->capture_default_str();
  app->add_option("--threads", f->threads, "Pipeline threads (0 = all cores)");
  app->add_option("--dump-inputs", f->dump_inputs, "Write the network inputs (N, H, W, C) to X.npy");
  app->add_option("--dump-logits", f->dump_logits, "Write the logits (N, classes) to Y.npy");
  app->add_option("--dump-labels", f->dump_labels, "Write the labels (N) to Z.npy");
  app->add_flag("--moving-averages", f->moving_averages,
                "Evaluate the checkpoint's moving averages of the weights (<name>.ema) instead of the "
                "raw weights");
  return {app, [f] { return RunEval(*f); }};
}

}  // namespace sluice::cli
