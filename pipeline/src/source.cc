#include "sluice/pipeline/source.h"

#include <glob.h>

#include <algorithm>
#include <utility>

#include "sluice/formats/file_util.h"
#include "sluice/formats/index.h"
#include "sluice/formats/record_reader.h"
#include "sluice/pipeline/philox.h"

namespace sluice::pipeline {

namespace {

// Philox sample indices reserved for the plan's own draws (samples use 0 .. 2^62).
constexpr uint64_t kFileShuffleStream = uint64_t{1} << 62;
constexpr uint64_t kBufferShuffleStream = (uint64_t{1} << 62) + 1;
constexpr uint64_t kGlobalShuffleStream = (uint64_t{1} << 62) + 2;

bool HasGlob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Fisher-Yates with an unbiased Philox draw per step.
template <typename T>
void Shuffle(std::vector<T>* v, PhiloxStream& rng) {
  for (size_t i = v->size(); i > 1; --i) {
    const size_t j = rng.UniformUint(static_cast<uint32_t>(std::min<size_t>(i, UINT32_MAX)));
    std::swap((*v)[i - 1], (*v)[j]);
  }
}

// Record offsets and framed sizes of a file: its .idx when present, else the record headers.
Result<std::vector<formats::IndexEntry>> RecordIndex(const std::string& path) {
  const std::string idx = path + ".idx";
  if (formats::FileExists(idx)) return formats::ReadIndexFile(idx);
  return formats::IndexFromHeaders(path);
}

}  // namespace

Result<std::vector<std::string>> ExpandInputs(const std::vector<std::string>& patterns) {
  std::vector<std::string> files;
  for (const std::string& p : patterns) {
    if (!HasGlob(p)) {
      if (!formats::FileExists(p)) return Status::NotFound("no such file: " + p);
      files.push_back(p);
      continue;
    }
    glob_t g{};
    const int rc = glob(p.c_str(), 0, nullptr, &g);
    size_t matched = 0;
    if (rc == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) {
        std::string f = g.gl_pathv[i];
        if (EndsWith(f, ".idx") || EndsWith(f, ".tmp")) continue;
        files.push_back(std::move(f));
        ++matched;
      }
    }
    globfree(&g);
    if (matched == 0) return Status::NotFound("no files match '" + p + "'");
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

class RecordSource::Impl {
 public:
  // One open file of the interleave cycle.
  struct Open {
    int file = -1;
    std::unique_ptr<formats::RecordReader> reader;
    uint64_t records = 0;  // read from it so far
  };
  struct Buffered {
    std::string bytes;
    RecordOrigin origin;
  };
  struct Location {
    int file;
    uint64_t record;
    uint64_t offset;
  };

  std::vector<std::vector<formats::IndexEntry>> index;  // per file; empty unless needed
  // Interleave mode.
  std::vector<int> plan;  // this worker's files for the epoch, in order
  size_t next_file = 0;
  std::vector<Open> cycle;
  size_t turn = 0;
  std::vector<Buffered> buffer;
  bool buffer_filled = false;
  std::unique_ptr<PhiloxStream> buffer_rng;
  Buffered current;
  // Global mode.
  std::vector<Location> order;
  std::vector<std::unique_ptr<formats::RecordReader>> readers;  // lazily opened, per file
  // Both.
  int64_t limit = -1;  // records left in this epoch; -1 = until the data ends
};

RecordSource::RecordSource(SourceOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {}
RecordSource::~RecordSource() = default;

Result<std::unique_ptr<RecordSource>> RecordSource::Create(SourceOptions options) {
  if (options.files.empty()) return Status::InvalidArgument("no input files");
  SLUICE_ASSIGN_OR_RETURN(options.files, ExpandInputs(options.files));
  if (!options.shuffle.has_value()) options.shuffle = true;
  if (options.num_workers < 1 || options.worker_index < 0 ||
      options.worker_index >= options.num_workers) {
    return Status::InvalidArgument("--worker-index must be in [0, --num-workers)");
  }
  if (options.cycle_length < 1) options.cycle_length = 1;
  if (options.shuffle_buffer < 0) options.shuffle_buffer = 0;
  if (options.batch_size < 1) options.batch_size = 1;
  std::sort(options.files.begin(), options.files.end());
  std::unique_ptr<RecordSource> source(new RecordSource(std::move(options)));
  const SourceOptions& o = source->options_;
  if (o.num_workers > 1 || o.global_shuffle) {
    for (const std::string& f : o.files) {
      SLUICE_ASSIGN_OR_RETURN(std::vector<formats::IndexEntry> entries, RecordIndex(f));
      source->impl_->index.push_back(std::move(entries));
    }
    source->impl_->readers.resize(o.files.size());
  }
  return source;
}

Status RecordSource::StartEpoch(uint32_t epoch) {
  Impl& m = *impl_;
  const SourceOptions& o = options_;
  const int n = static_cast<int>(o.files.size());
  m.cycle.clear();
  m.buffer.clear();
  m.buffer_filled = false;
  m.turn = 0;
  m.next_file = 0;
  m.limit = -1;
  records_per_epoch_ = -1;

  if (o.global_shuffle) {
    std::vector<Impl::Location> all;
    for (int f = 0; f < n; ++f) {
      for (size_t r = 0; r < m.index[f].size(); ++r) all.push_back({f, r, m.index[f][r].offset});
    }
    PhiloxStream rng(o.seed, epoch, kGlobalShuffleStream);
    if (*o.shuffle) Shuffle(&all, rng);
    // Equal contiguous shares of the permutation, whole batches each.
    const uint64_t share = all.size() / o.num_workers;
    const uint64_t per_worker =
        o.num_workers > 1 ? share / o.batch_size * o.batch_size : all.size();
    const uint64_t begin = share * o.worker_index;
    m.order.assign(all.begin() + static_cast<int64_t>(begin),
                   all.begin() + static_cast<int64_t>(begin + per_worker));
    std::reverse(m.order.begin(), m.order.end());  // consumed from the back
    records_per_epoch_ = static_cast<int64_t>(m.order.size());
    return Status::Ok();
  }

  std::vector<int> files(n);
  for (int f = 0; f < n; ++f) files[f] = f;
  PhiloxStream rng(o.seed, epoch, kFileShuffleStream);
  if (*o.shuffle) Shuffle(&files, rng);
  m.plan.clear();
  std::vector<int64_t> per_worker(o.num_workers, 0);
  for (int k = 0; k < n; ++k) {
    const int w = k % o.num_workers;
    if (w == o.worker_index) m.plan.push_back(files[k]);
    if (!m.index.empty()) per_worker[w] += static_cast<int64_t>(m.index[files[k]].size());
  }
  if (o.num_workers > 1) {
    const int64_t least = *std::min_element(per_worker.begin(), per_worker.end());
    m.limit = least / o.batch_size * o.batch_size;
    records_per_epoch_ = m.limit;
  }
  if (*o.shuffle && o.shuffle_buffer > 1) {
    m.buffer_rng = std::make_unique<PhiloxStream>(o.seed, epoch, kBufferShuffleStream);
  } else {
    m.buffer_rng.reset();
  }
  return Status::Ok();
}

Status RecordSource::Next(std::string_view* record, RecordOrigin* origin) {
  Impl& m = *impl_;
  const SourceOptions& o = options_;
  if (m.limit == 0) return Status::EndOfData("end of epoch");

  if (o.global_shuffle) {
    if (m.order.empty()) return Status::EndOfData("end of epoch");
    const Impl::Location loc = m.order.back();
    m.order.pop_back();
    auto& reader = m.readers[loc.file];
    if (reader == nullptr) {
      formats::RecordReaderOptions ro;
      ro.buffer_size = size_t{256} << 10;
      SLUICE_ASSIGN_OR_RETURN(reader, formats::RecordReader::Open(o.files[loc.file], ro));
    }
    SLUICE_RETURN_IF_ERROR(reader->Seek(loc.offset));
    Status s = reader->ReadRecord(record);
    if (!s.ok()) {
      // A reader is stuck after an error: reopen next time.
      reader.reset();
      if (s.code() == StatusCode::kEndOfData) {
        s = Status::DataLoss("record index points past the end at " + std::to_string(loc.offset) +
                             " in " + o.files[loc.file]);
      }
      return s;
    }
    if (m.limit > 0) --m.limit;
    *origin = {loc.file, loc.record, loc.offset};
    return Status::Ok();
  }

  // Interleave: the next record from the cycle, then through the shuffle buffer.
  auto next_interleaved = [&](std::string_view* rec, RecordOrigin* where) -> Status {
    for (;;) {
      while (static_cast<int>(m.cycle.size()) < o.cycle_length && m.next_file < m.plan.size()) {
        const int f = m.plan[m.next_file++];
        SLUICE_ASSIGN_OR_RETURN(auto reader, formats::RecordReader::Open(o.files[f]));
        m.cycle.push_back({f, std::move(reader)});
      }
      if (m.cycle.empty()) return Status::EndOfData("end of epoch");
      if (m.turn >= m.cycle.size()) m.turn = 0;
      Impl::Open& open = m.cycle[m.turn];
      uint64_t offset = 0;
      Status s = open.reader->ReadRecord(rec, &offset);
      if (s.ok()) {
        *where = {open.file, open.records++, offset};
        ++m.turn;
        return s;
      }
      if (s.code() != StatusCode::kEndOfData) {
        if (o.on_corrupt == OnCorrupt::kFail || s.code() != StatusCode::kDataLoss) return s;
        ++skipped_shards_;
      }
      // This file is done (or skipped): the next one takes its place in the cycle.
      m.cycle.erase(m.cycle.begin() + static_cast<int64_t>(m.turn));
    }
  };

  if (m.buffer_rng == nullptr) {
    SLUICE_RETURN_IF_ERROR(next_interleaved(record, origin));
    if (m.limit > 0) --m.limit;
    return Status::Ok();
  }

  // TensorFlow's shuffle buffer: fill to capacity, then each output is a random slot, refilled
  // from the input; at the end of the input the buffer drains in random order.
  const size_t capacity = static_cast<size_t>(o.shuffle_buffer);
  std::string_view rec;
  RecordOrigin where;
  while (!m.buffer_filled && m.buffer.size() < capacity) {
    Status s = next_interleaved(&rec, &where);
    if (s.code() == StatusCode::kEndOfData) break;
    SLUICE_RETURN_IF_ERROR(s);
    m.buffer.push_back({std::string(rec), where});
  }
  m.buffer_filled = true;
  if (m.buffer.empty()) return Status::EndOfData("end of epoch");
  const size_t j = m.buffer_rng->UniformUint(static_cast<uint32_t>(m.buffer.size()));
  std::swap(m.current, m.buffer[j]);
  Status s = next_interleaved(&rec, &where);
  if (s.ok()) {
    m.buffer[j].bytes.assign(rec);
    m.buffer[j].origin = where;
  } else if (s.code() == StatusCode::kEndOfData) {
    std::swap(m.buffer[j], m.buffer.back());
    m.buffer.pop_back();
  } else {
    return s;
  }
  *record = m.current.bytes;
  *origin = m.current.origin;
  if (m.limit > 0) --m.limit;
  return Status::Ok();
}

Status RunReader::Next(std::string_view* record, PlannedRecord* where) {
  for (;;) {
    if (!started_) {
      if (epochs_ > 0 && epoch_ >= static_cast<uint32_t>(epochs_)) {
        return Status::EndOfData("end of run");
      }
      SLUICE_RETURN_IF_ERROR(source_->StartEpoch(epoch_));
      started_ = true;
      index_ = 0;
    }
    Status s = source_->Next(record, &where->origin);
    if (s.code() == StatusCode::kEndOfData) {
      if (index_ == 0) {
        return Status::InvalidArgument("epoch " + std::to_string(epoch_) +
                                       " has no records for this worker");
      }
      started_ = false;
      ++epoch_;
      continue;
    }
    SLUICE_RETURN_IF_ERROR(s);
    if (skip_ > 0) {  // resuming: the record keeps its plan position but is not handed out
      --skip_;
      ++index_;
      continue;
    }
    where->epoch = epoch_;
    where->index = index_++;
    return Status::Ok();
  }
}

}  // namespace sluice::pipeline
