// The pipeline's wiring: the TBB flow graph and the three node bodies (Produce, Process, the batch
// stage), over rooms that own their state: the record source (source.h), the per-sample kernels
// (preset.h), the batch assembler and consumer queue (batcher.h), the stall profiler
// (stage_profiler.h) and the trace recorder (trace.h). Test pacing comes in through PipelineHooks.
#include "sluice/pipeline/pipeline.h"

#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>

#include "batcher.h"
#include "sluice/pipeline/clock.h"
#include "slot_pool.h"
#include "stage_profiler.h"
#include "trace.h"
#include "tsan_annotations.h"

namespace sluice::pipeline {

namespace flow = tbb::flow;

namespace {

enum class Kind : uint8_t { kSample, kRunEnd };

// What flows through the graph: small, copied by value. The record and the sample's pixels live
// in a pooled Slot. s.seq is the position in the run (all epochs): the sequencer's order.
struct Item {
  Kind kind = Kind::kSample;
  int slot = -1;
  bool bad = false;    // undecodable image (skipped)
  uint64_t total = 0;  // kRunEnd: samples emitted in the run
  AssembledSample s;   // its pixels and features pointers are set by the batch stage
};

// The Philox key of a sample: its plan position, with the worker in the high bits so that workers
// draw different augmentations. Private to the pipeline: consumers read SampleOrigin.
uint64_t PhiloxIndex(int worker, uint64_t index) {
  return (static_cast<uint64_t>(worker) << 40) | index;
}

}  // namespace

class Pipeline::Impl {
 public:
  Impl(PipelineConfig config, PipelineHooks hooks)
      : config_(std::move(config)), pacer_(std::move(hooks.pacer)) {}
  ~Impl() { Stop(); }

  Status Init();
  Status Next(Batch* out);
  void Stop();
  PipelineStats Stats() const { return profiler_->Stats(); }
  Status WriteChromeTrace(const std::string& path);
  const PipelineConfig& config() const { return config_; }
  const std::vector<std::string>& files() const { return source_->files(); }

 private:
  Item Produce(tbb::flow_control& fc);
  Item Process(Item item);
  void Assemble(const Item& item);
  void Fail(Status status);
  void ReturnTokens(int64_t n) { if (n > 0) limiter_->decrementer().try_put(n); }
  void Pace(Stage stage, double begin) { if (pacer_) pacer_->Pace(stage, begin); }

  PipelineConfig config_;
  std::shared_ptr<StagePacer> pacer_;
  SampleSpec spec_;
  int threads_ = 1;
  int64_t cap_ = 0;  // samples in flight (limiter threshold)
  std::unique_ptr<RecordSource> source_;
  std::unique_ptr<BatchAssembler> assembler_;
  std::unique_ptr<StageProfiler> profiler_;
  std::unique_ptr<TraceRecorder> trace_;

  // Source state (serial stage).
  std::unique_ptr<RunReader> run_;
  uint64_t seq_ = 0;
  bool source_done_ = false;
  double last_produce_end_ = 0;

  std::unique_ptr<SlotPool> slots_;

  // Batch stage (serial).
  uint64_t batched_ = 0;
  uint64_t expected_total_ = UINT64_MAX;

  // Consumer.
  int64_t batches_out_ = 0;
  int64_t pending_release_ = 0;  // basic mode: tokens returned at the next Next()
  double last_return_ = 0;

