#include "sluice/formats/events.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <utility>

#include "event.pb.h"
#include "sluice/formats/file_util.h"
#include "sluice/formats/record_reader.h"
#include "sluice/formats/record_writer.h"

namespace sluice::formats {
namespace {

// tensorflow/core/framework/types.proto
constexpr int kDtFloat = 1;
constexpr int kDtDouble = 2;
constexpr std::string_view kScalarsPlugin = "scalars";
// Names tried after the first is taken: "<name>.1" ... "<name>.<kMaxNameAttempts - 1>".
constexpr int kMaxNameAttempts = 100;

double Now() {
  using std::chrono::duration;
  using std::chrono::system_clock;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string Hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

// RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t w = ::write(fd, data.data(), data.size());
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("write " + path, errno);
    }
    data.remove_prefix(static_cast<size_t>(w));
  }
  return Status::Ok();
}

// The value of a one-element DT_FLOAT / DT_DOUBLE tensor, or nullopt for any other tensor.
std::optional<double> TensorScalar(const proto::TensorProto& t) {
  if (t.tensor_shape().unknown_rank()) return std::nullopt;
  for (const auto& dim : t.tensor_shape().dim()) {
    if (dim.size() != 1) return std::nullopt;
  }
  const std::string& content = t.tensor_content();
  switch (t.dtype()) {
    case kDtFloat: {
      if (!content.empty()) {
        if (content.size() != sizeof(float)) return std::nullopt;
        float f;
        std::memcpy(&f, content.data(), sizeof(f));  // little-endian, like the host (x86, ARM)
        return f;
      }
      if (t.float_val_size() > 1) return std::nullopt;
      // An empty value list means zeros, as in TensorFlow's Tensor::FromProto.
      return t.float_val_size() == 1 ? t.float_val(0) : 0.0f;
    }
    case kDtDouble: {
      if (!content.empty()) {
        if (content.size() != sizeof(double)) return std::nullopt;
        double d;
        std::memcpy(&d, content.data(), sizeof(d));
        return d;
      }
      if (t.double_val_size() > 1) return std::nullopt;
      return t.double_val_size() == 1 ? t.double_val(0) : 0.0;
    }
    default:
      return std::nullopt;
  }
}

}  // namespace

std::string EventFileName(double unix_seconds, std::string_view hostname, std::string_view suffix) {
  char secs[32];
  std::snprintf(secs, sizeof(secs), "%010lld", static_cast<long long>(unix_seconds));
  std::string name = "events.out.tfevents.";
  name += secs;
  name += '.';
  name += hostname;
  name += suffix;
  return name;
}

// ---------------------------------------------------------------------------------------------
// Writer

EventWriter::EventWriter(std::string path, int fd, EventWriterOptions options)
    : path_(std::move(path)), fd_(fd), options_(std::move(options)) {}

EventWriter::~EventWriter() {
  if (!closed_) (void)Close();
}

Result<std::unique_ptr<EventWriter>> EventWriter::Create(const std::string& dir,
                                                         const EventWriterOptions& options) {
  SLUICE_RETURN_IF_ERROR(CreateDirectories(dir));
  const double start = options.start_time.value_or(Now());
  const std::string host = options.hostname.empty() ? Hostname() : options.hostname;
  const std::string base = dir + "/" + EventFileName(start, host, options.filename_suffix);
  std::string path = base;
  int fd = -1;
  for (int attempt = 0; attempt < kMaxNameAttempts; ++attempt) {
    if (attempt > 0) path = base + "." + std::to_string(attempt);
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0 || errno != EEXIST) break;
  }
  if (fd < 0) return Status::FromErrno("create " + path, errno);

  std::unique_ptr<EventWriter> writer(new EventWriter(path, fd, options));
  proto::Event event;
  event.set_wall_time(start);
  event.set_file_version(std::string(kEventFileVersion));
  SLUICE_RETURN_IF_ERROR(writer->Append(event.SerializeAsString()));
  // Flushed at once: from here on the file is a valid (empty) run for TensorBoard.
  SLUICE_RETURN_IF_ERROR(writer->Flush());
  return writer;
}

Status EventWriter::WriteScalar(int64_t step, std::string_view tag, double value,
                                std::optional<double> wall_time) {
  if (tag.empty()) return Status::InvalidArgument("empty scalar tag for " + path_);
  if (!IsValidUtf8(tag)) {
    return Status::InvalidArgument("scalar tag is not UTF-8: " + std::string(tag));
  }
  proto::Event event;
  event.set_wall_time(wall_time.value_or(Now()));
  event.set_step(step);
  proto::Summary::Value* v = event.mutable_summary()->add_value();
  v->set_tag(std::string(tag));
  v->set_simple_value(static_cast<float>(value));
  return Append(event.SerializeAsString());
}

