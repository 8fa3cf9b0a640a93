// The step loop (trainer.h): batch -> forward -> loss -> backward -> optimizer step, with the
// checkpoints, evaluations and step log around it. The rooms it calls: run_setup.h (dataset,
// steps, schedule, threads), run_start.h (fresh / resume / lottery start), step_log.h (log line,
// events, metrics.jsonl), inference.h (evaluation, --mode eval|predict), checkpoint.h.
#include "sluice/train/trainer.h"

#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>

#include "batch_input.h"
#include "run_start.h"
#include "sluice/formats/events.h"
#include "sluice/formats/file_util.h"
#include "sluice/train/checkpoint.h"
#include "sluice/train/moving_average.h"
#include "sluice/train/prune.h"
#include "step_log.h"

namespace sluice::train {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The seed of the stochastic layers (dropout, stochastic depth) for one step: a function of the
// run seed and the global step only (SplitMix64 finalizer), so a resumed run draws the masks the
// uninterrupted one would have.
uint64_t StepNoiseSeed(uint64_t seed, int64_t step) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(step);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The evaluation data of a run: `split` with the eval preset.
EvalOptions RunEvalOptions(const TrainConfig& c, const DatasetInfo& data, const std::string& split,
                           int pipeline_threads) {
  EvalOptions o;
  o.data = c.pipeline;  // the train input's settings, with the eval preset over `split`
  o.data.source.files = data.files.at(split);
  o.data.preset = c.data.eval_preset;
  o.data.batch_size = c.optimization.batch_size;
  o.data.threads = pipeline_threads;
  o.limit = c.run.eval_limit;
  return o;
}

// --mode eval and predict: one pass over a split with a checkpoint's weights (its moving averages
// when it has them), through the path `sluice eval` takes.
Result<TrainSummary> RunInference(const TrainConfig& c, const DatasetInfo& data) {
  const std::string mode(RunModeName(c.run.mode));
  CheckpointEval request;
  request.checkpoint = c.run.checkpoint;
  if (request.checkpoint.empty()) {
    SLUICE_ASSIGN_OR_RETURN(auto existing, ListCheckpoints(c.run.model_dir));
    if (existing.empty())
      return Status::NotFound("--mode " + mode + ": no checkpoint in " + c.run.model_dir +
                              " (train first, or pass --checkpoint FILE)");
    request.checkpoint = existing.back().path;
  }
  const bool predict = c.run.mode == RunMode::kPredict;
  const std::string split = predict && !c.run.predict_split.empty() ? c.run.predict_split : data.eval_split;
  if (data.files.count(split) == 0)
    return Status::NotFound(c.data.dir + "/manifest.json: no split '" + split + "'");
  const ThreadBudget threads = ResolveThreads(c);
  request.averages = Averages::kIfPresent;
  request.threads = threads.train;
  request.eval = RunEvalOptions(c, data, split, threads.pipeline);
  if (predict) {
    request.eval.predictions = c.run.predictions.empty() ? c.run.model_dir + "/predictions.csv" : c.run.predictions;
    request.eval.top_k = c.run.top_k;
    SLUICE_ASSIGN_OR_RETURN(request.eval.class_names, ReadLabelsFile(c.data.dir));
  }
  SLUICE_ASSIGN_OR_RETURN(CheckpointEvalResult r, EvaluateCheckpoint(request));
  TrainSummary summary;
  summary.first_step = summary.steps = r.meta.step;
  summary.final_eval = r.eval;
  summary.final_checkpoint = request.checkpoint;
  summary.seconds = r.seconds;
  std::fprintf(stderr, "%s: %s (step %lld%s) on %lld %s images: top-1 %.4f, top-5 %.4f, loss %.4f (%.1f s)\n",
               mode.c_str(), request.checkpoint.c_str(), static_cast<long long>(r.meta.step),
               r.averaged ? ", moving averages" : "", static_cast<long long>(r.eval.images),
               split.c_str(), r.eval.top1, r.eval.top5, r.eval.loss, r.seconds);
  if (predict) {
    std::fprintf(stderr, "predict: wrote %s\n", request.eval.predictions.c_str());
    summary.predictions = request.eval.predictions;
    return summary;
  }
  SLUICE_RETURN_IF_ERROR(formats::CreateDirectories(c.run.model_dir));
  SLUICE_ASSIGN_OR_RETURN(auto events, formats::EventWriter::Create(c.run.model_dir + "/eval"));
  SLUICE_RETURN_IF_ERROR(RecordEval(events.get(), c.run.model_dir, r.meta.step, r.eval, request.checkpoint));
  SLUICE_RETURN_IF_ERROR(events->Close());
  return summary;
}

}  // namespace