  // Graph. Declared last: destroyed first.
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
  std::unique_ptr<tbb::global_control> parallelism_;
  std::unique_ptr<tbb::task_arena> arena_;
  std::unique_ptr<flow::graph> graph_;
  std::unique_ptr<flow::input_node<Item>> source_node_;
  std::unique_ptr<flow::limiter_node<Item, int64_t>> limiter_;
  std::unique_ptr<flow::function_node<Item, Item>> process_;
  std::unique_ptr<flow::sequencer_node<Item>> sequencer_;
  std::unique_ptr<flow::function_node<Item, flow::continue_msg>> batcher_;
};

Status Pipeline::Impl::Init() {
  PipelineConfig& c = config_;
  if (c.batch_size < 1) return Status::InvalidArgument("batch size must be >= 1");
  if (c.prefetch < 0) return Status::InvalidArgument("prefetch must be >= 0");
  if (c.epochs < 0) return Status::InvalidArgument("epochs must be >= 0 (0 = endless)");
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads_ = c.basic ? 1 : (c.threads > 0 ? c.threads : hw);
  if (c.image_size <= 0) c.image_size = DefaultImageSize(c.preset);
  const bool train = IsTrainPreset(c.preset);
  spec_ = {.preset = c.preset, .image_size = c.image_size, .output = c.output,
           .full_decode = c.basic, .image_key = c.image_key, .label_key = c.label_key,
           .keep_features = c.keep_features};

  SourceOptions so = c.source;
  so.shuffle = so.shuffle.value_or(train);
  so.batch_size = c.batch_size;
  SLUICE_ASSIGN_OR_RETURN(source_, RecordSource::Create(std::move(so)));
  run_ = std::make_unique<RunReader>(source_.get(), c.epochs, c.start.epoch, c.start.samples);

  // Tokens: the batches the consumer may find ready, plus the one being filled. basic: one batch,
  // released only when the consumer asks for the next (no prefetch).
  const int64_t batches_in_flight = c.basic ? 1 : c.prefetch + 1;
  cap_ = batches_in_flight * c.batch_size + 1;  // + 1 for the run-end marker
  // Direct writes unless --basic (the naive copies) or sloppy.
  assembler_ = std::make_unique<BatchAssembler>(AssemblerOptions{
      .batch_size = c.batch_size, .image_size = c.image_size, .layout = c.layout,
      .output = c.output, .direct = !c.sloppy && !c.basic,
      .staged_window = static_cast<uint64_t>(batches_in_flight) + 1,
      .keep_features = c.keep_features.size()});
  // Samples between the source and the batch stage: those holding tokens, plus the one the source
  // node holds while the limiter is full. Buffers are sized on first use.
  slots_ = std::make_unique<SlotPool>(cap_ + 2);

  const double start = Now();
  last_produce_end_ = start;
  profiler_ = std::make_unique<StageProfiler>(start, threads_,
                                              std::array<int64_t, 3>{cap_, cap_, batches_in_flight});
  trace_ = std::make_unique<TraceRecorder>(c.trace, start);
  parallelism_ =
      std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                            static_cast<size_t>(std::max(hw, threads_ + 1)));
  arena_ = std::make_unique<tbb::task_arena>(threads_, 0);
  arena_->execute([&] {
    graph_ = std::make_unique<flow::graph>();
    flow::graph& g = *graph_;
    source_node_ = std::make_unique<flow::input_node<Item>>(
        g, [this](tbb::flow_control& fc) { return Produce(fc); });
    limiter_ = std::make_unique<flow::limiter_node<Item, int64_t>>(g, static_cast<size_t>(cap_));
    process_ = std::make_unique<flow::function_node<Item, Item>>(
        g, static_cast<size_t>(threads_),
        [this](const Item& item) { return Process(Receive(item)); });
    batcher_ = std::make_unique<flow::function_node<Item, flow::continue_msg>>(
        g, flow::serial, [this](const Item& item) {
          Assemble(Receive(item));
          return flow::continue_msg();
        });
    flow::make_edge(*source_node_, *limiter_);
    flow::make_edge(*limiter_, *process_);
    if (c.sloppy) {
      flow::make_edge(*process_, *batcher_);
    } else {
      sequencer_ = std::make_unique<flow::sequencer_node<Item>>(
          g, [](const Item& item) { return static_cast<size_t>(item.s.seq); });
      flow::make_edge(*process_, *sequencer_);
      flow::make_edge(*sequencer_, *batcher_);
    }
    HandOff(&config_);  // the set-up above happens before every body (BodyScope)
    source_node_->activate();
  });
  profiler_->StartSampler([this] { return assembler_->ReadySize(); });
  return Status::Ok();
}

