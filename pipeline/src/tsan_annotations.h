// Internal to pipeline/: what ThreadSanitizer cannot see of TBB's hand-offs, said explicitly.
//
// TBB's scheduler (libtbb.so) is not built with ThreadSanitizer, so TSan cannot see that handing a
// message to a successor node happens before the successor runs. Each node says so for the slot the
// message refers to: HandOff at the end of the producing body, TakeOver at the start of the
// consuming one. No-ops outside TSan builds.
#ifndef SLUICE_PIPELINE_SRC_TSAN_ANNOTATIONS_H_
#define SLUICE_PIPELINE_SRC_TSAN_ANNOTATIONS_H_

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

// Held for the duration of every node body. Everything the pipeline set up before the graph started
// happens before any body (TSan is told through `init`, which Init hands off just before it
// activates the source: TBB's worker threads may predate the pipeline, so thread creation does not
// order them); a serial node's body runs on different threads one call at a time (TBB orders the
// calls; TSan is told through `serial`, null for parallel bodies); and every body's end happens
// before the graph's wait_for_all returns (TSan is told through `graph`, which Stop() takes over
// after waiting).
class BodyScope {
 public:
  BodyScope(const void* graph, const void* serial, const void* init)
      : graph_(graph), serial_(serial) {
    TakeOver(init);
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

}  // namespace sluice::pipeline

#endif  // SLUICE_PIPELINE_SRC_TSAN_ANNOTATIONS_H_
