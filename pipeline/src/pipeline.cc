#include "sluice/pipeline/pipeline.h"

#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "sluice/formats/file_util.h"

#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#include <sanitizer/tsan_interface.h>
#define SLUICE_UNDER_TSAN 1
// In the TSan runtime, not declared by clang-14's tsan_interface.h.
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif
#endif

namespace sluice::pipeline {

namespace flow = tbb::flow;

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Sleeps until `until` (the slow-stage test hook).
void SleepUntil(double until) {
  const double left = until - Now();
  if (left > 0) std::this_thread::sleep_for(std::chrono::duration<double>(left));
}

// TBB's scheduler (libtbb.so) is not built with ThreadSanitizer, so TSan cannot see that handing a
// message to a successor node happens before the successor runs. Each node says so for the slot the
// message refers to: HandOff at the end of the producing body, TakeOver at the start of the
// consuming one. No-ops outside TSan builds.
inline void HandOff([[maybe_unused]] const void* p) {
#ifdef SLUICE_UNDER_TSAN
  __tsan_release(const_cast<void*>(p));
#endif
}
inline void TakeOver([[maybe_unused]] const void* p) {
#ifdef SLUICE_UNDER_TSAN
  __tsan_acquire(const_cast<void*>(p));
#endif
}

// The message itself is copied into TBB's task objects by TBB code on whichever thread runs its
// aggregator; TSan cannot see that hand-off either, so a body's read of its message is made
// invisible to TSan (a copy, with this thread's accesses ignored) and the body works on the copy.
template <typename T>
T Receive(const T& message) {
#ifdef SLUICE_UNDER_TSAN
  __tsan_ignore_thread_begin();
  T copy = message;
  __tsan_ignore_thread_end();
  return copy;
#else
  return message;
#endif
}

// Held for the duration of every node body. A serial node's body runs on different threads one
// call at a time (TBB orders the calls; TSan is told through `serial`, null for parallel bodies),
// and every body's end happens before the graph's wait_for_all returns (TSan is told through
// `graph`, which Stop() takes over after waiting).
class BodyScope {
 public:
  BodyScope(const void* graph, const void* serial) : graph_(graph), serial_(serial) {
    if (serial_ != nullptr) TakeOver(serial_);
  }
  ~BodyScope() {
    if (serial_ != nullptr) HandOff(serial_);
    HandOff(graph_);
  }
  BodyScope(const BodyScope&) = delete;
  BodyScope& operator=(const BodyScope&) = delete;

 private:
  const void* graph_;
  const void* serial_;
};

int64_t Nanos(double s) { return static_cast<int64_t>(s * 1e9); }
double Seconds(int64_t ns) { return static_cast<double>(ns) * 1e-9; }

constexpr int kMaxBadExamples = 5;
constexpr size_t kMaxTraceEventsPerThread = 200000;
constexpr size_t kMaxOccupancySamples = 4096;
constexpr double kOccupancyPeriodS = 0.005;

enum class Kind : uint8_t { kSample, kRunEnd };

// What flows through the graph: small, copied by value. The record and the sample's pixels live
// in a pooled Slot.
struct Item {
  Kind kind = Kind::kSample;
  uint64_t seq = 0;  // position in the run (all epochs); the sequencer's order
  uint32_t epoch = 0;
  uint64_t sample = 0;  // Philox sample index within the epoch
  int slot = -1;
  RecordOrigin origin;
  int64_t label = 0;
  bool bad = false;    // undecodable image (skipped)
  bool staged = false;  // pixels written straight into the staged batch buffer (see staged_)
  uint64_t total = 0;  // kRunEnd: samples emitted in the run
};

struct Slot {
  std::string record;
  std::vector<float> f32;
  std::vector<uint8_t> u8;
};

struct TraceEvent {
  const char* name;
  double start;
  double duration;
  uint64_t seq;
};

struct ThreadTrack {
  std::string name;
  std::vector<TraceEvent> events;
};

// memcpy into a batch buffer with streaming stores where the build has them: a batch (154 MB of
// float32 at 256 x 224 x 224 x 3) is far bigger than the caches and is read next by the consumer,
// not by us, so writing around the cache saves reading each destination line first: the batch
// stage's busy time per image went from ~100 to ~77 us (`pipeline bench --threads 1`, 3 runs).
void CopyToBatch(void* dst, const void* src, size_t bytes) {
#if defined(__AVX512F__) || defined(__AVX__)
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
  const size_t head = std::min(bytes, (64 - reinterpret_cast<uintptr_t>(d) % 64) % 64);
  std::memcpy(d, s, head);
  d += head;
  s += head;
  bytes -= head;
  size_t i = 0;
  for (; i + 64 <= bytes; i += 64) {
#if defined(__AVX512F__)
    _mm512_stream_si512(reinterpret_cast<__m512i*>(d + i),
                        _mm512_loadu_si512(reinterpret_cast<const void*>(s + i)));
#else
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d + i),
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i)));
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d + i + 32),
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i + 32)));
#endif
  }
  std::memcpy(d + i, s + i, bytes - i);
  _mm_sfence();  // streaming stores are weakly ordered: complete them before the hand-off
