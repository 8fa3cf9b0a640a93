// SHA-256 (OpenSSL's libcrypto behind a small interface): content digests for `sluice inspect` and
// the ingest manifest. Not thread-safe per object.
#ifndef SLUICE_FORMATS_SHA256_H_
#define SLUICE_FORMATS_SHA256_H_

#include <memory>
#include <string>
#include <string_view>

namespace sluice::formats {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  // Lower-case hex digest; the object is reset afterwards.
  std::string HexDigest();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

std::string Sha256Hex(std::string_view data);

}  // namespace sluice::formats

#endif  // SLUICE_FORMATS_SHA256_H_