// The source + read stage (serial): the next record of the plan, into a slot.
Item Pipeline::Impl::Produce(tbb::flow_control& fc) {
  BodyScope scope(this, &run_, &config_);
  const double begin = Now();
  Item item;
  if (stopping_.load() || source_done_) {
    fc.stop();
    return item;
  }
  std::string_view record;
  PlannedRecord at;
  Status s = run_->Next(&record, &at);
  profiler_->SkippedShards(source_->skipped_shards());
  if (s.code() == StatusCode::kEndOfData) {
    // The end-of-run marker: the batch stage finishes once it has seen `total` samples.
    source_done_ = true;
    profiler_->SourceDone();
    item.kind = Kind::kRunEnd;
    item.s.seq = item.total = seq_++;
  } else if (!s.ok()) {
    Fail(s);
    fc.stop();
    return item;
  } else {
    item.s.seq = seq_++;
    SampleOrigin& o = item.s.origin;
    std::tie(o.file, o.record, o.offset, o.epoch, o.index) =
        std::tie(at.origin.file, at.origin.record, at.origin.offset, at.epoch, at.index);
    item.slot = slots_->Acquire();
    (*slots_)[item.slot].record.assign(record);
    HandOff(&(*slots_)[item.slot]);
    Pace(Stage::kRead, begin);
  }
  const double end = Now();
  profiler_->Read(end - begin, begin - last_produce_end_, item.kind == Kind::kSample);
  profiler_->Emitted();
  last_produce_end_ = end;
  trace_->Record("read", begin, end, item.s.seq);
  return item;
}

// parse, decode+crop, augment (parallel): the sample's pixels, into its staged batch position
// when it has one, else into its slot.
Item Pipeline::Impl::Process(Item item) {
  BodyScope scope(this, nullptr, &config_);
  if (item.kind != Kind::kSample || stopping_.load()) return item;
  profiler_->Started();
  const double begin = Now();
  thread_local SampleScratch scratch;
  Slot& slot = (*slots_)[item.slot];
  TakeOver(&slot);
  // NHWC: the kernels write into the batch itself; NCHW: into the slot, then transposed into the
  // batch here, in the parallel stage, not in the serial batch stage.
  void* target = assembler_->StagedTarget(item.s.seq);
  item.s.staged = target != nullptr;
  const bool f32 = spec_.output == OutputType::kFloat32;
  void* out = target != nullptr && config_.layout == Layout::kNhwc
                  ? target
                  : slot.Pixels(f32, static_cast<size_t>(spec_.image_size) * spec_.image_size * 3);
  SampleOrigin& origin = item.s.origin;
  Status s = ProcessSample(spec_, slot.record, config_.source.seed, origin.epoch,
                           PhiloxIndex(config_.source.worker_index, origin.index), &scratch,
                           f32 ? static_cast<float*>(out) : nullptr,
                           f32 ? nullptr : static_cast<uint8_t*>(out), &item.s.label);
  if (target != nullptr && out != target && s.ok()) assembler_->WriteStaged(target, out);
  origin.crop = scratch.augment.crop;
  origin.resize_side = scratch.augment.resize_side;
  origin.flip = scratch.augment.flip;
  slot.features = scratch.features;
  SampleTimings t = scratch.timings;
  if (pacer_) {
    // The paced wait counts as decoding (the stage a test slows down).
    const double before = Now();
    Pace(Stage::kDecode, begin);
    t.decode_s += Now() - before;
  }
  const double end = Now();
  profiler_->Processed(t, end - begin);
  if (trace_->enabled()) {
    const double parse_end = begin + t.parse_s;
    const double decode_end = parse_end + t.decode_s;
    trace_->Record("parse", begin, parse_end, item.s.seq);
    trace_->Record("decode+crop", parse_end, decode_end, item.s.seq);
    trace_->Record("augment", decode_end, end, item.s.seq);
  }
  HandOff(&slot);
  if (!s.ok()) {
    item.bad = true;
    const std::string where = source_->files()[origin.file] + " record at offset " +
                              std::to_string(origin.offset);
    if (!scratch.parsed) {
      Fail(Status(s.code(), where + ": " + s.message()));
      return item;
    }
    const uint64_t bad = profiler_->BadImage(where + ": " + s.ToString());
    if (config_.max_bad_images >= 0 && bad > static_cast<uint64_t>(config_.max_bad_images)) {
      Fail(Status::DataLoss("more than " + std::to_string(config_.max_bad_images) +
                            " undecodable images (--max-bad); latest: " + where + ": " +
                            s.ToString()));
    }
  }
  return item;
}

