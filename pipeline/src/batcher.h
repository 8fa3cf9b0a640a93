// Internal to pipeline/: the batch stage and the consumer queue. It owns every batch buffer: the
// pool, the batches staged for direct writes, the one filling, and the finished ones waiting for
// the consumer.
//
// Direct writes (deterministic order): sample seq's pixels go straight into the buffer of
// batch seq / batch_size at position seq % batch_size (StagedTarget), staged until the batch stage
// starts that batch and takes the buffer: no copy. An undecodable image moves every later sample
// one position earlier: Add then copies each moved sample to its place. Only batches less than
// `staged_window` ahead of the one filling are staged (samples further ahead, which only skipped
// images let in, use their slot's buffer), so memory stays bounded.
//
// Thread-safety: StagedTarget from the parallel process stage; Add and Finish from the serial batch
// stage only; Take/Recycle from the consumer; Fail, Close and ReadySize from any thread.
#ifndef SLUICE_PIPELINE_SRC_BATCHER_H_
#define SLUICE_PIPELINE_SRC_BATCHER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sluice/formats/status.h"
#include "sluice/pipeline/batch.h"

namespace sluice::pipeline {

struct AssemblerOptions {
  int batch_size = 1;
  int image_size = 0;
  Layout layout = Layout::kNhwc;
  OutputType output = OutputType::kFloat32;
  bool direct = false;         // direct writes (see above)
  uint64_t staged_window = 0;  // batches ahead of the filling one that may be staged
  size_t keep_features = 0;    // PipelineConfig::keep_features.size()
};

// One processed sample as the batch stage receives it.
struct AssembledSample {
  uint64_t seq = 0;       // position in the run: batch seq / batch_size when nothing was skipped
  bool staged = false;    // its pixels were written by StagedTarget's pointer
  const void* pixels = nullptr;  // else: its HWC pixels
  int64_t label = 0;
  SampleOrigin origin;
  const std::vector<std::string>* features = nullptr;  // keep_features values
};

class BatchAssembler {
 public:
  explicit BatchAssembler(AssemblerOptions options);

  // Where sample `seq`'s pixels may be written directly, in the batch's layout, or null (use the
  // slot's buffer). The pointer stays valid until the sample is added.
  void* StagedTarget(uint64_t seq);
  // Writes an HWC sample to a StagedTarget in the batch's layout (NCHW: transposed).
  void WriteStaged(void* target, const void* hwc) const;
  // Appends a sample to the filling batch; true when that completed the batch (now queued).
  bool Add(const AssembledSample& sample);
  // End of the run: the partial batch is queued (drop_remainder false) or dropped; returns the
  // samples dropped. Then the queue ends after the batches in it.
  int64_t Finish(bool drop_remainder);

  // Ends the queue with an error: Take returns it from now on, before any queued batch.
  void Fail(const Status& status);
  // Ends the queue after the batches in it (Stop).
  void Close();
  // The next finished batch, swapped into *out (out's old buffers go back to the pool, so a
  // consumer that keeps passing the same Batch never allocates); out->index is the caller's.
  // EndOfData after the last batch; the error after Fail.
  Status Take(Batch* out);
  int64_t ReadySize() const;

 private:
  std::unique_ptr<Batch> NewBatch();
  std::unique_ptr<Batch> StartBatch(uint32_t epoch);
  // Copies a sample to position pos: from HWC (transposed for NCHW), or, from_batch, from another
  // position of a batch buffer (already in the batch's layout).
  void Place(const void* src, bool from_batch, int pos, Batch* batch) const;
  const void* PixelsAt(const Batch& batch, int pos) const;

  const AssemblerOptions o_;
  const size_t sample_values_;  // image_size^2 * 3
  const size_t value_bytes_;    // 4 (float32) or 1 (uint8)

  // Batch stage state (serial).
  std::unique_ptr<Batch> filling_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_batch_ = 0;       // index in the run of the next batch StartBatch begins
  Batch* filling_ptr_ = nullptr;  // filling_ (batch next_batch_ - 1) while it fills
  std::map<uint64_t, std::unique_ptr<Batch>> staged_;  // batches not started yet
  std::vector<std::unique_ptr<Batch>> free_;
  std::deque<std::unique_ptr<Batch>> ready_;
  bool done_ = false;
  Status error_;
};

}  // namespace sluice::pipeline

#endif  // SLUICE_PIPELINE_SRC_BATCHER_H_
