#include "sluice/train/inference.h"

#include <tbb/info.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <numeric>
#include <span>
#include <sstream>

#include "batch_input.h"
#include "sluice/formats/file_util.h"
#include "sluice/train/csv.h"
#include "sluice/train/moving_average.h"
#include "sluice/train/npy.h"

namespace sluice::train {
namespace {

// The features predictions need from each record; the pipeline hands them out per sample.
const std::vector<std::string> kPredictionFeatures = {"image/filename", "image/class/text"};

// Writes predictions.csv: one row per image, softmax over its logits, the top_k classes by
// probability (ties to the lower id).
class PredictionWriter {
 public:
  PredictionWriter(std::vector<std::string> class_names, int classes, int top_k)
      : names_(std::move(class_names)), top_k_(top_k) {
    names_.resize(std::max<size_t>(names_.size(), classes));
    csv_ = "record,filename,label,label_name";
    for (int k = 1; k <= top_k_; ++k) {
      const std::string n = std::to_string(k);
      csv_ += ",class_" + n + ",name_" + n + ",prob_" + n;
    }
    csv_ += "\n";
  }

  // logits: (batch.size, K), the first `n` rows used; `first` = the split position of row 0.
  void Append(const Tensor& logits, const pipeline::Batch& batch, int n, int64_t first,
              const std::vector<std::string>& files) {
    const int64_t K = logits.dim(1);
    std::vector<double> prob(K);
    std::vector<int64_t> order(K);
    for (int i = 0; i < n; ++i) {
      const int64_t label = batch.labels[i];
      std::string filename = batch.features[i * 2];
      const std::string& text = batch.features[i * 2 + 1];
      if (filename.empty()) {
        const pipeline::SampleOrigin& o = batch.origins[i];
        filename = std::filesystem::path(files[o.file]).filename().string() + ":" +
                   std::to_string(o.record);
      }
      const bool known = label >= 0 && label < K;
      if (!text.empty() && known && names_[label].empty()) names_[label] = text;
      const float* row = logits.data() + i * K;
      const double top = *std::max_element(row, row + K);
      double sum = 0;
      for (int64_t k = 0; k < K; ++k) sum += prob[k] = std::exp(static_cast<double>(row[k]) - top);
      for (int64_t k = 0; k < K; ++k) prob[k] /= sum;
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + top_k_, order.end(), [&](int64_t a, int64_t b) {
        return prob[a] != prob[b] ? prob[a] > prob[b] : a < b;
      });
      csv_ += std::to_string(first + i) + "," + CsvField(filename) + "," + std::to_string(label) +
              "," + CsvField(known ? names_[label] : std::string());
      for (int k = 0; k < top_k_; ++k) {
        char p[32];
        std::snprintf(p, sizeof(p), "%.6g", prob[order[k]]);
        csv_ += "," + std::to_string(order[k]) + "," + CsvField(names_[order[k]]) + "," + p;
      }
      csv_ += "\n";
    }
  }
  Status Write(const std::string& path) const { return formats::WriteFileAtomically(path, csv_); }

 private:
  std::vector<std::string> names_;
  const int top_k_;
  std::string csv_;
};

}  // namespace

