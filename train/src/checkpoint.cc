#include "sluice/train/checkpoint.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

#include <fnmatch.h>

#include "sluice/formats/safetensors.h"
#include "sluice/train/prune.h"

namespace sluice::train {
namespace {

using formats::SafetensorsFile;
using formats::SafetensorsWriter;

}  // namespace

namespace {

Status CheckShape(const SafetensorsFile& file, const std::string& name,
                  const std::vector<int64_t>& expected) {
  SLUICE_ASSIGN_OR_RETURN(auto tensor, file.Find(name));
  if (tensor.shape != expected)
    return Status::InvalidArgument(file.name() + ": tensor '" + name + "' has shape " +
                                   ShapeString(tensor.shape) + ", the model expects " +
                                   ShapeString(expected));
  return Status::Ok();
}

}  // namespace

std::string CheckpointName(std::optional<int64_t> step) {
  return "checkpoint_iter_" + (step ? std::to_string(*step) : std::string("final")) +
         ".safetensors";
}

Status SaveCheckpoint(const std::string& path, const Model& model, const Optimizer* optimizer,
                      CheckpointMetadata metadata, const MovingAverage* ema) {
  SafetensorsWriter writer;
  for (const Param& p : model.params()) {
    const std::vector<float> v = ToTorchLayout(p, p.value);
    SLUICE_RETURN_IF_ERROR(writer.Add<float>(p.name, p.torch_shape, v));
  }
  for (const BnState& s : model.bn_states()) {
    const int64_t c = s.running_mean.size();
    SLUICE_RETURN_IF_ERROR(writer.Add<float>(s.prefix + ".running_mean", {c}, s.running_mean.span()));
    SLUICE_RETURN_IF_ERROR(writer.Add<float>(s.prefix + ".running_var", {c}, s.running_var.span()));
    const int64_t n = s.num_batches_tracked;
    SLUICE_RETURN_IF_ERROR(writer.Add<int64_t>(s.prefix + ".num_batches_tracked", {},
                                               std::span<const int64_t>(&n, 1)));
  }
  for (const Param& p : model.params()) {
    if (!p.masked()) continue;
    const std::vector<float> m = ToTorchLayout(p, p.mask);
    SLUICE_RETURN_IF_ERROR(writer.Add<float>(p.name + std::string(kMaskSuffix), p.torch_shape, m));
  }
  if (optimizer) {
    for (const Param& p : model.params()) {
      for (const std::string& slot : optimizer->SlotNames()) {
        auto it = optimizer->slots().find(p.name + "." + slot);
        if (it == optimizer->slots().end()) continue;
        const std::vector<float> v = ToTorchLayout(p, it->second);
        SLUICE_RETURN_IF_ERROR(writer.Add<float>(it->first, p.torch_shape, v));
      }
    }
    metadata.optimizer = OptimizerKindName(optimizer->config().kind);
    metadata.optimizer_steps = optimizer->steps();
  }
  if (ema) {
    for (const Param& p : model.params()) {
      auto it = ema->shadows().find(p.name);
      if (it == ema->shadows().end()) continue;
      const std::vector<float> v = ToTorchLayout(p, it->second);
      SLUICE_RETURN_IF_ERROR(writer.Add<float>(p.name + std::string(kEmaSuffix), p.torch_shape, v));
    }
    for (const BnState& s : model.bn_states())
      for (const char* stat : {".running_mean", ".running_var"}) {
        auto it = ema->shadows().find(s.prefix + stat);
        if (it == ema->shadows().end()) continue;
        SLUICE_RETURN_IF_ERROR(writer.Add<float>(it->first + std::string(kEmaSuffix),
                                                 {it->second.size()}, it->second.span()));
      }
    metadata.moving_average_decay = ema->decay();
  }
  for (const auto& [k, v] : metadata.Encode()) writer.SetMetadata(k, v);
  return writer.WriteFile(path);
}

Result<CheckpointMetadata> LoadCheckpoint(const std::string& path, Model* model,
                                          Optimizer* optimizer, const LoadOptions& options) {
  SLUICE_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(path));
  SLUICE_ASSIGN_OR_RETURN(CheckpointMetadata meta, CheckpointMetadata::Decode(file.metadata(), path));
  std::set<std::string> used;
  // Slots carry over only from the same kind of optimizer; a file that names none is from before
  // optimizer.h had kinds, when every checkpoint was momentum's. Names are shared across kinds
  // (rmsprop's momentum_buffer holds lr * g / rms, momentum's the sum of g; rmsprop's square_avg
  // starts at 1, adadelta's at 0), and TF restores no other optimizer's slots either.
  const std::string file_kind = meta.optimizer.empty() ? "momentum" : meta.optimizer;
  const bool same_optimizer =
      optimizer && file_kind == OptimizerKindName(optimizer->config().kind);
  const bool load_slots = optimizer && options.load_momentum && same_optimizer;
  for (Param& p : model->params()) {
    if (!file.contains(p.name))
      return Status::NotFound(path + ": no tensor '" + p.name + "' (the model's parameter)");
    SLUICE_RETURN_IF_ERROR(CheckShape(file, p.name, p.torch_shape));
    SLUICE_ASSIGN_OR_RETURN(std::vector<float> v, file.Floats(p.name));
    FromTorchLayout(p, v, &p.value);
    used.insert(p.name);
    if (optimizer && options.load_momentum) {
      // Slots start at their initial values unless this file has this optimizer's (see above).
      const std::vector<std::string>& slots = optimizer->SlotNames();
      for (size_t i = 0; i < slots.size(); ++i) {
        const std::string name = p.name + "." + slots[i];
        Tensor& t = optimizer->Slot(p, i);
        if (!load_slots || !file.contains(name)) {
          t.Fill(optimizer->SlotInit(i));
          continue;
        }
        SLUICE_RETURN_IF_ERROR(CheckShape(file, name, p.torch_shape));
        SLUICE_ASSIGN_OR_RETURN(std::vector<float> sv, file.Floats(name));
        FromTorchLayout(p, sv, &t);
      }
    }
    const std::string mask = p.name + std::string(kMaskSuffix);
    if (!file.contains(mask)) {
      p.mask.Release();
      continue;
    }
    if (!p.is_prunable())
      return Status::InvalidArgument(path + ": tensor '" + mask + "' masks a parameter that is never pruned");
    SLUICE_RETURN_IF_ERROR(CheckShape(file, mask, p.torch_shape));
    SLUICE_ASSIGN_OR_RETURN(std::vector<float> mv, file.Floats(mask));
    for (size_t i = 0; i < mv.size(); ++i)
      if (mv[i] != 0.0f && mv[i] != 1.0f)
        return Status::DataLoss(path + ": tensor '" + mask + "' holds " + std::to_string(mv[i]) +
                                " at element " + std::to_string(i) + " (a mask is 0 or 1)");
    p.mask.Resize(p.value.shape());
    FromTorchLayout(p, mv, &p.mask);
    used.insert(mask);
  }
  ApplyMasks(model->params(), options.load_momentum ? optimizer : nullptr);
  for (BnState& s : model->bn_states()) {
    const int64_t c = s.running_mean.size();
    for (auto [suffix, t] : {std::pair{".running_mean", &s.running_mean},
                             std::pair{".running_var", &s.running_var}}) {
      const std::string name = s.prefix + suffix;
      if (!file.contains(name)) return Status::NotFound(path + ": no tensor '" + name + "'");
      SLUICE_RETURN_IF_ERROR(CheckShape(file, name, {c}));
      SLUICE_ASSIGN_OR_RETURN(std::vector<float> v, file.Floats(name));
      std::copy(v.begin(), v.end(), t->data());
      used.insert(name);
    }
    const std::string counter = s.prefix + ".num_batches_tracked";
    if (file.contains(counter)) {
      SLUICE_ASSIGN_OR_RETURN(std::vector<int64_t> n, file.Int64s(counter));
      if (n.size() != 1)
        return Status::InvalidArgument(path + ": '" + counter + "' is not a scalar");
      s.num_batches_tracked = n[0];
      used.insert(counter);
    }
  }
  if (options.ema) {
    options.ema->shadows().clear();
    for (const Param& p : model->params()) {
      const std::string name = p.name + std::string(kEmaSuffix);
      if (!file.contains(name)) continue;
      SLUICE_RETURN_IF_ERROR(CheckShape(file, name, p.torch_shape));
      SLUICE_ASSIGN_OR_RETURN(std::vector<float> v, file.Floats(name));
      Tensor& t = options.ema->shadows()[p.name];
      t.Resize(p.value.shape());
      FromTorchLayout(p, v, &t);
    }
    for (const BnState& s : model->bn_states())
      for (const char* stat : {".running_mean", ".running_var"}) {
        const std::string name = s.prefix + stat + std::string(kEmaSuffix);
        if (!file.contains(name)) continue;
        SLUICE_RETURN_IF_ERROR(CheckShape(file, name, {s.running_mean.size()}));
        SLUICE_ASSIGN_OR_RETURN(std::vector<float> v, file.Floats(name));
        Tensor& t = options.ema->shadows()[s.prefix + stat];
        t.Resize({s.running_mean.size()});
        std::copy(v.begin(), v.end(), t.data());
      }
  }
  auto is_slot = [](const std::string& name) {
    if (name.ends_with(kEmaSuffix)) return true;
    for (const std::string& suffix : AllSlotSuffixes())
      if (name.ends_with(suffix)) return true;
    return false;
  };
  for (const std::string& name : file.names())
    if (!used.count(name) && !is_slot(name))
      return Status::InvalidArgument(path + ": tensor '" + name + "' is not in model " +
                                     model->config().name);
  if (optimizer && options.load_momentum) {
    // The same optimizer's step count (Adam's t); another optimizer's state starts over.
    optimizer->set_steps(same_optimizer ? meta.optimizer_steps : 0);
  }
  return meta;
}

