// Internal to train/: numbers as text that reads back exactly (hparams.yaml, checkpoint metadata).
#ifndef SLUICE_TRAIN_SRC_NUMBER_TEXT_H_
#define SLUICE_TRAIN_SRC_NUMBER_TEXT_H_

#include <cstdio>
#include <cstdlib>
#include <string>

namespace sluice::train {

// The shortest %g text (6 to 17 digits) that reads back as the same double.
inline std::string ShortestText(double d) {
  char buf[32];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  return buf;
}

}  // namespace sluice::train

#endif  // SLUICE_TRAIN_SRC_NUMBER_TEXT_H_
