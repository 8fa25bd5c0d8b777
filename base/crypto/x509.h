// X.509 certificates and the keys they carry, in the crypto adapter of Outpost: key pairs in
// PEM, self-signed and issued certificates, reading a certificate's names, serial, validity
// and fingerprint, and checking a certificate against a CA. x509.cc is, with crypto.cc and
// the handles they share (openssl_handles.h), the only file of ours that includes OpenSSL
// headers outside TLS (docs/LAYERING.md section 4).
// No OpenSSL type appears here: certificates and keys are PEM (or DER) text in std::string,
// and what a certificate says is a plain struct.
//
// This layer only encodes and checks. What Outpost issues (the hub's CA, its server and
// receipt certificates, site certificates), under which names and for how long, is decided by
// the callers (hub/ca.cc, hub/FORMAT.md section 1; sync/certificate.cc for exports and
// receipts).
//
// Every function is thread-safe; a CertificateIssuer may be shared between threads.
#ifndef OUTPOST_BASE_CRYPTO_X509_H_
#define OUTPOST_BASE_CRYPTO_X509_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/crypto/crypto.h"
#include "base/status.h"

namespace outpost::crypto {

// ---- Keys in PEM, of any of the algorithms certificates carry

// crypto.h's KeyType names the two curves Outpost also uses as raw 32-byte keys; certificates
// may in addition carry ECDSA keys on P-256 (the hub's CA and TLS server keys).
enum class KeyAlgorithm { kEcdsaP256, kEd25519, kX25519, kOther };

struct KeyPairPem {
  std::string private_pem{};  // PKCS#8 ("-----BEGIN PRIVATE KEY-----"), unencrypted
  std::string public_pem{};   // SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----")
};

// A fresh key pair from OpenSSL's generator. InvalidArgument for kOther; Internal when
// generation fails.
Result<KeyPairPem> GenerateKeyPairPem(KeyAlgorithm algorithm);

// The algorithm of the private key in `pem` (PKCS#8 or a traditional form). InvalidArgument
// "not a PEM private key" when it holds none.
Result<KeyAlgorithm> PrivateKeyPemAlgorithm(std::string_view pem);
// The algorithm of the SubjectPublicKeyInfo public key in `pem`. InvalidArgument "not a PEM
// public key" when it holds none (a private key is not a public key here).
Result<KeyAlgorithm> PublicKeyPemAlgorithm(std::string_view pem);
// The SubjectPublicKeyInfo PEM of the private key in `private_pem`. InvalidArgument "not a
// PEM private key" when it holds none.
Result<std::string> PublicKeyPemOf(std::string_view private_pem);

// ---- Reading certificates

// What Outpost reads from a certificate.
struct CertificateInfo {
  std::string common_name{};   // the subject's first CN, as UTF-8 ("" when absent)
  std::string organization{};  // the subject's first O, as UTF-8 ("" when absent)
  std::string serial{};        // lowercase hex, no leading zeros
  std::string fingerprint{};   // lowercase hex SHA-256 of the DER encoding
  int64_t not_after_ms = 0;    // ms since the Unix epoch; 0 when unreadable
  int64_t not_before_ms = 0;   // likewise
  // The subjectAltName's DNS names and IP addresses (as text: "127.0.0.1", "::1"), in order.
  std::vector<std::string> subject_alt_names{};
  // The extendedKeyUsage's key purposes as dotted OIDs, in order (kServerAuthOid,
  // kClientAuthOid, or a private one such as sync/FORMAT.md section 5's receipt signing);
  // empty when the certificate has no extendedKeyUsage.
  std::vector<std::string> extended_key_usages{};
};

// The dotted OIDs of the two TLS key purposes (RFC 5280 section 4.2.1.12).
inline constexpr char kServerAuthOid[] = "1.3.6.1.5.5.7.3.1";
inline constexpr char kClientAuthOid[] = "1.3.6.1.5.5.7.3.2";

// The first certificate in `pem`. InvalidArgument "not a PEM certificate" (or "certificate
// too large" past 1 MiB).
Result<CertificateInfo> ParseCertificatePem(std::string_view pem);
// One DER certificate. InvalidArgument "not a DER certificate".
Result<CertificateInfo> ParseCertificateDer(std::string_view der);
// The DER encoding of the first certificate in `pem` (what a TLS layer that hands over PEM
// received; the bytes ParseCertificateDer reads and client certificate entries hash).
// InvalidArgument as ParseCertificatePem.
Result<std::string> CertificatePemToDer(std::string_view pem);

// The raw 32-byte public key of the first certificate in `cert_pem`, which must be a key of
// `type`. InvalidArgument as ParseCertificatePem, or "the certificate's key is not Ed25519"
// (or X25519).
Result<std::string> CertificatePublicKey(std::string_view cert_pem, KeyType type);

// Checks that the first certificate in `cert_pem` was issued by one of the CA certificates in
// `ca_pem` and is valid now. InvalidArgument when either does not parse ("no CA certificate in
// the trust anchor"); PermissionDenied "certificate not trusted: <OpenSSL's reason>".
Status VerifyCertificateChain(std::string_view cert_pem, std::string_view ca_pem);

// ---- Client certificates

// Checks the certificates that callers of a listener present (base/auth/auth.h) against the
// CA that the listener trusts for its callers and that CA's revocation lists. Immutable after
// Create; Verify may be called from any thread at once.
class ClientCertificateVerifier {
 public:
  // `ca_pem`: one or more CA certificates (PEM, at most 1 MiB); `crl_pem`: "" for none, or
  // one or more CRLs (PEM, at most 16 MiB) of the CA that issues the client certificates.
  // InvalidArgument with reason bad_client_ca when `ca_pem` holds no certificate,
  // bad_client_crl when `crl_pem` is not empty and holds no CRL.
  static Result<std::unique_ptr<ClientCertificateVerifier>> Create(std::string_view ca_pem,
                                                                   std::string_view crl_pem);
  ~ClientCertificateVerifier();
  ClientCertificateVerifier(const ClientCertificateVerifier&) = delete;
  ClientCertificateVerifier& operator=(const ClientCertificateVerifier&) = delete;

