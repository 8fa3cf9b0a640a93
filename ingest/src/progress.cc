#include "progress.h"

#include <unistd.h>

#include <cstdio>

namespace sluice::ingest {

Progress::Progress(std::string label, uint64_t total_items, uint64_t total_bytes)
    : label_(std::move(label)),
      total_items_(total_items),
      total_bytes_(total_bytes),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_),
      tty_(::isatty(2)) {}

double Progress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::Add(uint64_t items, uint64_t bytes) {
  items_ += items;
  bytes_ += bytes;
  auto now = std::chrono::steady_clock::now();
  auto interval = tty_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(10000);
  if (now - last_print_ < interval) return;
  std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
  if (!lock.owns_lock() || now - last_print_ < interval) return;
  last_print_ = now;
  Print(false);
}

void Progress::Finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (tty_) Print(true);
}

void Progress::Print(bool final) {
  const double secs = seconds();
  const uint64_t items = items_.load(), bytes = bytes_.load();
  const double mbps = secs > 0 ? bytes / 1e6 / secs : 0;
  const double frac = total_items_ ? static_cast<double>(items) / total_items_ : 1.0;
  const double eta = frac > 0 ? secs / frac - secs : 0;
  char line[256];
  std::snprintf(line, sizeof(line), "%s: %llu/%llu images (%.1f%%), %.0f MB/s, %.0f img/s, ETA %.0fs",
                label_.c_str(), static_cast<unsigned long long>(items),
                static_cast<unsigned long long>(total_items_), 100 * frac, mbps,
                secs > 0 ? items / secs : 0.0, eta);
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line, final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line);
  }
  std::fflush(stderr);
}

}  // namespace sluice::ingest
