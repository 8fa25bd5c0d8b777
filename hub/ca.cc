// The hub's site CA (hub/FORMAT.md section 1): which keys and certificates a hub data folder
// holds, what each certificate says and for how long, and when one is made again. The X.509
// work itself is the crypto adapter's (base/crypto/x509.h).
#include "hub/ca.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "base/clock.h"
#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/file.h"
#include "base/logging.h"
#include "sync/receipt.h"

namespace outpost::hub {
namespace {

using crypto::ExtendedKeyUsage;
using crypto::KeyAlgorithm;

constexpr int64_t kDaySeconds = 86400;
// Certificates start this far in the past, so that a peer whose clock is a little behind the
// hub's accepts a certificate issued just now.
constexpr int64_t kBackdateSeconds = 300;

// From now - 5 minutes to now + `days`.
crypto::Validity ValidFor(int64_t days) {
  const int64_t now =
      static_cast<int64_t>(std::chrono::system_clock::to_time_t(SystemClock().Now()));
  return {.not_before_s = now - kBackdateSeconds, .not_after_s = now + days * kDaySeconds};
}

// The server certificate's names: localhost and the loopback addresses, then `names` (empty
// ones and repeats left out).
std::vector<std::string> ServerNames(const std::vector<std::string>& names) {
  std::vector<std::string> all = {"localhost", "127.0.0.1", "::1"};
  for (const std::string& n : names) {
    bool seen = false;
    for (const std::string& a : all) seen = seen || a == n;
    if (!seen && !n.empty()) all.push_back(n);
  }
  return all;
}

Status WriteSecret(const std::string& path, std::string_view text) {
  return WriteFileAtomically(path, text, 0600);
}

// Issues a certificate for a fresh key of `algorithm` and writes the key (0600) and the
// certificate (0644).
Status IssueWithNewKey(const crypto::CertificateIssuer& issuer, KeyAlgorithm algorithm,
                       const crypto::CertificateSpec& spec, const std::string& key_path,
                       const std::string& cert_path) {
  OUTPOST_ASSIGN_OR_RETURN(crypto::KeyPairPem key, crypto::GenerateKeyPairPem(algorithm));
  OUTPOST_ASSIGN_OR_RETURN(std::string cert_pem, issuer.Issue(spec, key.public_pem));
  OUTPOST_RETURN_IF_ERROR(WriteSecret(key_path, key.private_pem));
  return WriteFileAtomically(cert_path, cert_pem, 0644);
}

}  // namespace

HubCa::~HubCa() = default;

std::string HubCa::ca_path() const { return JoinPath(data_dir_, "ca.crt"); }
std::string HubCa::server_cert_path() const { return JoinPath(data_dir_, "server.crt"); }
std::string HubCa::server_key_path() const { return JoinPath(data_dir_, "server.key"); }
std::string HubCa::receipt_cert_path() const { return JoinPath(data_dir_, "receipt.crt"); }
std::string HubCa::receipt_key_path() const { return JoinPath(data_dir_, "receipt.key"); }
std::string HubCa::export_key_path() const { return JoinPath(data_dir_, "export.key"); }
std::string HubCa::export_public_key_path() const { return JoinPath(data_dir_, "export.pub"); }

Result<std::unique_ptr<HubCa>> HubCa::OpenOrCreate(const std::string& data_dir,
                                                   const std::vector<std::string>& server_names) {
  std::unique_ptr<HubCa> ca(new HubCa());
  ca->data_dir_ = data_dir;
  // A folder that already holds every file is only read: it may be read-only (the material
  // several hubs share, from a Kubernetes Secret).
  bool complete = true;
  for (const char* name : {"ca.key", "ca.crt", "server.key", "server.crt", "receipt.key",
                           "receipt.crt", "export.key", "export.pub"}) {
    complete = complete && PathExists(JoinPath(data_dir, name));
  }
  OUTPOST_RETURN_IF_ERROR(ca->OpenCa());
  if (!PathExists(ca->server_cert_path()) || !PathExists(ca->server_key_path())) {
    crypto::CertificateSpec spec{.common_name = "outpost-hub",
                                 .validity = ValidFor(5 * 365),
                                 .key_usage = crypto::kDigitalSignature | crypto::kKeyAgreement,
                                 .extended_key_usage = {ExtendedKeyUsage::kServerAuth},
                                 .subject_alt_names = ServerNames(server_names)};
    OUTPOST_RETURN_IF_ERROR(IssueWithNewKey(*ca->issuer_, KeyAlgorithm::kEcdsaP256, spec,
                                            ca->server_key_path(), ca->server_cert_path()));
  }
  OUTPOST_RETURN_IF_ERROR(ca->OpenReceiptKey());
  OUTPOST_RETURN_IF_ERROR(ca->OpenExportKey());
  if (!complete) OUTPOST_RETURN_IF_ERROR(SyncDirectory(data_dir));
  return ca;
}

Status HubCa::OpenCa() {
  const std::string ca_key_path = JoinPath(data_dir_, "ca.key");
  if (!PathExists(ca_path()) || !PathExists(ca_key_path)) {
    OUTPOST_ASSIGN_OR_RETURN(crypto::KeyPairPem key,
                             crypto::GenerateKeyPairPem(KeyAlgorithm::kEcdsaP256));
    crypto::CertificateSpec spec{.common_name = "Outpost hub CA " + RandomHex(4),
                                 .validity = ValidFor(20 * 365),
                                 .is_ca = true,
                                 .key_usage = crypto::kKeyCertSign | crypto::kCrlSign};
    OUTPOST_ASSIGN_OR_RETURN(std::string cert_pem,
                             crypto::SelfSignCertificate(spec, key.private_pem));
    OUTPOST_RETURN_IF_ERROR(WriteSecret(ca_key_path, key.private_pem));
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(ca_path(), cert_pem, 0644));
    // A new CA invalidates certificates issued by an earlier one.
    std::remove(server_cert_path().c_str());
    std::remove(receipt_cert_path().c_str());
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string key_text, ReadFile(ca_key_path, 1 << 20));
  OUTPOST_ASSIGN_OR_RETURN(ca_pem_, ReadFile(ca_path(), 1 << 20));
  Result<std::unique_ptr<crypto::CertificateIssuer>> issuer =
      crypto::CertificateIssuer::Open(ca_pem_, key_text);
  if (!issuer.ok()) {
    const std::string_view reason = issuer.status().reason();
    if (reason == "key_mismatch") {
      return DataLossError(ca_key_path + " does not match " + ca_path());
    }
    // The file that does not read as what it should be.
    const std::string path = reason == "bad_private_key" ? ca_key_path : ca_path();
    return DataLossError(path + ": " + std::string(issuer.status().message()));
  }
  issuer_ = std::move(*issuer);
  OUTPOST_ASSIGN_OR_RETURN(crypto::CertificateInfo info, crypto::ParseCertificatePem(ca_pem_));
  fingerprint_ = info.fingerprint;
  return Status::Ok();
}

