// CIFAR-10 in the two layouts of https://www.cs.toronto.edu/~kriz/cifar.html:
//
// Binary (cifar-10-binary.tar.gz: data_batch_1..5.bin, test_batch.bin, batches.meta.txt):
//   a file is N records of kCifarRecordBytes = 3073 bytes, nothing else:
//     byte 0        label, 0..9
//     bytes 1..3072 the image as three planes (R, then G, then B), each 32x32 row-major
//   batches.meta.txt holds the 10 class names, one per line.
//
// Python (cifar-10-python.tar.gz: data_batch_1..5, test_batch, batches.meta): each file is a pickle
// (protocol 2, written by Python 2's cPickle) of a dict with b"batch_label" (str), b"labels" (list
// of N ints), b"data" (a numpy uint8 array N x 3072, same plane layout as above) and b"filenames"
// (list of N str); batches.meta is a dict with b"label_names". We read these with a small pickle
// interpreter that understands only data opcodes plus the few constructors these files use
// (numpy's _reconstruct / dtype, and _codecs.encode, which Python 3 writes for bytes under protocol
// 2). It never calls anything: any other global is kept as an inert value, so a hostile pickle can
// only produce a DataLoss/Unsupported error.
#ifndef SLUICE_INGEST_CIFAR_H_
#define SLUICE_INGEST_CIFAR_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/formats/status.h"

namespace sluice::ingest {

inline constexpr int kCifarHeight = 32;
inline constexpr int kCifarWidth = 32;
inline constexpr int kCifarChannels = 3;
inline constexpr size_t kCifarImageBytes = kCifarHeight * kCifarWidth * kCifarChannels;  // 3072
inline constexpr size_t kCifarRecordBytes = 1 + kCifarImageBytes;                        // 3073
inline constexpr int kCifarNumClasses = 10;

struct CifarRecord {
  uint8_t label = 0;                                   // 0..9
  std::array<uint8_t, kCifarImageBytes> pixels_chw{};  // (3, 32, 32): R plane, G plane, B plane
};

// Parses a binary batch. `name` is the file name used in messages. DataLoss for an empty file, a
// size that is not a multiple of 3073 (message gives the size and the whole records it holds), or a
// label > 9 (message gives the record index and its byte offset).
Result<std::vector<CifarRecord>> ParseCifarBinary(std::string_view bytes, std::string_view name);

// Parses batches.meta.txt: the class names in label order, surrounding whitespace stripped, blank
// lines ignored. DataLoss unless there are exactly 10 names.
Result<std::vector<std::string>> ParseCifarMeta(std::string_view text, std::string_view name);

// Converts planar (C, H, W) bytes to interleaved (H, W, C), the layout PNG encoders take.
// planar and interleaved each hold height*width*channels bytes and must not overlap.
void PlanarToInterleaved(const uint8_t* planar, int height, int width, int channels,
                         uint8_t* interleaved);
// A CIFAR image as (32, 32, 3) RGB bytes.
std::array<uint8_t, kCifarImageBytes> CifarToHwc(const CifarRecord& record);

// One pickled python batch (data_batch_N / test_batch).
struct CifarPythonBatch {
  std::string batch_label;           // "training batch 1 of 5"; empty when absent
  std::vector<CifarRecord> records;  // in file order
  std::vector<std::string>
      filenames;  // one per record ("leptodactylus_pentadactylus_s_000004.png"),
                  // or empty when the dict has no b"filenames"
};

// Parses a pickled python batch. DataLoss naming the file and byte offset for a malformed or
// truncated pickle, and naming the key for a missing or ill-shaped field (data not N x 3072 uint8,
// labels not N ints in 0..9, filenames not N strings); Unsupported for pickle opcodes or numpy
// layouts these files never use (Fortran order, other dtypes).
Result<CifarPythonBatch> ParseCifarPythonBatch(std::string_view bytes, std::string_view name);

// Parses the pickled batches.meta: its b"label_names", which must be 10 strings.
Result<std::vector<std::string>> ParseCifarPythonMeta(std::string_view bytes,
                                                      std::string_view name);

}  // namespace sluice::ingest

#endif  // SLUICE_INGEST_CIFAR_H_
