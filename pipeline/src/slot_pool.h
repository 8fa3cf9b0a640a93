// Internal to pipeline/: the per-sample working buffers between the source and the batch stage.
// A fixed number, sized by the pipeline's token count, so memory is bounded whatever the run.
//
// Thread-safety: Acquire and Release from any thread; a slot itself belongs to the one stage that
// holds its item (tsan_annotations.h says so to TSan).
#ifndef SLUICE_PIPELINE_SRC_SLOT_POOL_H_
#define SLUICE_PIPELINE_SRC_SLOT_POOL_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sluice::pipeline {

struct Slot {
  std::string record;                 // the serialized Example
  std::vector<float> f32;             // the sample's pixels when not written into a batch
  std::vector<uint8_t> u8;
  std::vector<std::string> features;  // keep_features values

  // The pixel buffer of n values for the output type, sized on first use.
  void* Pixels(bool float32, size_t n) {
    if (float32) {
      f32.resize(n);
      return f32.data();
    }
    u8.resize(n);
    return u8.data();
  }
};

class SlotPool {
 public:
  explicit SlotPool(int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      slots_.push_back(std::make_unique<Slot>());
      free_.push_back(static_cast<int>(n - 1 - i));
    }
  }
  // Never empty when the pool is sized for every item that can be in flight.
  int Acquire() {
    std::lock_guard<std::mutex> lock(mu_);
    const int s = free_.back();
    free_.pop_back();
    return s;
  }
  void Release(int slot) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(slot);
  }
  Slot& operator[](int slot) { return *slots_[slot]; }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<int> free_;
};

}  // namespace sluice::pipeline

#endif  // SLUICE_PIPELINE_SRC_SLOT_POOL_H_
