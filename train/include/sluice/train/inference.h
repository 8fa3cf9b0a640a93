// Inference: a model (or a checkpoint) over a split, for evaluation and predictions. One path for
// `sluice eval`, `sluice train --mode eval|predict` and the trainer's periodic evaluation.
//
// Predictions come from the batches themselves (pipeline/batch.h): each sample's file name and class
// text travel with it as kept features, and its shard and record number are its origin, so no
// second reader walks the records beside the pipeline.
#ifndef SLUICE_TRAIN_INFERENCE_H_
#define SLUICE_TRAIN_INFERENCE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/formats/status.h"
#include "sluice/pipeline/pipeline.h"
#include "sluice/train/checkpoint.h"
#include "sluice/train/model.h"

namespace sluice::train {

struct EvalResult {
  int64_t images = 0;
  double top1 = 0, top5 = 0, loss = 0;
};

struct EvalOptions {
  // The data: source.files (shards or globs), preset, image_size, batch_size, threads. One epoch in
  // file order is read (no shuffle, the short last batch kept) whatever the other fields say.
  // Default preset: cifar-eval.
  pipeline::PipelineConfig data = [] {
    pipeline::PipelineConfig c;
    c.preset = pipeline::Preset::kCifarEval;
    return c;
  }();
  int64_t limit = 0;  // 0 = all
  std::string dump_inputs;  // .npy of the network inputs (N, H, W, C), when not empty
  std::string dump_logits;  // .npy of the logits (N, K)
  std::string dump_labels;  // .npy of the labels (N)
  // predictions.csv, when not empty: one row per image in the inputs' order,
  //   record,filename,label,label_name,class_1,name_1,prob_1,...,class_k,name_k,prob_k
  // record = position in the split; filename = the record's image/filename, else
  // "<shard file>:<record number in it>"; probabilities are the softmax of the logits; names come
  // from class_names (by class id), else the records' image/class/text.
  std::string predictions;
  int top_k = 5;
  std::vector<std::string> class_names;
};

// Runs the model in inference mode over the data (in the calling thread's arena).
Result<EvalResult> Evaluate(Model* model, const EvalOptions& options);

// Which weights a checkpoint is evaluated with.
enum class Averages {
  kRaw,        // the trained weights
  kIfPresent,  // the moving averages when the file has them (what training evaluates)
  kRequired,   // the moving averages; an error when the file has none
};

struct CheckpointEval {
  std::string checkpoint;
  Averages averages = Averages::kRaw;
  EvalOptions eval;
  int threads = 0;  // forward-pass threads (a task arena); 0 = all cores
};

struct CheckpointEvalResult {
  EvalResult eval;
  CheckpointMetadata meta;  // the checkpoint's (its step, its model)
  bool averaged = false;    // evaluated with the moving averages
  double seconds = 0;
};

// Builds the checkpoint's model from its metadata, loads it and evaluates it. InvalidArgument when
// the file names no model (not a sluice checkpoint), or lacks averages that are required.
Result<CheckpointEvalResult> EvaluateCheckpoint(const CheckpointEval& request);

// Class names by id from DIR/labels.txt ("<id>:<name>" lines, slim's label file); empty if absent.
Result<std::vector<std::string>> ReadLabelsFile(const std::string& data_dir);

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_INFERENCE_H_
