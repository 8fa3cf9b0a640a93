#include "step_log.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

#include "sluice/pipeline/profile.h"

namespace sluice::train {
namespace {

// Appends one JSON line to DIR/metrics.jsonl (opened per write: a killed run loses nothing).
Status AppendMetrics(const std::string& dir, const nlohmann::json& j) {
  std::ofstream f(dir + "/metrics.jsonl", std::ios::app);
  f << j.dump() << "\n";
  f.flush();
  if (!f) return Status::IoError(dir + "/metrics.jsonl: write failed");
  return Status::Ok();
}

// TF reports the total loss: cross-entropy plus the L2 term of the decayed weights.
double L2Term(const Model& model, const Optimizer& optimizer) {
  double l2 = 0;
  for (const Param& p : model.params()) {
    const double wd = optimizer.DecayFor(p);
    if (wd == 0 || !p.trainable) continue;
    double sq = 0;
    for (int64_t i = 0; i < p.value.size(); ++i) sq += double(p.value[i]) * p.value[i];
    l2 += 0.5 * wd * sq;
  }
  return l2;
}

}  // namespace

Status RecordEval(formats::EventWriter* events, const std::string& dir, int64_t step,
                  const EvalResult& r, const std::string& checkpoint) {
  for (auto [tag, v] : {std::pair{"accuracy", r.top1}, std::pair{"top_1_accuracy", r.top1},
                        std::pair{"top_5_accuracy", r.top5}, std::pair{"loss", r.loss}})
    SLUICE_RETURN_IF_ERROR(events->WriteScalar(step, tag, v));
  SLUICE_RETURN_IF_ERROR(events->Flush());
  nlohmann::json j = {{"kind", "eval"}, {"step", step}, {"top_1_accuracy", r.top1},
                      {"top_5_accuracy", r.top5}, {"loss", r.loss}, {"images", r.images}};
  if (!checkpoint.empty()) j["checkpoint"] = checkpoint;
  return AppendMetrics(dir, j);
}

Result<std::unique_ptr<StepLog>> StepLog::Create(const std::string& model_dir, int64_t log_every,
                                                 int64_t train_steps) {
  std::unique_ptr<StepLog> log(new StepLog(model_dir, log_every, train_steps));
  SLUICE_ASSIGN_OR_RETURN(log->events_, formats::EventWriter::Create(model_dir));
  return log;
}

Status StepLog::Step(int64_t step, double wait_s, double compute_s, int images, double loss,
                     double lr, const Model& model, const Optimizer& optimizer) {
  wait_ += wait_s;
  compute_ += compute_s;
  images_ += images;
  loss_sum_ += loss;
  ++steps_;
  total_images_ += images;
  if (total_images_ > images) total_wait_ += wait_s;  // the first step's wait is the fill time
  total_compute_ += compute_s;
  if (step % log_every_ != 0 && step != train_steps_) return Status::Ok();

  const double wall = wait_ + compute_;
  const double ips = images_ / wall;
  const double wait = wait_ / wall;
  const double mean_loss = loss_sum_ / steps_;
  const double total = mean_loss + L2Term(model, optimizer);
  std::fprintf(stderr,
               "step %lld/%lld  loss %.4f (xent %.4f)  lr %.4g  %.1f img/s  input wait %.1f%% "
               "(%s)\n",
               static_cast<long long>(step), static_cast<long long>(train_steps_), total, mean_loss,
               lr, ips, 100 * wait,
               std::string(pipeline::InputBoundName(pipeline::ClassifyInputWait(wait))).c_str());
  for (auto [tag, v] : {std::pair{"loss", total}, std::pair{"cross_entropy", mean_loss},
                        std::pair{"learning_rate", lr}, std::pair{"images_per_sec", ips},
                        std::pair{"input_wait_fraction", wait}})
    SLUICE_RETURN_IF_ERROR(events_->WriteScalar(step, tag, v));
  SLUICE_RETURN_IF_ERROR(events_->Flush());
  SLUICE_RETURN_IF_ERROR(AppendMetrics(
      dir_, {{"kind", "train"}, {"step", step}, {"loss", total}, {"cross_entropy", mean_loss},
             {"learning_rate", lr}, {"images_per_sec", ips}, {"input_wait_fraction", wait}}));
  wait_ = compute_ = loss_sum_ = 0;
  images_ = steps_ = 0;
  return Status::Ok();
}

Status StepLog::Close() { return events_->Close(); }

}  // namespace sluice::train