// Sites pin receipt.crt at enrolment, so it is made once and lives as long as the CA; only a
// certificate that signs nothing a site accepts (an older hub's, without the receipt key
// purpose; or one that does not verify against this CA) is replaced.
Status HubCa::OpenReceiptKey() {
  bool make = !PathExists(receipt_cert_path()) || !PathExists(receipt_key_path());
  if (!make) {
    OUTPOST_ASSIGN_OR_RETURN(std::string pem, ReadFile(receipt_cert_path(), 1 << 20));
    Result<crypto::CertificateInfo> info = crypto::ParseCertificatePem(pem);
    if (!info.ok()) {
      return DataLossError(receipt_cert_path() + ": " + std::string(info.status().message()));
    }
    // An older hub's (no receipt key purpose), or one this CA no longer vouches for.
    Status usable = sync::CheckReceiptCertificate(pem, ca_pem_);
    make = !usable.ok();
    if (make) {
      OUTPOST_LOG(kWarning) << "receipt.crt cannot sign receipts that sites accept; making a "
                               "new receipt key and certificate (sites enrolled before re-enrol)"
                            << Field("path", receipt_cert_path()) << Field("why", usable.message());
    }
  }
  if (make) {
    crypto::CertificateSpec spec{.common_name = "outpost-hub receipts",
                                 .validity = ValidFor(20 * 365),
                                 .key_usage = crypto::kDigitalSignature,
                                 .extended_key_usage_oids = {sync::kReceiptSigningOid}};
    OUTPOST_RETURN_IF_ERROR(IssueWithNewKey(*issuer_, KeyAlgorithm::kEd25519, spec,
                                            receipt_key_path(), receipt_cert_path()));
  }
  OUTPOST_ASSIGN_OR_RETURN(receipt_pem_, ReadFile(receipt_cert_path(), 1 << 20));
  return Status::Ok();
}