#else
  std::memcpy(dst, src, bytes);
#endif
}

}  // namespace

class Pipeline::Impl {
 public:
  explicit Impl(PipelineConfig config)
      : config_(std::move(config)),
        epoch_(config_.start_epoch),
        skip_remaining_(config_.skip_samples) {}
  ~Impl() { Stop(); }

  Status Init();
  Status Next(Batch* out);
  void Stop();
  PipelineStats Stats() const;
  Status WriteChromeTrace(const std::string& path);
  const PipelineConfig& config() const { return config_; }

 private:
  Item Produce(tbb::flow_control& fc);
  Item Process(Item item);
  void Assemble(const Item& item);
  std::unique_ptr<Batch> StartBatch(uint32_t epoch);
  std::unique_ptr<Batch> NewBatch();
  Batch* StagedBatch(uint64_t index);
  template <typename T>
  void Place(const T* src, int pos, T* batch) const;
  void Flush();
  void Fail(Status status);
  int AcquireSlot();
  void ReleaseSlot(int slot);
  void Record(const char* name, double start, double end, uint64_t seq);
  void SampleOccupancy();
  // Returns the seconds since item_start.
  double Pace(double item_start);

  PipelineConfig config_;
  SampleSpec spec_;
  int threads_ = 1;
  int64_t cap_ = 0;  // samples in flight (limiter threshold)
  size_t sample_values_ = 0;
  std::unique_ptr<RecordSource> source_;

  // Source state (serial stage).
  uint32_t epoch_ = 0;
  uint64_t skip_remaining_ = 0;  // records of the first epoch still to drop (a resumed run)
  bool epoch_started_ = false;
  uint64_t epoch_sample_ = 0;
  uint64_t seq_ = 0;
  std::atomic<bool> source_done_{false};
  double last_produce_end_ = 0;

  // Slots.
  std::mutex slot_mu_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<int> free_slots_;

  // Batch stage state (serial).
  std::unique_ptr<Batch> filling_;
  uint64_t next_batch_ = 0;  // index in the run of the next batch StartBatch begins; set under mu_
  uint64_t expected_total_ = UINT64_MAX;
  uint32_t next_batch_epoch_ = 0;

  // Consumer side.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Batch>> ready_;
  std::vector<std::unique_ptr<Batch>> free_batches_;
  // Direct writes (deterministic order, NHWC): sample seq's pixels go straight into the buffer of
  // batch seq / batch_size at position seq % batch_size, staged here until the batch stage starts
  // that batch and takes the buffer; no copy. An undecodable image moves every later sample one
  // position earlier: the batch stage then copies each moved sample to its place. Only batches
  // less than staged_window_ ahead of the one filling are staged (samples further ahead, which
  // only skipped images let in, use their slot's buffer), so memory stays bounded.
  bool direct_ = false;
  uint64_t staged_window_ = 0;
  std::map<uint64_t, std::unique_ptr<Batch>> staged_;  // batches not started yet; under mu_
  Batch* filling_ptr_ = nullptr;  // filling_ (batch next_batch_ - 1) while it fills; under mu_
  bool done_ = false;
  Status error_;
  int64_t batches_out_ = 0;
  uint64_t images_out_ = 0;
  int64_t pending_release_ = 0;  // basic mode: tokens returned at the next Next()
  double last_return_ = 0;
  double consumer_wait_s_ = 0;
  double consumer_warmup_s_ = 0;
  double consumer_step_s_ = 0;

