// Our parameter layouts vs PyTorch's state_dict layouts: checkpoints store PyTorch's, and pruning
// orders its scores by them (so a threshold tie breaks as the reference implementation's does).
#ifndef SLUICE_TRAIN_TORCH_LAYOUT_H_
#define SLUICE_TRAIN_TORCH_LAYOUT_H_

#include <span>
#include <vector>

#include "sluice/train/layers.h"
#include "sluice/train/tensor.h"

namespace sluice::train {

// A tensor of `p`'s shape in our layout -> PyTorch's (conv (KH, KW, Cin, Cout) -> (Cout, Cin, KH,
// KW); others unchanged), and back.
std::vector<float> ToTorchLayout(const Param& p, const Tensor& t);
void FromTorchLayout(const Param& p, std::span<const float> in, Tensor* t);

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_TORCH_LAYOUT_H_