// The export key is independent of the CA: sealed files in transit stay readable when the CA
// is replaced, so it is only ever created when absent.
Status HubCa::OpenExportKey() {
  if (!PathExists(export_key_path())) {
    OUTPOST_ASSIGN_OR_RETURN(crypto::KeyPairPem key,
                             crypto::GenerateKeyPairPem(KeyAlgorithm::kX25519));
    OUTPOST_RETURN_IF_ERROR(WriteSecret(export_key_path(), key.private_pem));
    std::remove(export_public_key_path().c_str());
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string export_text, ReadFile(export_key_path(), 1 << 16));
  Result<KeyAlgorithm> algorithm = crypto::PrivateKeyPemAlgorithm(export_text);
  if (!algorithm.ok() || *algorithm != KeyAlgorithm::kX25519) {
    return DataLossError(export_key_path() + ": not an X25519 private key in PEM");
  }
  OUTPOST_ASSIGN_OR_RETURN(export_public_pem_, crypto::PublicKeyPemOf(export_text));
  if (!PathExists(export_public_key_path())) {
    OUTPOST_RETURN_IF_ERROR(
        WriteFileAtomically(export_public_key_path(), export_public_pem_, 0644));
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string pub_text, ReadFile(export_public_key_path(), 1 << 16));
  if (pub_text != export_public_pem_) {
    return DataLossError(export_public_key_path() + " does not match " + export_key_path());
  }
  return Status::Ok();
}

Result<IssuedCertificate> HubCa::IssueSiteCertificate(std::string_view public_key_pem,
                                                      std::string_view site_id,
                                                      std::string_view tenant) const {
  if (public_key_pem.empty() || public_key_pem.size() > 8192) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "bad_public_key", "empty or too large");
  }
  Result<KeyAlgorithm> algorithm = crypto::PublicKeyPemAlgorithm(public_key_pem);
  if (!algorithm.ok())
    return ErrorWithReason(StatusCode::kInvalidArgument, "bad_public_key", "not a PEM public key");
  if (*algorithm != KeyAlgorithm::kEd25519) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "bad_public_key", "not an Ed25519 key");
  }
  // serverAuth too: the edge may serve TLS with its site certificate, under its site id.
  crypto::CertificateSpec spec{
      .common_name = std::string(site_id),
      .organization = std::string(tenant),
      .validity = ValidFor(2 * 365),
      .key_usage = crypto::kDigitalSignature,
      .extended_key_usage = {ExtendedKeyUsage::kClientAuth, ExtendedKeyUsage::kServerAuth},
      .subject_alt_names = {std::string(site_id)}};
  OUTPOST_ASSIGN_OR_RETURN(std::string pem, issuer_->Issue(spec, public_key_pem));
  OUTPOST_ASSIGN_OR_RETURN(crypto::CertificateInfo info, crypto::ParseCertificatePem(pem));
  return IssuedCertificate{.certificate_pem = std::move(pem), .serial = std::move(info.serial)};
}

Result<KeyPairPem> GenerateEd25519Key() {
  return crypto::GenerateKeyPairPem(KeyAlgorithm::kEd25519);
}

std::string RandomHex(size_t bytes) {
  Result<std::string> random = crypto::RandomBytes(bytes);
  // The CSPRNG failing is not recoverable: a predictable secret must never be issued.
  if (!random.ok()) std::abort();
  return HexEncode(*random);
}

}  // namespace outpost::hub