  // Profile.
  double start_ = 0;
  double end_ = 0;
  std::atomic<int64_t> read_items_{0}, read_busy_ns_{0}, read_out_wait_ns_{0};
  std::atomic<int64_t> process_items_{0}, parse_ns_{0}, decode_ns_{0}, augment_ns_{0},
      process_busy_ns_{0};
  std::atomic<int64_t> batch_items_{0}, batch_busy_ns_{0};
  std::atomic<int64_t> emitted_{0}, started_{0};  // for the occupancy samples
  std::atomic<uint64_t> bad_images_{0};
  std::atomic<uint64_t> skipped_shards_{0};  // copied from the source after each read
  std::vector<std::string> bad_examples_;    // under mu_
  std::vector<OccupancySample> occupancy_;   // under occ_mu_
  mutable std::mutex occ_mu_;
  double occ_period_ = kOccupancyPeriodS;
  std::array<double, 3> occ_sum_{};
  std::array<int64_t, 3> occ_max_{};
  int64_t occ_n_ = 0;
  std::thread sampler_;
  std::atomic<bool> stop_sampler_{false};
  std::mutex sampler_mu_;
  std::condition_variable sampler_cv_;

  // Slow-stage hook: items of the slowed stage finish on a schedule of one per
  // slow_stage_seconds (a late wake-up is caught up by the next items, so the rate is exact).
  std::mutex pace_mu_;
  double pace_deadline_ = 0;

  // Trace.
  std::mutex trace_mu_;
  std::deque<ThreadTrack> tracks_;
  const uint64_t id_ = next_id_++;  // tells apart pipelines that reuse an address
  static inline std::atomic<uint64_t> next_id_{1};
  static thread_local uint64_t tls_owner_;
  static thread_local ThreadTrack* tls_track_;

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

thread_local uint64_t Pipeline::Impl::tls_owner_ = 0;
thread_local ThreadTrack* Pipeline::Impl::tls_track_ = nullptr;

Status Pipeline::Impl::Init() {
  PipelineConfig& c = config_;
  if (c.batch_size < 1) return Status::InvalidArgument("batch size must be >= 1");
  if (c.prefetch < 0) return Status::InvalidArgument("prefetch must be >= 0");
  if (c.epochs < 0) return Status::InvalidArgument("epochs must be >= 0 (0 = endless)");
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads_ = c.basic ? 1 : (c.threads > 0 ? c.threads : hw);
  if (c.image_size <= 0) c.image_size = DefaultImageSize(c.preset);
  const bool train = IsTrainPreset(c.preset);
  spec_.preset = c.preset;
  spec_.image_size = c.image_size;
  spec_.output = c.output;
  spec_.full_decode = c.basic;
  spec_.image_key = c.image_key;
  spec_.label_key = c.label_key;
  sample_values_ = static_cast<size_t>(c.image_size) * c.image_size * 3;
  direct_ = !c.sloppy && !c.basic && c.layout == Layout::kNhwc;  // --basic: the naive copies

  SourceOptions so;
  SLUICE_ASSIGN_OR_RETURN(so.files, ExpandInputs(c.inputs));
  so.seed = c.seed;
  so.shuffle = c.shuffle.value_or(train);
  so.global_shuffle = c.global_shuffle;
  so.cycle_length = c.cycle_length;
  so.shuffle_buffer = c.shuffle_buffer;
  so.num_workers = c.num_workers;
  so.worker_index = c.worker_index;
  so.batch_size = c.batch_size;
  so.on_corrupt = c.on_corrupt;
  SLUICE_ASSIGN_OR_RETURN(source_, RecordSource::Create(std::move(so)));

  // Tokens: the batches the consumer may find ready, plus the one being filled. basic: one batch,
  // released only when the consumer asks for the next (no prefetch).
  const int64_t batches_in_flight = c.basic ? 1 : c.prefetch + 1;
  staged_window_ = static_cast<uint64_t>(batches_in_flight) + 1;
  cap_ = batches_in_flight * c.batch_size + 1;  // + 1 for the run-end marker
  // Samples between the source and the batch stage: those holding tokens, plus the one the source
  // node holds while the limiter is full. Buffers are sized on first use.
  for (int64_t i = 0; i < cap_ + 2; ++i) {
    slots_.push_back(std::make_unique<Slot>());
    free_slots_.push_back(static_cast<int>(cap_ + 1 - i));
  }

  parallelism_ =
      std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                            static_cast<size_t>(std::max(hw, threads_ + 1)));
  arena_ = std::make_unique<tbb::task_arena>(threads_, 0);
  start_ = Now();
  last_produce_end_ = start_;
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
          g, [](const Item& item) { return static_cast<size_t>(item.seq); });
      flow::make_edge(*process_, *sequencer_);
      flow::make_edge(*sequencer_, *batcher_);
    }
    source_node_->activate();
  });
  sampler_ = std::thread([this] {
    // At least one sample, even for a run that ends before this thread is first scheduled.
    // Woken early by Stop(), so stopping never waits out a period (which doubles on long runs).
    std::unique_lock<std::mutex> lock(sampler_mu_);
    do {
      lock.unlock();
      SampleOccupancy();
      lock.lock();
    } while (!sampler_cv_.wait_for(lock, std::chrono::duration<double>(occ_period_),
                                   [this] { return stop_sampler_.load(); }));
  });
  return Status::Ok();
}

