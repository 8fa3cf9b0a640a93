// CSV output shared by the results table (`sluice results --format csv`) and the predictions file
// (`sluice eval --predict`): one quoting rule, RFC 4180's, so every CSV sluice writes reads back
// the same with Python's csv module or pandas.
#ifndef SLUICE_TRAIN_CSV_H_
#define SLUICE_TRAIN_CSV_H_

#include <string>
#include <string_view>

namespace sluice::train {

// One field: unchanged unless it holds a comma, a double quote, CR or LF; then wrapped in double
// quotes with every double quote doubled (RFC 4180 section 2, rules 6 and 7).
std::string CsvField(std::string_view field);

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_CSV_H_
