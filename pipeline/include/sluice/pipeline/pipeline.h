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
// Every batch carries each sample's origin (file, record, offset, plan position, crop and flip) and
// the cursor to resume after it: batch.h is the whole contract with consumers.
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
#include "sluice/pipeline/batch.h"
#include "sluice/pipeline/pacer.h"
#include "sluice/pipeline/preset.h"
#include "sluice/pipeline/profile.h"
#include "sluice/pipeline/source.h"

namespace sluice::pipeline {

struct PipelineConfig {
  // The epoch plan: files (shards or globs), seed, shuffle (default: the train presets only),
  // interleave, workers, corrupt-record policy. Its batch_size is the pipeline's.
  SourceOptions source;
  Preset preset = Preset::kResnetTrain;
  int batch_size = 256;
  int threads = 0;  // parallel stage workers; 0 = all cores
  int epochs = 1;   // 0 = endless; else the epoch index to stop before
  // Where to begin (a resumed run passes its last batch's cursor): records of start.epoch before
  // start.samples are dropped unread by the decoder; later samples keep their plan positions and
  // augmentation draws, so the batches equal those of an uninterrupted run from that point.
  DataCursor start;
  int image_size = 0;  // 0 = the preset's (224, cifar 32)
  Layout layout = Layout::kNhwc;
  OutputType output = OutputType::kFloat32;
  std::optional<bool> drop_remainder;  // default: train presets (a short last batch otherwise)
  int prefetch = 2;  // finished batches waiting for the consumer
  bool sloppy = false;
  // The naive configuration: 1 thread, no prefetch (the graph only runs while Next() waits),
  // full-image decode, flip and normalization as separate passes, each sample copied into its
  // batch (the default writes it there directly). For the "how much does the pipeline buy"
  // comparison.
  bool basic = false;
  int64_t max_bad_images = 100;
  std::string image_key = "image/encoded";
  std::string label_key = "image/class/label";
  // Bytes features handed out per sample in Batch::features (e.g. "image/filename").
  std::vector<std::string> keep_features;
  bool trace = false;  // record per-item events for WriteChromeTrace
};

class Pipeline {
 public:
  ~Pipeline();
  // `hooks` are for tests (a StagePacer); a product caller passes none.
  static Result<std::unique_ptr<Pipeline>> Create(PipelineConfig config, PipelineHooks hooks = {});

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
  // The input files, expanded and sorted: SampleOrigin::file indexes this list.
  const std::vector<std::string>& files() const;

  class Impl;

 private:
  explicit Pipeline(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::pipeline

#endif  // SLUICE_PIPELINE_PIPELINE_H_