Item Pipeline::Impl::Produce(tbb::flow_control& fc) {
  BodyScope scope(this, &epoch_);
  const double begin = Now();
  read_out_wait_ns_ += Nanos(begin - last_produce_end_);
  Item item;
  auto finish = [&](const char* name) {
    const double end = Now();
    read_busy_ns_ += Nanos(end - begin);
    last_produce_end_ = end;
    Record(name, begin, end, item.seq);
  };
  if (stopping_.load() || source_done_) {
    fc.stop();
    return item;
  }
  for (;;) {
    if (!epoch_started_) {
      if (config_.epochs > 0 && epoch_ >= static_cast<uint32_t>(config_.epochs)) {
        // The end-of-run marker: the batch stage flushes once it has seen `total` samples.
        source_done_ = true;
        item.kind = Kind::kRunEnd;
        item.seq = seq_++;
        item.total = item.seq;
        finish("read");
        ++emitted_;
        return item;
      }
      Status s = source_->StartEpoch(epoch_);
      if (!s.ok()) {
        Fail(s);
        fc.stop();
        return item;
      }
      epoch_started_ = true;
      epoch_sample_ = 0;
    }
    std::string_view record;
    RecordOrigin origin;
    Status s = source_->Next(&record, &origin);
    skipped_shards_ = source_->skipped_shards();
    if (s.code() == StatusCode::kEndOfData) {
      if (epoch_sample_ == 0) {
        Fail(Status::InvalidArgument("epoch " + std::to_string(epoch_) +
                                     " has no records for this worker"));
        fc.stop();
        return item;
      }
      epoch_started_ = false;
      ++epoch_;
      continue;
    }
    if (!s.ok()) {
      Fail(s);
      fc.stop();
      return item;
    }
    if (skip_remaining_ > 0) {
      // Resuming: the record keeps its sample index (so later samples keep their augmentation
      // draws) but is neither decoded nor batched.
      --skip_remaining_;
      ++epoch_sample_;
      continue;
    }
    item.kind = Kind::kSample;
    item.seq = seq_++;
    item.epoch = epoch_;
    item.sample = (static_cast<uint64_t>(config_.worker_index) << 40) | epoch_sample_++;
    item.origin = origin;
    item.slot = AcquireSlot();
    slots_[item.slot]->record.assign(record);
    HandOff(slots_[item.slot].get());
    break;
  }
  if (config_.slow_stage == "read") Pace(begin);
  ++read_items_;
  ++emitted_;
  finish("read");
  return item;
}

Item Pipeline::Impl::Process(Item item) {
  BodyScope scope(this, nullptr);
  if (item.kind != Kind::kSample || stopping_.load()) return item;
  ++started_;
  const double begin = Now();
  thread_local SampleScratch scratch;
  Slot& slot = *slots_[item.slot];
  TakeOver(&slot);
  float* f32 = nullptr;
  uint8_t* u8 = nullptr;
  const size_t b = static_cast<size_t>(config_.batch_size);
  Batch* batch = direct_ ? StagedBatch(item.seq / b) : nullptr;
  if (batch != nullptr) {
    const size_t offset = sample_values_ * (item.seq % b);
    item.staged = true;
    if (spec_.output == OutputType::kFloat32) {
      f32 = batch->f32.data() + offset;
    } else {
      u8 = batch->u8.data() + offset;
    }
  } else if (spec_.output == OutputType::kFloat32) {
    slot.f32.resize(sample_values_);
    f32 = slot.f32.data();
  } else {
    slot.u8.resize(sample_values_);
    u8 = slot.u8.data();
  }
  Status s = ProcessSample(spec_, slot.record, config_.seed, item.epoch, item.sample, &scratch, f32,
                           u8, &item.label);
  SampleTimings t = scratch.timings;
  if (config_.slow_stage == "decode") {
    // The paced wait counts as decoding (the stage the test slowed down).
    const double before = Now() - begin;
    t.decode_s += Pace(begin) - before;
  }
  const double end = Now();
  parse_ns_ += Nanos(t.parse_s);
  decode_ns_ += Nanos(t.decode_s);
  augment_ns_ += Nanos(t.augment_s);
  process_busy_ns_ += Nanos(end - begin);
  ++process_items_;
  if (config_.trace) {
    const double parse_end = begin + t.parse_s;
    const double decode_end = parse_end + t.decode_s;
    Record("parse", begin, parse_end, item.seq);
    Record("decode+crop", parse_end, decode_end, item.seq);
    Record("augment", decode_end, end, item.seq);
  }
  HandOff(&slot);
  if (!s.ok()) {
    const std::string where = source_->files()[item.origin.file] + " record at offset " +
                              std::to_string(item.origin.offset);
    if (!scratch.parsed) {
      Fail(Status(s.code(), where + ": " + s.message()));
      item.bad = true;
      return item;
    }
    item.bad = true;
    const uint64_t bad = ++bad_images_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (bad_examples_.size() < kMaxBadExamples) {
        bad_examples_.push_back(where + ": " + s.ToString());
      }
    }
    if (config_.max_bad_images >= 0 && bad > static_cast<uint64_t>(config_.max_bad_images)) {
      Fail(Status::DataLoss("more than " + std::to_string(config_.max_bad_images) +
                            " undecodable images (--max-bad); latest: " + where + ": " +
                            s.ToString()));
    }
  }
  return item;
}