Result<TrainSummary> Train(const TrainConfig& config) {
  const TrainConfig& c = config;
  if (c.run.model_dir.empty()) return Status::InvalidArgument("--model-dir is required");
  if (c.data.dir.empty()) return Status::InvalidArgument("--data-dir is required");
  if (c.optimization.batch_size < 1) return Status::InvalidArgument("batch size must be at least 1");
  SLUICE_ASSIGN_OR_RETURN(DatasetInfo data, ReadDatasetInfo(c.data.dir, c.data.train_split, c.data.eval_split));
  if (c.run.mode == RunMode::kEval || c.run.mode == RunMode::kPredict) return RunInference(c, data);
  const bool evaluating = c.run.mode == RunMode::kTrainAndEval;
  ModelConfig mc = c.model;
  if (data.num_classes > 0) mc.num_classes = data.num_classes;  // the shards decide
  SLUICE_ASSIGN_OR_RETURN(auto model, Model::Create(mc));
  SLUICE_RETURN_IF_ERROR(SetTrainable(c.transfer.trainable, model.get()));
  const int64_t train_steps = ResolveTrainSteps(c, data.train_images);
  const LrSchedule schedule = ResolveSchedule(c, data.train_images, train_steps);
  SLUICE_RETURN_IF_ERROR(schedule.Validate());
  SLUICE_RETURN_IF_ERROR(c.optimization.optimizer.Validate());
  Optimizer optimizer(c.optimization.optimizer);
  if (!(c.optimization.moving_average_decay >= 0 && c.optimization.moving_average_decay < 1))
    return Status::InvalidArgument("--moving-average-decay must be in [0, 1)");
  std::unique_ptr<MovingAverage> ema;
  if (c.optimization.moving_average_decay > 0) ema = std::make_unique<MovingAverage>(c.optimization.moving_average_decay);
  const ThreadBudget threads = ResolveThreads(c);
  tbb::task_arena arena(threads.train);  // the model's core budget; the pipeline has its own

  SLUICE_RETURN_IF_ERROR(formats::CreateDirectories(c.run.model_dir));
  SLUICE_ASSIGN_OR_RETURN(auto existing, ListCheckpoints(c.run.model_dir));
  SLUICE_ASSIGN_OR_RETURN(RunStart start, StartRun(c, existing, train_steps, model.get(), &optimizer,
                                                   ema.get()));
  int64_t step = start.step;
  pipeline::DataCursor data_at = start.data;
  TrainSummary summary;
  summary.train_steps = train_steps;
  summary.first_step = step;
  TrainConfig used = c;  // hparams.yaml records the values used: the class count is the shards'
  used.model = mc;
  SLUICE_RETURN_IF_ERROR(formats::WriteFileAtomically(c.run.model_dir + "/hparams.yaml", HparamsToYaml(used)));

  auto save = [&](std::optional<int64_t> at) -> Status {
    CheckpointMetadata m = CheckpointMetadata::AtStep(step);
    m.epoch = static_cast<double>(step) * c.optimization.batch_size / data.train_images;
    m.recipe = c.recipe;
    m.model = mc;
    m.has_model = true;
    m.seed = c.run.seed;
    m.data = data_at;
    m.train_steps = train_steps;
    m.density = PrunableDensity(model->params());
    m.prune_method = c.lottery.prune_method;
    m.prune_at = c.lottery.prune_at;
    m.reset_to = c.lottery.reset_to;
    m.reset_global_step_to = c.lottery.reset_global_step_to;
    const std::string path = c.run.model_dir + "/" + CheckpointName(at);
    SLUICE_RETURN_IF_ERROR(SaveCheckpoint(path, *model, &optimizer, m, ema.get()));
    std::fprintf(stderr, "train: wrote %s\n", path.c_str());
    summary.final_checkpoint = path;
    return Status::Ok();
  };
  auto wants_checkpoint = [&](int64_t at) {
    return std::find(c.run.checkpoint_iters.begin(), c.run.checkpoint_iters.end(), at) !=
           c.run.checkpoint_iters.end();
  };

  SLUICE_ASSIGN_OR_RETURN(auto log, StepLog::Create(c.run.model_dir, c.run.log_every, train_steps));
  SLUICE_ASSIGN_OR_RETURN(auto eval_events, formats::EventWriter::Create(c.run.model_dir + "/eval"));
  const EvalOptions eval_options = RunEvalOptions(c, data, data.eval_split, threads.pipeline);
  auto evaluate = [&]() -> Status {
    const auto t0 = Clock::now();
    Result<EvalResult> r = Status::Ok();
    if (ema) ema->Swap(model.get());  // evaluate the averaged weights, as the TPU scripts do
    arena.execute([&] { r = Evaluate(model.get(), eval_options); });
    if (ema) ema->Swap(model.get());
    SLUICE_RETURN_IF_ERROR(r.status());
    summary.final_eval = *r;
    std::fprintf(stderr, "eval  step %lld: top-1 %.4f  top-5 %.4f  loss %.4f  (%lld images, %.1f s)\n",
                 static_cast<long long>(step), r->top1, r->top5, r->loss,
                 static_cast<long long>(r->images), Seconds(t0, Clock::now()));
    return RecordEval(eval_events.get(), c.run.model_dir, step, *r);
  };

  if (step == 0 && wants_checkpoint(0)) SLUICE_RETURN_IF_ERROR(save(0));
  // A run that starts from checkpoints records where it started (pruned, rewound): a resume starts
  // there without pruning again, and the start state can be inspected.
  if (start.from_checkpoints && existing.empty() && step > 0) SLUICE_RETURN_IF_ERROR(save(step));

  pipeline::PipelineConfig pc = c.pipeline;  // the train input: preset, image size, knobs
  pc.source.files = data.files.at(c.data.train_split);
  pc.source.seed = c.run.seed;
  pc.batch_size = c.optimization.batch_size;
  pc.threads = threads.pipeline;
  pc.epochs = 0;  // endless: the step count ends the run
  pc.start = data_at;
  std::unique_ptr<pipeline::Pipeline> pipe;
  if (step < train_steps) {
    SLUICE_ASSIGN_OR_RETURN(pipe, pipeline::Pipeline::Create(pc));
  }
  std::fprintf(stderr,
               "train: %s (%lld parameters), recipe %s, %lld train / %lld eval images, %d classes, "
               "batch %d, %lld steps (%.1f epochs), %d train + %d pipeline threads\n",
               mc.name.c_str(), static_cast<long long>(model->num_parameters()), c.recipe.c_str(),
               static_cast<long long>(data.train_images), static_cast<long long>(data.eval_images),
               mc.num_classes, c.optimization.batch_size, static_cast<long long>(train_steps),
               static_cast<double>(train_steps) * c.optimization.batch_size / data.train_images, threads.train,
               threads.pipeline);

  pipeline::Batch batch;
  Tensor x, dlogits;
  const auto run_start = Clock::now();
  while (step < train_steps) {
    const auto t0 = Clock::now();
    SLUICE_RETURN_IF_ERROR(pipe->Next(&batch));
    const auto t1 = Clock::now();
    data_at = batch.cursor;  // a checkpoint after this step resumes after this batch
    SLUICE_RETURN_IF_ERROR(CheckLabels(batch, mc.num_classes, batch.size));
    ToTensor(batch, batch.size, &x);
    const double lr = schedule.At(step);
    LossResult loss;
    model->SetNoiseSeed(StepNoiseSeed(c.run.seed, step));
    arena.execute([&] {
      const Tensor& logits = model->Forward(x, true);
      loss = SoftmaxCrossEntropy(logits, std::span<const int64_t>(batch.labels.data(), batch.size),
                                 static_cast<float>(c.optimization.label_smoothing), &dlogits);
      model->ZeroGrad();
      model->Backward(dlogits);
      optimizer.Step(model->params(), lr);
      if (ema) ema->Update(*model, step + 1);
    });
    if (!std::isfinite(loss.loss))
      return Status::InvalidArgument("loss is " + std::to_string(loss.loss) + " at step " +
                                     std::to_string(step) + " (diverged; lower the learning rate)");
    ++step;
    SLUICE_RETURN_IF_ERROR(log->Step(step, Seconds(t0, t1), Seconds(t1, Clock::now()), batch.size,
                                     loss.loss, lr, *model, optimizer));
    if (wants_checkpoint(step) && step != train_steps) SLUICE_RETURN_IF_ERROR(save(step));
    if (evaluating && c.run.eval_every > 0 && step % c.run.eval_every == 0 && step != train_steps)
      SLUICE_RETURN_IF_ERROR(evaluate());
  }
  summary.seconds = Seconds(run_start, Clock::now());
  summary.steps = step;
  if (wants_checkpoint(step)) SLUICE_RETURN_IF_ERROR(save(step));
  SLUICE_RETURN_IF_ERROR(save(std::nullopt));
  if (evaluating) SLUICE_RETURN_IF_ERROR(evaluate());
  if (pipe) {
    pipe->Stop();
    summary.limiting_stage = pipe->Stats().limiting_stage;
  }
  const double wait = log->total_wait_s(), compute = log->total_compute_s();
  summary.images_per_sec = wait + compute > 0 ? log->total_images() / (wait + compute) : 0;
  summary.input_wait_fraction = wait + compute > 0 ? wait / (wait + compute) : 0;
  SLUICE_RETURN_IF_ERROR(log->Close());
  SLUICE_RETURN_IF_ERROR(eval_events->Close());
  std::fprintf(stderr,
               "train: %lld steps in %.1f s, %.1f img/s; input wait %.1f%% of step time (%s); "
               "compute %.1f s, input wait %.1f s; pipeline's limiting stage: %s\n",
               static_cast<long long>(step - summary.first_step), summary.seconds,
               summary.images_per_sec, 100 * summary.input_wait_fraction,
               std::string(pipeline::InputBoundName(pipeline::ClassifyInputWait(summary.input_wait_fraction))).c_str(),
               compute, wait, summary.limiting_stage.empty() ? "-" : summary.limiting_stage.c_str());
  if (evaluating)
    std::fprintf(stderr, "train: final top-1 %.4f, top-5 %.4f on %lld %s images%s; checkpoint %s\n",
                 summary.final_eval.top1, summary.final_eval.top5,
                 static_cast<long long>(summary.final_eval.images), data.eval_split.c_str(),
                 ema ? " (moving averages)" : "", summary.final_checkpoint.c_str());
  else
    std::fprintf(stderr, "train: checkpoint %s (--mode train: no evaluation)\n",
                 summary.final_checkpoint.c_str());
  return summary;
}

}  // namespace sluice::train
