// `sluice sample-data`: real-format sample inputs for every ingest command, made by the project
// itself (no download, no licence question), for the demo, the tests and the benchmarks.
//
// Layout under OUT (the formats of the real files; DESIGN.md "Dataset conventions"):
//   imagenet/ILSVRC2012_img_train.tar   ustar of per-synset ustars "nXXXXXXXX.tar" (sorted), each
//                                       holding "nXXXXXXXX_<k>.JPEG" (k: arbitrary ids). Like
//                                       ImageNet's, it contains one PNG named .JPEG, one CMYK JPEG
//                                       (Adobe marker) and one grayscale JPEG.
//   imagenet/ILSVRC2012_img_val.tar     flat "ILSVRC2012_val_%08d.JPEG" (1-based), members in a
//                                       seeded shuffled order, not by index
//   imagenet/imagenet_2012_validation_synset_labels.txt
//                                       line i = wnid of ILSVRC2012_val_%08d.JPEG, i
//   imagenet/ILSVRC2012_bbox_train_v2.tar.gz
//                                       "<wnid>/<wnid>_<k>.xml" PASCAL-VOC files for most (not
//                                       all) train images, 1-2 objects each, boxing the drawn
//                                       objects. One box has xmin > xmax and one file has an
//                                       extra zero-width box: the real file has both kinds.
//   imagenet/imagenet_metadata.txt      "wnid\ttext" for the synsets used
//   flowers/flower_photos.tgz           flower_photos/LICENSE.txt and
//                                       flower_photos/<class>/<id>_<secret>_n.jpg for daisy,
//                                       dandelion, roses, sunflowers, tulips
//   cifar10/cifar-10-binary.tar.gz      cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin
//                                       (records: label byte, 1024 R, 1024 G, 1024 B bytes),
//                                       batches.meta.txt, readme.html
//
// Images are synthetic photos: each class has its own shape, colour and texture on a cluttered
// background, with seeded jitter, so classes are visually distinct and learnable by a small CNN.
// JPEGs are quality 90 (configurable), 4:2:0, about 60 KB at 500x375. Sizes are ImageNet-like
// unless forced: 300..500 pixels on the long side (500 for most), 4:3, 3:2, 5:4, 1:1 or 16:9, a
// fifth portrait.
//
// Output is a pure function of the options: the same options give byte-identical files whatever
// the thread count (every image is rendered from its own seed, archives are written in a fixed
// order, and archive headers carry a fixed mtime, owner and mode, never the clock). Each file is
// written under "<name>.tmp" and renamed when complete, so an interrupted run leaves no
// complete-looking archive.
//
// Thread-safety: WriteSampleData may run concurrently for different out_dirs; it renders with TBB
// (in its own task arena when threads > 0).
#ifndef SLUICE_INGEST_SAMPLE_DATA_H_
#define SLUICE_INGEST_SAMPLE_DATA_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sluice/formats/status.h"

namespace sluice::ingest {

// At most this many ImageNet classes (the synsets are a fixed list of real ILSVRC2012 wnids: the
// ten of Imagenette, then ten dog breeds of Imagewoof).
inline constexpr int kMaxSampleClasses = 20;

struct SampleDataOptions {
  uint64_t seed = 0;
  // Which datasets to write.
  bool imagenet = true;
  bool flowers = true;
  bool cifar10 = true;
  // ImageNet train images in total, spread evenly over the classes (earlier synsets get the
  // remainder). At least 3 (the PNG, CMYK and grayscale oddities) and at least `classes`.
  int imagenet_train_images = 200;
  // ImageNet validation images; -1: imagenet_train_images / 4 (at least 1).
  int imagenet_val_images = -1;
  // Number of synsets, 1..kMaxSampleClasses.
  int classes = 10;
  // Forced image size for ImageNet and flowers; 0 x 0: ImageNet-like sizes varying per image.
  int width = 0;
  int height = 0;
  // Percentage of train images that get a bounding-box XML (the rest have none, as in ImageNet).
  int bbox_percent = 80;
  int flowers_per_class = 20;
  // CIFAR-10: records per data_batch_N.bin (5 files) and in test_batch.bin.
  int cifar_per_batch = 100;
  int cifar_test = 100;
  int jpeg_quality = 90;
  // Rendering threads; 0: TBB's default (all cores). Does not change the output.
  int threads = 0;
  // Called after each file is published (from the calling thread): its path, the images in it and
  // its size in bytes.
  std::function<void(const std::string& path, int64_t images, uint64_t bytes)> on_file;
};

struct SampleDataSummary {
  // Every file written, in the order written.
  std::vector<std::string> files;
  // Paths; empty for a dataset that was not requested.
  std::string imagenet_train_tar;
  std::string imagenet_val_tar;
  std::string imagenet_val_labels;
  std::string imagenet_bbox_tar;
  std::string imagenet_metadata;
  std::string flowers_tgz;
  std::string cifar10_tgz;

  // The wnids used, sorted (label = 1 + index, as DESIGN.md defines ImageNet labels).
  std::vector<std::string> synsets;
  int64_t imagenet_train_images = 0;
  int64_t imagenet_val_images = 0;
  int64_t bbox_files = 0;
  int64_t bbox_objects = 0;  // every <object>, the swapped and degenerate ones included
  int64_t flowers_images = 0;
  int64_t cifar10_train_records = 0;
  int64_t cifar10_test_records = 0;
  // Images rendered in all (JPEG, PNG and CIFAR records).
  int64_t images = 0;
  // Bytes of all files written.
  uint64_t bytes = 0;

  // The odd train images, as member names inside their per-synset tar ("<wnid>.tar" in the train
  // tar): "n01440764_1234.JPEG".
  std::string png_member;        // PNG bytes under a .JPEG name
  std::string cmyk_member;       // 4-component JPEG with an Adobe marker
  std::string grayscale_member;  // 1-component JPEG
  // Members of the bbox tar ("n01440764/n01440764_1234.xml"); empty if too few images had boxes.
  std::string swapped_box_xml;     // its first object has xmin > xmax
  std::string degenerate_box_xml;  // its last object has xmin == xmax
};

// Writes the sample datasets under out_dir (created if missing). InvalidArgument for options out of
// range; IoError when a file cannot be written (nothing complete-looking is left behind).
Result<SampleDataSummary> WriteSampleData(const std::string& out_dir,
                                          const SampleDataOptions& options = {});

}  // namespace sluice::ingest

#endif  // SLUICE_INGEST_SAMPLE_DATA_H_