// A batch buffer from the pool (or a new one), shaped for config_.
std::unique_ptr<Batch> Pipeline::Impl::NewBatch() {
  std::unique_ptr<Batch> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_batches_.empty()) {
      batch = std::move(free_batches_.back());
      free_batches_.pop_back();
    }
  }
  if (batch == nullptr) batch = std::make_unique<Batch>();
  const size_t b = static_cast<size_t>(config_.batch_size);
  batch->size = 0;
  batch->height = batch->width = config_.image_size;
  batch->channels = 3;
  batch->layout = config_.layout;
  batch->output = config_.output;
  if (config_.output == OutputType::kFloat32) {
    batch->f32.resize(sample_values_ * b);
  } else {
    batch->u8.resize(sample_values_ * b);
  }
  batch->labels.resize(b);
  batch->samples.resize(b);
  return batch;
}

// The staged buffer of batch `index` (direct writes), created on first use; null when `index` is
// staged_window_ or more batches ahead. Its pixel buffer is not resized while staged, so the
// pointers Process takes stay valid.
Batch* Pipeline::Impl::StagedBatch(uint64_t index) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (index >= next_batch_ + staged_window_) return nullptr;
    // A sample's batch is never complete before the sample is placed, so `index` is the batch
    // filling now or a later one.
    if (filling_ptr_ != nullptr && index + 1 == next_batch_) return filling_ptr_;
    auto it = staged_.find(index);
    if (it != staged_.end()) return it->second.get();
  }
  std::unique_ptr<Batch> fresh = NewBatch();
  std::lock_guard<std::mutex> lock(mu_);
  if (filling_ptr_ != nullptr && index + 1 == next_batch_) {  // started meanwhile, without it
    free_batches_.push_back(std::move(fresh));
    return filling_ptr_;
  }
  auto [it, inserted] = staged_.emplace(index, std::move(fresh));
  if (!inserted) free_batches_.push_back(std::move(fresh));  // another thread staged it first
  return it->second.get();
}

// The next batch of the run, empty: its staged buffer when samples were written into it directly,
// else one from the pool.
std::unique_ptr<Batch> Pipeline::Impl::StartBatch(uint32_t epoch) {
  // Taking the staged buffer, counting the batch as started and publishing filling_ptr_ happen in
  // one critical section: a Process call in between would stage a second buffer for this batch.
  std::unique_ptr<Batch> fresh = direct_ ? nullptr : NewBatch();
  std::unique_lock<std::mutex> lock(mu_);
  auto staged = staged_.find(next_batch_);
  if (staged == staged_.end() && fresh == nullptr) {
    lock.unlock();
    fresh = NewBatch();
    lock.lock();
    staged = staged_.find(next_batch_);  // staged meanwhile?
  }
  std::unique_ptr<Batch> batch;
  if (staged != staged_.end()) {
    batch = std::move(staged->second);
    staged_.erase(staged);
    if (fresh != nullptr) free_batches_.push_back(std::move(fresh));
  } else {
    batch = std::move(fresh);
  }
  batch->size = 0;
  batch->epoch = epoch;
  ++next_batch_;
  filling_ptr_ = batch.get();
  return batch;
}

// Copies a sample (HWC) into position pos of a batch buffer, transposing for NCHW.
template <typename T>
void Pipeline::Impl::Place(const T* src, int pos, T* batch) const {
  T* dst = batch + sample_values_ * pos;
  if (config_.layout == Layout::kNhwc) {
    CopyToBatch(dst, src, sample_values_ * sizeof(T));
    return;
  }
  const size_t hw = sample_values_ / 3;
  for (size_t p = 0; p < hw; ++p) {
    dst[p] = src[p * 3];
    dst[hw + p] = src[p * 3 + 1];
    dst[2 * hw + p] = src[p * 3 + 2];
  }
}

