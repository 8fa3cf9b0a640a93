#include "batcher.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#if defined(__AVX512F__) || defined(__AVX__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace sluice::pipeline {
namespace {

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

// Transposes one HWC sample into its CHW place.
template <typename T>
void ToPlanes(const T* src, size_t hw, T* dst) {
  for (size_t p = 0; p < hw; ++p) {
    dst[p] = src[p * 3];
    dst[hw + p] = src[p * 3 + 1];
    dst[2 * hw + p] = src[p * 3 + 2];
  }
}

#if defined(__AVX2__)
// float32 with AVX2, 8 pixels at a time. The three loaded vectors hold
//   a = r0 g0 b0 r1 g1 b1 r2 g2,  b = b2 r3 g3 b3 r4 g4 b4 r5,  c = g5 b5 r6 g6 b6 r7 g7 b7;
// one index vector per plane moves each source's values of that plane to their lanes (R from a
// to lanes 0-2, from b to 3-5, from c to 6-7; G 0-2 / 3-4 / 5-7; B 0-1 / 2-4 / 5-7) and two blends
// merge them. Moves only: bit-identical to the scalar loop.
template <>
void ToPlanes<float>(const float* src, size_t hw, float* dst) {
  const __m256i ir = _mm256_setr_epi32(0, 3, 6, 1, 4, 7, 2, 5);
  const __m256i ig = _mm256_setr_epi32(1, 4, 7, 2, 5, 0, 3, 6);
  const __m256i ib = _mm256_setr_epi32(2, 5, 0, 3, 6, 1, 4, 7);
  size_t p = 0;
  for (; p + 8 <= hw; p += 8) {
    const __m256 a = _mm256_loadu_ps(src + p * 3);
    const __m256 b = _mm256_loadu_ps(src + p * 3 + 8);
    const __m256 c = _mm256_loadu_ps(src + p * 3 + 16);
    auto plane = [&](__m256i idx, auto from_b, auto from_c) {
      const __m256 ab = _mm256_blend_ps(_mm256_permutevar8x32_ps(a, idx),
                                        _mm256_permutevar8x32_ps(b, idx), decltype(from_b)::value);
      return _mm256_blend_ps(ab, _mm256_permutevar8x32_ps(c, idx), decltype(from_c)::value);
    };
    using std::integral_constant;
    _mm256_storeu_ps(dst + p, plane(ir, integral_constant<int, 0b00111000>{},
                                    integral_constant<int, 0b11000000>{}));
    _mm256_storeu_ps(dst + hw + p, plane(ig, integral_constant<int, 0b00011000>{},
                                         integral_constant<int, 0b11100000>{}));
    _mm256_storeu_ps(dst + 2 * hw + p, plane(ib, integral_constant<int, 0b00011100>{},
                                             integral_constant<int, 0b11100000>{}));
  }
  for (; p < hw; ++p) {
    dst[p] = src[p * 3];
    dst[hw + p] = src[p * 3 + 1];
    dst[2 * hw + p] = src[p * 3 + 2];
  }
}
#endif

}  // namespace

BatchAssembler::BatchAssembler(AssemblerOptions options)
    : o_(std::move(options)),
      sample_values_(static_cast<size_t>(o_.image_size) * o_.image_size * 3),
      value_bytes_(o_.output == OutputType::kFloat32 ? sizeof(float) : 1) {}

// A batch buffer from the pool (or a new one), shaped for the options.
std::unique_ptr<Batch> BatchAssembler::NewBatch() {
  std::unique_ptr<Batch> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_.empty()) {
      batch = std::move(free_.back());
      free_.pop_back();
    }
  }
  if (batch == nullptr) batch = std::make_unique<Batch>();
  const size_t b = static_cast<size_t>(o_.batch_size);
  batch->size = 0;
  batch->height = batch->width = o_.image_size;
  batch->channels = 3;
  batch->layout = o_.layout;
  batch->output = o_.output;
  if (o_.output == OutputType::kFloat32) {
    batch->f32.resize(sample_values_ * b);
  } else {
    batch->u8.resize(sample_values_ * b);
  }
  batch->labels.resize(b);
  batch->origins.resize(b);
  batch->features.resize(b * o_.keep_features);
  return batch;
}

const void* BatchAssembler::PixelsAt(const Batch& batch, int pos) const {
  const size_t at = sample_values_ * static_cast<size_t>(pos);
  if (o_.output == OutputType::kFloat32) return batch.f32.data() + at;
  return batch.u8.data() + at;
}

// Its pixel buffer is not resized while staged, so the pointers handed out stay valid.
void* BatchAssembler::StagedTarget(uint64_t seq) {
  if (!o_.direct) return nullptr;
  const uint64_t index = seq / static_cast<uint64_t>(o_.batch_size);
  const int pos = static_cast<int>(seq % static_cast<uint64_t>(o_.batch_size));
  Batch* batch = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (index >= next_batch_ + o_.staged_window) return nullptr;
    // A sample's batch is never complete before the sample is placed, so `index` is the batch
    // filling now or a later one.
    if (filling_ptr_ != nullptr && index + 1 == next_batch_) {
      batch = filling_ptr_;
    } else if (auto it = staged_.find(index); it != staged_.end()) {
      batch = it->second.get();
    }
  }
  if (batch == nullptr) {
    std::unique_ptr<Batch> fresh = NewBatch();
    std::lock_guard<std::mutex> lock(mu_);
    if (filling_ptr_ != nullptr && index + 1 == next_batch_) {  // started meanwhile, without it
      free_.push_back(std::move(fresh));
      batch = filling_ptr_;
    } else {
      auto [it, inserted] = staged_.emplace(index, std::move(fresh));
      if (!inserted) free_.push_back(std::move(fresh));  // another thread staged it first
      batch = it->second.get();
    }
  }
  return const_cast<void*>(PixelsAt(*batch, pos));
}

