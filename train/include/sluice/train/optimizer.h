// SGD with momentum (plain or Nesterov) and L2 weight decay, and the learning-rate schedules of the
// reference recipes.
//
// Update, per parameter w with gradient g (TensorFlow's MomentumOptimizer with the L2 term added to
// the loss, which is also torch.optim.SGD(momentum, weight_decay, dampening=0)):
//   g' = g + wd * w            (wd = 0 for parameters the recipe excludes)
//   v  = momentum * v + g'
//   w  = w - lr * v                        (plain)
//   w  = w - lr * (g' + momentum * v)      (Nesterov, TF use_nesterov / torch nesterov=True)
// A parameter with a mask (Param::mask, lottery pruning) has w = v = 0 wherever the mask is 0 after
// every step: its gradient and weight decay there are discarded.
#ifndef SLUICE_TRAIN_OPTIMIZER_H_
#define SLUICE_TRAIN_OPTIMIZER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "sluice/formats/status.h"
#include "sluice/train/layers.h"

namespace sluice::train {

struct SgdConfig {
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 2e-4;
  // false: BN gammas/betas are not decayed (the TPU ResNet-50 recipe); biases of dense layers are.
  bool decay_batch_norm = true;
};

class SgdMomentum {
 public:
  explicit SgdMomentum(SgdConfig config) : config_(config) {}
  // One update of every trainable parameter from its grad.
  void Step(std::deque<Param>& params, double learning_rate);
  // Momentum buffer of a parameter (created zero on first use).
  Tensor& Momentum(const Param& p);
  std::map<std::string, Tensor>& buffers() { return momentum_; }
  const std::map<std::string, Tensor>& buffers() const { return momentum_; }
  const SgdConfig& config() const { return config_; }
  double DecayFor(const Param& p) const {
    return (!config_.decay_batch_norm && p.is_batch_norm()) ? 0.0 : config_.weight_decay;
  }

 private:
  SgdConfig config_;
  std::map<std::string, Tensor> momentum_;
};

// Learning rate as a function of the global step.
//   piecewise: base * multipliers[i] for the i-th interval of boundaries (TF piecewise_constant:
//              step <= boundaries[0] is the first interval)
//   cosine:    base * 0.5 * (1 + cos(pi * (step - warmup) / (total - warmup)))
//   constant:  base
// With warmup_steps > 0 the first warmup_steps steps ramp linearly, base * step / warmup_steps (the
// TPU ResNet schedule).
struct LrSchedule {
  enum class Kind { kConstant, kPiecewise, kCosine };
  Kind kind = Kind::kPiecewise;
  double base = 0.1;
  int64_t warmup_steps = 0;
  std::vector<int64_t> boundaries;
  std::vector<double> multipliers;  // boundaries.size() + 1 values
  int64_t total_steps = 0;          // cosine

  double At(int64_t step) const;
  Status Validate() const;
};

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_OPTIMIZER_H_
