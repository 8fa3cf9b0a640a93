#include "sluice/train/prune.h"

#include "sluice/train/torch_layout.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>


namespace sluice::train {
namespace {

constexpr std::string_view kGlobalPrefix = "prune_all_to_global_";
constexpr std::string_view kLayerwisePrefix = "prune_all_to_layerwise_";

// Scores in PyTorch layout: |w| where the current mask keeps the weight, -1 where it does not.
Result<std::vector<float>> Scores(const Param& p) {
  std::vector<float> w = ToTorchLayout(p, p.value);
  std::vector<float> m = p.masked() ? ToTorchLayout(p, p.mask) : std::vector<float>();
  for (size_t i = 0; i < w.size(); ++i) {
    if (!std::isfinite(w[i]))
      return Status::InvalidArgument("parameter " + p.name + " holds " + std::to_string(w[i]) +
                                     " at element " + std::to_string(i) +
                                     " (PyTorch layout): cannot prune by magnitude");
    w[i] = (m.empty() || m[i] != 0.0f) ? std::abs(w[i]) : -1.0f;
  }
  return w;
}

// Keeps the `keep` largest scores over `scores` (concatenated in order), ties in order; returns the
// smallest kept score (0 when none). keep <= the number of scores >= 0.
float SelectLargest(const std::vector<std::vector<float>*>& scores, int64_t keep,
                    std::vector<std::vector<float>>* masks) {
  masks->clear();
  for (const auto* s : scores) masks->emplace_back(s->size(), 0.0f);
  if (keep == 0) return 0;
  std::vector<float> live;
  for (const auto* s : scores)
    for (float v : *s)
      if (v >= 0) live.push_back(v);
  std::nth_element(live.begin(), live.begin() + (keep - 1), live.end(), std::greater<float>());
  const float t = live[keep - 1];
  int64_t ties = keep;
  for (float v : live) ties -= v > t;  // ties at t still to keep, in order
  for (size_t k = 0; k < scores.size(); ++k) {
    const std::vector<float>& s = *scores[k];
    std::vector<float>& m = (*masks)[k];
    for (size_t i = 0; i < s.size(); ++i)
      if (s[i] > t || (s[i] == t && ties-- > 0)) m[i] = 1.0f;
  }
  return t;
}

int64_t CountKept(const Param& p) {
  if (!p.masked()) return p.value.size();
  int64_t n = 0;
  for (int64_t i = 0; i < p.mask.size(); ++i) n += p.mask[i] != 0.0f;
  return n;
}

}  // namespace

Result<PruneMethod> ParsePruneMethod(std::string_view name) {
  PruneMethod m;
  std::string_view rest;
  if (name.starts_with(kGlobalPrefix)) {
    m.scope = PruneMethod::Scope::kGlobal;
    rest = name.substr(kGlobalPrefix.size());
  } else if (name.starts_with(kLayerwisePrefix)) {
    m.scope = PruneMethod::Scope::kLayerwise;
    rest = name.substr(kLayerwisePrefix.size());
  } else {
    return Status::InvalidArgument("unknown pruning method '" + std::string(name) +
                                   "' (known: prune_all_to_global_<density>, "
                                   "prune_all_to_layerwise_<density>, e.g. prune_all_to_global_80.0)");
  }
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), m.density);
  if (rest.empty() || ec != std::errc() || end != rest.data() + rest.size() || !(m.density > 0) ||
      m.density > 100)
    return Status::InvalidArgument("pruning method '" + std::string(name) +
                                   "': the density must be a percentage in (0, 100], e.g. 80.0");
  return m;
}

std::string PruneMethodName(const PruneMethod& method) {
  char buf[64];
  for (int decimals = 1; decimals <= 12; ++decimals) {  // the shortest "80.0" / "51.2" that reads back
    std::snprintf(buf, sizeof(buf), "%.*f", decimals, method.density);
    if (std::strtod(buf, nullptr) == method.density) break;
  }
  return std::string(method.scope == PruneMethod::Scope::kGlobal ? kGlobalPrefix : kLayerwisePrefix) + buf;
}

Result<PruneReport> Prune(std::deque<Param>& params, const PruneMethod& method) {
  std::vector<Param*> prunable;
  std::vector<std::vector<float>> scores;
  PruneReport report;
  for (Param& p : params)
    if (p.is_prunable()) prunable.push_back(&p);
  // Checkpoint order: a safetensors file lists tensors sorted by name.
  std::sort(prunable.begin(), prunable.end(), [](const Param* a, const Param* b) { return a->name < b->name; });
  for (Param* pp : prunable) {
    const Param& p = *pp;
    SLUICE_ASSIGN_OR_RETURN(std::vector<float> s, Scores(p));
    scores.push_back(std::move(s));
    report.layers.push_back({p.name, p.value.size(), CountKept(p), 0});
    report.total += p.value.size();
  }
  if (prunable.empty()) return Status::InvalidArgument("the model has no prunable parameters");
  auto keep_of = [&](int64_t n) { return static_cast<int64_t>(std::llround(method.density / 100 * n)); };
  auto too_many = [&](const std::string& what, int64_t keep, int64_t live) {
    return Status::InvalidArgument(
        PruneMethodName(method) + " keeps " + std::to_string(keep) + " weights of " + what + ", but " +
        std::to_string(live) + " are left unpruned: pruning cannot bring weights back (the density is "
        "relative to the original count; prune from a denser checkpoint)");
  };
  std::vector<std::vector<float>> masks;
  if (method.scope == PruneMethod::Scope::kGlobal) {
    int64_t live = 0;
    for (const auto& l : report.layers) live += l.kept_before;
    const int64_t keep = keep_of(report.total);
    if (keep > live) return too_many("the model", keep, live);
    std::vector<std::vector<float>*> all;
    for (auto& s : scores) all.push_back(&s);
    report.threshold = SelectLargest(all, keep, &masks);
  } else {
    for (size_t k = 0; k < prunable.size(); ++k) {
      const int64_t keep = keep_of(report.layers[k].size);
      if (keep > report.layers[k].kept_before) return too_many(prunable[k]->name, keep, report.layers[k].kept_before);
      std::vector<std::vector<float>> one;
      SelectLargest({&scores[k]}, keep, &one);
      masks.push_back(std::move(one[0]));
    }
  }
  for (size_t k = 0; k < prunable.size(); ++k) {
    Param& p = *prunable[k];
    p.mask.Resize(p.value.shape());
    FromTorchLayout(p, masks[k], &p.mask);
    report.layers[k].kept = CountKept(p);
    report.kept += report.layers[k].kept;
  }
  return report;
}

void ApplyMasks(std::deque<Param>& params, Optimizer* optimizer) {
  for (Param& p : params) {
    if (!p.masked()) continue;
    for (int64_t i = 0; i < p.value.size(); ++i)
      if (p.mask[i] == 0.0f) p.value[i] = 0.0f;
    if (optimizer) optimizer->ResetMaskedSlots(p);
  }
}

double PrunableDensity(const std::deque<Param>& params) {
  int64_t total = 0, kept = 0;
  for (const Param& p : params) {
    if (!p.is_prunable()) continue;
    total += p.value.size();
    kept += CountKept(p);
  }
  return total ? static_cast<double>(kept) / total : 1.0;
}

}  // namespace sluice::train
