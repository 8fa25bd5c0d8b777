// The OpenSSL adapter of hub/ for keys and certificates (hub/FORMAT.md section 1). Every
// OpenSSL object is held by a unique_ptr with its free function; every failure becomes a
// Status naming the step.
#include "hub/ca.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <cctype>
#include <ctime>

#include "base/coding.h"
#include "base/file.h"

namespace outpost::hub {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(char* p) const { OPENSSL_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;
using Bio = std::unique_ptr<BIO, Free>;
using Bn = std::unique_ptr<BIGNUM, Free>;

constexpr int64_t kDaySeconds = 86400;

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : std::string();
}

Result<Pkey> GenerateKey(const char* type) {
  EVP_PKEY* key = std::string_view(type) == "EC" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC",
                                                                     "P-256")
                                                 : EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  if (key == nullptr) return InternalError(std::string("generating a ") + type + " key failed");
  return Pkey(key);
}

Result<std::string> PrivateKeyPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                                            nullptr) != 1) {
    return InternalError("writing a private key as PEM failed");
  }
  return BioText(bio.get());
}

Result<std::string> PublicKeyPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return InternalError("writing a public key as PEM failed");
  }
  return BioText(bio.get());
}

Result<std::string> CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return InternalError("writing a certificate as PEM failed");
  }
  return BioText(bio.get());
}

Result<Pkey> ReadPrivateKey(std::string_view pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (key == nullptr) return InvalidArgumentError("not a PEM private key");
  return Pkey(key);
}

Result<Cert> ReadCert(std::string_view pem) {
  if (pem.size() > (1 << 20)) return InvalidArgumentError("certificate too large");
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509* cert = bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (cert == nullptr) return InvalidArgumentError("not a PEM certificate");
  return Cert(cert);
}

std::string NameEntry(X509_NAME* name, int nid) {
  int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return "";
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  int size = ASN1_STRING_to_UTF8(&utf8, data);
  if (size < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(size));
  OPENSSL_free(utf8);
  return out;
}

Result<CertInfo> Describe(X509* cert) {
  CertInfo info;
  X509_NAME* subject = X509_get_subject_name(cert);
  info.common_name = NameEntry(subject, NID_commonName);
  info.organization = NameEntry(subject, NID_organizationName);
  Bn serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!serial) return InvalidArgumentError("certificate serial unreadable");
  std::unique_ptr<char, Free> hex(BN_bn2hex(serial.get()));
  if (!hex) return InternalError("BN_bn2hex failed");
  info.serial = hex.get();
  for (char& c : info.serial) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &digest_size) != 1) {
    return InternalError("certificate digest failed");
  }
  info.fingerprint = HexEncode(std::span<const uint8_t>(digest, digest_size));
  struct tm tm {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) {
    info.not_after_ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  }
  return info;
}

Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, Free> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return InternalError(std::string("certificate extension failed: ") + value);
  }
  return Status::Ok();
}

struct CertSpec {
  EVP_PKEY* subject_key = nullptr;
  std::vector<std::pair<int, std::string>> subject;  // (nid, value)
  int64_t days = 365;
  std::vector<std::pair<int, std::string>> extensions;
};

// Builds and signs a certificate. `issuer` null: self-signed with `issuer_key`.
Result<Cert> MakeCert(const CertSpec& spec, X509* issuer, EVP_PKEY* issuer_key) {
  Cert cert(X509_new());
  if (!cert) return InternalError("X509_new failed");
  X509_set_version(cert.get(), 2);
  Bn serial(BN_new());
  if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return InternalError("certificate serial failed");
  }
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(spec.days * kDaySeconds));
  if (X509_set_pubkey(cert.get(), spec.subject_key) != 1) {
    return InternalError("X509_set_pubkey failed");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const auto& [nid, value] : spec.subject) {
    if (X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.c_str()),
                                   static_cast<int>(value.size()), -1, 0) != 1) {
      return InvalidArgumentError("certificate subject rejected: " + value);
    }
  }
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  OUTPOST_RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash"));
  if (issuer != nullptr) {
    OUTPOST_RETURN_IF_ERROR(
        AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always"));
  }
  for (const auto& [nid, value] : spec.extensions) {
    OUTPOST_RETURN_IF_ERROR(AddExtension(cert.get(), signer, nid, value.c_str()));
  }
  const EVP_MD* md = EVP_PKEY_get_id(issuer_key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  if (X509_sign(cert.get(), issuer_key, md) <= 0) return InternalError("X509_sign failed");
  return cert;
}

std::string SanList(const std::vector<std::string>& names) {
  std::vector<std::string> all = {"localhost", "127.0.0.1", "::1"};
  for (const std::string& n : names) {
    bool seen = false;
    for (const std::string& a : all) seen = seen || a == n;
    if (!seen && !n.empty()) all.push_back(n);
  }
  std::string out;
  for (const std::string& n : all) {
    unsigned char buf[16];
    bool ip = inet_pton(AF_INET, n.c_str(), buf) == 1 || inet_pton(AF_INET6, n.c_str(), buf) == 1;
    if (!out.empty()) out += ",";
    out += (ip ? "IP:" : "DNS:") + n;
  }
  return out;
}

Status WriteSecret(const std::string& path, std::string_view text) {
  return WriteFileAtomically(path, text, 0600);
}

}  // namespace

