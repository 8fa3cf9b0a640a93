#include "sluice/formats/record_writer.h"

#include <bit>
#include <cstring>

#include "sluice/formats/crc32c.h"
#include "sluice/formats/file_util.h"
#include "zlib_stream.h"

namespace sluice::formats {

static_assert(std::endian::native == std::endian::little, "TFRecord code assumes a little-endian host");

namespace internal {

Deflater::~Deflater() {
  if (initialized_) deflateEnd(&zs_);
}

Status Deflater::Init(Compression c, int level) {
  if (deflateInit2(&zs_, level, Z_DEFLATED, WindowBits(c), 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::InvalidArgument("deflateInit2 failed (level " + std::to_string(level) + ")");
  }
  initialized_ = true;
  return Status::Ok();
}

// Input is staged in 256 KiB chunks so deflate sees large blocks rather than 12-byte headers.
Status Deflater::Append(std::string_view data) {
  in_.append(data);
  if (in_.size() >= (256u << 10)) return Run(Z_NO_FLUSH);
  return Status::Ok();
}

Status Deflater::Finish() { return Run(Z_FINISH); }

Status Deflater::Run(int flush) {
  zs_.next_in = reinterpret_cast<Bytef*>(in_.data());
  zs_.avail_in = static_cast<uInt>(in_.size());
  char chunk[1 << 16];
  for (;;) {
    zs_.next_out = reinterpret_cast<Bytef*>(chunk);
    zs_.avail_out = sizeof(chunk);
    int rc = deflate(&zs_, flush);
    if (rc == Z_STREAM_ERROR) return Status::IoError("deflate failed");
    out_.append(chunk, sizeof(chunk) - zs_.avail_out);
    if (flush == Z_FINISH ? rc == Z_STREAM_END : (zs_.avail_in == 0 && zs_.avail_out != 0)) break;
  }
  in_.clear();
  return Status::Ok();
}

}  // namespace internal

namespace {

void PutFixed32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }
void PutFixed64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }

}  // namespace

// header: length(8) | masked crc of length(4); footer: masked crc of data(4).
void EncodeRecordFrame(std::string_view data, char header[kRecordHeaderSize],
                       char footer[kRecordFooterSize]) {
  PutFixed64(header, data.size());
  PutFixed32(header + kRecordLengthSize, crc32c::Mask(crc32c::Value(header, kRecordLengthSize)));
  PutFixed32(footer, crc32c::Mask(crc32c::Value(data.data(), data.size())));
}

void AppendFramedRecord(std::string_view data, std::string* out) {
  char header[kRecordHeaderSize];
  char footer[kRecordFooterSize];
  EncodeRecordFrame(data, header, footer);
  out->append(header, sizeof(header));
  out->append(data);
  out->append(footer, sizeof(footer));
}

class RecordWriter::Impl {
 public:
  AtomicFile file;
  RecordWriterOptions options;
  internal::Deflater deflater;

  Status Append(std::string_view bytes) {
    if (options.compression == Compression::kNone) return file.Append(bytes);
    SLUICE_RETURN_IF_ERROR(deflater.Append(bytes));
    return Drain();
  }
  Status Drain() {
    std::string& out = deflater.output();
    if (out.empty()) return Status::Ok();
    Status s = file.Append(out);
    out.clear();
    return s;
  }
};

RecordWriter::RecordWriter(std::string path) : path_(std::move(path)) {}
RecordWriter::~RecordWriter() = default;  // AtomicFile abandons the .tmp unless committed

Result<std::unique_ptr<RecordWriter>> RecordWriter::Create(const std::string& path,
                                                           const RecordWriterOptions& options) {
  std::unique_ptr<RecordWriter> w(new RecordWriter(path));
  w->impl_ = std::make_unique<Impl>();
  w->impl_->options = options;
  SLUICE_ASSIGN_OR_RETURN(w->impl_->file, AtomicFile::Create(path));
  if (options.compression != Compression::kNone) {
    SLUICE_RETURN_IF_ERROR(
        w->impl_->deflater.Init(options.compression, options.compression_level).WithPrefix(path));
  }
  return w;
}

Status RecordWriter::Write(std::string_view record) {
  if (closed_) return Status::InvalidArgument("write to closed record writer " + path_);
  char header[kRecordHeaderSize];
  char footer[kRecordFooterSize];
  EncodeRecordFrame(record, header, footer);
  SLUICE_RETURN_IF_ERROR(impl_->Append(std::string_view(header, sizeof(header))));
  SLUICE_RETURN_IF_ERROR(impl_->Append(record));
  SLUICE_RETURN_IF_ERROR(impl_->Append(std::string_view(footer, sizeof(footer))));
  ++records_;
  offset_ += FramedSize(record.size());
  return Status::Ok();
}

Status RecordWriter::Close() {
  if (closed_) return Status::InvalidArgument("record writer " + path_ + " closed twice");
  closed_ = true;
  if (impl_->options.compression != Compression::kNone) {
    Status s = impl_->deflater.Finish();
    if (s.ok()) s = impl_->Drain();
    if (!s.ok()) {
      impl_->file.Abandon();
      return s.WithPrefix(path_);
    }
  }
  return impl_->file.Commit(impl_->options.sync);
}

}  // namespace sluice::formats
