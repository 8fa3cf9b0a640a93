// One training step of a model on a seeded random batch, with every intermediate written out for
// tests/train/torch_parity_interop.py to recompute in PyTorch: inputs, labels, the state before,
// training-mode logits, loss, parameter gradients, the state after one optimizer step (with its
// slots, `<param>.<slot>`), and eval-mode logits of that state. --optimizer takes slim's names
// (momentum by default); the number flags below set its OptimizerConfig, and a bad one exits 2.
// With --load FILE (a state_dict in PyTorch layout, e.g. torchvision's own freshly initialized
// model) it loads that instead of initializing, and writes only inputs.npy and the eval-mode
// logits of the loaded weights, eval_logits.npy.
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "sluice/formats/file_util.h"
#include "sluice/formats/safetensors.h"
#include "sluice/train/checkpoint.h"
#include "sluice/train/model.h"
#include "sluice/train/npy.h"
#include "optimizer_flags.h"
#include "sluice/train/optimizer.h"

using namespace sluice;
using namespace sluice::train;

namespace {

int Fail(const std::string& what) {
  std::fprintf(stderr, "train_step_tool: %s\n", what.c_str());
  return 1;
}

int Usage(const std::string& what) {
  std::fprintf(stderr, "train_step_tool: %s\n", what.c_str());
  return 2;
}


}  // namespace

int main(int argc, char** argv) {
  ModelConfig mc;
  int batch = 8, image = 32;
  uint64_t seed = 1, noise_seed = 0;
  double lr = 0.1, label_smoothing = 0;
  OptimizerConfig optimizer_config;
  std::string out, init = "tf", load, optimizer_name = "momentum";

  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) std::exit(Usage("missing value for " + a));
      return argv[++i];
    };
    if (double* field = OptimizerNumberField(optimizer_config, a)) {
      const std::string v = next();
      if (!ParseNumber(v, field)) return Usage("bad number for " + a + ": " + v);
    } else if (a == "--model") mc.name = next();
    else if (a == "--seed") seed = std::stoull(next());
    else if (a == "--batch") batch = std::stoi(next());
    else if (a == "--image-size") image = std::stoi(next());
    else if (a == "--num-classes") mc.num_classes = std::stoi(next());
    else if (a == "--lr") lr = std::stod(next());
    else if (a == "--optimizer") optimizer_name = next();
    else if (a == "--nesterov") optimizer_config.nesterov = true;
    else if (a == "--no-decay-bn") optimizer_config.decay_batch_norm = false;
    else if (a == "--bn-momentum") mc.bn_momentum = std::stof(next());
    else if (a == "--label-smoothing") label_smoothing = std::stod(next());
    else if (a == "--init") init = next();
    else if (a == "--dropout") mc.dropout = std::stof(next());
    else if (a == "--drop-connect") mc.drop_connect = std::stof(next());
    else if (a == "--noise-seed") noise_seed = std::stoull(next());
    else if (a == "--load") load = next();
    else if (a == "--out") out = next();
    else return Usage("unknown flag " + a);
  }
  if (out.empty()) return Usage("--out is required");
  auto kind = ParseOptimizerKind(optimizer_name);
  if (!kind.ok()) return Usage(kind.status().ToString());
  optimizer_config.kind = *kind;
  if (Status s = optimizer_config.Validate(); !s.ok()) return Usage(s.ToString());
  if (Status s = formats::CreateDirectories(out); !s.ok()) return Fail(s.ToString());
  auto created = Model::Create(mc);
  if (!created.ok()) return Fail(created.status().ToString());
  Model& model = **created;
  model.SetNoiseSeed(noise_seed);
  std::mt19937 rng(seed);
  if (!load.empty()) {
    auto loaded = LoadCheckpoint(load, &model, nullptr);
    if (!loaded.ok()) return Fail(loaded.status().ToString());
    Tensor x({batch, image, image, 3});
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int64_t i = 0; i < x.size(); ++i) x[i] = normal(rng);
    const Tensor& eval_logits = model.Forward(x, false);
    Status s = WriteNpy(out + "/inputs.npy", x.shape(), x.span());
    if (s.ok()) s = WriteNpy(out + "/eval_logits.npy", eval_logits.shape(), eval_logits.span());
    if (!s.ok()) return Fail(s.ToString());
    std::printf("%s: eval logits of %s\n", mc.name.c_str(), load.c_str());
    return 0;
  }
  model.Initialize(init == "tf" ? InitScheme::kTensorFlow : InitScheme::kTorchvision, seed);
  // Random BN state and gammas, so the parity check covers their use (fresh ones are 0 / 1).
  std::uniform_real_distribution<float> u(0.5f, 1.5f);
  for (BnState& s : model.bn_states())
    for (int64_t c = 0; c < s.running_mean.size(); ++c)
      s.running_mean[c] = u(rng) - 1.0f, s.running_var[c] = u(rng);
  for (Param& p : model.params())
    if (p.kind == ParamKind::kBnWeight || p.kind == ParamKind::kBnBias)
      for (int64_t c = 0; c < p.value.size(); ++c) p.value[c] = u(rng) - (p.kind == ParamKind::kBnBias);

  Tensor x({batch, image, image, 3});
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t i = 0; i < x.size(); ++i) x[i] = normal(rng);
  std::vector<int64_t> labels(batch);
  for (int n = 0; n < batch; ++n) labels[n] = static_cast<int64_t>(rng() % mc.num_classes);

  Optimizer optimizer(optimizer_config);
  Status s = WriteNpy(out + "/inputs.npy", x.shape(), x.span());
  if (s.ok()) s = WriteNpy(out + "/labels.npy", {batch}, std::span<const int64_t>(labels));
  if (s.ok()) s = SaveCheckpoint(out + "/before.safetensors", model, nullptr, CheckpointMetadata::AtStep(0));
  if (!s.ok()) return Fail(s.ToString());

  const Tensor& logits = model.Forward(x, true);
  if (Status w = WriteNpy(out + "/logits.npy", logits.shape(), logits.span()); !w.ok())
    return Fail(w.ToString());
  Tensor dlogits;
  const LossResult loss =
      SoftmaxCrossEntropy(logits, labels, static_cast<float>(label_smoothing), &dlogits);
  model.ZeroGrad();
  model.Backward(dlogits);
  formats::SafetensorsWriter grads;
  for (const Param& p : model.params()) {
    const std::vector<float> g = ToTorchLayout(p, p.grad);
    if (Status a = grads.Add<float>(p.name, p.torch_shape, g); !a.ok()) return Fail(a.ToString());
  }
  char text[64];
  std::snprintf(text, sizeof(text), "%.9g\n", loss.loss);
  s = formats::WriteFileAtomically(out + "/loss.txt", text);
  if (s.ok()) s = grads.WriteFile(out + "/grads.safetensors");
  optimizer.Step(model.params(), lr);
  if (s.ok()) s = SaveCheckpoint(out + "/after.safetensors", model, &optimizer, CheckpointMetadata::AtStep(1));
  if (!s.ok()) return Fail(s.ToString());
  const Tensor& eval_logits = model.Forward(x, false);
  s = WriteNpy(out + "/eval_logits.npy", eval_logits.shape(), eval_logits.span());
  if (!s.ok()) return Fail(s.ToString());
  std::printf("%s: loss %.6f, %lld parameters, one %s step\n", mc.name.c_str(), loss.loss,
              static_cast<long long>(model.num_parameters()), optimizer_name.c_str());
  return 0;
}
