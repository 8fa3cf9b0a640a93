// Internal to train/: a pipeline batch as the network's input.
#ifndef SLUICE_TRAIN_SRC_BATCH_INPUT_H_
#define SLUICE_TRAIN_SRC_BATCH_INPUT_H_

#include <algorithm>
#include <string>

#include "sluice/formats/status.h"
#include "sluice/pipeline/batch.h"
#include "sluice/train/tensor.h"

namespace sluice::train {

// Copies the first n images of a float32 NHWC batch into x: (n, H, W, C).
inline void ToTensor(const pipeline::Batch& batch, int n, Tensor* x) {
  x->Resize({n, batch.height, batch.width, batch.channels});
  std::copy(batch.f32.begin(), batch.f32.begin() + x->size(), x->data());
}

// InvalidArgument naming the batch and the label when one of the first n is outside [0, classes).
inline Status CheckLabels(const pipeline::Batch& batch, int classes, int n) {
  for (int i = 0; i < n; ++i)
    if (batch.labels[i] < 0 || batch.labels[i] >= classes)
      return Status::InvalidArgument("label " + std::to_string(batch.labels[i]) + " of batch " +
                                     std::to_string(batch.index) + " is outside the model's " +
                                     std::to_string(classes) + " classes");
  return Status::Ok();
}

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_SRC_BATCH_INPUT_H_