// The batch stage (serial, in plan order unless sloppy).
void Pipeline::Impl::Assemble(const Item& item) {
  BodyScope scope(this, &batched_, &config_);
  const double begin = Now();
  if (item.kind == Kind::kRunEnd) {
    expected_total_ = item.total;
    ReturnTokens(1);
  } else {
    Slot& slot = (*slots_)[item.slot];
    TakeOver(&slot);
    // Counted before the sample can reach the consumer: once its batch is queued, Next() may
    // return the batch's tokens and new samples get processed, and the occupancy sample
    // (processed - batched) must not count this one as still waiting.
    profiler_->Batched();
    ++batched_;
    if (!item.bad && !stopping_.load()) {
      AssembledSample s = item.s;
      s.pixels = spec_.output == OutputType::kFloat32 ? static_cast<const void*>(slot.f32.data())
                                                      : slot.u8.data();
      s.features = &slot.features;
      assembler_->Add(s);
    } else {
      ReturnTokens(1);  // a skipped image never reaches the consumer: its token returns now
    }
    slots_->Release(item.slot);
  }
  Pace(Stage::kBatch, begin);
  const double end = Now();
  profiler_->BatchBusy(end - begin);
  trace_->Record("batch", begin, end, item.s.seq);
  if (batched_ == expected_total_) {
    ReturnTokens(
        assembler_->Finish(config_.drop_remainder.value_or(IsTrainPreset(config_.preset))));
    profiler_->End(Now());
  }
}

void Pipeline::Impl::Fail(Status status) {
  stopping_ = true;
  profiler_->End(Now());
  assembler_->Fail(status);
}

Status Pipeline::Impl::Next(Batch* out) {
  const double called = Now();
  if (last_return_ > 0) profiler_->ConsumerStep(called - last_return_);
  ReturnTokens(pending_release_);
  pending_release_ = 0;
  Status status = assembler_->Take(out);
  // The first call waits for the pipeline to fill: warm-up, reported apart from the steady state
  // the verdict is about.
  profiler_->ConsumerWait(batches_out_ == 0, Now() - called);
  trace_->Record("Next() wait", called, Now(), static_cast<uint64_t>(batches_out_));
  if (!status.ok()) {
    last_return_ = 0;
    return status;
  }
  out->index = batches_out_++;
  profiler_->ConsumerTook(out->size);
  if (config_.basic) {
    pending_release_ = out->size;
  } else {
    ReturnTokens(out->size);
  }
  last_return_ = Now();
  return Status::Ok();
}

void Pipeline::Impl::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  if (graph_ != nullptr) {
    arena_->execute([&] {
      graph_->cancel();
      graph_->wait_for_all();
    });
    TakeOver(this);
  }
  if (profiler_ != nullptr) {
    profiler_->StopSampler();
    profiler_->End(Now());
  }
  if (assembler_ != nullptr) assembler_->Close();
}

Status Pipeline::Impl::WriteChromeTrace(const std::string& path) {
  if (!config_.trace)
    return Status::InvalidArgument("tracing was not enabled (PipelineConfig::trace)");
  Stop();
  return trace_->Write(path, Stats());
}

Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pipeline::~Pipeline() = default;

Result<std::unique_ptr<Pipeline>> Pipeline::Create(PipelineConfig config, PipelineHooks hooks) {
  auto impl = std::make_unique<Impl>(std::move(config), std::move(hooks));
  SLUICE_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Pipeline>(new Pipeline(std::move(impl)));
}

Status Pipeline::Next(Batch* batch) { return impl_->Next(batch); }
void Pipeline::Stop() { impl_->Stop(); }
PipelineStats Pipeline::Stats() const { return impl_->Stats(); }
Status Pipeline::WriteChromeTrace(const std::string& path) { return impl_->WriteChromeTrace(path); }
const PipelineConfig& Pipeline::config() const { return impl_->config(); }
const std::vector<std::string>& Pipeline::files() const { return impl_->files(); }

}  // namespace sluice::pipeline
