#include "sluice/ingest/bboxes.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>

#include "sluice/formats/file_util.h"
#include "sluice/ingest/archive.h"
#include "text_util.h"

namespace sluice::ingest {
namespace {

// An XML annotation is a few hundred bytes; anything this large is not one, and reading it whole
// would let a hostile archive exhaust memory.
constexpr size_t kMaxXmlBytes = 16u << 20;

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}



// Python's float(text): surrounding whitespace allowed, an optional sign, decimal or exponent form.
// Non-finite values are refused (the reference would fail on int(inf)).
std::optional<double> ParseFloat(std::string_view text) {
  std::string_view s = Strip(text);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty() || s[0] == '+' || s[0] == '-') return std::nullopt;
  double value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(value)) return std::nullopt;
  return negative ? -value : value;
}

// ---- A small XML scanner
// ------------------------------------------------------------------------- Enough XML for
// annotation files: elements, attributes (skipped), text with the predefined and numeric character
// references, CDATA, comments, processing instructions and a DOCTYPE (skipped). It checks that tags
// nest and that there is one root, and reports the byte offset of a problem.

struct XmlElement {
  std::string name;
  std::string text;  // Concatenated character data directly inside this element.
  int parent = -1;
  size_t offset = 0;  // Byte offset of the '<' of the start tag.
};

void AppendDecoded(std::string_view raw, std::string* out) {
  while (!raw.empty()) {
    size_t amp = raw.find('&');
    out->append(raw.substr(0, amp));
    if (amp == std::string_view::npos) return;
    raw.remove_prefix(amp);
    size_t semi = raw.find(';');
    std::string_view entity = semi == std::string_view::npos ? "" : raw.substr(1, semi - 1);
    std::optional<unsigned long> code;
    static constexpr std::pair<std::string_view, char> kNamed[] = {
        {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
    for (const auto& [named, c] : kNamed) {
      if (entity == named) code = static_cast<unsigned char>(c);
    }
    if (!code && entity.size() > 1 && entity[0] == '#') {
      bool hex = entity[1] == 'x' || entity[1] == 'X';
      std::string_view digits = entity.substr(hex ? 2 : 1);
      unsigned long v = 0;
      auto [end, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), v, hex ? 16 : 10);
      if (ec == std::errc() && end == digits.data() + digits.size() && !digits.empty() &&
          v <= 0x10FFFF) {
        code = v;
      }
    }
    if (!code) {  // Not a reference we know: keep the '&' literally.
      out->push_back('&');
      raw.remove_prefix(1);
      continue;
    }
    unsigned long c = *code;  // UTF-8 encode.
    if (c < 0x80) {
      out->push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (c >> 6)));
      out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (c >> 12)));
      out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (c >> 18)));
      out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
    raw.remove_prefix(semi + 1);
  }
}

