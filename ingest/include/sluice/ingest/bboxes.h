// ImageNet training bounding boxes, read from either form the reference converter knows:
//
//   ILSVRC2012_bbox_train_v2.tar.gz   a tar.gz of "<wnid>/<image basename>.xml" PASCAL-VOC
//   annotations,
//                                     streamed with libarchive (never extracted).
//   bounding_boxes.csv                the output of TF's process_bounding_boxes.py, one box per
//   line:
//                                     "n00007846_64193.JPEG,0.0060,0.2620,0.7545,0.9940" =
//                                     <image file name>,<xmin>,<ymin>,<xmax>,<ymax>, already
//                                     normalized (the column order build_imagenet_data.py reads).
//
// XML semantics follow process_bounding_boxes.py (tensorflow/models research/inception):
//   - each coordinate is int(float(text)) (fractional pixel values are truncated toward zero), then
//     divided by the <width>/<height> of the image shown to the annotator (the first such elements
//     in the document);
//   - min/max are swapped when reversed, then each is clamped to [0, 1];
//   - a box with xmin >= xmax or ymin >= ymax after that is dropped (degenerate or entirely
//   outside).
// Deviations, all on input the reference mishandles: a missing, zero or negative width/height is
// DataLoss here (the reference divides by zero, or by -1 and silently drops every box); a <bndbox>
// lacking one of its four coordinates is DataLoss (the reference pairs coordinates across boxes by
// their n-th occurrence in the document); the synset reported is the first <object><name> (the
// reference takes the first <name> anywhere, which in ImageNet's files is the same element).
//
// Box table key convention: the image's basename with the ".JPEG" extension, "n01440764_18.JPEG",
// i.e. exactly the CSV's first column and the `image/filename` feature. For XML input the key comes
// from the member's name (as the reference does: <filename> sometimes holds noise such as "%s"),
// not from <filename>. Images whose boxes were all dropped have no entry.
#ifndef SLUICE_INGEST_BBOXES_H_
#define SLUICE_INGEST_BBOXES_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/formats/status.h"

namespace sluice::ingest {

// A box in coordinates relative to the image: 0 <= xmin < xmax <= 1, 0 <= ymin < ymax <= 1.
struct BoundingBox {
  float xmin = 0;
  float ymin = 0;
  float xmax = 0;
  float ymax = 0;

  friend bool operator==(const BoundingBox&, const BoundingBox&) = default;
};

// Image basename with ".JPEG" ("n01440764_18.JPEG") -> its boxes, in file order.
using BoxTable = std::map<std::string, std::vector<BoundingBox>>;

// Parses one ImageNet PASCAL-VOC annotation. `name` is used in messages
// ("archive.tar.gz:n0/x.xml"). filename_out (may be null) receives the <filename> text
// ("n01440764_18", empty if absent); synset_out_or_null the first <object><name> (empty if absent).
// The result holds the valid boxes (possibly none). DataLoss for malformed XML (with byte offset),
// a root element other than <annotation>, a malformed number, or a box without a usable image size.
Result<std::vector<BoundingBox>> ParseVocXml(std::string_view xml, std::string_view name,
                                             std::string* filename_out,
                                             std::string* synset_out_or_null);

// Parses bounding_boxes.csv text. DataLoss naming the line for a wrong field count, a malformed
// number, a value outside [0, 1] or min > max. Blank lines are skipped.
Result<BoxTable> ParseBoxCsv(std::string_view text, std::string_view name);

// Reads a box file of either kind, chosen by content: gzip/bzip2/xz/tar magic means an archive of
// XML files, anything else is read as CSV. In an archive, members not ending in ".xml" are skipped,
// as are members whose path is absolute or contains "..". NotFound/IoError if the file cannot be
// read; DataLoss naming the archive and member for a corrupt or truncated archive or a bad XML;
// InvalidArgument for an archive without a single .xml member.
Result<BoxTable> ReadBoundingBoxes(const std::string& path);

}  // namespace sluice::ingest

#endif  // SLUICE_INGEST_BBOXES_H_
