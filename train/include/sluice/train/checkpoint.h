// Checkpoints: safetensors files (formats/safetensors.h) in PyTorch's state_dict naming and layout.
//
//   <param>                   every parameter, PyTorch layout (conv OIHW, dense (out, in))
//   <bn>.running_mean/_var    BN statistics (F32), <bn>.num_batches_tracked (I64 scalar)
//   <param>.<slot>            the optimizer's state (optimizer.h: momentum_buffer for momentum,
//                             exp_avg/exp_avg_sq for adam, ...), same layout as <param>
//   <name>.ema                the moving average of a parameter or BN statistic (moving_average.h),
//                             when the run keeps one
//   <param>.mask              lottery pruning mask (prune.h), same layout, 1 kept / 0 pruned; only
//                             for pruned parameters
//   __metadata__              step, epoch, recipe, model, seed, data position (data_epoch,
//                             data_samples: samples of that epoch already consumed), optimizer and
//                             optimizer_steps, ...
// A PyTorch user loads the weights with
//   sd = safetensors.torch.load_file(f)
//   model.load_state_dict({k: v for k, v in sd.items()
//                          if k.rsplit(".", 1)[-1] not in ("momentum_buffer", "mask", ...)},
//                         strict=True)
// Files are written atomically (temp + fsync + rename): a crash leaves the old file or the new.
#ifndef SLUICE_TRAIN_CHECKPOINT_H_
#define SLUICE_TRAIN_CHECKPOINT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sluice/formats/status.h"
#include "sluice/pipeline/batch.h"
#include "sluice/train/model.h"
#include "sluice/train/moving_average.h"
#include "sluice/train/optimizer.h"
#include "sluice/train/torch_layout.h"

namespace sluice::train {

// A safetensors file's __metadata__ as stored: text keys and values.
using Metadata = std::map<std::string, std::string>;

// What a checkpoint says about itself. The one owner of the __metadata__ keys: every reader and
// writer goes through Encode/Decode (the trainer, resume, lottery, eval, ListCheckpoints).
struct CheckpointMetadata {
  int64_t step = 0;  // the global step: the optimizer updates applied
  bool has_step = false;  // the file has a step (files without one are not a run's checkpoints)
  double epoch = 0;  // step * batch / train images
  std::string recipe;
  // The architecture: name, num_classes, width, blocks, bn_epsilon are stored; the rest of a
  // ModelConfig (training-only rates) keeps its defaults.
  ModelConfig model;
  bool has_model = false;  // the file names a model (every sluice checkpoint does)
  uint64_t seed = 0;
  pipeline::DataCursor data;  // where the run's data continues after this step
  bool has_position = false;  // step, data_epoch and data_samples are all present
  int64_t train_steps = 0;
  double density = 1;  // of the prunable weights; stored when < 1
  std::string prune_method, prune_at, reset_to, reset_global_step_to;
  // Filled by SaveCheckpoint from the optimizer and the averages it saves.
  std::string optimizer;  // kind name; "" = no optimizer state
  int64_t optimizer_steps = 0;
  double moving_average_decay = 0;  // > 0 when the file holds <name>.ema averages
  Metadata extra;  // keys this version does not know, kept as they are

  // Metadata of a checkpoint at `step` and the start of the data (tests, tools).
  static CheckpointMetadata AtStep(int64_t step) {
    CheckpointMetadata m;
    m.step = step;
    m.has_step = m.has_position = true;
    return m;
  }

  Metadata Encode() const;
  // DataLoss naming `path` and the key when a value is malformed; absent keys keep the defaults.
  static Result<CheckpointMetadata> Decode(const Metadata& metadata, const std::string& path);
};
// Opens `path` and decodes its metadata (no tensors are read).
Result<CheckpointMetadata> ReadCheckpointMetadata(const std::string& path);

constexpr std::string_view kMaskSuffix = ".mask";

// Writes model weights, BN state, the optimizer's slots (when `optimizer` is not null), the
// averages (when `ema` is) and `metadata` to `path`; metadata's optimizer fields are set here.
Status SaveCheckpoint(const std::string& path, const Model& model, const Optimizer* optimizer,
                      CheckpointMetadata metadata, const MovingAverage* ema = nullptr);

struct LoadOptions {
  // Optimizer slots are loaded when present (and the optimizer is given) and the file was made by
  // the same kind of optimizer (a file that names none is momentum's, from before kinds); other
  // slots start at their initial values, and the optimizer's step count at the file's under the
  // same condition, else 0. Another kind's slots are ignored, even where a name is shared
  // (rmsprop's momentum_buffer is not momentum's).
  bool load_momentum = true;
  // When given: the file's <name>.ema tensors become its shadows (none when the file has none: a
  // run that turns averaging on when resumed starts it there); when null they are ignored.
  MovingAverage* ema = nullptr;
};

// Loads every parameter and BN state of `model` from `path`, and the masks: a prunable parameter
// gets the file's `<param>.mask` (its pruned weights and momentum are then zeroed) or none. NotFound
// naming the tensor for one that is missing; InvalidArgument naming the tensor and both shapes for
// a shape mismatch, for a tensor the model does not have (other than any optimizer's slots) and for a
// mask of a parameter that is never pruned; DataLoss for a mask value other than 0 or 1. Returns
// the metadata.
Result<CheckpointMetadata> LoadCheckpoint(const std::string& path, Model* model, Optimizer* optimizer,
                                const LoadOptions& options = {});

// Transfer learning: loads every parameter and BN statistic of `model` from `path` (ours, or any
// safetensors file in torchvision's names and layouts) except those matching `exclude`
// (MatchesPattern), which keep their values. Tensors of the file the model does not have are
// ignored (another head, optimizer slots). NotFound naming the tensor for one the model needs that
// is missing; InvalidArgument naming the tensor and both shapes for a shape mismatch (exclude it to
// train it fresh). No masks, optimizer state or step: the run starts at step 0.
struct InitReport {
  int loaded = 0;    // tensors taken from the file
  int excluded = 0;  // tensors of the model left at their initialization
};
Result<InitReport> InitFromCheckpoint(const std::string& path, const std::vector<std::string>& exclude,
                                      Model* model);
// A pattern matches a name equal to it or starting with it followed by '.', or, when it holds one of
// * ? [, as a glob (fnmatch) over the whole name.
bool MatchesPattern(const std::string& name, const std::vector<std::string>& patterns);


// "checkpoint_iter_<step>.safetensors" / "checkpoint_iter_final.safetensors".
std::string CheckpointName(std::optional<int64_t> step);

struct CheckpointEntry {
  std::string path;
  int64_t step = 0;  // from the metadata
  bool final = false;
};
// Checkpoints in `dir` ordered by step (the final one after a numbered one of the same step).
// Files that fail to parse are skipped (a crash cannot leave one, but a user's copy could).
Result<std::vector<CheckpointEntry>> ListCheckpoints(const std::string& dir);

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_CHECKPOINT_H_