// Parses `xml` into elements in document order (element 0 is the root).
Status ScanXml(std::string_view xml, std::string_view name, std::vector<XmlElement>* elements) {
  auto fail = [&](size_t offset, std::string_view why) {
    return Status::DataLoss(std::string(name) + ": malformed XML at byte " +
                            std::to_string(offset) + ": " + std::string(why));
  };
  std::vector<int> open;  // Stack of indices of the elements not yet closed.
  size_t pos = xml.starts_with("\xef\xbb\xbf") ? 3 : 0;  // A UTF-8 byte order mark.
  while (pos < xml.size()) {
    size_t lt = xml.find('<', pos);
    std::string_view text = xml.substr(pos, lt == std::string_view::npos ? xml.npos : lt - pos);
    if (!open.empty()) {
      AppendDecoded(text, &(*elements)[open.back()].text);
    } else if (!Strip(text).empty()) {
      return fail(pos, "text outside the root element");
    }
    if (lt == std::string_view::npos) break;
    std::string_view rest = xml.substr(lt);
    auto skip_to = [&](std::string_view terminator, std::string_view what) -> Status {
      size_t end = rest.find(terminator);
      if (end == std::string_view::npos) return fail(lt, "unterminated " + std::string(what));
      pos = lt + end + terminator.size();
      return Status::Ok();
    };
    if (rest.starts_with("<?")) {
      SLUICE_RETURN_IF_ERROR(skip_to("?>", "processing instruction"));
    } else if (rest.starts_with("<!--")) {
      SLUICE_RETURN_IF_ERROR(skip_to("-->", "comment"));
    } else if (rest.starts_with("<![CDATA[")) {
      if (open.empty()) return fail(lt, "CDATA outside the root element");
      size_t end = rest.find("]]>");
      if (end == std::string_view::npos) return fail(lt, "unterminated CDATA section");
      (*elements)[open.back()].text.append(rest.substr(9, end - 9));
      pos = lt + end + 3;
    } else if (rest.starts_with("<!")) {  // DOCTYPE, possibly with an internal subset.
      size_t bracket = rest.find('[');
      size_t gt = rest.find('>');
      if (bracket != std::string_view::npos && bracket < gt) {
        SLUICE_RETURN_IF_ERROR(skip_to("]>", "DOCTYPE"));
      } else {
        SLUICE_RETURN_IF_ERROR(skip_to(">", "declaration"));
      }
    } else if (rest.starts_with("</")) {
      size_t gt = rest.find('>');
      if (gt == std::string_view::npos) return fail(lt, "unterminated end tag");
      std::string_view tag = Strip(rest.substr(2, gt - 2));
      if (open.empty()) return fail(lt, "end tag </" + std::string(tag) + "> without a start tag");
      const std::string& expected = (*elements)[open.back()].name;
      if (tag != expected) {
        return fail(lt, "end tag </" + std::string(tag) + "> does not close <" + expected + ">");
      }
      open.pop_back();
      pos = lt + gt + 1;
    } else {
      // Start tag: a name, then attributes up to '>' (a quoted value may contain '>').
      size_t i = 1;
      while (i < rest.size() && !IsSpace(rest[i]) && rest[i] != '>' && rest[i] != '/') ++i;
      std::string_view tag = rest.substr(1, i - 1);
      if (tag.empty()) return fail(lt, "'<' not followed by a tag name");
      char quote = 0;
      for (; i < rest.size(); ++i) {
        if (quote) {
          if (rest[i] == quote) quote = 0;
        } else if (rest[i] == '"' || rest[i] == '\'') {
          quote = rest[i];
        } else if (rest[i] == '>' || rest[i] == '<') {
          break;
        }
      }
      if (i >= rest.size() || rest[i] != '>')
        return fail(lt, "unterminated start tag <" + std::string(tag));
      bool self_closing = rest[i - 1] == '/';
      if (open.empty() && !elements->empty())
        return fail(lt, "second root element <" + std::string(tag) + ">");
      XmlElement element;
      element.name = std::string(tag);
      element.parent = open.empty() ? -1 : open.back();
      element.offset = lt;
      elements->push_back(std::move(element));
      if (!self_closing) open.push_back(static_cast<int>(elements->size()) - 1);
      pos = lt + i + 1;
    }
  }
  if (!open.empty()) {
    return fail(xml.size(), "<" + (*elements)[open.back()].name + "> not closed at end of file");
  }
  if (elements->empty()) return fail(0, "no element");
  return Status::Ok();
}

// The first element named `tag` in document order whose parent is named `parent_tag` (any parent
// when empty) and, when `within` >= 0, whose parent is `within`.
const XmlElement* Find(const std::vector<XmlElement>& elements, std::string_view tag,
                       std::string_view parent_tag = {}, int within = -1) {
  for (const XmlElement& e : elements) {
    if (e.name != tag) continue;
    if (within >= 0 && e.parent != within) continue;
    if (!parent_tag.empty() && (e.parent < 0 || elements[e.parent].name != parent_tag)) continue;
    return &e;
  }
  return nullptr;
}

// ---- Archives -----------------------------------------------------------------------------------

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};


