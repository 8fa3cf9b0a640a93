// Internal to the Python extension: the object behind sluice.Loader (loader.cc says how batches
// are owned). Every method is called with the GIL held and releases it while it waits.
#ifndef SLUICE_PYTHON_SRC_LOADER_H_
#define SLUICE_PYTHON_SRC_LOADER_H_

#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sluice/pipeline/pipeline.h"

namespace sluice::python {

class Loader {
 public:
  // Raises (errors.h) when the pipeline cannot start (no files, bad arguments).
  Loader(pipeline::PipelineConfig config, bool with_origins);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // (images, labels[, origins]); StopIteration after the last epoch.
  pybind11::tuple Next();
  void Close();  // stops the graph; batches already handed out stay valid
  pipeline::PipelineStats Stats() const;
  void WriteTrace(const std::string& path);
  pipeline::DataCursor cursor() const;  // after the last batch handed out
  int64_t batches() const;
  const std::vector<std::string>& files() const;
  const pipeline::PipelineConfig& config() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace sluice::python

#endif  // SLUICE_PYTHON_SRC_LOADER_H_