  // OK when the certificate `der` (DER) chains to the CA, is within its validity period at
  // `now_s` (seconds since the Unix epoch), as is its chain, is fit for TLS client
  // authentication (an extendedKeyUsage, when present, names clientAuth) and no CRL lists it.
  // A CRL is used even past its nextUpdate. Otherwise PermissionDenied with reason
  // certificate_expired (outside a validity period), certificate_revoked (a CRL lists it) or
  // certificate_untrusted (anything else: no chain, a bad signature, the wrong purpose, bytes
  // that are not a certificate), and OpenSSL's text in the message.
  Status Verify(std::string_view der, int64_t now_s) const;

  struct State;  // the OpenSSL objects (x509.cc)

 private:
  explicit ClientCertificateVerifier(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// One certificate checked as ClientCertificateVerifier does, with a verifier made for it:
// InvalidArgument as Create, PermissionDenied as Verify.
Status VerifyClientCertificateDer(std::string_view der, std::string_view ca_pem,
                                  std::string_view crl_pem, int64_t now_s);

// ---- Making certificates

// Key usage bits (RFC 5280 section 4.2.1.3), or-ed together.
enum KeyUsage : uint32_t {
  kDigitalSignature = 1u << 0,
  kKeyAgreement = 1u << 1,
  kKeyCertSign = 1u << 2,
  kCrlSign = 1u << 3,
};
enum class ExtendedKeyUsage { kServerAuth, kClientAuth };

// The validity period, in seconds since the Unix epoch (UTC).
struct Validity {
  int64_t not_before_s = 0;
  int64_t not_after_s = 0;
};

// What a new certificate says. It is a version 3 certificate with a fresh random serial (127
// bits, top bit set) and, in this order, the extensions: subjectKeyIdentifier (a hash of the
// key), authorityKeyIdentifier (issued certificates only), basicConstraints (critical),
// keyUsage (critical; left out when 0), extendedKeyUsage (left out when empty) and
// subjectAltName (left out when empty).
struct CertificateSpec {
  std::string common_name{};
  std::string organization{};  // "" for none; after the CN in the subject
  Validity validity{};
  bool is_ca = false;
  uint32_t key_usage = 0;  // KeyUsage bits
  std::vector<ExtendedKeyUsage> extended_key_usage{};
  // Further key purposes, as dotted OIDs ("2.25.<uuid>.1.1"), written after those of
  // extended_key_usage in the same extension (left out when both are empty). Which private
  // purposes exist is the callers' (sync/FORMAT.md section 5); an OID that does not parse is
  // InvalidArgument when the certificate is made.
  std::vector<std::string> extended_key_usage_oids{};
  // DNS names and IP literals (IPv4 or IPv6); each is written as an IP address when it parses
  // as one.
  std::vector<std::string> subject_alt_names{};
};

// A self-signed certificate for the private key in `private_key_pem`, as PEM. InvalidArgument
// "not a PEM private key", or for names the subject cannot hold; Internal when OpenSSL fails.
Result<std::string> SelfSignCertificate(const CertificateSpec& spec,
                                        std::string_view private_key_pem);

// A CA's certificate and private key, ready to issue certificates. Immutable after Open;
// Issue may be called from any thread (signatures are made one at a time).
class CertificateIssuer {
 public:
  // The CA of `cert_pem` (its first certificate) and `private_key_pem`. InvalidArgument with
  // reason "bad_private_key" ("not a PEM private key"), "bad_certificate" (as
  // ParseCertificatePem) or "key_mismatch" when the key is not the certificate's; checked in
  // that order.
  static Result<std::unique_ptr<CertificateIssuer>> Open(std::string_view cert_pem,
                                                         std::string_view private_key_pem);
  ~CertificateIssuer();
  CertificateIssuer(const CertificateIssuer&) = delete;
  CertificateIssuer& operator=(const CertificateIssuer&) = delete;

  // A certificate for the SubjectPublicKeyInfo PEM `subject_public_key_pem`, signed by this
  // CA, as PEM. InvalidArgument "not a PEM public key", or for names the subject cannot hold;
  // Internal when OpenSSL fails.
  Result<std::string> Issue(const CertificateSpec& spec,
                            std::string_view subject_public_key_pem) const;

  // A certificate revocation list (version 2) of this CA, as PEM: it lists the certificates
  // whose serials are `revoked_serials` (lowercase or upper-case hex, as CertificateInfo's
  // serial), each revoked at validity.not_before_s, which is also the list's thisUpdate;
  // validity.not_after_s is its nextUpdate. InvalidArgument for a serial that is not hex or a
  // time out of range; Internal when OpenSSL fails.
  Result<std::string> IssueCrl(const std::vector<std::string>& revoked_serials,
                               const Validity& validity) const;

  struct State;  // the OpenSSL objects (x509.cc)

 private:
  explicit CertificateIssuer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace outpost::crypto

#endif  // OUTPOST_BASE_CRYPTO_X509_H_
