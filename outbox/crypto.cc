// The OpenSSL adapter of outbox/ (FORMAT.md section 7).
#include "outbox/crypto.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <cstring>

#include "base/file.h"

namespace outpost::outbox {
namespace {

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

Result<std::string> Hkdf(std::string_view key, std::string_view salt, std::string_view info,
                         size_t length) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return InternalError("HKDF unavailable: " + OpenSslError());
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (ctx == nullptr) return InternalError("HKDF context: " + OpenSslError());
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(key.data()),
                                        key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()),
                                        salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                        info.size()),
      OSSL_PARAM_construct_end(),
  };
  std::string out(length, '\0');
  int ok = EVP_KDF_derive(ctx, reinterpret_cast<unsigned char*>(out.data()), length, params);
  EVP_KDF_CTX_free(ctx);
  if (ok != 1) return InternalError("HKDF failed: " + OpenSslError());
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

}  // namespace

Result<std::string> ReadKeyFile(const std::string& path) {
  OUTPOST_ASSIGN_OR_RETURN(std::string raw, ReadFile(path, 1024));
  if (raw.size() == kFileKeyBytes) return raw;
  std::string_view hex = raw;
  if (!hex.empty() && hex.back() == '\n') hex.remove_suffix(1);
  if (!hex.empty() && hex.back() == '\r') hex.remove_suffix(1);
  if (hex.size() != 2 * kFileKeyBytes) {
    return InvalidArgumentError("key file \"" + path + "\" must hold 32 raw bytes or 64 hex " +
                                "characters; it holds " + std::to_string(raw.size()) + " bytes");
  }
  std::string key(kFileKeyBytes, '\0');
  for (size_t i = 0; i < kFileKeyBytes; ++i) {
    int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return InvalidArgumentError("key file \"" + path + "\" has a character that is not " +
                                  "hexadecimal at offset " + std::to_string(2 * i));
    }
    key[i] = static_cast<char>(hi * 16 + lo);
  }
  return key;
}

Result<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return InternalError("no random bytes: " + OpenSslError());
  }
  return out;
}

Result<std::unique_ptr<const RecordCipher>> RecordCipher::Create(std::string_view file_key,
                                                                 std::string_view salt) {
  if (file_key.size() != kFileKeyBytes) {
    return InvalidArgumentError("an outbox key has 32 bytes, not " +
                                std::to_string(file_key.size()));
  }
  if (salt.size() != kKeySaltBytes) {
    return InvalidArgumentError("an outbox key salt has 16 bytes, not " +
                                std::to_string(salt.size()));
  }
  std::unique_ptr<RecordCipher> c(new RecordCipher());
  OUTPOST_ASSIGN_OR_RETURN(c->data_key_,
                           Hkdf(file_key, salt, "outpost outbox v1 data key", kFileKeyBytes));
  OUTPOST_ASSIGN_OR_RETURN(c->key_check_,
                           Hkdf(file_key, salt, "outpost outbox v1 key check", kKeyCheckBytes));
  return std::unique_ptr<const RecordCipher>(std::move(c));
}

Status RecordCipher::Seal(uint64_t counter, std::string_view aad, std::string_view plaintext,
                          std::string* out) const {
  unsigned char nonce[kNonceBytes] = {0};
  for (int i = 0; i < 8; ++i)
    nonce[kNonceBytes - 1 - i] = static_cast<unsigned char>(counter >> (8 * i));
  CtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return InternalError("cipher context: " + OpenSslError());
  const auto* key = reinterpret_cast<const unsigned char*>(data_key_.data());
  int len = 0;
  size_t start = out->size();
  out->resize(start + kNonceBytes + plaintext.size() + kTagBytes);
  auto* dst = reinterpret_cast<unsigned char*>(out->data() + start);
  std::memcpy(dst, nonce, kNonceBytes);
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key, nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), dst + kNonceBytes, &len,
                        reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), dst + kNonceBytes + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          dst + kNonceBytes + plaintext.size()) != 1) {
    out->resize(start);
    return InternalError("AES-256-GCM encryption failed: " + OpenSslError());
  }
  return Status::Ok();
}

Result<std::string> RecordCipher::Open(std::string_view aad, std::string_view stored) const {
  if (stored.size() < kOverhead) {
    return DataLossError("encrypted payload of " + std::to_string(stored.size()) +
                         " bytes is shorter than nonce and tag");
  }
  const auto* p = reinterpret_cast<const unsigned char*>(stored.data());
  size_t n = stored.size() - kOverhead;
  CtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return InternalError("cipher context: " + OpenSslError());
  std::string plain(n, '\0');
  unsigned char tag[kTagBytes];
  std::memcpy(tag, p + kNonceBytes + n, kTagBytes);
  int len = 0;
  const auto* key = reinterpret_cast<const unsigned char*>(data_key_.data());
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key, p) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len,
                        p + kNonceBytes, static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag) != 1) {
    return InternalError("AES-256-GCM decryption setup failed: " + OpenSslError());
  }
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len,
                          &final_len) != 1) {
    ERR_clear_error();
    return DataLossError("decryption failed: the payload does not authenticate");
  }
  return plain;
}

}  // namespace outpost::outbox
