// PyTorch's tensor layouts of our parameters (torch_layout.h).
#include "sluice/train/torch_layout.h"

#include <algorithm>

namespace sluice::train {
namespace {

// Calls f(ours, torch) with the index of every conv weight element in our (KH, KW, Cin, Cout)
// layout and in PyTorch's (Cout, Cin, KH, KW).
template <typename F>
void ForEachConvElement(const Param& p, F&& f) {
  const int64_t co = p.torch_shape[0], ci = p.torch_shape[1], kh = p.torch_shape[2],
                kw = p.torch_shape[3];
  for (int64_t h = 0; h < kh; ++h)
    for (int64_t w = 0; w < kw; ++w)
      for (int64_t i = 0; i < ci; ++i)
        for (int64_t o = 0; o < co; ++o)
          f(((h * kw + w) * ci + i) * co + o, ((o * ci + i) * kh + h) * kw + w);
}

}  // namespace

std::vector<float> ToTorchLayout(const Param& p, const Tensor& t) {
  std::vector<float> out(t.data(), t.data() + t.size());
  if (p.kind == ParamKind::kConvWeight)
    ForEachConvElement(p, [&](int64_t ours, int64_t torch) { out[torch] = t[ours]; });
  return out;
}

void FromTorchLayout(const Param& p, std::span<const float> in, Tensor* t) {
  if (p.kind != ParamKind::kConvWeight) {
    std::copy(in.begin(), in.end(), t->data());
    return;
  }
  ForEachConvElement(p, [&](int64_t ours, int64_t torch) { (*t)[ours] = in[torch]; });
}

}  // namespace sluice::train
