// Inputs shared by the formats benchmarks: random payloads and an ImageNet-style Example.
#ifndef SLUICE_BENCH_FORMATS_BENCH_INPUTS_H_
#define SLUICE_BENCH_FORMATS_BENCH_INPUTS_H_

#include <cstdint>
#include <random>
#include <string>

#include "sluice/formats/example.h"

namespace sluice::bench {

// n pseudo-random bytes (incompressible, like JPEG data), the same for the same seed.
inline std::string RandomBytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// An ImageNet-style Example: build_imagenet_data.py's features around `image_size` bytes of JPEG.
inline formats::Example ImageNetExample(size_t image_size) {
  formats::Example ex;
  ex.SetInt64("image/height", 375)
      .SetInt64("image/width", 500)
      .SetBytes("image/colorspace", "RGB")
      .SetInt64("image/channels", 3)
      .SetInt64("image/class/label", 449)
      .SetBytes("image/class/synset", "n01440764")
      .SetBytes("image/class/text", "tench, Tinca tinca")
      .SetFloatList("image/object/bbox/xmin", {0.1f})
      .SetFloatList("image/object/bbox/ymin", {0.2f})
      .SetFloatList("image/object/bbox/xmax", {0.8f})
      .SetFloatList("image/object/bbox/ymax", {0.9f})
      .SetInt64List("image/object/bbox/label", {449})
      .SetBytes("image/format", "JPEG")
      .SetBytes("image/filename", "n01440764_10026.JPEG")
      .SetBytes("image/encoded", RandomBytes(image_size, 3));
  return ex;
}

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_FORMATS_BENCH_INPUTS_H_
