// Fuzzes the JPEG/PNG probe and decoders with a small pixel cap: corrupt images must give a Status,
// never a crash, a hang or an allocation of a claimed size.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sluice/formats/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::formats;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto info = ProbeImage(bytes);
  DecodeOptions opt;
  opt.max_pixels = 1 << 22;
  opt.strict = size % 2 == 0;
  auto image = DecodeImage(bytes, opt);
  if (image.ok()) {
    if (image->pixels.size() !=
        static_cast<size_t>(image->width) * image->height * image->channels) {
      __builtin_trap();
    }
    if (!info.ok()) __builtin_trap();  // decodable implies probeable
  }
  return 0;
}
