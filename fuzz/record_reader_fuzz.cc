// Fuzzes the TFRecord reader (plain, gzip and zlib, chosen by the first byte) and parses every record
// it accepts as a tf.Example. Any crash, sanitizer report or allocation of a claimed length is a bug;
// errors are expected and fine.
#include <cstddef>
#include <cstdint>
#include <string>

#include "sluice/formats/example.h"
#include "sluice/formats/record_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::formats;
  if (size == 0) return 0;
  RecordReaderOptions opt;
  opt.compression = static_cast<Compression>(data[0] % 3);
  opt.buffer_size = 64 + data[0];  // small buffers exercise refills and growth
  opt.max_record_size = 1 << 20;
  auto reader = RecordReader::FromString(std::string(reinterpret_cast<const char*>(data) + 1, size - 1),
                                         "fuzz", opt);
  if (!reader.ok()) return 0;
  std::string_view record;
  uint64_t offset = 0;
  for (int i = 0; i < 10000; ++i) {
    if (!(*reader)->ReadRecord(&record, &offset).ok()) break;
    if (offset + FramedSize(record.size()) != (*reader)->offset()) __builtin_trap();
    (void)Example::Parse(record);
  }
  return 0;
}
