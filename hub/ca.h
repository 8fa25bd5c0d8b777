// The hub's site CA and its certificates (hub/FORMAT.md section 1): the CA that issues each
// site's credential at enrolment, the hub's TLS server certificate, the receipt key and the
// receipt certificate that sites pin at enrolment (sync/FORMAT.md section 5),
// the export key that sealed export files are encrypted to (sync/FORMAT.md section 6), and the
// names the enrolment and the listeners use for what they read from certificates. The X.509
// work is the crypto adapter's (base/crypto/x509.h); ca.cc decides what is issued.
#ifndef OUTPOST_HUB_CA_H_
#define OUTPOST_HUB_CA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/crypto/x509.h"
#include "base/status.h"

namespace outpost::hub {

// What the hub reads from a certificate (subject CN and O, serial, SHA-256 fingerprint of the
// DER, validity), and the parsers of one PEM or DER certificate: the crypto adapter's.
using CertInfo = crypto::CertificateInfo;
using crypto::ParseCertificateDer;
using crypto::ParseCertificatePem;

// A key pair in PEM: PKCS#8 private key, SubjectPublicKeyInfo public key.
using KeyPairPem = crypto::KeyPairPem;

// A fresh Ed25519 key pair (a site's key).
Result<KeyPairPem> GenerateEd25519Key();

// `bytes` random bytes from the operating system's generator, as lowercase hex. Aborts when
// the generator fails: a predictable secret is never handed out.
std::string RandomHex(size_t bytes);

// The certificate a site receives at enrolment.
struct IssuedCertificate {
  std::string certificate_pem{};
  std::string serial{};  // lowercase hex
};

// The CA of one hub data folder. Immutable after OpenOrCreate; Issue* may be called from any
// thread.
class HubCa {
 public:
  // Opens the CA, server, receipt and export key files in `data_dir` (which must exist),
  // creating any set that is absent (FORMAT.md section 1); an export.pub that is missing is
  // derived again from export.key, never the other way round. A receipt.crt without the
  // receipt key purpose (an older hub's) is replaced, with a new receipt.key. `server_names`
  // are extra DNS names or IP literals for the server certificate's SAN when it is created.
  // DataLoss when a file is present but unreadable as what it should be. A folder that holds
  // every file is only read, so it may be read-only (material several hubs share).
  static Result<std::unique_ptr<HubCa>> OpenOrCreate(const std::string& data_dir,
                                                     const std::vector<std::string>& server_names);
  ~HubCa();
  HubCa(const HubCa&) = delete;
  HubCa& operator=(const HubCa&) = delete;

  const std::string& ca_pem() const { return ca_pem_; }
  // SHA-256 (hex) of the CA certificate's DER: the pin in enrolment tokens.
  const std::string& fingerprint() const { return fingerprint_; }
  std::string ca_path() const;
  std::string server_cert_path() const;
  std::string server_key_path() const;
  // receipt.key (Ed25519, 0600) signs receipts and nothing else; receipt.crt certifies it for
  // receipts only (sync::kReceiptSigningOid, no TLS purpose). Sites pin receipt_pem() at
  // enrolment.
  std::string receipt_cert_path() const;
  std::string receipt_key_path() const;
  const std::string& receipt_pem() const { return receipt_pem_; }
  // The X25519 key pair sealed export files are encrypted to: export.key (PKCS#8 PEM, 0600)
  // and export.pub (SubjectPublicKeyInfo PEM), which sites receive at enrolment.
  std::string export_key_path() const;
  std::string export_public_key_path() const;
  const std::string& export_public_pem() const { return export_public_pem_; }

  // Issues a site certificate for `public_key_pem` (an Ed25519 SubjectPublicKeyInfo PEM):
  // CN=site_id, O=tenant, a fresh random serial, valid from now - 5 min for 2 years,
  // extendedKeyUsage clientAuth and serverAuth (the edge may serve TLS with it), and
  // subjectAltName site_id (FORMAT.md section 3); never the receipt key purpose.
  // InvalidArgument "bad_public_key" when the key is not an Ed25519 public key.
  Result<IssuedCertificate> IssueSiteCertificate(std::string_view public_key_pem,
                                                 std::string_view site_id,
                                                 std::string_view tenant) const;

 private:
  HubCa() = default;
  // Creates the CA (ca.key, ca.crt) when either file is absent, then loads it.
  Status OpenCa();
  // Creates export.key when absent, then loads it and checks (or writes) export.pub.
  Status OpenExportKey();
  // Creates receipt.key and receipt.crt when either is absent or the certificate lacks the
  // receipt key purpose, then loads receipt.crt.
  Status OpenReceiptKey();

  std::string data_dir_;
  std::string ca_pem_;
  std::string fingerprint_;
  std::string export_public_pem_;
  std::string receipt_pem_;
  std::unique_ptr<crypto::CertificateIssuer> issuer_;
};

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_CA_H_
