// Parsers for the small ImageNet (ILSVRC2012) text files that give images their labels.
//
//   synset list         one wnid per line ("n01440764"); 1000 lines for ILSVRC2012. The label of a
//   synset
//                       is 1 + its index in *sorted* order (DESIGN.md); ParseSynsetList keeps file
//                       order, so callers sort (the TFDS and TF files are already sorted).
//   imagenet_metadata   "<wnid>\t<human text>" per line (21,842 lines, all of ImageNet-21k).
//   validation labels   50,000 lines; line i (1-based) holds the wnid of ILSVRC2012_val_%08d.JPEG,
//   i.
//                       The validation tar is not in index order, so the index comes from the
//                       member name (ValidationIndexFromName), never from the position in the tar.
//
// Every line is stripped of surrounding whitespace (so CRLF files read the same), as the reference
// converter (build_imagenet_data.py) does with l.strip(). Blank lines are accepted only at the end
// of the synset and validation files (a blank line in the middle would shift every later label),
// and anywhere in the metadata file. Content errors are DataLoss naming the file, the 1-based line
// and the reason.
#ifndef SLUICE_INGEST_IMAGENET_META_H_
#define SLUICE_INGEST_IMAGENET_META_H_

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/formats/status.h"

namespace sluice::ingest {

// True for a WordNet id as ImageNet spells it: 'n' followed by exactly 8 digits.
bool IsWnid(std::string_view s);

// The synset list in file order. DataLoss for an empty list, a malformed line or a duplicate wnid.
// `name` is the file name used in messages.
Result<std::vector<std::string>> ParseSynsetList(std::string_view text, std::string_view name);

// imagenet_metadata.txt: wnid -> human-readable text ("tench, Tinca tinca"). DataLoss for a line
// without a tab, a malformed wnid, empty text or a wnid given twice.
Result<std::map<std::string, std::string>> ParseMetadata(std::string_view text,
                                                         std::string_view name);

// The validation synset file: element i-1 is the wnid of validation image i. DataLoss when the
// number of lines differs from expected_count (0: do not check; the message gives both numbers),
// for a malformed line (line number), and for a wnid not in *known_synsets (line number and wnid;
// null: do not check).
Result<std::vector<std::string>> ParseValidationLabels(std::string_view text, std::string_view name,
                                                       size_t expected_count,
                                                       const std::set<std::string>* known_synsets);

// The 1-based index of a validation image from its name: "ILSVRC2012_val_00000001.JPEG" -> 1. Any
// directory prefix is ignored. Accepts the 8-digit names of the real archive and the 7-digit names
// of the TFDS fixture tar ("ILSVRC2012_val_0000007.JPEG"); the extension is ".JPEG" in either case
// (".jpeg" is tolerated). InvalidArgument for anything else, including index 0.
Result<int> ValidationIndexFromName(std::string_view basename);

}  // namespace sluice::ingest

#endif  // SLUICE_INGEST_IMAGENET_META_H_
