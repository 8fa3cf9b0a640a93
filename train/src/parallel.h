// Fixed-shape work splitting for the layers: results must not depend on the thread count, so a
// reduction is always cut into the same parts (a function of the problem size only) and the parts
// are summed in index order. The parts run on whatever TBB arena the caller is in.
#ifndef SLUICE_TRAIN_SRC_PARALLEL_H_
#define SLUICE_TRAIN_SRC_PARALLEL_H_

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstdint>

namespace sluice::train {

// Calls fn(part, begin, end) for `parts` contiguous, near-equal slices of [0, n), in parallel.
template <typename Fn>
void ParallelParts(int64_t n, int64_t parts, Fn&& fn) {
  parts = std::max<int64_t>(1, std::min(parts, n));
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, parts, 1),
      [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t p = r.begin(); p < r.end(); ++p) fn(p, n * p / parts, n * (p + 1) / parts);
      },
      tbb::simple_partitioner());
}

// Elementwise loops: no reduction, so any split is deterministic.
template <typename Fn>
void ParallelRange(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= grain) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, grain),
                    [&](const tbb::blocked_range<int64_t>& r) { fn(r.begin(), r.end()); });
}

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_SRC_PARALLEL_H_