Result<EvalResult> Evaluate(Model* model, const EvalOptions& options) {
  pipeline::PipelineConfig pc = options.data;
  pc.epochs = 1;
  pc.start = {};
  pc.source.shuffle = false;
  pc.drop_remainder = false;
  const int classes = model->config().num_classes;
  std::unique_ptr<PredictionWriter> predictions;
  if (!options.predictions.empty()) {
    pc.keep_features = kPredictionFeatures;
    predictions = std::make_unique<PredictionWriter>(options.class_names, classes,
                                                     std::clamp(options.top_k, 1, classes));
  }
  SLUICE_ASSIGN_OR_RETURN(auto pipe, pipeline::Pipeline::Create(pc));
  EvalResult r;
  pipeline::Batch batch;
  Tensor x;
  std::unique_ptr<NpyAppender> inputs, logits_out;
  std::vector<int64_t> labels_out;
  double loss_sum = 0;
  for (;;) {
    if (options.limit > 0 && r.images >= options.limit) break;
    Status s = pipe->Next(&batch);
    if (s.code() == StatusCode::kEndOfData) break;
    SLUICE_RETURN_IF_ERROR(s);
    const int n = static_cast<int>(std::min<int64_t>(
        batch.size, options.limit > 0 ? options.limit - r.images : batch.size));
    SLUICE_RETURN_IF_ERROR(CheckLabels(batch, classes, n));
    ToTensor(batch, n, &x);
    const Tensor& logits = model->Forward(x, false);
    const std::span<const int64_t> labels(batch.labels.data(), n);
    const LossResult lr = SoftmaxCrossEntropy(logits, labels, 0, nullptr);
    loss_sum += lr.loss * n;
    r.top1 += static_cast<double>(lr.top1);
    r.top5 += static_cast<double>(lr.top5);
    if (!options.dump_inputs.empty()) {
      if (!inputs)
        inputs = std::make_unique<NpyAppender>(options.dump_inputs,
                                               std::vector<int64_t>{x.dim(1), x.dim(2), x.dim(3)});
      inputs->Append(x.span());
    }
    if (!options.dump_logits.empty()) {
      if (!logits_out)
        logits_out = std::make_unique<NpyAppender>(options.dump_logits,
                                                   std::vector<int64_t>{logits.dim(1)});
      logits_out->Append(logits.span());
    }
    labels_out.insert(labels_out.end(), labels.begin(), labels.end());
    if (predictions) predictions->Append(logits, batch, n, r.images, pipe->files());
    r.images += n;
  }
  if (predictions) SLUICE_RETURN_IF_ERROR(predictions->Write(options.predictions));
  if (r.images == 0) return Status::InvalidArgument("evaluation read no images");
  r.top1 /= r.images;
  r.top5 /= r.images;
  r.loss = loss_sum / r.images;
  if (inputs) SLUICE_RETURN_IF_ERROR(inputs->Close());
  if (logits_out) SLUICE_RETURN_IF_ERROR(logits_out->Close());
  if (!options.dump_labels.empty())
    SLUICE_RETURN_IF_ERROR(WriteNpy(options.dump_labels, {static_cast<int64_t>(labels_out.size())},
                                    std::span<const int64_t>(labels_out)));
  return r;
}

Result<CheckpointEvalResult> EvaluateCheckpoint(const CheckpointEval& request) {
  const std::string& path = request.checkpoint;
  SLUICE_ASSIGN_OR_RETURN(CheckpointMetadata meta, ReadCheckpointMetadata(path));
  if (!meta.has_model)
    return Status::InvalidArgument(
        path + ": no \"model\" in the checkpoint's __metadata__ (not a sluice checkpoint)");
  SLUICE_ASSIGN_OR_RETURN(auto model, Model::Create(meta.model));
  MovingAverage ema(0);
  const bool want_averages = request.averages != Averages::kRaw;
  SLUICE_RETURN_IF_ERROR(
      LoadCheckpoint(path, model.get(), nullptr, {.ema = want_averages ? &ema : nullptr}).status());
  CheckpointEvalResult out;
  out.meta = meta;
  out.averaged = !ema.shadows().empty();
  if (request.averages == Averages::kRequired && !out.averaged)
    return Status::InvalidArgument(
        path + ": --moving-averages, but the checkpoint holds no <name>.ema tensors");
  if (out.averaged) ema.Swap(model.get());
  tbb::task_arena arena(request.threads > 0 ? request.threads
                                            : std::max(1, tbb::info::default_concurrency()));
  const auto t0 = std::chrono::steady_clock::now();
  Result<EvalResult> r = Status::Ok();
  arena.execute([&] { r = Evaluate(model.get(), request.eval); });
  SLUICE_RETURN_IF_ERROR(r.status());
  out.eval = *r;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

Result<std::vector<std::string>> ReadLabelsFile(const std::string& data_dir) {
  const std::string path = data_dir + "/labels.txt";
  std::vector<std::string> names;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return names;
  SLUICE_ASSIGN_OR_RETURN(std::string text, formats::ReadFile(path));
  std::stringstream in(text);
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    const size_t colon = line.find(':');
    char* end = nullptr;
    const long id = colon == std::string::npos ? -1 : std::strtol(line.c_str(), &end, 10);
    if (colon == std::string::npos || end != line.c_str() + colon || id < 0 || id > 1000000)
      return Status::DataLoss(path + ":" + std::to_string(line_no) + ": not '<id>:<name>'");
    if (names.size() <= static_cast<size_t>(id)) names.resize(id + 1);
    names[id] = line.substr(colon + 1);
  }
  return names;
}

}  // namespace sluice::train
