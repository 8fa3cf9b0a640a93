// sluice.Loader: the pipeline (pipeline/pipeline.h) as a Python iterator. Thin by design: it
// converts arguments to a PipelineConfig, releases the GIL while the graph works and while waiting
// for a batch, and hands each batch out as NumPy arrays that own its buffers.
//
// Lifetime: a batch's buffers belong to the arrays handed out (one capsule owns the Batch; both
// arrays keep it alive). When the last reference (array, torch tensor, DLPack capsule) dies, the
// Batch goes back to a small pool, and the next Next() swaps its buffers into the pipeline's own
// pool: memory is recycled, never overwritten while referenced, and bounded once batches are dropped.
#include "loader.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <vector>

#include "errors.h"
#include "sluice/pipeline/pipeline.h"

namespace py = pybind11;

namespace sluice::python {
namespace {

// Returned Batch objects, kept for reuse (a few: beyond that, memory goes back to the system).
class BatchPool {
 public:
  explicit BatchPool(size_t keep) : keep_(keep) {}
  std::unique_ptr<pipeline::Batch> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) return std::make_unique<pipeline::Batch>();
    auto b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void Return(std::unique_ptr<pipeline::Batch> b) {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.size() < keep_) free_.push_back(std::move(b));
  }

 private:
  const size_t keep_;
  std::mutex mu_;
  std::vector<std::unique_ptr<pipeline::Batch>> free_;
};

struct BatchOwner {
  std::unique_ptr<pipeline::Batch> batch;
  std::shared_ptr<BatchPool> pool;
};

// The per-sample origins as a NumPy structured array (one record per sample).
py::array OriginsArray(const pipeline::Batch& b) {
  struct Row {
    int32_t file;
    uint64_t record, offset;
    uint32_t epoch;
    uint64_t index;
    int32_t crop_x, crop_y, crop_width, crop_height, resize_side;
    bool flip;
  };
  py::list names, formats, offsets;
  auto field = [&](const char* name, const char* format, size_t offset) {
    names.append(name);
    formats.append(format);
    offsets.append(offset);
  };
  field("file", "<i4", offsetof(Row, file));
  field("record", "<u8", offsetof(Row, record));
  field("offset", "<u8", offsetof(Row, offset));
  field("epoch", "<u4", offsetof(Row, epoch));
  field("index", "<u8", offsetof(Row, index));
  field("crop_x", "<i4", offsetof(Row, crop_x));
  field("crop_y", "<i4", offsetof(Row, crop_y));
  field("crop_width", "<i4", offsetof(Row, crop_width));
  field("crop_height", "<i4", offsetof(Row, crop_height));
  field("resize_side", "<i4", offsetof(Row, resize_side));
  field("flip", "?", offsetof(Row, flip));
  py::dict spec;
  spec["names"] = names;
  spec["formats"] = formats;
  spec["offsets"] = offsets;
  spec["itemsize"] = sizeof(Row);
  py::array out(py::dtype::from_args(spec), std::vector<py::ssize_t>{b.size});
  auto* rows = static_cast<Row*>(out.mutable_data());
  for (int i = 0; i < b.size; ++i) {
    const pipeline::SampleOrigin& o = b.origins[i];
    rows[i] = {o.file,        o.record,     o.offset,      o.epoch,         o.index,
               o.crop.x,      o.crop.y,     o.crop.width,  o.crop.height,   o.resize_side,
               o.flip};
  }
  return out;
}

}  // namespace

struct Loader::State {
  std::unique_ptr<pipeline::Pipeline> pipe;
  std::shared_ptr<BatchPool> pool;
  pipeline::DataCursor cursor;
  int64_t batches = 0;
  bool with_origins = false;
};

Loader::Loader(pipeline::PipelineConfig config, bool with_origins) : s_(std::make_unique<State>()) {
  s_->with_origins = with_origins;
  s_->cursor = config.start;
  s_->pool = std::make_shared<BatchPool>(static_cast<size_t>(config.prefetch) + 2);
  Result<std::unique_ptr<pipeline::Pipeline>> p = Status::Ok();
  {
    py::gil_scoped_release release;
    p = pipeline::Pipeline::Create(std::move(config));
  }
  s_->pipe = ValueOrThrow(std::move(p));
}

Loader::~Loader() { Close(); }

void Loader::Close() {
  if (s_ == nullptr || s_->pipe == nullptr) return;
  py::gil_scoped_release release;  // the graph's threads never take the GIL
  s_->pipe->Stop();
}

py::tuple Loader::Next() {
  if (s_->pipe == nullptr) throw py::stop_iteration();
  std::unique_ptr<pipeline::Batch> batch = s_->pool->Take();
  Status status;
  {
    py::gil_scoped_release release;
    status = s_->pipe->Next(batch.get());
  }
  if (status.code() == StatusCode::kEndOfData) throw py::stop_iteration();
  ThrowIfError(status);
  s_->cursor = batch->cursor;
  ++s_->batches;
  pipeline::Batch& b = *batch;
  auto* owner = new BatchOwner{std::move(batch), s_->pool};
  py::capsule capsule(owner, [](void* p) {
    auto* o = static_cast<BatchOwner*>(p);
    o->pool->Return(std::move(o->batch));
    delete o;
  });
  const py::ssize_t n = b.size, h = b.height, w = b.width, c = b.channels;
  std::vector<py::ssize_t> shape = b.layout == pipeline::Layout::kNchw
                                       ? std::vector<py::ssize_t>{n, c, h, w}
                                       : std::vector<py::ssize_t>{n, h, w, c};
  py::array images = b.output == pipeline::OutputType::kFloat32
                         ? py::array(py::dtype::of<float>(), shape, b.f32.data(), capsule)
                         : py::array(py::dtype::of<uint8_t>(), shape, b.u8.data(), capsule);
  py::array labels(py::dtype::of<int64_t>(), {n}, b.labels.data(), capsule);
  if (s_->with_origins) return py::make_tuple(images, labels, OriginsArray(b));
  return py::make_tuple(images, labels);
}

pipeline::PipelineStats Loader::Stats() const { return s_->pipe->Stats(); }

pipeline::DataCursor Loader::cursor() const { return s_->cursor; }
int64_t Loader::batches() const { return s_->batches; }
const std::vector<std::string>& Loader::files() const { return s_->pipe->files(); }
const pipeline::PipelineConfig& Loader::config() const { return s_->pipe->config(); }

void Loader::WriteTrace(const std::string& path) {
  Status s;
  {
    py::gil_scoped_release release;
    s = s_->pipe->WriteChromeTrace(path);
  }
  ThrowIfError(s);
}

}  // namespace sluice::python
