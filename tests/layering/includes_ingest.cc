// Compiled twice by tests/CMakeLists.txt: linked to sluice_ingest it must build (the control); linked
// only to sluice_formats (the module below it) it must not.
#include "sluice/ingest/archive.h"

bool LayeringProbe() { return sluice::ingest::IsUnsafeMemberPath("/x"); }