// The next batch of the run, empty: its staged buffer when samples were written into it directly,
// else one from the pool.
std::unique_ptr<Batch> BatchAssembler::StartBatch(uint32_t epoch) {
  // Taking the staged buffer, counting the batch as started and publishing filling_ptr_ happen in
  // one critical section: a StagedTarget call in between would stage a second buffer for it.
  std::unique_ptr<Batch> fresh = o_.direct ? nullptr : NewBatch();
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
    if (fresh != nullptr) free_.push_back(std::move(fresh));
  } else {
    batch = std::move(fresh);
  }
  batch->size = 0;
  batch->epoch = epoch;
  ++next_batch_;
  filling_ptr_ = batch.get();
  return batch;
}

void BatchAssembler::WriteStaged(void* target, const void* hwc) const {
  if (o_.layout == Layout::kNhwc) {
    std::memcpy(target, hwc, sample_values_ * value_bytes_);
  } else if (o_.output == OutputType::kFloat32) {
    ToPlanes(static_cast<const float*>(hwc), sample_values_ / 3, static_cast<float*>(target));
  } else {
    ToPlanes(static_cast<const uint8_t*>(hwc), sample_values_ / 3, static_cast<uint8_t*>(target));
  }
}

void BatchAssembler::Place(const void* src, bool from_batch, int pos, Batch* batch) const {
  void* dst = const_cast<void*>(PixelsAt(*batch, pos));
  if (from_batch || o_.layout == Layout::kNhwc) {
    CopyToBatch(dst, src, sample_values_ * value_bytes_);
  } else if (o_.output == OutputType::kFloat32) {
    ToPlanes(static_cast<const float*>(src), sample_values_ / 3, static_cast<float*>(dst));
  } else {
    ToPlanes(static_cast<const uint8_t*>(src), sample_values_ / 3, static_cast<uint8_t*>(dst));
  }
}

bool BatchAssembler::Add(const AssembledSample& s) {
  if (filling_ == nullptr) filling_ = StartBatch(s.origin.epoch);
  Batch& batch = *filling_;
  const int pos = batch.size;
  if (s.staged) {
    // Already in place unless an earlier image was skipped: then copy it from where its position
    // in the run put it (this batch's buffer or a later staged one).
    const uint64_t b = static_cast<uint64_t>(o_.batch_size);
    const uint64_t index = s.seq / b;
    const int from = static_cast<int>(s.seq % b);
    bool this_batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      this_batch = index + 1 == next_batch_;
    }
    if (!this_batch || from != pos) {
      const Batch* src = &batch;
      if (!this_batch) {
        std::lock_guard<std::mutex> lock(mu_);
        src = staged_.at(index).get();
      }
      Place(PixelsAt(*src, from), /*from_batch=*/true, pos, &batch);
    }
  } else {
    Place(s.pixels, /*from_batch=*/false, pos, &batch);
  }
  batch.labels[pos] = s.label;
  batch.origins[pos] = s.origin;
  for (size_t k = 0; k < o_.keep_features; ++k) {
    batch.features[pos * o_.keep_features + k] = (*s.features)[k];
  }
  batch.cursor = {s.origin.epoch, s.origin.index + 1};
  if (++batch.size < o_.batch_size) return false;
  std::lock_guard<std::mutex> lock(mu_);
  filling_ptr_ = nullptr;
  ready_.push_back(std::move(filling_));
  cv_.notify_all();
  return true;
}

int64_t BatchAssembler::Finish(bool drop_remainder) {
  int64_t dropped = 0;
  std::lock_guard<std::mutex> lock(mu_);
  if (filling_ != nullptr && filling_->size > 0) {
    if (drop_remainder) {
      dropped = filling_->size;
    } else {
      filling_ptr_ = nullptr;
      ready_.push_back(std::move(filling_));
    }
  }
  done_ = true;
  cv_.notify_all();
  return dropped;
}

void BatchAssembler::Fail(const Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (error_.ok()) error_ = status;
  cv_.notify_all();
}

void BatchAssembler::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  done_ = true;
  cv_.notify_all();
}

Status BatchAssembler::Take(Batch* out) {
  std::unique_ptr<Batch> batch;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !ready_.empty() || done_ || !error_.ok(); });
    if (!error_.ok()) return error_;
    if (ready_.empty()) return Status::EndOfData("end of input");
    batch = std::move(ready_.front());
    ready_.pop_front();
  }
  out->epoch = batch->epoch;
  out->size = batch->size;
  out->height = batch->height;
  out->width = batch->width;
  out->channels = batch->channels;
  out->layout = batch->layout;
  out->output = batch->output;
  out->cursor = batch->cursor;
  out->f32.swap(batch->f32);
  out->u8.swap(batch->u8);
  out->labels.swap(batch->labels);
  out->origins.swap(batch->origins);
  out->features.swap(batch->features);
  const size_t n = static_cast<size_t>(out->size);
  if (out->output == OutputType::kFloat32) {
    out->f32.resize(sample_values_ * n);
  } else {
    out->u8.resize(sample_values_ * n);
  }
  out->labels.resize(n);
  out->origins.resize(n);
  out->features.resize(n * o_.keep_features);
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(std::move(batch));
  return Status::Ok();
}

int64_t BatchAssembler::ReadySize() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(ready_.size());
}

}  // namespace sluice::pipeline
