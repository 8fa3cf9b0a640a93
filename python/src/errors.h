// Internal to the Python extension: sluice Status -> Python exceptions, with the CLI's words.
//   InvalidArgument -> ValueError        NotFound -> FileNotFoundError
//   DataLoss        -> sluice.DataLossError (an OSError)
//   IoError         -> OSError           Unsupported -> NotImplementedError
//   anything else   -> RuntimeError
#ifndef SLUICE_PYTHON_SRC_ERRORS_H_
#define SLUICE_PYTHON_SRC_ERRORS_H_

#include <pybind11/pybind11.h>

#include "sluice/formats/status.h"

namespace sluice::python {

// Registers sluice.DataLossError on the module (call once, at import).
void RegisterErrors(pybind11::module_& m);
// Raises the Python exception for a non-OK status (throws pybind11::error_already_set).
[[noreturn]] void Raise(const Status& status);
inline void ThrowIfError(const Status& status) {
  if (!status.ok()) Raise(status);
}
template <typename T>
T ValueOrThrow(Result<T> r) {
  if (!r.ok()) Raise(r.status());
  return std::move(*r);
}

}  // namespace sluice::python

#endif  // SLUICE_PYTHON_SRC_ERRORS_H_
