// Owning handles for OpenSSL objects and memory-BIO helpers, shared by the two files of the
// crypto adapter (crypto.cc and x509.cc). Internal to outpost_crypto: no other file of ours
// includes it, since it includes OpenSSL (docs/LAYERING.md section 4), so these names are seen
// by the adapter only.
#ifndef OUTPOST_BASE_CRYPTO_OPENSSL_HANDLES_H_
#define OUTPOST_BASE_CRYPTO_OPENSSL_HANDLES_H_

#include <openssl/bio.h>
#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

namespace outpost::crypto {

// A unique_ptr deleter calling OpenSSL's free function `F`.
template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;

// A read-only memory BIO over `data`, which must outlive it. Null when OpenSSL cannot allocate.
inline BioPtr MemBio(std::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// Everything written to the memory BIO `bio`.
inline std::string BioText(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : std::string();
}

}  // namespace outpost::crypto

#endif  // OUTPOST_BASE_CRYPTO_OPENSSL_HANDLES_H_
