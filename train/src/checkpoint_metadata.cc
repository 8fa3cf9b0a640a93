// CheckpointMetadata: the __metadata__ keys of a checkpoint, written and read here only.
#include <charconv>
#include <cstdio>
#include <cstdlib>

#include "sluice/formats/safetensors.h"
#include "sluice/train/checkpoint.h"

#include "number_text.h"

namespace sluice::train {
namespace {

constexpr const char* kFormatNote =
    "pytorch state_dict names and layouts; *.<slot> = optimizer state (momentum_buffer, exp_avg, "
    "...); *.ema = moving average; *.mask = pruning mask";

// The keys this file owns; every other key is kept in `extra`.
constexpr const char* kKnownKeys[] = {
    "step", "epoch", "recipe", "model", "num_classes", "width", "blocks", "bn_epsilon", "seed",
    "data_epoch", "data_samples", "train_steps", "format", "density", "prune_method", "prune_at",
    "reset_to", "reset_global_step_to", "optimizer", "optimizer_steps", "moving_average_decay"};

class Reader {
 public:
  Reader(const Metadata& m, const std::string& path) : m_(m), path_(path) {}
  bool Has(const char* key) const { return m_.count(key) > 0; }
  std::string Text(const char* key) const {
    auto it = m_.find(key);
    return it == m_.end() ? std::string() : it->second;
  }
  template <typename T>
  Status Integer(const char* key, T* out) const {
    if (!Has(key)) return Status::Ok();
    const std::string v = Text(key);
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), *out);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size()) return Bad(key, v);
    return Status::Ok();
  }
  template <typename T>
  Status Real(const char* key, T* out) const {
    if (!Has(key)) return Status::Ok();
    const std::string v = Text(key);
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0') return Bad(key, v);
    *out = static_cast<T>(d);
    return Status::Ok();
  }

 private:
  Status Bad(const char* key, const std::string& v) const {
    return Status::DataLoss(path_ + ": metadata '" + key + "' is '" + v + "', not a number");
  }
  const Metadata& m_;
  const std::string& path_;
};

}  // namespace

Metadata CheckpointMetadata::Encode() const {
  Metadata m = extra;
  if (has_step) {
    m["step"] = std::to_string(step);
    m["epoch"] = std::to_string(epoch);
    m["seed"] = std::to_string(seed);
    m["train_steps"] = std::to_string(train_steps);
    m["format"] = kFormatNote;
  }
  if (has_position) {
    m["data_epoch"] = std::to_string(data.epoch);
    m["data_samples"] = std::to_string(data.samples);
  }
  if (has_model) {
    m["model"] = model.name;
    m["num_classes"] = std::to_string(model.num_classes);
    m["width"] = std::to_string(model.width);
    m["blocks"] = std::to_string(model.blocks);
    m["bn_epsilon"] = ShortestText(model.bn_epsilon);
  }
  if (density < 1) m["density"] = std::to_string(density);
  for (auto [key, value] : {std::pair{"recipe", &recipe}, std::pair{"prune_method", &prune_method},
                            std::pair{"prune_at", &prune_at}, std::pair{"reset_to", &reset_to},
                            std::pair{"reset_global_step_to", &reset_global_step_to}})
    if (!value->empty()) m[key] = *value;
  if (!optimizer.empty()) {
    m["optimizer"] = optimizer;
    m["optimizer_steps"] = std::to_string(optimizer_steps);
  }
  if (moving_average_decay > 0) m["moving_average_decay"] = std::to_string(moving_average_decay);
  return m;
}

Result<CheckpointMetadata> CheckpointMetadata::Decode(const Metadata& metadata,
                                                      const std::string& path) {
  const Reader r(metadata, path);
  CheckpointMetadata c;
  SLUICE_RETURN_IF_ERROR(r.Integer("step", &c.step));
  SLUICE_RETURN_IF_ERROR(r.Real("epoch", &c.epoch));
  SLUICE_RETURN_IF_ERROR(r.Integer("seed", &c.seed));
  SLUICE_RETURN_IF_ERROR(r.Integer("data_epoch", &c.data.epoch));
  SLUICE_RETURN_IF_ERROR(r.Integer("data_samples", &c.data.samples));
  SLUICE_RETURN_IF_ERROR(r.Integer("train_steps", &c.train_steps));
  SLUICE_RETURN_IF_ERROR(r.Real("density", &c.density));
  SLUICE_RETURN_IF_ERROR(r.Integer("optimizer_steps", &c.optimizer_steps));
  SLUICE_RETURN_IF_ERROR(r.Real("moving_average_decay", &c.moving_average_decay));
  c.has_step = r.Has("step");
  c.has_position = c.has_step && r.Has("data_epoch") && r.Has("data_samples");
  c.has_model = !r.Text("model").empty();
  if (c.has_model) {
    c.model.name = r.Text("model");
    SLUICE_RETURN_IF_ERROR(r.Integer("num_classes", &c.model.num_classes));
    SLUICE_RETURN_IF_ERROR(r.Integer("width", &c.model.width));
    SLUICE_RETURN_IF_ERROR(r.Integer("blocks", &c.model.blocks));
    SLUICE_RETURN_IF_ERROR(r.Real("bn_epsilon", &c.model.bn_epsilon));
  }
  c.recipe = r.Text("recipe");
  c.prune_method = r.Text("prune_method");
  c.prune_at = r.Text("prune_at");
  c.reset_to = r.Text("reset_to");
  c.reset_global_step_to = r.Text("reset_global_step_to");
  c.optimizer = r.Text("optimizer");
  c.extra = metadata;
  for (const char* key : kKnownKeys) c.extra.erase(key);
  return c;
}

Result<CheckpointMetadata> ReadCheckpointMetadata(const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(formats::SafetensorsFile file, formats::SafetensorsFile::Open(path));
  return CheckpointMetadata::Decode(file.metadata(), path);
}

}  // namespace sluice::train