struct HubCa::Keys {
  Pkey ca_key;
  Cert ca_cert;
};

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
  ca->keys_ = std::make_unique<Keys>();
  const std::string ca_key_path = JoinPath(data_dir, "ca.key");
  if (!PathExists(ca->ca_path()) || !PathExists(ca_key_path)) {
    OUTPOST_ASSIGN_OR_RETURN(Pkey key, GenerateKey("EC"));
    CertSpec spec{.subject_key = key.get(),
                  .subject = {{NID_commonName, "Outpost hub CA " + RandomHex(4)}},
                  .days = 20 * 365,
                  .extensions = {{NID_basic_constraints, "critical,CA:TRUE"},
                                 {NID_key_usage, "critical,keyCertSign,cRLSign"}}};
    OUTPOST_ASSIGN_OR_RETURN(Cert cert, MakeCert(spec, nullptr, key.get()));
    OUTPOST_ASSIGN_OR_RETURN(std::string key_pem, PrivateKeyPem(key.get()));
    OUTPOST_ASSIGN_OR_RETURN(std::string cert_pem, CertPem(cert.get()));
    OUTPOST_RETURN_IF_ERROR(WriteSecret(ca_key_path, key_pem));
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(ca->ca_path(), cert_pem, 0644));
    // A new CA invalidates certificates issued by an earlier one.
    std::remove(ca->server_cert_path().c_str());
    std::remove(ca->receipt_cert_path().c_str());
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string key_text, ReadFile(ca_key_path, 1 << 20));
  OUTPOST_ASSIGN_OR_RETURN(ca->ca_pem_, ReadFile(ca->ca_path(), 1 << 20));
  Result<Pkey> key = ReadPrivateKey(key_text);
  if (!key.ok()) return DataLossError(ca_key_path + ": " + std::string(key.status().message()));
  Result<Cert> cert = ReadCert(ca->ca_pem_);
  if (!cert.ok()) return DataLossError(ca->ca_path() + ": " + std::string(cert.status().message()));
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    return DataLossError(ca_key_path + " does not match " + ca->ca_path());
  }
  ca->keys_->ca_key = std::move(*key);
  ca->keys_->ca_cert = std::move(*cert);
  OUTPOST_ASSIGN_OR_RETURN(CertInfo info, Describe(ca->keys_->ca_cert.get()));
  ca->fingerprint_ = info.fingerprint;

  if (!PathExists(ca->server_cert_path()) || !PathExists(ca->server_key_path())) {
    OUTPOST_ASSIGN_OR_RETURN(Pkey server_key, GenerateKey("EC"));
    CertSpec spec{.subject_key = server_key.get(),
                  .subject = {{NID_commonName, "outpost-hub"}},
                  .days = 5 * 365,
                  .extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                                 {NID_key_usage, "critical,digitalSignature,keyAgreement"},
                                 {NID_ext_key_usage, "serverAuth"},
                                 {NID_subject_alt_name, SanList(server_names)}}};
    OUTPOST_ASSIGN_OR_RETURN(
        Cert server_cert, MakeCert(spec, ca->keys_->ca_cert.get(), ca->keys_->ca_key.get()));
    OUTPOST_ASSIGN_OR_RETURN(std::string key_pem, PrivateKeyPem(server_key.get()));
    OUTPOST_ASSIGN_OR_RETURN(std::string cert_pem, CertPem(server_cert.get()));
    OUTPOST_RETURN_IF_ERROR(WriteSecret(ca->server_key_path(), key_pem));
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(ca->server_cert_path(), cert_pem, 0644));
  }
  if (!PathExists(ca->receipt_cert_path()) || !PathExists(ca->receipt_key_path())) {
    OUTPOST_ASSIGN_OR_RETURN(Pkey receipt_key, GenerateKey("ED25519"));
    CertSpec spec{.subject_key = receipt_key.get(),
                  .subject = {{NID_commonName, "outpost-hub receipts"}},
                  .days = 5 * 365,
                  .extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                                 {NID_key_usage, "critical,digitalSignature"}}};
    OUTPOST_ASSIGN_OR_RETURN(
        Cert receipt_cert, MakeCert(spec, ca->keys_->ca_cert.get(), ca->keys_->ca_key.get()));
    OUTPOST_ASSIGN_OR_RETURN(std::string key_pem, PrivateKeyPem(receipt_key.get()));
    OUTPOST_ASSIGN_OR_RETURN(std::string cert_pem, CertPem(receipt_cert.get()));
    OUTPOST_RETURN_IF_ERROR(WriteSecret(ca->receipt_key_path(), key_pem));
    OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(ca->receipt_cert_path(), cert_pem, 0644));
  }
  // The export key is independent of the CA: sealed files in transit stay readable when the
  // CA is replaced, so it is only ever created when absent.
  if (!PathExists(ca->export_key_path())) {
    OUTPOST_ASSIGN_OR_RETURN(Pkey export_key, GenerateKey("X25519"));
    OUTPOST_ASSIGN_OR_RETURN(std::string key_pem, PrivateKeyPem(export_key.get()));
    OUTPOST_RETURN_IF_ERROR(WriteSecret(ca->export_key_path(), key_pem));
    std::remove(ca->export_public_key_path().c_str());
  }
  {
    OUTPOST_ASSIGN_OR_RETURN(std::string export_text,
                             ReadFile(ca->export_key_path(), 1 << 16));
    Result<Pkey> export_key = ReadPrivateKey(export_text);
    if (!export_key.ok() || EVP_PKEY_get_id(export_key->get()) != EVP_PKEY_X25519) {
      return DataLossError(ca->export_key_path() + ": not an X25519 private key in PEM");
    }
    OUTPOST_ASSIGN_OR_RETURN(ca->export_public_pem_, PublicKeyPem(export_key->get()));
    if (!PathExists(ca->export_public_key_path())) {
      OUTPOST_RETURN_IF_ERROR(
          WriteFileAtomically(ca->export_public_key_path(), ca->export_public_pem_, 0644));
    }
    OUTPOST_ASSIGN_OR_RETURN(std::string pub_text,
                             ReadFile(ca->export_public_key_path(), 1 << 16));
    if (pub_text != ca->export_public_pem_) {
      return DataLossError(ca->export_public_key_path() + " does not match " +
                           ca->export_key_path());
    }
  }
  OUTPOST_RETURN_IF_ERROR(SyncDirectory(data_dir));
  return ca;
}