void Pipeline::Impl::Assemble(const Item& item) {
  BodyScope scope(this, &filling_);
  const double begin = Now();
  if (item.kind == Kind::kRunEnd) {
    expected_total_ = item.total;
    limiter_->decrementer().try_put(1);
  } else {
    const Slot& slot = *slots_[item.slot];
    TakeOver(&slot);
    // Counted before the sample can reach the consumer: once its batch is flushed, Next() may
    // return the batch's tokens and new samples get processed, and the occupancy sample
    // (processed - batched) must not count this one as still waiting.
    ++batch_items_;
    if (!item.bad && !stopping_.load()) {
      if (filling_ == nullptr) filling_ = StartBatch(item.epoch);
      Batch& batch = *filling_;
      const int pos = batch.size;
      if (item.staged) {
        // Already in place unless an earlier image was skipped: then copy it from where its
        // position in the run put it (this batch's buffer or a later staged one).
        const uint64_t b = static_cast<uint64_t>(config_.batch_size);
        const uint64_t index = item.seq / b;
        const int from = static_cast<int>(item.seq % b);
        const bool this_batch = index + 1 == next_batch_;
        if (!this_batch || from != pos) {
          const Batch* src = &batch;
          if (!this_batch) {
            std::lock_guard<std::mutex> lock(mu_);
            src = staged_.at(index).get();
          }
          if (config_.output == OutputType::kFloat32) {
            Place(src->f32.data() + sample_values_ * from, pos, batch.f32.data());
          } else {
            Place(src->u8.data() + sample_values_ * from, pos, batch.u8.data());
          }
        }
      } else if (config_.output == OutputType::kFloat32) {
        Place(slot.f32.data(), pos, batch.f32.data());
      } else {
        Place(slot.u8.data(), pos, batch.u8.data());
      }
      batch.labels[pos] = item.label;
      batch.samples[pos] = item.sample;
      if (++batch.size == config_.batch_size) Flush();
    } else {
      // A skipped image never reaches the consumer: its token returns now.
      limiter_->decrementer().try_put(1);
    }
    ReleaseSlot(item.slot);
  }
  if (config_.slow_stage == "batch") Pace(begin);
  const double end = Now();
  batch_busy_ns_ += Nanos(end - begin);
  Record("batch", begin, end, item.seq);
  if (static_cast<uint64_t>(batch_items_.load()) == expected_total_) {
    const bool drop = config_.drop_remainder.value_or(IsTrainPreset(config_.preset));
    if (filling_ != nullptr && filling_->size > 0) {
      if (drop) {
        limiter_->decrementer().try_put(filling_->size);
      } else {
        Flush();
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    end_ = Now();
    cv_.notify_all();
  }
}

void Pipeline::Impl::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  filling_ptr_ = nullptr;
  ready_.push_back(std::move(filling_));
  cv_.notify_all();
}

void Pipeline::Impl::Fail(Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (error_.ok()) error_ = std::move(status);
  stopping_ = true;
  if (end_ == 0) end_ = Now();
  cv_.notify_all();
}

int Pipeline::Impl::AcquireSlot() {
  std::lock_guard<std::mutex> lock(slot_mu_);
  // Never empty: at most cap_ samples hold tokens, plus the one the source node holds back.
  const int s = free_slots_.back();
  free_slots_.pop_back();
  return s;
}

void Pipeline::Impl::ReleaseSlot(int slot) {
  std::lock_guard<std::mutex> lock(slot_mu_);
  free_slots_.push_back(slot);
}

void Pipeline::Impl::Record(const char* name, double start, double end, uint64_t seq) {
  if (!config_.trace) return;
  if (tls_owner_ != id_) {
    std::lock_guard<std::mutex> lock(trace_mu_);
    tracks_.emplace_back();
    tracks_.back().name = "thread " + std::to_string(tracks_.size() - 1);
    tls_track_ = &tracks_.back();
    tls_owner_ = id_;
  }
  if (tls_track_->events.size() < kMaxTraceEventsPerThread) {
    tls_track_->events.push_back({name, start, end - start, seq});
  }
}

double Pipeline::Impl::Pace(double item_start) {
  // Item k of the slowed stage may not finish before t0 + k * period: a late wake-up is caught up
  // by the next items, so the long-run rate is exactly 1 / period. After the stage has been idle
  // (blocked downstream), at most kPaceSlackS of lost time is made up.
  constexpr double kPaceSlackS = 0.05;
  double deadline;
  {
    std::lock_guard<std::mutex> lock(pace_mu_);
    pace_deadline_ =
        std::max(pace_deadline_ + config_.slow_stage_seconds, item_start - kPaceSlackS);
    deadline = pace_deadline_;
  }
  SleepUntil(deadline);
  return Now() - item_start;
}

void Pipeline::Impl::SampleOccupancy() {
  const double t = Now() - start_;
  std::array<int64_t, 3> v{};
  // Each queue's input count is read before its output count (sequenced, not one expression whose
  // operands C++ may load in either order): a count that moves between the two loads can then
  // only make the sample smaller, never above the queue's true size.
  const int64_t emitted = emitted_.load();
  const int64_t started = started_.load();
  v[0] = std::max<int64_t>(0, emitted - started - (source_done_ ? 1 : 0));  // read -> process
  const int64_t processed = process_items_.load();
  const int64_t batched = batch_items_.load();
  v[1] = std::max<int64_t>(0, processed - batched);  // process -> batch
  {
    std::lock_guard<std::mutex> lock(mu_);
    v[2] = static_cast<int64_t>(ready_.size());
  }
  std::lock_guard<std::mutex> lock(occ_mu_);
  for (int i = 0; i < 3; ++i) {
    occ_sum_[i] += static_cast<double>(v[i]);
    occ_max_[i] = std::max(occ_max_[i], v[i]);
  }
  ++occ_n_;
  if (occupancy_.size() >= kMaxOccupancySamples) {
    // Keep every other sample and halve the rate: bounded memory for any run length.
    std::vector<OccupancySample> kept;
    for (size_t i = 0; i < occupancy_.size(); i += 2) kept.push_back(std::move(occupancy_[i]));
    occupancy_ = std::move(kept);
    occ_period_ *= 2;
  }
  occupancy_.push_back({t, {v[0], v[1], v[2]}});
}

Status Pipeline::Impl::Next(Batch* out) {
  const double called = Now();
  if (last_return_ > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    consumer_step_s_ += called - last_return_;
  }
  if (pending_release_ > 0) {
    limiter_->decrementer().try_put(pending_release_);
    pending_release_ = 0;
  }
  std::unique_ptr<Batch> batch;
  Status status;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !ready_.empty() || done_ || !error_.ok(); });
    // The first call waits for the pipeline to fill: warm-up, reported apart from the steady
    // state the verdict is about.
    (batches_out_ == 0 ? consumer_warmup_s_ : consumer_wait_s_) += Now() - called;
    if (!error_.ok()) {
      status = error_;
    } else if (!ready_.empty()) {
      batch = std::move(ready_.front());
      ready_.pop_front();
    } else {
      status = Status::EndOfData("end of input");
    }
  }
  const double got = Now();
  Record("Next() wait", called, got, static_cast<uint64_t>(batches_out_));
  if (batch == nullptr) {
    last_return_ = 0;
    return status;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    out->index = batches_out_++;
  }
  out->epoch = batch->epoch;
  out->size = batch->size;
  out->height = batch->height;
  out->width = batch->width;
  out->channels = batch->channels;
  out->layout = batch->layout;
  out->output = batch->output;
  out->f32.swap(batch->f32);
  out->u8.swap(batch->u8);
  out->labels.swap(batch->labels);
  out->samples.swap(batch->samples);
  const size_t values = sample_values_ * out->size;
  if (out->output == OutputType::kFloat32) {
    out->f32.resize(values);
  } else {
    out->u8.resize(values);
  }
  out->labels.resize(out->size);
  out->samples.resize(out->size);
  const int64_t tokens = out->size;
  {
    std::lock_guard<std::mutex> lock(mu_);
    images_out_ += out->size;
    free_batches_.push_back(std::move(batch));
  }
  if (config_.basic) {
    pending_release_ = tokens;
  } else {
    limiter_->decrementer().try_put(tokens);
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
  {
    std::lock_guard<std::mutex> lock(sampler_mu_);
    stop_sampler_ = true;
  }
  sampler_cv_.notify_all();
  if (sampler_.joinable()) sampler_.join();
  std::lock_guard<std::mutex> lock(mu_);
  if (end_ == 0) end_ = Now();
  done_ = true;
  cv_.notify_all();
}

