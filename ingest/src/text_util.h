// Internal: small text helpers shared by the ingest parsers.
#ifndef SLUICE_INGEST_SRC_TEXT_UTIL_H_
#define SLUICE_INGEST_SRC_TEXT_UTIL_H_

#include <string>
#include <string_view>

namespace sluice::ingest {

// Removes leading and trailing ASCII whitespace (" \t\n\v\f\r").
std::string_view Strip(std::string_view s);

// A short printable rendering of untrusted text for error messages: quoted, non-printable bytes as
// \xNN, cut after 40 bytes with "...".
std::string Quote(std::string_view s);

}  // namespace sluice::ingest

#endif  // SLUICE_INGEST_SRC_TEXT_UTIL_H_
