// The input pipeline (DESIGN.md "Modules and data flow"): a TBB flow graph from TFRecord shards to
// batches of preprocessed images, and the profile that says where its time goes.
//
//   source+read (serial: epoch plan, records, CRCs; source.h)
//     -> limiter (the token pool: at most (prefetch + 1) * batch samples in flight)
//     -> parse, decode+crop, augment (one parallel node, `threads` at once; preset.h)
//     -> in-order sequencer (default) or arrival order (sloppy)
//     -> batch (serial: copies each sample into its batch slot, NHWC or NCHW)
//     -> prefetch queue (up to `prefetch` finished batches) -> Next().
// A sample's tokens return when the consumer takes its batch, so resident memory is a fixed
// number of records, sample images and batch buffers whatever the dataset size or run length.
//
// Determinism: the epoch plan and every augmentation draw come from Philox keyed by (seed, epoch,
// sample index), and batches are assembled in plan order, so batches are byte-identical for any
// `threads` and across runs. `sloppy` assembles samples in completion order instead: the same
// samples and augmentations per epoch, but their grouping into batches varies.
//
// Bad input: a corrupt record fails Next() with file and offset (OnCorrupt::kFail), or ends that
// shard (kSkipShard, counted). An image that does not decode is skipped and counted (the first
// few are kept with their file and offset in PipelineStats::bad_examples) until more than
// max_bad_images, which fails Next(). An Example without the image or label feature fails Next()
// naming the key. Any failure cancels the graph; Next() returns the error, and keeps returning it.
//
// Threading: Create, Next, Stats and Stop may be called from one consumer thread (Stats from any
// thread). The graph runs on its own task arena of `threads` workers.
#ifndef SLUICE_PIPELINE_PIPELINE_H_
#define SLUICE_PIPELINE_PIPELINE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/formats/status.h"
#include "sluice/pipeline/preset.h"
#include "sluice/pipeline/profile.h"
#include "sluice/pipeline/source.h"

namespace sluice::pipeline {

enum class Layout { kNhwc, kNchw };

struct PipelineConfig {
  std::vector<std::string> inputs;  // shard files or globs ("DIR/train-*")
  Preset preset = Preset::kResnetTrain;
  int batch_size = 256;
  int threads = 0;  // parallel stage workers; 0 = all cores
  uint64_t seed = 0;
  int epochs = 1;      // 0 = endless; with start_epoch, the epoch index to stop before
  // Resuming a run: begin at epoch `start_epoch` and drop its first `skip_samples` records unread
  // by the decoder. Later samples keep their plan positions and augmentation draws, so the batches
  // equal those of an uninterrupted run from that point.
  uint32_t start_epoch = 0;
  uint64_t skip_samples = 0;
  int image_size = 0;  // 0 = the preset's (224, cifar 32)
  Layout layout = Layout::kNhwc;
  OutputType output = OutputType::kFloat32;
  std::optional<bool> shuffle;         // default: train presets
  std::optional<bool> drop_remainder;  // default: train presets (a short last batch otherwise)
  bool global_shuffle = false;
  int cycle_length = 4;
  int shuffle_buffer = 256;
  int num_workers = 1;
  int worker_index = 0;
  int prefetch = 2;  // finished batches waiting for the consumer
  bool sloppy = false;
  // The naive configuration: 1 thread, no prefetch (the graph only runs while Next() waits),
  // full-image decode, flip and normalization as separate passes, each sample copied into its
  // batch (the default writes it there directly). For the "how much does the pipeline buy"
  // comparison.
  bool basic = false;
  OnCorrupt on_corrupt = OnCorrupt::kFail;
  int64_t max_bad_images = 100;
  std::string image_key = "image/encoded";
  std::string label_key = "image/class/label";
  bool trace = false;  // record per-item events for WriteChromeTrace
  // Test hook: make stage `slow_stage` ("read", "decode", "batch") take at least
  // slow_stage_seconds per item, to check the profiler against a known rate.
  std::string slow_stage;
  double slow_stage_seconds = 0;
};

struct Batch {
  int64_t index = 0;  // batches handed out so far, before this one
  uint32_t epoch = 0;
  int size = 0;  // images in this batch (batch_size, or fewer for a last short batch)
  int height = 0, width = 0, channels = 3;
  Layout layout = Layout::kNhwc;
  OutputType output = OutputType::kFloat32;
  std::vector<float> f32;       // size * h * w * c when output is float32
  std::vector<uint8_t> u8;      // ... when uint8
  std::vector<int64_t> labels;  // size
  // Sample indices of the epoch plan (position of each image in its epoch).
  std::vector<uint64_t> samples;
};

class Pipeline {
 public:
  ~Pipeline();
  static Result<std::unique_ptr<Pipeline>> Create(PipelineConfig config);

  // The next batch; its buffers are swapped with *batch's, so a caller that keeps passing the same
  // Batch never allocates. EndOfData after the last epoch; the pipeline's error otherwise.
  Status Next(Batch* batch);
  // Stops the graph (idempotent); Stats and the trace stay readable.
  void Stop();
  PipelineStats Stats() const;
  // Chrome trace-event JSON (Perfetto, chrome://tracing): one track per worker thread, plus queue
  // occupancy counters. Needs config.trace; stops the graph first.
  Status WriteChromeTrace(const std::string& path);
  const PipelineConfig& config() const;

  class Impl;

 private:
  explicit Pipeline(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::pipeline

#endif  // SLUICE_PIPELINE_PIPELINE_H_