PipelineStats Pipeline::Impl::Stats() const {
  PipelineStats s;
  double end;
  {
    std::lock_guard<std::mutex> lock(mu_);
    end = end_ > 0 ? end_ : Now();
    s.bad_examples = bad_examples_;
    s.consumer.wait_s = consumer_wait_s_;
    s.consumer.warmup_s = consumer_warmup_s_;
    s.consumer.step_s = consumer_step_s_;
    s.consumer.batches = static_cast<uint64_t>(batches_out_);
    s.consumer.images = images_out_;
  }
  const double wall = end - start_;
  s.wall_s = wall;
  s.threads = threads_;
  auto stage = [&](const char* name, int concurrency, int64_t items, int64_t busy_ns) {
    StageStats st;
    st.name = name;
    st.concurrency = concurrency;
    st.items = static_cast<uint64_t>(items);
    st.busy_s = Seconds(busy_ns);
    return st;
  };
  StageStats read = stage("read", 1, read_items_.load(), read_busy_ns_.load());
  read.blocked_output_s = Seconds(read_out_wait_ns_.load());
  const int64_t processed = process_items_.load();
  StageStats parse = stage("parse", threads_, processed, parse_ns_.load());
  StageStats decode = stage("decode+crop", threads_, processed, decode_ns_.load());
  StageStats augment = stage("augment", threads_, processed, augment_ns_.load());
  const double idle = std::max(0.0, threads_ * wall - Seconds(process_busy_ns_.load()));
  parse.blocked_input_s = decode.blocked_input_s = augment.blocked_input_s = idle;
  StageStats batch = stage("batch", 1, batch_items_.load(), batch_busy_ns_.load());
  batch.blocked_input_s = std::max(0.0, wall - batch.busy_s);
  s.stages = {read, parse, decode, augment, batch};
  s.bad_images = bad_images_.load();
  s.skipped_shards = skipped_shards_.load();
  {
    std::lock_guard<std::mutex> lock(occ_mu_);
    const char* names[3] = {"read->process", "process->batch", "prefetch"};
    const int64_t caps[3] = {cap_, cap_, config_.basic ? 1 : config_.prefetch + 1};
    for (int i = 0; i < 3; ++i) {
      s.queues.push_back({names[i], occ_n_ > 0 ? occ_sum_[i] / static_cast<double>(occ_n_) : 0,
                          occ_max_[i], caps[i]});
    }
    s.occupancy = occupancy_;
  }
  FinishStats(&s);
  return s;
}

