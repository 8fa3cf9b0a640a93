// Compiled twice by tests/CMakeLists.txt: linked to sluice_cli it must build (the control); linked only
// to a lower module it must not, because cli's headers are not on a lower module's include path.
#include "sluice/cli/cli.h"

int LayeringProbe() { return sluice::cli::kExitOk; }
