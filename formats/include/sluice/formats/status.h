// Status and Result<T>: the one error vocabulary of sluice.
//
// Every fallible operation that crosses a module or I/O boundary returns one of these; exceptions never
// cross our APIs. The codes are deliberately few (after absl::StatusCode, trimmed to what a data tool
// needs):
//   kEndOfData       a reader reached a clean end (not an error for loops, but not a value either)
//   kDataLoss        bytes on disk are wrong: CRC mismatch, truncation. Message names file and offset.
//   kInvalidArgument the caller (or the user, through a flag) asked for something malformed
//   kNotFound        a file, key or feature is missing
//   kIoError         the operating system refused (open/read/write/rename failed); message has errno text
//   kUnsupported     well-formed input we do not handle (an unknown dtype, a compression we lack)
// Status is cheap to copy when OK (no allocation).
#ifndef SLUICE_FORMATS_STATUS_H_
#define SLUICE_FORMATS_STATUS_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sluice {

enum class StatusCode : int {
  kOk = 0,
  kEndOfData = 1,
  kDataLoss = 2,
  kInvalidArgument = 3,
  kNotFound = 4,
  kIoError = 5,
  kUnsupported = 6,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }
  static Status EndOfData(std::string message = "end of data") {
    return Status(StatusCode::kEndOfData, std::move(message));
  }
  static Status DataLoss(std::string message) {
    return Status(StatusCode::kDataLoss, std::move(message));
  }
  static Status InvalidArgument(std::string message) {
    return Status(StatusCode::kInvalidArgument, std::move(message));
  }
  static Status NotFound(std::string message) {
    return Status(StatusCode::kNotFound, std::move(message));
  }
  static Status IoError(std::string message) {
    return Status(StatusCode::kIoError, std::move(message));
  }
  // IoError with strerror(errnum) appended: "open foo: No such file or directory".
  static Status FromErrno(std::string_view context, int errnum);
  static Status Unsupported(std::string message) {
    return Status(StatusCode::kUnsupported, std::move(message));
  }

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  // Empty for OK.
  const std::string& message() const;
  bool IsEndOfData() const { return code() == StatusCode::kEndOfData; }
  bool IsDataLoss() const { return code() == StatusCode::kDataLoss; }
  bool IsNotFound() const { return code() == StatusCode::kNotFound; }

  // "DATA_LOSS: corrupted record at 1234 in train-00000" / "OK".
  std::string ToString() const;
  // Returns a status with the same code and "prefix: message".
  Status WithPrefix(std::string_view prefix) const;

 private:
  struct Rep {
    StatusCode code;
    std::string message;
  };
  std::shared_ptr<const Rep> rep_;
};

// A value or an error. Accessing value() of an error is a programming bug (asserts in debug builds).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = Status(StatusCode::kInvalidArgument, "Result built from OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T&& operator*() && { return std::move(*value_); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace sluice

// Early return on error, for functions returning Status or Result<U>.
#define SLUICE_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::sluice::Status sluice_status_ = (expr);        \
    if (!sluice_status_.ok()) return sluice_status_; \
  } while (0)

#define SLUICE_CONCAT_INNER_(a, b) a##b
#define SLUICE_CONCAT_(a, b) SLUICE_CONCAT_INNER_(a, b)
// `SLUICE_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a Result or returns its status.
#define SLUICE_ASSIGN_OR_RETURN(lhs, rexpr) \
  SLUICE_ASSIGN_OR_RETURN_IMPL_(SLUICE_CONCAT_(sluice_result_, __LINE__), lhs, rexpr)
#define SLUICE_ASSIGN_OR_RETURN_IMPL_(result, lhs, rexpr) \
  auto result = (rexpr);                                  \
  if (!result.ok()) return result.status();               \
  lhs = std::move(result).value()

#endif  // SLUICE_FORMATS_STATUS_H_