std::string ArchiveError(archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

bool HasSuffix(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

Result<BoxTable> ReadXmlArchive(const std::string& path) {
  std::unique_ptr<archive, ArchiveDeleter> a(archive_read_new());
  if (!a) return Status::IoError(path + ": cannot allocate a libarchive reader");
  archive_read_support_filter_all(a.get());
  archive_read_support_format_all(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return Status::DataLoss(path + ": cannot read as an archive: " + ArchiveError(a.get()));
  }
  BoxTable table;
  size_t xml_members = 0;
  std::string last_member = "(none)";
  std::string data;
  for (size_t index = 0;; ++index) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(a.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    // ARCHIVE_RETRY is what the tar reader returns for a header with a bad checksum.
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return Status::DataLoss(path + ": corrupt or truncated archive after member " + last_member +
                              ": " + ArchiveError(a.get()));
    }
    const char* raw_name = archive_entry_pathname(entry);
    if (raw_name == nullptr) raw_name = archive_entry_pathname_utf8(entry);
    std::string member = raw_name ? raw_name : "#" + std::to_string(index) + " (unnamed)";
    last_member = member;
    if (archive_entry_filetype(entry) != AE_IFREG || !HasSuffix(member, ".xml") ||
        IsUnsafeMemberPath(member)) {
      continue;  // The data is skipped by the next header read.
    }
    std::string display = path + ":" + member;
    if (archive_entry_size_is_set(entry) &&
        archive_entry_size(entry) > static_cast<int64_t>(kMaxXmlBytes)) {
      return Status::DataLoss(display + ": " + std::to_string(archive_entry_size(entry)) +
                              " bytes is too large for an annotation");
    }
    data.clear();
    char buf[1 << 14];
    for (;;) {
      la_ssize_t n = archive_read_data(a.get(), buf, sizeof(buf));
      if (n == 0) break;
      if (n < 0) {
        return Status::DataLoss(display + ": corrupt or truncated member after " +
                                std::to_string(data.size()) + " bytes: " + ArchiveError(a.get()));
      }
      data.append(buf, static_cast<size_t>(n));
      if (data.size() > kMaxXmlBytes)
        return Status::DataLoss(display + ": too large for an annotation");
    }
    ++xml_members;
    SLUICE_ASSIGN_OR_RETURN(std::vector<BoundingBox> boxes,
                            ParseVocXml(data, display, nullptr, nullptr));
    if (boxes.empty()) continue;
    // "n01440764/n01440764_18.xml" -> "n01440764_18.JPEG" (see the key convention in the header).
    std::string_view base = member;
    if (size_t slash = base.rfind('/'); slash != std::string_view::npos)
      base.remove_prefix(slash + 1);
    base.remove_suffix(4);
    std::vector<BoundingBox>& dst = table[std::string(base) + ".JPEG"];
    dst.insert(dst.end(), boxes.begin(), boxes.end());
  }
  if (xml_members == 0) {
    return Status::InvalidArgument(path +
                                   ": archive has no .xml member (not a bounding-box archive?)");
  }
  return table;
}

// Compressed-stream or tar magic in the first bytes of a file.
bool LooksLikeArchive(std::string_view head) {
  auto at = [&](size_t offset, std::string_view magic) {
    return head.size() >= offset + magic.size() && head.substr(offset, magic.size()) == magic;
  };
  return at(0, "\x1f\x8b") || at(0, "BZh") ||
         at(0, std::string_view("\xfd"
                                "7zXZ\0",
                                6)) ||
         at(0, "\x28\xb5\x2f\xfd") || at(257, "ustar");
}

}  // namespace

Result<std::vector<BoundingBox>> ParseVocXml(std::string_view xml, std::string_view name,
                                             std::string* filename_out,
                                             std::string* synset_out_or_null) {
  std::vector<XmlElement> elements;
  SLUICE_RETURN_IF_ERROR(ScanXml(xml, name, &elements));
  if (elements[0].name != "annotation") {
    return Status::DataLoss(std::string(name) + ": root element is <" + elements[0].name +
                            ">, not <annotation>");
  }
  if (filename_out != nullptr) {
    const XmlElement* e = Find(elements, "filename");
    *filename_out = e ? std::string(Strip(e->text)) : std::string();
  }
  if (synset_out_or_null != nullptr) {
    const XmlElement* e = Find(elements, "name", "object");
    *synset_out_or_null = e ? std::string(Strip(e->text)) : std::string();
  }

  auto number = [&](const XmlElement& e) -> Result<double> {
    std::optional<double> v = ParseFloat(e.text);
    if (!v) {
      return Status::DataLoss(std::string(name) + ": <" + e.name + "> at byte " +
                              std::to_string(e.offset) + " is not a number: " + Quote(e.text));
    }
    return std::trunc(*v);  // int(float(text)) in the reference.
  };

  std::vector<BoundingBox> boxes;
  double width = 0, height = 0;
  bool have_size = false;
  for (size_t i = 0; i < elements.size(); ++i) {
    if (elements[i].name != "bndbox") continue;
    if (!have_size) {  // Only needed once there is a box to scale.
      const XmlElement* w = Find(elements, "width");
      const XmlElement* h = Find(elements, "height");
      if (w == nullptr || h == nullptr) {
        return Status::DataLoss(std::string(name) + ": has boxes but no image <size> (" +
                                (w ? "<height>" : "<width>") + " missing)");
      }
      SLUICE_ASSIGN_OR_RETURN(width, number(*w));
      SLUICE_ASSIGN_OR_RETURN(height, number(*h));
      if (width <= 0 || height <= 0) {
        return Status::DataLoss(std::string(name) + ": image size " + Quote(Strip(w->text)) + "x" +
                                Quote(Strip(h->text)) + " is not positive; cannot scale boxes");
      }
      have_size = true;
    }
    double v[4];
    static constexpr const char* kCoords[4] = {"xmin", "ymin", "xmax", "ymax"};
    for (int c = 0; c < 4; ++c) {
      const XmlElement* e = Find(elements, kCoords[c], {}, static_cast<int>(i));
      if (e == nullptr) {
        return Status::DataLoss(std::string(name) + ": <bndbox> at byte " +
                                std::to_string(elements[i].offset) + " has no <" + kCoords[c] +
                                ">");
      }
      SLUICE_ASSIGN_OR_RETURN(v[c], number(*e));
    }
    double xmin = v[0] / width, ymin = v[1] / height, xmax = v[2] / width, ymax = v[3] / height;
    auto clamp01 = [](double x) { return std::min(std::max(x, 0.0), 1.0); };
    double x0 = clamp01(std::min(xmin, xmax)), x1 = clamp01(std::max(xmin, xmax));
    double y0 = clamp01(std::min(ymin, ymax)), y1 = clamp01(std::max(ymin, ymax));
    if (x0 >= x1 || y0 >= y1) continue;  // Degenerate, or entirely outside the image.
    boxes.push_back({static_cast<float>(x0), static_cast<float>(y0), static_cast<float>(x1),
                     static_cast<float>(y1)});
  }
  return boxes;
}

