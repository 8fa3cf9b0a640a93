// The `sluice._sluice` extension: bindings over pipeline (Loader, LoopProfiler) and formats
// (records, Examples). Argument conversion and GIL handling only; behaviour lives in the C++
// libraries and is tested there. The public API (names, defaults, docstrings) is
// python/sluice/__init__.py's.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "errors.h"
#include "loader.h"
#include "sluice/formats/example.h"
#include "sluice/formats/record_reader.h"
#include "sluice/pipeline/loop_profiler.h"
#include "sluice/pipeline/pipeline.h"

namespace py = pybind11;

namespace sluice::python {
namespace {

py::dict StatsDict(const pipeline::PipelineStats& s) {
  py::dict stages;
  for (const pipeline::StageStats& st : s.stages) {
    py::dict d;
    d["concurrency"] = st.concurrency;
    d["items"] = st.items;
    d["busy_s"] = st.busy_s;
    d["blocked_input_s"] = st.blocked_input_s;
    d["blocked_output_s"] = st.blocked_output_s;
    d["capacity_per_s"] = st.capacity_per_s;
    stages[py::str(st.name)] = d;
  }
  py::dict queues;
  for (const pipeline::QueueStats& q : s.queues) {
    py::dict d;
    d["mean"] = q.mean;
    d["max"] = q.max;
    d["capacity"] = q.capacity;
    queues[py::str(q.name)] = d;
  }
  py::dict out;
  out["images_per_sec"] = s.images_per_s;
  out["input_wait_fraction"] = s.consumer.input_wait_fraction;
  out["verdict"] = std::string(
      pipeline::InputBoundName(pipeline::ClassifyInputWait(s.consumer.input_wait_fraction)));
  out["limiting_stage"] = s.limiting_stage;
  out["stages"] = stages;
  out["queues"] = queues;
  out["wall_s"] = s.wall_s;
  out["threads"] = s.threads;
  out["batches"] = s.consumer.batches;
  out["images"] = s.consumer.images;
  out["warmup_s"] = s.consumer.warmup_s;
  out["wait_s"] = s.consumer.wait_s;
  out["step_s"] = s.consumer.step_s;
  out["bad_images"] = s.bad_images;
  out["skipped_shards"] = s.skipped_shards;
  out["bad_examples"] = s.bad_examples;
  return out;
}

// sluice.Loader's arguments (python/sluice/__init__.py documents them) -> a running Loader.
std::unique_ptr<Loader> MakeLoader(std::vector<std::string> files, const std::string& preset,
                                   int batch_size, std::optional<int> threads, uint64_t seed,
                                   std::optional<int> epochs, const std::string& layout,
                                   const std::string& dtype, std::optional<bool> shuffle,
                                   int num_workers, int worker_index, const std::string& on_corrupt,
                                   std::optional<int> image_size, int prefetch,
                                   std::optional<bool> drop_last, int64_t max_bad, bool trace,
                                   uint32_t start_epoch, uint64_t start_samples, bool with_origins) {
  pipeline::PipelineConfig c;
  c.source.files = std::move(files);
  c.preset = ValueOrThrow(pipeline::ParsePreset(preset));
  if (batch_size < 1) Raise(Status::InvalidArgument("batch_size must be >= 1, got " + std::to_string(batch_size)));
  c.batch_size = batch_size;
  if (threads && *threads < 1) Raise(Status::InvalidArgument("threads must be >= 1 or None"));
  c.threads = threads.value_or(0);
  c.source.seed = seed;
  if (epochs && *epochs < 1) Raise(Status::InvalidArgument("epochs must be >= 1 or None (endless)"));
  c.epochs = epochs.value_or(0);
  if (layout == "nchw") {
    c.layout = pipeline::Layout::kNchw;
  } else if (layout == "nhwc") {
    c.layout = pipeline::Layout::kNhwc;
  } else {
    Raise(Status::InvalidArgument("layout must be 'nchw' or 'nhwc', got '" + layout + "'"));
  }
  if (dtype == "float32") {
    c.output = pipeline::OutputType::kFloat32;
  } else if (dtype == "uint8") {
    c.output = pipeline::OutputType::kUint8;
  } else {
    Raise(Status::InvalidArgument("dtype must be 'float32' or 'uint8', got '" + dtype + "'"));
  }
  c.source.shuffle = shuffle;
  c.source.num_workers = num_workers;
  c.source.worker_index = worker_index;
  if (num_workers < 1 || worker_index < 0 || worker_index >= num_workers)
    Raise(Status::InvalidArgument("worker_index must be in [0, num_workers), got " +
                                  std::to_string(worker_index) + " of " + std::to_string(num_workers)));
  if (on_corrupt == "fail") {
    c.source.on_corrupt = pipeline::OnCorrupt::kFail;
  } else if (on_corrupt == "skip-shard" || on_corrupt == "skip_shard") {
    c.source.on_corrupt = pipeline::OnCorrupt::kSkipShard;
  } else {
    Raise(Status::InvalidArgument("on_corrupt must be 'fail' or 'skip-shard', got '" + on_corrupt + "'"));
  }
  c.image_size = image_size.value_or(0);
  if (prefetch < 0) Raise(Status::InvalidArgument("prefetch must be >= 0"));
  c.prefetch = prefetch;
  c.drop_remainder = drop_last;
  c.max_bad_images = max_bad;
  c.trace = trace;
  c.start = {start_epoch, start_samples};
  return std::make_unique<Loader>(std::move(c), with_origins);
}

// Iterates a TFRecord file: (offset, bytes) per record.
class RecordIterator {
 public:
  RecordIterator(const std::string& path, const std::string& compression) {
    formats::RecordReaderOptions o;
    if (!formats::ResolveCompression(compression, path, &o.compression))
      Raise(Status::InvalidArgument("compression must be auto, none, gzip or zlib, got '" +
                                    compression + "'"));
    reader_ = ValueOrThrow(formats::RecordReader::Open(path, o));
  }
  py::tuple Next() {
    std::string_view record;
    uint64_t offset = 0;
    Status s;
    {
      py::gil_scoped_release release;
      s = reader_->ReadRecord(&record, &offset);
    }
    if (s.code() == StatusCode::kEndOfData) throw py::stop_iteration();
    ThrowIfError(s);
    return py::make_tuple(offset, py::bytes(record.data(), record.size()));
  }