bool MatchesPattern(const std::string& name, const std::vector<std::string>& patterns) {
  for (const std::string& p : patterns) {
    if (p.find_first_of("*?[") != std::string::npos) {
      if (fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
    } else if (name == p || (name.size() > p.size() && name.starts_with(p) && name[p.size()] == '.')) {
      return true;
    }
  }
  return false;
}

Result<InitReport> InitFromCheckpoint(const std::string& path, const std::vector<std::string>& exclude,
                                      Model* model) {
  SLUICE_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(path));
  InitReport report;
  auto need = [&](const std::string& name, const std::vector<int64_t>& shape) -> Result<bool> {
    if (MatchesPattern(name, exclude)) {
      ++report.excluded;
      return false;
    }
    if (!file.contains(name))
      return Status::NotFound(path + ": no tensor '" + name + "' for the model's " + name +
                              " (exclude it with --exclude to train it from its initialization)");
    if (Status s = CheckShape(file, name, shape); !s.ok())
      return Status::InvalidArgument(s.message() +
                                     " (exclude it with --exclude, e.g. the classifier for a new class count)");
    ++report.loaded;
    return true;
  };
  for (Param& p : model->params()) {
    SLUICE_ASSIGN_OR_RETURN(bool load, need(p.name, p.torch_shape));
    if (!load) continue;
    SLUICE_ASSIGN_OR_RETURN(std::vector<float> v, file.Floats(p.name));
    FromTorchLayout(p, v, &p.value);
    p.mask.Release();
  }
  for (BnState& s : model->bn_states()) {
    const int64_t c = s.running_mean.size();
    for (auto [suffix, t] : {std::pair{".running_mean", &s.running_mean},
                             std::pair{".running_var", &s.running_var}}) {
      SLUICE_ASSIGN_OR_RETURN(bool load, need(s.prefix + suffix, {c}));
      if (!load) continue;
      SLUICE_ASSIGN_OR_RETURN(std::vector<float> v, file.Floats(s.prefix + suffix));
      std::copy(v.begin(), v.end(), t->data());
    }
    const std::string counter = s.prefix + ".num_batches_tracked";
    if (file.contains(counter) && !MatchesPattern(counter, exclude)) {
      SLUICE_ASSIGN_OR_RETURN(std::vector<int64_t> n, file.Int64s(counter));
      if (n.size() != 1) return Status::InvalidArgument(path + ": '" + counter + "' is not a scalar");
      s.num_batches_tracked = n[0];
    }
  }
  return report;
}

Result<std::vector<CheckpointEntry>> ListCheckpoints(const std::string& dir) {
  std::vector<CheckpointEntry> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.starts_with("checkpoint_iter_") || !name.ends_with(".safetensors")) continue;
    auto meta = ReadCheckpointMetadata(e.path().string());
    if (!meta.ok() || !meta->has_step) continue;  // not one of ours
    CheckpointEntry entry;
    entry.path = e.path().string();
    entry.step = meta->step;
    entry.final = name == CheckpointName(std::nullopt);
    out.push_back(entry);
  }
  std::sort(out.begin(), out.end(), [](const CheckpointEntry& a, const CheckpointEntry& b) {
    return a.step != b.step ? a.step < b.step : a.final < b.final;
  });
  return out;
}

}  // namespace sluice::train