Result<BoxTable> ParseBoxCsv(std::string_view text, std::string_view name) {
  BoxTable table;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = Strip(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty()) continue;
    auto fail = [&](std::string_view why) {
      return Status::DataLoss(std::string(name) + ":" + std::to_string(line_no) + ": " +
                              std::string(why));
    };
    std::string_view fields[5];
    size_t count = 0;
    for (std::string_view rest = line;; ++count) {
      size_t comma = rest.find(',');
      if (count < 5) fields[count] = rest.substr(0, comma);
      if (comma == std::string_view::npos) {
        ++count;
        break;
      }
      rest.remove_prefix(comma + 1);
    }
    if (count != 5) {
      return fail("has " + std::to_string(count) +
                  " fields, want 5 (filename,xmin,ymin,xmax,ymax): " + Quote(line));
    }
    std::string_view filename = Strip(fields[0]);
    if (filename.empty()) return fail("empty file name");
    float v[4];
    static constexpr const char* kCoords[4] = {"xmin", "ymin", "xmax", "ymax"};
    for (int c = 0; c < 4; ++c) {
      std::optional<double> d = ParseFloat(fields[c + 1]);
      if (!d) return fail(std::string(kCoords[c]) + " is not a number: " + Quote(fields[c + 1]));
      if (*d < 0 || *d > 1) {
        return fail(std::string(kCoords[c]) + " " + std::string(Strip(fields[c + 1])) +
                    " is outside [0, 1]");
      }
      v[c] = static_cast<float>(*d);
    }
    if (v[0] > v[2] || v[1] > v[3]) return fail("min > max in " + Quote(line));
    table[std::string(filename)].push_back({v[0], v[1], v[2], v[3]});
  }
  return table;
}

Result<BoxTable> ReadBoundingBoxes(const std::string& path) {
  std::string head;
  {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
      int err = errno;
      if (err == ENOENT) return Status::NotFound(path + ": no such bounding-box file");
      return Status::FromErrno("open " + path, err);
    }
    head.resize(512);
    head.resize(std::fread(head.data(), 1, head.size(), f));
    bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) return Status::IoError("read " + path + ": read error");
  }
  if (LooksLikeArchive(head)) return ReadXmlArchive(path);
  for (std::string_view ext : {".gz", ".tgz", ".tar", ".bz2", ".xz", ".zst"}) {
    if (HasSuffix(path, ext)) {
      return Status::DataLoss(path + ": named like an archive but has no archive signature (" +
                              std::to_string(head.size()) + " bytes at the start read)");
    }
  }
  SLUICE_ASSIGN_OR_RETURN(std::string text, formats::ReadFile(path));
  return ParseBoxCsv(text, path);
}

}  // namespace sluice::ingest
