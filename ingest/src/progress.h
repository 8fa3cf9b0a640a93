// Internal: progress reporting for long ingest runs. Workers add counts; whichever worker finds the
// report interval elapsed prints (try_lock, so nobody waits). On a terminal the line is redrawn in
// place; otherwise a plain line every 10 s for logs. Thread-safe.
#ifndef SLUICE_INGEST_SRC_PROGRESS_H_
#define SLUICE_INGEST_SRC_PROGRESS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace sluice::ingest {

class Progress {
 public:
  Progress(std::string label, uint64_t total_items, uint64_t total_bytes);
  void Add(uint64_t items, uint64_t bytes);
  // Prints the final state (ends a redrawn line with a newline).
  void Finish();
  double seconds() const;

 private:
  void Print(bool final);

  std::string label_;
  uint64_t total_items_;
  uint64_t total_bytes_;
  std::atomic<uint64_t> items_{0};
  std::atomic<uint64_t> bytes_{0};
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
  std::mutex mu_;
  bool tty_;
};

}  // namespace sluice::ingest

#endif  // SLUICE_INGEST_SRC_PROGRESS_H_
