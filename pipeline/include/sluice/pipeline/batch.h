// The batch: the pipeline's whole contract with its consumers (the trainer, evaluation and predict,
// the Python Loader, the interop checks). Everything a consumer needs to know about a sample is
// here, so no consumer re-reads a record or re-derives a position:
//
//   pixels   size * height * width * channels values, NHWC or NCHW, float32 or uint8
//   labels   size int64 labels
//   origins  per sample: the shard (index into Pipeline::files()), the record's number in that
//            shard and its byte offset, the epoch and plan position it was drawn at, and for the
//            random presets the crop window and flip that made its pixels
//   features per sample, the first bytes value of each PipelineConfig::keep_features key
//   cursor   the data position after this batch: a pipeline created with start = cursor yields
//            exactly the batches that follow this one (the trainer's resume point)
#ifndef SLUICE_PIPELINE_BATCH_H_
#define SLUICE_PIPELINE_BATCH_H_

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

#include "sluice/pipeline/crop.h"
#include "sluice/pipeline/preset.h"

namespace sluice::pipeline {

enum class Layout { kNhwc, kNchw };

// Batch buffers start on a 64-byte boundary: a cache line, the widest vector store, and what
// JAX/XLA require of a DLPack buffer they take without copying.
inline constexpr size_t kBatchAlignment = 64;
template <typename T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}  // NOLINT: allocators convert implicitly
  T* allocate(size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kBatchAlignment}));
  }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t{kBatchAlignment}); }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const {
    return true;
  }
};
template <typename T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

// A position in the run's data: `samples` records of epoch `epoch`'s plan already consumed.
// {e, 0} is the start of epoch e. Records of an epoch keep their plan positions (and so their
// augmentation draws) when a run starts in the middle of it.
struct DataCursor {
  uint32_t epoch = 0;
  uint64_t samples = 0;
  friend bool operator==(const DataCursor&, const DataCursor&) = default;
};

// How one sample's pixels came to be.
struct SampleOrigin {
  int file = -1;        // index into Pipeline::files()
  uint64_t record = 0;  // the record's number in its file (0 = the first)
  uint64_t offset = 0;  // byte offset of the record's header in its file
  uint32_t epoch = 0;   // the epoch whose plan drew it
  uint64_t index = 0;   // its position in that epoch's plan (for this worker)
  // The preset's random choices: the crop window (resnet: of the source image; vgg: of the image
  // resized to short side `resize_side`; cifar: of the image zero-padded by 4 on every side) and
  // whether the output is mirrored. Eval presets report their fixed window and no flip.
  CropWindow crop;
  int resize_side = 0;  // vgg presets; 0 otherwise
  bool flip = false;
};

struct Batch {
  int64_t index = 0;  // batches handed out before this one
  uint32_t epoch = 0;  // epoch of the first sample
  int size = 0;  // images in this batch (batch_size, or fewer for a last short batch)
  int height = 0, width = 0, channels = 3;
  Layout layout = Layout::kNhwc;
  OutputType output = OutputType::kFloat32;
  AlignedVector<float> f32;       // size * h * w * c when output is float32
  AlignedVector<uint8_t> u8;      // ... when uint8
  AlignedVector<int64_t> labels;  // size
  std::vector<SampleOrigin> origins;  // size
  // size * keep_features.size(): sample i's value of key k at [i * keys + k] ("" when absent).
  std::vector<std::string> features;
  DataCursor cursor;  // where the data continues after this batch
};

}  // namespace sluice::pipeline

#endif  // SLUICE_PIPELINE_BATCH_H_