Status EventWriter::WriteSerializedEvent(std::string_view event) { return Append(event); }

Status EventWriter::Append(std::string_view event) {
  if (closed_) return Status::InvalidArgument("write to closed event file " + path_);
  if (!error_.ok()) return error_;
  AppendFramedRecord(event, &buffer_);
  ++events_;
  if (buffer_.size() >= options_.flush_bytes) return WriteBuffer();
  return Status::Ok();
}

Status EventWriter::WriteBuffer() {
  if (!error_.ok()) return error_;
  // Whole records in one write(2) on an O_APPEND descriptor: a concurrent reader sees at worst a
  // truncated last record, never interleaved bytes.
  error_ = WriteAll(fd_, buffer_, path_);
  buffer_.clear();
  return error_;
}

Status EventWriter::Flush() {
  if (closed_) return Status::InvalidArgument("flush of closed event file " + path_);
  SLUICE_RETURN_IF_ERROR(WriteBuffer());
  if (options_.sync_on_flush && ::fsync(fd_) != 0) {
    error_ = Status::FromErrno("fsync " + path_, errno);
  }
  return error_;
}

Status EventWriter::Close() {
  if (closed_) return Status::InvalidArgument("event file closed twice: " + path_);
  Status s = WriteBuffer();
  if (s.ok() && ::fsync(fd_) != 0) s = Status::FromErrno("fsync " + path_, errno);
  if (::close(fd_) != 0 && s.ok()) s = Status::FromErrno("close " + path_, errno);
  fd_ = -1;
  closed_ = true;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Readers

Result<DecodedEvent> ParseEvent(std::string_view bytes) {
  proto::Event event;
  if (bytes.size() > static_cast<size_t>(INT_MAX) ||
      !event.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::DataLoss("record of " + std::to_string(bytes.size()) +
                            " bytes is not an Event proto");
  }
  DecodedEvent out;
  out.wall_time = event.wall_time();
  out.step = event.step();
  if (event.what_case() == proto::Event::kFileVersion) out.file_version = event.file_version();
  if (event.what_case() != proto::Event::kSummary) return out;
  for (const proto::Summary::Value& v : event.summary().value()) {
    DecodedEvent::Scalar s;
    s.tag = v.tag();
    s.plugin_name = v.metadata().plugin_data().plugin_name();
    if (v.value_case() == proto::Summary::Value::kSimpleValue) {
      s.value = v.simple_value();
    } else if (v.value_case() == proto::Summary::Value::kTensor) {
      std::optional<double> value = TensorScalar(v.tensor());
      if (!value) continue;
      s.value = *value;
      s.from_tensor = true;
    } else {
      continue;
    }
    out.scalars.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<ScalarEvent>> ReadScalars(const std::string& path,
                                             const ReadScalarsOptions& options) {
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<RecordReader> reader, RecordReader::Open(path));
  std::vector<ScalarEvent> out;
  // TF2 writers attach plugin metadata only to the first value of each tag in a file.
  std::map<std::string, std::string, std::less<>> plugin_of_tag;
  for (;;) {
    std::string_view record;
    uint64_t offset = 0;
    Status s = reader->ReadRecord(&record, &offset);
    if (s.IsEndOfData()) break;
    if (!s.ok()) {
      // record_reader.h documents this wording for a read that ended inside a record.
      if (options.allow_truncated_tail && s.IsDataLoss() &&
          s.message().find("truncated record") != std::string::npos) {
        break;
      }
      return s;
    }
    Result<DecodedEvent> event = ParseEvent(record);
    if (!event.ok()) {
      return Status::DataLoss("unparseable event at " + std::to_string(offset) + " in " + path +
                              ": " + event.status().message());
    }
    for (DecodedEvent::Scalar& scalar : event->scalars) {
      if (!scalar.plugin_name.empty()) plugin_of_tag.try_emplace(scalar.tag, scalar.plugin_name);
      if (scalar.from_tensor) {
        auto it = plugin_of_tag.find(scalar.tag);
        if (it != plugin_of_tag.end() && it->second != kScalarsPlugin) continue;
      }
      out.push_back(
          ScalarEvent{event->wall_time, event->step, std::move(scalar.tag), scalar.value});
    }
  }
  return out;
}

Result<std::vector<std::string>> ListEventFiles(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return Status::NotFound("no directory " + dir);
    return Status::IoError("list " + dir + ": " + ec.message());
  }
  std::vector<std::string> out;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;  // a file that vanished meanwhile is simply not listed
    if (it->path().filename().string().find("tfevents") != std::string::npos &&
        it->is_regular_file(type_ec)) {
      out.push_back(it->path().string());
    }
  }
  if (ec) return Status::IoError("list " + dir + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace sluice::formats
