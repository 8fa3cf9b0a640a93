#include "errors.h"

namespace sluice::python {
namespace {
PyObject* data_loss_error = nullptr;
}  // namespace

void RegisterErrors(pybind11::module_& m) {
  static pybind11::exception<void> error(m, "DataLossError", PyExc_OSError);
  error.doc() =
      "A corrupt or truncated record or file (a CRC mismatch, a short read): the message names the "
      "file and the byte offset. A subclass of OSError.";
  data_loss_error = error.ptr();
}

void Raise(const Status& status) {
  PyObject* type = PyExc_RuntimeError;
  switch (status.code()) {
    case StatusCode::kInvalidArgument: type = PyExc_ValueError; break;
    case StatusCode::kNotFound: type = PyExc_FileNotFoundError; break;
    case StatusCode::kDataLoss: type = data_loss_error; break;
    case StatusCode::kIoError: type = PyExc_OSError; break;
    case StatusCode::kUnsupported: type = PyExc_NotImplementedError; break;
    default: break;
  }
  PyErr_SetString(type, status.message().c_str());
  throw pybind11::error_already_set();
}

}  // namespace sluice::python
