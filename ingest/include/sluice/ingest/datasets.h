// The ingest front-ends: ImageNet (ILSVRC2012 tars or extracted trees), flowers / any class-per-folder
// tree, and CIFAR-10 binaries, each producing TFRecord shards compatible with the reference converter
// (DESIGN.md "Dataset conventions"), plus a manifest. See shard_writer.h for ordering, determinism,
// atomicity, resume and scale-out, which all of them share.
#ifndef SLUICE_INGEST_DATASETS_H_
#define SLUICE_INGEST_DATASETS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sluice/formats/status.h"
#include "sluice/ingest/image_prep.h"
#include "sluice/ingest/shard_writer.h"

namespace sluice::ingest {

// Everything the shard writer takes (shard_writer.h), plus how images are checked and fixed.
struct CommonOptions : WriterOptions {
  PrepOptions prep;
};

struct SplitSummary {
  uint64_t images = 0;     // records written by this task
  uint64_t shards = 0;     // shards owned by this task
  uint64_t resumed = 0;    // shards kept from an earlier run
  uint64_t rejected = 0;
  uint64_t reencoded = 0;
  uint64_t bytes = 0;      // shard bytes
  uint64_t input_bytes = 0;
};

struct IngestSummary {
  std::map<std::string, SplitSummary> splits;
  uint64_t ignored_members = 0;  // non-image files, unsafe paths
  bool manifest_written = false;
  double seconds = 0;
  uint64_t input_bytes = 0;
  // "train 1281167, validation 50000 images; 22 re-encoded, 0 skipped; 144.1 GB; 2650.3 s"
  std::string SummaryLine() const;
};

struct ImagenetOptions {
  CommonOptions common;
  std::string train_archive;  // tar of per-synset tars, or a train/<wnid>/*.JPEG directory
  std::string val_archive;    // flat tar or directory of ILSVRC2012_val_*.JPEG
  std::string val_labels;     // one wnid per line, line i <-> ILSVRC2012_val_%08d.JPEG
  std::string metadata;       // imagenet_metadata.txt: wnid \t text (optional)
  std::string bboxes;         // ILSVRC2012_bbox_train_v2.tar.gz or bounding_boxes.csv (optional)
  std::string synsets;        // the synset list defining labels (optional; default: sorted train wnids)
  int train_shards = 1024;
  int val_shards = 128;
};
Result<IngestSummary> IngestImagenet(const ImagenetOptions& options);

enum class FolderNaming {
  kFolder,   // "train-00000-of-00005", rich features (ImageNet-like)
  kFlowers,  // slim's "flowers_train_00000-of-00005.tfrecord", slim's 5 features
};

struct FolderOptions {
  CommonOptions common;
  std::string root;               // directory or archive of <class>/<image>
  FolderNaming naming = FolderNaming::kFolder;
  int64_t validation_count = -1;  // slim-style: this many images for validation (-1: use ratios)
  std::vector<double> split_ratios = {1.0};  // train[, validation[, test]]
  int shards_per_split = 5;
};
Result<IngestSummary> IngestFolder(const FolderOptions& options);

struct CifarOptions {
  CommonOptions common;
  std::string archive;  // cifar-10-binary.tar.gz or the extracted cifar-10-batches-bin directory
  bool encode_png = true;  // false: raw HWC uint8 bytes, image/format "RAW"
  int train_shards = 10;
  int test_shards = 2;
};
Result<IngestSummary> IngestCifar10(const CifarOptions& options);

}  // namespace sluice::ingest

#endif  // SLUICE_INGEST_DATASETS_H_