Result<IssuedCertificate> HubCa::IssueSiteCertificate(std::string_view public_key_pem,
                                                      std::string_view site_id,
                                                      std::string_view tenant) const {
  if (public_key_pem.empty() || public_key_pem.size() > 8192) {
    return InvalidArgumentError("bad_public_key: empty or too large");
  }
  Bio bio(BIO_new_mem_buf(public_key_pem.data(), static_cast<int>(public_key_pem.size())));
  Pkey key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) return InvalidArgumentError("bad_public_key: not a PEM public key");
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return InvalidArgumentError("bad_public_key: not an Ed25519 key");
  }
  CertSpec spec{.subject_key = key.get(),
                .subject = {{NID_commonName, std::string(site_id)}},
                .days = 2 * 365,
                .extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                               {NID_key_usage, "critical,digitalSignature"},
                               {NID_ext_key_usage, "clientAuth"}}};
  if (!tenant.empty()) spec.subject.emplace_back(NID_organizationName, std::string(tenant));
  std::lock_guard<std::mutex> lock(mu_);
  OUTPOST_ASSIGN_OR_RETURN(Cert cert,
                           MakeCert(spec, keys_->ca_cert.get(), keys_->ca_key.get()));
  OUTPOST_ASSIGN_OR_RETURN(CertInfo info, Describe(cert.get()));
  OUTPOST_ASSIGN_OR_RETURN(std::string pem, CertPem(cert.get()));
  return IssuedCertificate{.certificate_pem = std::move(pem), .serial = info.serial};
}

Result<CertInfo> ParseCertificatePem(std::string_view pem) {
  OUTPOST_ASSIGN_OR_RETURN(Cert cert, ReadCert(pem));
  return Describe(cert.get());
}

Result<CertInfo> ParseCertificateDer(std::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  Cert cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) return InvalidArgumentError("not a DER certificate");
  return Describe(cert.get());
}

Result<KeyPairPem> GenerateEd25519Key() {
  OUTPOST_ASSIGN_OR_RETURN(Pkey key, GenerateKey("ED25519"));
  KeyPairPem out;
  OUTPOST_ASSIGN_OR_RETURN(out.private_pem, PrivateKeyPem(key.get()));
  OUTPOST_ASSIGN_OR_RETURN(out.public_pem, PublicKeyPem(key.get()));
  return out;
}

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (bytes > 0 && RAND_bytes(buf.data(), static_cast<int>(bytes)) != 1) {
    // The CSPRNG failing is not recoverable: a predictable secret must never be issued.
    std::abort();
  }
  return HexEncode(std::span<const uint8_t>(buf.data(), buf.size()));
}

}  // namespace outpost::hub
