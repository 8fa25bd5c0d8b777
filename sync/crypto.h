// Signatures and certificates for export files and receipts (FORMAT.md sections 4 and 5):
// Ed25519 over the file's bytes, X.509 certificates in PEM checked against a CA; and the
// primitives that seal an export file to a hub's key (section 6): X25519, HKDF-SHA256,
// AES-256-GCM, with the bounds sync/ puts on them (SHA-256 and random bytes are the crypto
// adapter's own, called directly). crypto.cc builds these on the crypto adapter (base/crypto/crypto.h),
// certificate.cc the certificate functions on its X.509 half (base/crypto/x509.h);
// TLS is base/http/client.cc's. Thread-safe.
#ifndef OUTPOST_SYNC_CRYPTO_H_
#define OUTPOST_SYNC_CRYPTO_H_

#include <string>
#include <string_view>

#include "base/crypto/x509.h"
#include "base/status.h"

namespace outpost::sync {

// The Ed25519 signature (64 bytes) of `data` with the PEM (PKCS#8) private key `key_pem`.
// InvalidArgument for a key that is not an Ed25519 private key.
Result<std::string> SignEd25519(std::string_view key_pem, std::string_view data);

// Checks `signature` over `data` with the public key of the PEM certificate `cert_pem`
// (Ed25519). PermissionDenied when it does not verify; InvalidArgument for a certificate that
// does not parse or holds another kind of key.
Status VerifyWithCertificate(std::string_view cert_pem, std::string_view data,
                             std::string_view signature);

// Checks that `cert_pem` was issued by the CA certificate(s) in `ca_pem` and is valid now.
// PermissionDenied (with OpenSSL's reason) otherwise: the crypto adapter's.
using crypto::VerifyCertificateChain;

struct CertificateNames {
  std::string common_name{};
  std::string organization{};
  std::string serial_hex{};  // lowercase
};
// The subject's CN and O and the serial number. InvalidArgument for a certificate that does
// not parse.
Result<CertificateNames> ReadCertificateNames(std::string_view cert_pem);

// An X25519 key pair in PEM: PKCS#8 private key, SubjectPublicKeyInfo public key (the crypto
// adapter's key pair).
using X25519KeyPem = crypto::KeyPairPem;
// A fresh X25519 key pair: crypto::GenerateKeyPairPem(KeyAlgorithm::kX25519).
Result<X25519KeyPem> GenerateX25519Key();

// The raw 32-byte X25519 public key of `pem`, which may hold either a public key
// (SubjectPublicKeyInfo) or a private key (PKCS#8). InvalidArgument when it holds neither or
// a key of another kind.
Result<std::string> X25519RawPublicKey(std::string_view pem);

// The 32-byte X25519 shared secret of the private key `private_pem` (PKCS#8 PEM) and the raw
// 32-byte public key `peer_public`. InvalidArgument for a bad key; PermissionDenied when the
// agreement fails (a low-order peer key gives an all-zero secret, which OpenSSL refuses).
Result<std::string> X25519SharedSecret(std::string_view private_pem, std::string_view peer_public);

// HKDF-SHA256 (RFC 5869): `length` bytes (at most 255 * 32) from `secret`, `salt`, `info`.
Result<std::string> HkdfSha256(std::string_view secret, std::string_view salt,
                               std::string_view info, size_t length);

// AES-256-GCM with a 32-byte `key` and a 12-byte `nonce`: the ciphertext (as long as
// `plaintext`) followed by the 16-byte tag. InvalidArgument for a key or nonce of another
// size. A key must never be used twice with the same nonce.
Result<std::string> AesGcmSeal(std::string_view key, std::string_view nonce,
                               std::string_view aad, std::string_view plaintext);
// The plaintext of `ciphertext_and_tag` (the ciphertext then its 16-byte tag).
// PermissionDenied when authentication fails (any change to the key, nonce, aad, ciphertext
// or tag); InvalidArgument for sizes that cannot be right.
Result<std::string> AesGcmOpen(std::string_view key, std::string_view nonce,
                               std::string_view aad, std::string_view ciphertext_and_tag);

}  // namespace outpost::sync

#endif  // OUTPOST_SYNC_CRYPTO_H_
