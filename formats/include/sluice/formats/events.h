// TensorBoard event files: writing scalars that TensorBoard shows live, and reading scalars back
// from any TensorBoard events file (ours, TF1, TF2, PyTorch's SummaryWriter).
//
// An events file is a TFRecord file (record_format.h) of serialized Event protos (TensorFlow's
// tensorflow/core/util/event.proto; our copy is formats/proto/event.proto):
//
//   Event{double wall_time = 1; int64 step = 2;
//         oneof what {string file_version = 3; Summary summary = 5; ...}}
//   Summary{repeated Value value = 1}
//   Summary.Value{string tag = 1; SummaryMetadata metadata = 9;
//                 oneof value {float simple_value = 2; TensorProto tensor = 8; ...}}
//
// The first record is Event{wall_time, file_version: "brain.Event:2"}. The file is named
// "events.out.tfevents.<10-digit Unix seconds>.<hostname><suffix>"; TensorBoard picks up every file
// in a run directory whose name contains "tfevents".
//
// A scalar is stored in one of two ways: TF1 style, Value.simple_value (a float), which is what
// EventWriter writes; or TF2 style, Value.tensor holding a one-element DT_FLOAT or DT_DOUBLE tensor
// (in float_val/double_val or tensor_content), with metadata.plugin_data.plugin_name "scalars" on
// the first value of each tag. The readers here accept both.
#ifndef SLUICE_FORMATS_EVENTS_H_
#define SLUICE_FORMATS_EVENTS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/formats/status.h"

namespace sluice::formats {

constexpr std::string_view kEventFileVersion = "brain.Event:2";

// "events.out.tfevents.0001700000.myhost.suffix" for (1700000000.5, "myhost", ".suffix"): seconds
// truncated and zero-padded to 10 digits, as TensorFlow's EventsWriter names files.
std::string EventFileName(double unix_seconds, std::string_view hostname,
                          std::string_view suffix = "");

struct EventWriterOptions {
  // Appended after the hostname (TensorFlow uses e.g. ".v2"); empty by default.
  std::string filename_suffix;
  // Defaults to gethostname().
  std::string hostname;
  // Time for the file name and the file_version record; defaults to now. Tests pin it.
  std::optional<double> start_time;
  // Buffered events are written to the file whenever this many bytes are pending, and on Flush().
  size_t flush_bytes = size_t{64} << 10;
  // fsync on every Flush() (Close() always fsyncs).
  bool sync_on_flush = false;
};

// Appends events to a new file in a run directory.
//
// Unlike every other sluice output, this file is not written as "<path>.tmp" and renamed on
// Close(): TensorBoard must see the scalars of a run while it trains (hours or days), so the file
// is created under its final name with the file_version record already in it, and each Flush()
// appends whole records to it. A reader may therefore meet a truncated last record while we write;
// ReadScalars can be told to tolerate exactly that. A crash loses at most the events not yet
// flushed.
//
// The file is created with O_EXCL: if the name is taken (two writers in the same second and
// directory), ".1", ".2", ... is appended rather than overwriting another run's events.
// Not thread-safe. After an I/O error every later call returns that error.
class EventWriter {
 public:
  // Best-effort Close() if Close() was not called (a log should keep what it can), ignoring errors.
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // Creates `dir` (mkdir -p) and the event file in it, and writes and flushes the file_version
  // record.
  static Result<std::unique_ptr<EventWriter>> Create(const std::string& dir,
                                                     const EventWriterOptions& options = {});

  // Appends Event{wall_time, step, Summary{Value{tag, simple_value}}}. simple_value is a float, so
  // `value` is rounded to float precision, as in every TF1 events file. wall_time defaults to now.
  // InvalidArgument for an empty tag or one that is not UTF-8 (TensorBoard cannot show it).
  Status WriteScalar(int64_t step, std::string_view tag, double value,
                     std::optional<double> wall_time = std::nullopt);
  // Appends an already serialized Event proto (tools and tests write other kinds of events).
  Status WriteSerializedEvent(std::string_view event);
  // Writes buffered events to the file (and fsyncs if options.sync_on_flush).
  Status Flush();
  // Flushes, fsyncs and closes. Later calls of any method return InvalidArgument.
  Status Close();

  const std::string& path() const { return path_; }
  // Events written so far, the file_version record included.
  uint64_t events_written() const { return events_; }

 private:
  EventWriter(std::string path, int fd, EventWriterOptions options);
  Status Append(std::string_view event);
  Status WriteBuffer();

  std::string path_;
  int fd_;
  EventWriterOptions options_;
  std::string buffer_;
  uint64_t events_ = 0;
  Status error_;
  bool closed_ = false;
};

// One scalar from an events file.
struct ScalarEvent {
  double wall_time = 0;
  int64_t step = 0;
  std::string tag;
  double value = 0;

  bool operator==(const ScalarEvent&) const = default;
};

// One Event decoded: the fields readers care about.
struct DecodedEvent {
  struct Scalar {
    std::string tag;
    double value = 0;
    bool from_tensor = false;  // TF2 tensor form (not simple_value)
    std::string plugin_name;   // metadata.plugin_data.plugin_name, empty when absent
  };
  double wall_time = 0;
  int64_t step = 0;
  std::optional<std::string> file_version;
  // Values that hold one number: simple_value, or a one-element DT_FLOAT/DT_DOUBLE tensor. Other
  // values (images, histograms, larger tensors, other dtypes) are skipped.
  std::vector<Scalar> scalars;
};

// Decodes a serialized Event. DataLoss if the bytes are not a valid Event proto.
Result<DecodedEvent> ParseEvent(std::string_view bytes);

struct ReadScalarsOptions {
  // Treat a truncated last record as the end of the file (a file that is being written); a
  // corrupted record is still an error.
  bool allow_truncated_tail = false;
};

// Every scalar of an events file, in file order. A tensor-form value counts only if its tag's
// plugin (from the first value of the tag carrying metadata) is "scalars" or was never given.
// NotFound/IoError for the file; DataLoss naming the file and the record's offset for a truncated
// or corrupted record, or one that is not an Event.
Result<std::vector<ScalarEvent>> ReadScalars(const std::string& path,
                                             const ReadScalarsOptions& options = {});

// Paths of the events files directly in `dir` (names containing "tfevents", TensorBoard's rule),
// sorted by name (for one host, chronological). NotFound if `dir` does not exist.
Result<std::vector<std::string>> ListEventFiles(const std::string& dir);

}  // namespace sluice::formats

#endif  // SLUICE_FORMATS_EVENTS_H_