Status Pipeline::Impl::WriteChromeTrace(const std::string& path) {
  if (!config_.trace)
    return Status::InvalidArgument("tracing was not enabled (PipelineConfig::trace)");
  Stop();
  nlohmann::json events = nlohmann::json::array();
  auto us = [&](double t) { return (t - start_) * 1e6; };
  int tid = 0;
  for (const ThreadTrack& track : tracks_) {
    events.push_back({{"name", "thread_name"},
                      {"ph", "M"},
                      {"pid", 1},
                      {"tid", tid},
                      {"args", {{"name", track.name}}}});
    for (const TraceEvent& e : track.events) {
      events.push_back({{"name", e.name},
                        {"ph", "X"},
                        {"pid", 1},
                        {"tid", tid},
                        {"ts", us(e.start)},
                        {"dur", e.duration * 1e6},
                        {"args", {{"seq", e.seq}}}});
    }
    ++tid;
  }
  const PipelineStats stats = Stats();
  for (const OccupancySample& o : stats.occupancy) {
    nlohmann::json args;
    for (size_t i = 0; i < o.values.size() && i < stats.queues.size(); ++i) {
      args[stats.queues[i].name] = o.values[i];
    }
    events.push_back({{"name", "queue occupancy"},
                      {"ph", "C"},
                      {"pid", 1},
                      {"ts", o.t_s * 1e6},
                      {"args", args}});
  }
  nlohmann::json doc = {{"traceEvents", events}, {"displayTimeUnit", "ms"}};
  return formats::WriteFileAtomically(path, doc.dump() + "\n");
}

Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pipeline::~Pipeline() = default;

Result<std::unique_ptr<Pipeline>> Pipeline::Create(PipelineConfig config) {
  auto impl = std::make_unique<Impl>(std::move(config));
  SLUICE_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Pipeline>(new Pipeline(std::move(impl)));
}

Status Pipeline::Next(Batch* batch) { return impl_->Next(batch); }
void Pipeline::Stop() { impl_->Stop(); }
PipelineStats Pipeline::Stats() const { return impl_->Stats(); }
Status Pipeline::WriteChromeTrace(const std::string& path) { return impl_->WriteChromeTrace(path); }
const PipelineConfig& Pipeline::config() const { return impl_->config(); }

}  // namespace sluice::pipeline