 private:
  std::unique_ptr<formats::RecordReader> reader_;
};

py::dict ParseExample(const py::bytes& data) {
  const std::string_view bytes(PyBytes_AS_STRING(data.ptr()),
                               static_cast<size_t>(PyBytes_GET_SIZE(data.ptr())));
  formats::Example ex = ValueOrThrow(formats::Example::Parse(bytes));
  py::dict out;
  for (const auto& [key, f] : ex.features()) {
    switch (f.kind) {
      case formats::FeatureKind::kBytes:
        if (f.bytes.size() == 1) {
          out[py::str(key)] = py::bytes(f.bytes[0]);
        } else {
          py::list l;
          for (const std::string& b : f.bytes) l.append(py::bytes(b));
          out[py::str(key)] = l;
        }
        break;
      case formats::FeatureKind::kFloat:
        out[py::str(key)] = py::cast(f.floats);
        break;
      case formats::FeatureKind::kInt64:
        out[py::str(key)] = py::cast(f.int64s);
        break;
      case formats::FeatureKind::kNone:
        out[py::str(key)] = py::list();
        break;
    }
  }
  return out;
}

}  // namespace
}  // namespace sluice::python

PYBIND11_MODULE(_sluice, m) {
  using namespace sluice;
  using namespace sluice::python;
  m.doc() = "sluice's native core; use the `sluice` package.";
  // The package refuses NumPy 2 under a pybind11 older than 2.12, whose view of NumPy's dtype
  // struct predates NumPy 2 (structured arrays, such as the origins, came out misread).
  m.attr("_pybind11_version") = py::make_tuple(PYBIND11_VERSION_MAJOR, PYBIND11_VERSION_MINOR);
  RegisterErrors(m);

  py::class_<Loader>(m, "_Loader")
      .def(py::init(&MakeLoader),
           py::arg("files"), py::arg("preset"), py::arg("batch_size"), py::arg("threads"),
           py::arg("seed"), py::arg("epochs"), py::arg("layout"), py::arg("dtype"),
           py::arg("shuffle"), py::arg("num_workers"), py::arg("worker_index"),
           py::arg("on_corrupt"), py::arg("image_size"), py::arg("prefetch"), py::arg("drop_last"),
           py::arg("max_bad"), py::arg("trace"), py::arg("start_epoch"), py::arg("start_samples"),
           py::arg("with_origins"))
      .def("next", &Loader::Next)
      .def("close", &Loader::Close)
      .def("stats", [](const Loader& l) { return StatsDict(l.Stats()); })
      .def("write_trace", &Loader::WriteTrace)
      .def_property_readonly("cursor",
                             [](const Loader& l) {
                               return py::make_tuple(l.cursor().epoch, l.cursor().samples);
                             })
      .def_property_readonly("batches", &Loader::batches)
      .def_property_readonly("files", &Loader::files)
      .def_property_readonly("image_size", [](const Loader& l) { return l.config().image_size; });

  py::class_<pipeline::LoopProfiler>(m, "_LoopProfiler")
      .def(py::init<>())
      .def("start_wait", &pipeline::LoopProfiler::StartWait)
      .def("end_wait", &pipeline::LoopProfiler::EndWait)
      .def("end_of_input", &pipeline::LoopProfiler::EndOfInput)
      .def("stats", [](const pipeline::LoopProfiler& p) {
        const pipeline::LoopStats s = p.Stats();
        py::dict d;
        d["items"] = s.consumer.batches;
        d["samples"] = s.consumer.images;
        d["items_per_sec"] = s.items_per_s;
        d["images_per_sec"] = s.samples_per_s;
        d["input_wait_fraction"] = s.consumer.input_wait_fraction;
        d["verdict"] = std::string(pipeline::InputBoundName(s.verdict));
        d["warmup_s"] = s.consumer.warmup_s;
        d["wait_s"] = s.consumer.wait_s;
        d["step_s"] = s.consumer.step_s;
        d["wall_s"] = s.wall_s;
        return d;
      });

  py::class_<RecordIterator>(m, "_RecordIterator")
      .def(py::init<const std::string&, const std::string&>())
      .def("__iter__", [](RecordIterator& r) -> RecordIterator& { return r; })
      .def("__next__", &RecordIterator::Next);

  m.def("parse_example", &ParseExample, py::arg("record"),
        "Parses a serialized tf.Example: {feature name: bytes (a single bytes value) | list[bytes] "
        "| list[int] | list[float]}. Raises DataLossError for malformed bytes.");
  m.def("input_bound_name", [](double fraction) {
    return std::string(pipeline::InputBoundName(pipeline::ClassifyInputWait(fraction)));
  });
}
