#include "stage_profiler.h"

#include <algorithm>
#include <chrono>

#include "sluice/pipeline/clock.h"

namespace sluice::pipeline {
namespace {
constexpr size_t kMaxBadExamples = 5;
constexpr size_t kMaxOccupancySamples = 4096;
constexpr double kOccupancyPeriodS = 0.005;
}  // namespace

StageProfiler::StageProfiler(double start, int threads, std::array<int64_t, 3> queue_capacity)
    : start_(start), threads_(threads), capacity_(queue_capacity), period_(kOccupancyPeriodS) {}

StageProfiler::~StageProfiler() { StopSampler(); }

void StageProfiler::StartSampler(std::function<int64_t()> prefetch_size) {
  prefetch_size_ = std::move(prefetch_size);
  sampler_ = std::thread([this] {
    // At least one sample, even for a run that ends before this thread is first scheduled.
    // Woken early by StopSampler(), so stopping never waits out a period (which doubles on long
    // runs).
    std::unique_lock<std::mutex> lock(sampler_mu_);
    for (;;) {
      lock.unlock();
      Sample();
      double period;
      {
        std::lock_guard<std::mutex> guard(mu_);
        period = period_;  // Sample() doubles it as the run grows
      }
      lock.lock();
      if (sampler_cv_.wait_for(lock, std::chrono::duration<double>(period),
                               [this] { return stop_sampler_; }))
        return;
    }
  });
}

void StageProfiler::StopSampler() {
  {
    std::lock_guard<std::mutex> lock(sampler_mu_);
    stop_sampler_ = true;
  }
  sampler_cv_.notify_all();
  if (sampler_.joinable()) sampler_.join();
}

void StageProfiler::Read(double busy_s, double blocked_output_s, bool sample) {
  read_busy_ns_ += Nanos(busy_s);
  read_out_wait_ns_ += Nanos(blocked_output_s);
  if (sample) ++read_items_;
}

void StageProfiler::Processed(const SampleTimings& t, double busy_s) {
  parse_ns_ += Nanos(t.parse_s);
  decode_ns_ += Nanos(t.decode_s);
  augment_ns_ += Nanos(t.augment_s);
  process_busy_ns_ += Nanos(busy_s);
  ++process_items_;
}

uint64_t StageProfiler::BadImage(const std::string& description) {
  const uint64_t bad = ++bad_images_;
  std::lock_guard<std::mutex> lock(mu_);
  if (bad_examples_.size() < kMaxBadExamples) bad_examples_.push_back(description);
  return bad;
}

void StageProfiler::BatchBusy(double s) { batch_busy_ns_ += Nanos(s); }

void StageProfiler::ConsumerWait(bool first, double s) {
  std::lock_guard<std::mutex> lock(mu_);
  (first ? consumer_.warmup_s : consumer_.wait_s) += s;
}

void StageProfiler::ConsumerStep(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  consumer_.step_s += s;
}

void StageProfiler::ConsumerTook(int images) {
  std::lock_guard<std::mutex> lock(mu_);
  ++consumer_.batches;
  consumer_.images += static_cast<uint64_t>(images);
}

void StageProfiler::End(double t) {
  std::lock_guard<std::mutex> lock(mu_);
  if (end_ == 0) end_ = t;
}

void StageProfiler::Sample() {
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
  v[2] = prefetch_size_ ? prefetch_size_() : 0;
  std::lock_guard<std::mutex> lock(mu_);
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
    period_ *= 2;
  }
  occupancy_.push_back({t, {v[0], v[1], v[2]}});
}

PipelineStats StageProfiler::Stats() const {
  PipelineStats s;
  double end;
  {
    std::lock_guard<std::mutex> lock(mu_);
    end = end_ > 0 ? end_ : Now();
    s.bad_examples = bad_examples_;
    s.consumer = consumer_;
    const char* names[3] = {"read->process", "process->batch", "prefetch"};
    for (int i = 0; i < 3; ++i) {
      s.queues.push_back({names[i], occ_n_ > 0 ? occ_sum_[i] / static_cast<double>(occ_n_) : 0,
                          occ_max_[i], capacity_[i]});
    }
    s.occupancy = occupancy_;
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
  FinishStats(&s);
  return s;
}

}  // namespace sluice::pipeline
