#include "sluice/train/optimizer.h"

#include <cmath>
#include <numbers>

#include "parallel.h"

namespace sluice::train {

Tensor& SgdMomentum::Momentum(const Param& p) {
  auto [it, inserted] = momentum_.try_emplace(p.name);
  if (inserted || it->second.size() != p.value.size()) {
    it->second.Resize(p.value.shape());
    it->second.SetZero();
  }
  return it->second;
}

namespace {

// One parameter's update over [b, e); Masked: zero (w, v) where mask[i] == 0 (a select, so a
// non-finite gradient there cannot leak through as 0 * inf).
template <bool Nesterov, bool Masked>
void Update(float* w, const float* g, float* m, const float* mask, float lr, float mu, float wd,
            int64_t b, int64_t e) {
  for (int64_t i = b; i < e; ++i) {
    const float gi = g[i] + wd * w[i];
    const float mi = mu * m[i] + gi;
    const float wi = w[i] - lr * (Nesterov ? gi + mu * mi : mi);
    if constexpr (Masked) {
      const bool keep = mask[i] != 0.0f;
      m[i] = keep ? mi : 0.0f;
      w[i] = keep ? wi : 0.0f;
    } else {
      m[i] = mi;
      w[i] = wi;
    }
  }
}

}  // namespace

void SgdMomentum::Step(std::deque<Param>& params, double learning_rate) {
  const float lr = static_cast<float>(learning_rate);
  const float mu = static_cast<float>(config_.momentum);
  for (Param& p : params) {
    if (!p.trainable) continue;
    Tensor& v = Momentum(p);
    const float wd = static_cast<float>(DecayFor(p));
    float* w = p.value.data();
    const float* g = p.grad.data();
    float* m = v.data();
    const float* mask = p.masked() ? p.mask.data() : nullptr;
    const bool nesterov = config_.nesterov;
    ParallelRange(p.value.size(), 1 << 16, [&](int64_t b, int64_t e) {
      if (mask)
        nesterov ? Update<true, true>(w, g, m, mask, lr, mu, wd, b, e)
                 : Update<false, true>(w, g, m, mask, lr, mu, wd, b, e);
      else
        nesterov ? Update<true, false>(w, g, m, mask, lr, mu, wd, b, e)
                 : Update<false, false>(w, g, m, mask, lr, mu, wd, b, e);
    });
  }
}

double LrSchedule::At(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps)
    return base * static_cast<double>(step) / static_cast<double>(warmup_steps);
  switch (kind) {
    case Kind::kConstant:
      return base;
    case Kind::kPiecewise: {
      size_t i = 0;
      while (i < boundaries.size() && step > boundaries[i]) ++i;
      return base * multipliers[i];
    }
    case Kind::kCosine: {
      const double span = std::max<int64_t>(1, total_steps - warmup_steps);
      const double t = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
      return base * 0.5 * (1.0 + std::cos(std::numbers::pi * t));
    }
  }
  return base;
}

Status LrSchedule::Validate() const {
  if (!(base >= 0)) return Status::InvalidArgument("learning rate must be >= 0");
  if (kind == Kind::kPiecewise) {
    if (multipliers.size() != boundaries.size() + 1)
      return Status::InvalidArgument("piecewise schedule needs one more multiplier (" +
                                     std::to_string(multipliers.size()) + ") than boundaries (" +
                                     std::to_string(boundaries.size()) + ")");
    for (size_t i = 1; i < boundaries.size(); ++i)
      if (boundaries[i] <= boundaries[i - 1])
        return Status::InvalidArgument("schedule boundaries must increase");
  }
  if (kind == Kind::kCosine && total_steps <= 0)
    return Status::InvalidArgument("cosine schedule needs total steps > 0");
  return Status::Ok();
}

}  // namespace sluice::train
