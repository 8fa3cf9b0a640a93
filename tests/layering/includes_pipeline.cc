// Compiled twice by tests/CMakeLists.txt: linked to sluice_pipeline it must build (the control); linked
// to a module beside or below it (formats, ingest) it must not.
#include "sluice/pipeline/normalize.h"

const float* LayeringProbe() { return sluice::pipeline::kResnetMean.data(); }
