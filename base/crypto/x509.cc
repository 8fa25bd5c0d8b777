// The OpenSSL adapter of Outpost for X.509 certificates and the keys they carry (see x509.h).
// Every OpenSSL object is held by a unique_ptr with its free function; every failure becomes a
// Status naming the step, and OpenSSL's error queue is cleared before a function returns.
#include "base/crypto/x509.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <cctype>
#include <ctime>
#include <mutex>
#include <utility>

#include "base/coding.h"
#include "base/crypto/openssl_handles.h"

namespace outpost::crypto {
namespace {

using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES, GENERAL_NAMES_free>>;
using PurposesPtr =
    std::unique_ptr<EXTENDED_KEY_USAGE, Deleter<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free>>;
using ObjectPtr = std::unique_ptr<ASN1_OBJECT, Deleter<ASN1_OBJECT, ASN1_OBJECT_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;

// The largest certificate text read.
constexpr size_t kMaxCertBytes = size_t{1} << 20;

// Clears OpenSSL's error queue when a function of this file returns, whatever the path.
struct ClearErrorsOnExit {
  ~ClearErrorsOnExit() { ERR_clear_error(); }
};

KeyAlgorithm AlgorithmOf(const EVP_PKEY* key) {
  switch (EVP_PKEY_get_id(key)) {
    case EVP_PKEY_ED25519:
      return KeyAlgorithm::kEd25519;
    case EVP_PKEY_X25519:
      return KeyAlgorithm::kX25519;
    case EVP_PKEY_EC: {
      char group[64] = {};
      size_t len = 0;
      bool p256 = EVP_PKEY_get_group_name(key, group, sizeof(group), &len) == 1 &&
                  std::string_view(group, len) == SN_X9_62_prime256v1;
      return p256 ? KeyAlgorithm::kEcdsaP256 : KeyAlgorithm::kOther;
    }
    default:
      return KeyAlgorithm::kOther;
  }
}

Result<PkeyPtr> ReadPrivateKey(std::string_view pem) {
  BioPtr bio = MemBio(pem);
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) return InvalidArgumentError("not a PEM private key");
  return key;
}

Result<PkeyPtr> ReadPublicKey(std::string_view pem) {
  BioPtr bio = MemBio(pem);
  PkeyPtr key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) return InvalidArgumentError("not a PEM public key");
  return key;
}

Result<std::string> PrivateKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return InternalError("writing a private key as PEM failed");
  }
  return BioText(bio.get());
}

Result<std::string> PublicKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return InternalError("writing a public key as PEM failed");
  }
  return BioText(bio.get());
}

Result<std::string> CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return InternalError("writing a certificate as PEM failed");
  }
  return BioText(bio.get());
}

Result<CertPtr> ReadCert(std::string_view pem) {
  if (pem.size() > kMaxCertBytes) return InvalidArgumentError("certificate too large");
  BioPtr bio = MemBio(pem);
  CertPtr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) return InvalidArgumentError("not a PEM certificate");
  return cert;
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

int64_t TimeMs(const ASN1_TIME* time) {
  struct tm tm {};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

std::vector<std::string> AltNames(X509* cert) {
  std::vector<std::string> out;
  NamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                       static_cast<size_t>(ASN1_STRING_length(dns)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      int family = ASN1_STRING_length(ip) == 4 ? AF_INET : AF_INET6;
      char text[INET6_ADDRSTRLEN] = {};
      if ((ASN1_STRING_length(ip) == 4 || ASN1_STRING_length(ip) == 16) &&
          inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof(text)) != nullptr) {
        out.emplace_back(text);
      }
    }
  }
  return out;
}

// The extendedKeyUsage's purposes as dotted OIDs; empty without the extension.
Result<std::vector<std::string>> KeyPurposes(X509* cert) {
  std::vector<std::string> out;
  int critical = 0;
  PurposesPtr purposes(static_cast<EXTENDED_KEY_USAGE*>(
      X509_get_ext_d2i(cert, NID_ext_key_usage, &critical, nullptr)));
  // -1: no such extension; -2: present more than once; otherwise it must decode.
  if (!purposes) {
    if (critical == -1) return out;
    return InvalidArgumentError("certificate extendedKeyUsage unreadable");
  }
  for (int i = 0; i < sk_ASN1_OBJECT_num(purposes.get()); ++i) {
    char text[256] = {};
    int len = OBJ_obj2txt(text, sizeof(text), sk_ASN1_OBJECT_value(purposes.get(), i), 1);
    if (len <= 0 || static_cast<size_t>(len) >= sizeof(text)) {
      return InvalidArgumentError("certificate extendedKeyUsage holds an unreadable purpose");
    }
    out.emplace_back(text, static_cast<size_t>(len));
  }
  return out;
}

Result<CertificateInfo> Describe(X509* cert) {
  CertificateInfo info;
  X509_NAME* subject = X509_get_subject_name(cert);
  info.common_name = NameEntry(subject, NID_commonName);
  info.organization = NameEntry(subject, NID_organizationName);
  BnPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!serial) return InvalidArgumentError("certificate serial unreadable");
  char* hex = BN_bn2hex(serial.get());
  if (hex == nullptr) return InternalError("BN_bn2hex failed");
  info.serial = hex;
  OPENSSL_free(hex);
  for (char& c : info.serial) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &digest_size) != 1) {
    return InternalError("certificate digest failed");
  }
  info.fingerprint = HexEncode(std::span<const uint8_t>(digest, digest_size));
  info.not_after_ms = TimeMs(X509_get0_notAfter(cert));
  info.not_before_ms = TimeMs(X509_get0_notBefore(cert));
  info.subject_alt_names = AltNames(cert);
  OUTPOST_ASSIGN_OR_RETURN(info.extended_key_usages, KeyPurposes(cert));
  return info;
}

Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return InternalError("certificate extension failed: " + value);
  }
  return Status::Ok();
}

// The keyUsage value in OpenSSL's configuration syntax ("critical,keyCertSign,cRLSign").
std::string KeyUsageValue(uint32_t usage) {
  std::string out = "critical";
  if (usage & kDigitalSignature) out += ",digitalSignature";
  if (usage & kKeyAgreement) out += ",keyAgreement";
  if (usage & kKeyCertSign) out += ",keyCertSign";
  if (usage & kCrlSign) out += ",cRLSign";
  return out;
}

// Two or more arcs of decimal digits joined by single dots, none with a leading zero
// ("2.25.1"; not "1..2", "1.2.", "01.2"). OpenSSL's own parser is more lenient.
bool IsDottedOid(std::string_view oid) {
  size_t arcs = 0;
  size_t start = 0;
  while (start <= oid.size()) {
    size_t end = oid.find('.', start);
    if (end == std::string_view::npos) end = oid.size();
    std::string_view arc = oid.substr(start, end - start);
    if (arc.empty() || (arc.size() > 1 && arc[0] == '0')) return false;
    for (char c : arc) {
      if (c < '0' || c > '9') return false;
    }
    ++arcs;
    start = end + 1;
  }
  return arcs >= 2;
}

// "serverAuth,clientAuth,2.25....": the named purposes, then the dotted OIDs, each of which
// must parse as an OID in numeric form (so that no text reaches OpenSSL's configuration
// syntax as anything but a number).
Result<std::string> ExtendedKeyUsageValue(const CertificateSpec& spec) {
  std::string out;
  for (ExtendedKeyUsage usage : spec.extended_key_usage) {
    if (!out.empty()) out += ",";
    out += usage == ExtendedKeyUsage::kServerAuth ? "serverAuth" : "clientAuth";
  }
  for (const std::string& oid : spec.extended_key_usage_oids) {
    ObjectPtr object(IsDottedOid(oid) ? OBJ_txt2obj(oid.c_str(), 1) : nullptr);
    if (!object) return InvalidArgumentError("not a dotted OID: \"" + oid + "\"");
    if (!out.empty()) out += ",";
    out += oid;
  }
  return out;
}

// "DNS:name,IP:address,...": an entry is an IP address when it parses as one.
std::string AltNameValue(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    unsigned char buf[16];
    bool ip = inet_pton(AF_INET, n.c_str(), buf) == 1 || inet_pton(AF_INET6, n.c_str(), buf) == 1;
    if (!out.empty()) out += ",";
    out += (ip ? "IP:" : "DNS:") + n;
  }
  return out;
}

// The extensions of x509.h's CertificateSpec, in its order. `signer` is the issuer's
// certificate (the certificate itself when self-signed).
Status AddExtensions(const CertificateSpec& spec, X509* cert, X509* signer, bool issued) {
  OUTPOST_RETURN_IF_ERROR(AddExtension(cert, signer, NID_subject_key_identifier, "hash"));
  if (issued) {
    OUTPOST_RETURN_IF_ERROR(
        AddExtension(cert, signer, NID_authority_key_identifier, "keyid:always"));
  }
  OUTPOST_RETURN_IF_ERROR(AddExtension(cert, signer, NID_basic_constraints,
                                       spec.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE"));
  if (spec.key_usage != 0) {
    OUTPOST_RETURN_IF_ERROR(
        AddExtension(cert, signer, NID_key_usage, KeyUsageValue(spec.key_usage)));
  }
  if (!spec.extended_key_usage.empty() || !spec.extended_key_usage_oids.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(std::string purposes, ExtendedKeyUsageValue(spec));
    OUTPOST_RETURN_IF_ERROR(AddExtension(cert, signer, NID_ext_key_usage, purposes));
  }
  if (!spec.subject_alt_names.empty()) {
    OUTPOST_RETURN_IF_ERROR(
        AddExtension(cert, signer, NID_subject_alt_name, AltNameValue(spec.subject_alt_names)));
  }
  return Status::Ok();
}

Status SetSubject(const CertificateSpec& spec, X509* cert) {
  X509_NAME* name = X509_get_subject_name(cert);
  std::vector<std::pair<int, const std::string*>> entries = {{NID_commonName, &spec.common_name}};
  if (!spec.organization.empty()) entries.emplace_back(NID_organizationName, &spec.organization);
  for (const auto& [nid, value] : entries) {
    if (X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value->c_str()),
                                   static_cast<int>(value->size()), -1, 0) != 1) {
      return InvalidArgumentError("certificate subject rejected: " + *value);
    }
  }
  return Status::Ok();
}

// Builds and signs a certificate for `subject_key`. `issuer` null: self-signed with
// `issuer_key`.
Result<CertPtr> MakeCert(const CertificateSpec& spec, EVP_PKEY* subject_key, X509* issuer,
                         EVP_PKEY* issuer_key) {
  CertPtr cert(X509_new());
  if (!cert) return InternalError("X509_new failed");
  X509_set_version(cert.get(), 2);
  BnPtr serial(BN_new());
  if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return InternalError("certificate serial failed");
  }
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()),
                    static_cast<time_t>(spec.validity.not_before_s)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()),
                    static_cast<time_t>(spec.validity.not_after_s)) == nullptr) {
    return InvalidArgumentError("certificate validity out of range");
  }
  if (X509_set_pubkey(cert.get(), subject_key) != 1) {
    return InternalError("X509_set_pubkey failed");
  }
  OUTPOST_RETURN_IF_ERROR(SetSubject(spec, cert.get()));
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  OUTPOST_RETURN_IF_ERROR(AddExtensions(spec, cert.get(), signer, issuer != nullptr));
  // Ed25519 signs the message itself; other keys sign its SHA-256.
  const EVP_MD* md = EVP_PKEY_get_id(issuer_key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  if (X509_sign(cert.get(), issuer_key, md) <= 0) return InternalError("X509_sign failed");
  return cert;
}

}  // namespace

// ---- Keys in PEM

Result<KeyPairPem> GenerateKeyPairPem(KeyAlgorithm algorithm) {
  ClearErrorsOnExit clear;
  EVP_PKEY* raw = nullptr;
  const char* name = "";
  switch (algorithm) {
    case KeyAlgorithm::kEcdsaP256:
      name = "EC";
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case KeyAlgorithm::kEd25519:
      name = "ED25519";
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, name);
      break;
    case KeyAlgorithm::kX25519:
      name = "X25519";
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, name);
      break;
    case KeyAlgorithm::kOther:
      return InvalidArgumentError("no key of an unnamed algorithm can be generated");
  }
  PkeyPtr key(raw);
  if (!key) return InternalError(std::string("generating a ") + name + " key failed");
  KeyPairPem out;
  OUTPOST_ASSIGN_OR_RETURN(out.private_pem, PrivateKeyPem(key.get()));
  OUTPOST_ASSIGN_OR_RETURN(out.public_pem, PublicKeyPem(key.get()));
  return out;
}

Result<KeyAlgorithm> PrivateKeyPemAlgorithm(std::string_view pem) {
  ClearErrorsOnExit clear;
  OUTPOST_ASSIGN_OR_RETURN(PkeyPtr key, ReadPrivateKey(pem));
  return AlgorithmOf(key.get());
}

Result<KeyAlgorithm> PublicKeyPemAlgorithm(std::string_view pem) {
  ClearErrorsOnExit clear;
  OUTPOST_ASSIGN_OR_RETURN(PkeyPtr key, ReadPublicKey(pem));
  return AlgorithmOf(key.get());
}

Result<std::string> PublicKeyPemOf(std::string_view private_pem) {
  ClearErrorsOnExit clear;
  OUTPOST_ASSIGN_OR_RETURN(PkeyPtr key, ReadPrivateKey(private_pem));
  return PublicKeyPem(key.get());
}

// ---- Reading certificates

Result<CertificateInfo> ParseCertificatePem(std::string_view pem) {
  ClearErrorsOnExit clear;
  OUTPOST_ASSIGN_OR_RETURN(CertPtr cert, ReadCert(pem));
  return Describe(cert.get());
}

Result<CertificateInfo> ParseCertificateDer(std::string_view der) {
  ClearErrorsOnExit clear;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  CertPtr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) return InvalidArgumentError("not a DER certificate");
  return Describe(cert.get());
}

Result<std::string> CertificatePemToDer(std::string_view pem) {
  ClearErrorsOnExit clear;
  OUTPOST_ASSIGN_OR_RETURN(CertPtr cert, ReadCert(pem));
  unsigned char* der = nullptr;
  const int size = i2d_X509(cert.get(), &der);
  if (size <= 0) return InternalError("the certificate could not be encoded as DER");
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(size));
  OPENSSL_free(der);
  return out;
}

Result<std::string> CertificatePublicKey(std::string_view cert_pem, KeyType type) {
  ClearErrorsOnExit clear;
  OUTPOST_ASSIGN_OR_RETURN(CertPtr cert, ReadCert(cert_pem));
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  const bool ed25519 = type == KeyType::kEd25519;
  std::string public_key(kEd25519PublicKeyBytes, '\0');
  size_t len = public_key.size();
  bool ok =
      key != nullptr && EVP_PKEY_get_id(key) == (ed25519 ? EVP_PKEY_ED25519 : EVP_PKEY_X25519) &&
      EVP_PKEY_get_raw_public_key(key, reinterpret_cast<unsigned char*>(public_key.data()), &len) ==
          1 &&
      len == public_key.size();
  if (!ok) {
    return InvalidArgumentError(std::string("the certificate's key is not ") +
                                (ed25519 ? "Ed25519" : "X25519"));
  }
  return public_key;
}

Status VerifyCertificateChain(std::string_view cert_pem, std::string_view ca_pem) {
  ClearErrorsOnExit clear;
  OUTPOST_ASSIGN_OR_RETURN(CertPtr cert, ReadCert(cert_pem));
  StorePtr store(X509_STORE_new());
  if (!store) return InternalError("cannot set up certificate verification");
  BioPtr bio = MemBio(ca_pem);
  int cas = 0;
  while (X509* ca = bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr) {
    X509_STORE_add_cert(store.get(), ca);
    X509_free(ca);
    ++cas;
  }
  if (cas == 0) return InvalidArgumentError("no CA certificate in the trust anchor");
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) {
    return InternalError("cannot set up certificate verification");
  }
  int ok = X509_verify_cert(ctx.get());
  int error = X509_STORE_CTX_get_error(ctx.get());
  if (ok != 1) {
    return PermissionDeniedError(std::string("certificate not trusted: ") +
                                 X509_verify_cert_error_string(error));
  }
  return Status::Ok();
}

// ---- Making certificates

Result<std::string> SelfSignCertificate(const CertificateSpec& spec,
                                        std::string_view private_key_pem) {
  ClearErrorsOnExit clear;
  OUTPOST_ASSIGN_OR_RETURN(PkeyPtr key, ReadPrivateKey(private_key_pem));
  OUTPOST_ASSIGN_OR_RETURN(CertPtr cert, MakeCert(spec, key.get(), nullptr, key.get()));
  return CertPem(cert.get());
}

struct CertificateIssuer::State {
  PkeyPtr key;
  CertPtr cert;
  // Serializes signing with the CA key.
  std::mutex mu;
};

CertificateIssuer::CertificateIssuer(std::unique_ptr<State> state) : state_(std::move(state)) {}
CertificateIssuer::~CertificateIssuer() = default;

Result<std::unique_ptr<CertificateIssuer>> CertificateIssuer::Open(
    std::string_view cert_pem, std::string_view private_key_pem) {
  ClearErrorsOnExit clear;
  auto state = std::make_unique<State>();
  Result<PkeyPtr> key = ReadPrivateKey(private_key_pem);
  if (!key.ok()) return key.status().WithReason("bad_private_key");
  Result<CertPtr> cert = ReadCert(cert_pem);
  if (!cert.ok()) return cert.status().WithReason("bad_certificate");
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    return InvalidArgumentError("the private key does not match the certificate")
        .WithReason("key_mismatch");
  }
  state->key = std::move(*key);
  state->cert = std::move(*cert);
  return std::unique_ptr<CertificateIssuer>(new CertificateIssuer(std::move(state)));
}

Result<std::string> CertificateIssuer::Issue(const CertificateSpec& spec,
                                             std::string_view subject_public_key_pem) const {
  ClearErrorsOnExit clear;
  OUTPOST_ASSIGN_OR_RETURN(PkeyPtr subject_key, ReadPublicKey(subject_public_key_pem));
  std::lock_guard<std::mutex> lock(state_->mu);
  OUTPOST_ASSIGN_OR_RETURN(
      CertPtr cert, MakeCert(spec, subject_key.get(), state_->cert.get(), state_->key.get()));
  return CertPem(cert.get());
}

// ---- Certificate revocation lists

namespace {

using CrlPtr = std::unique_ptr<X509_CRL, Deleter<X509_CRL, X509_CRL_free>>;
using RevokedPtr = std::unique_ptr<X509_REVOKED, Deleter<X509_REVOKED, X509_REVOKED_free>>;
using TimePtr = std::unique_ptr<ASN1_TIME, Deleter<ASN1_TIME, ASN1_TIME_free>>;
using IntegerPtr = std::unique_ptr<ASN1_INTEGER, Deleter<ASN1_INTEGER, ASN1_INTEGER_free>>;

// The largest client CRL text read.
constexpr size_t kMaxCrlBytes = size_t{16} << 20;

// The serial `hex` as an ASN.1 integer; null when it is not hex.
IntegerPtr SerialFromHex(const std::string& hex) {
  for (char c : hex) {
    if (HexValue(c) < 0) return nullptr;
  }
  BIGNUM* raw = nullptr;
  if (hex.empty() || BN_hex2bn(&raw, hex.c_str()) != static_cast<int>(hex.size())) {
    BN_free(raw);
    return nullptr;
  }
  BnPtr serial(raw);
  return IntegerPtr(BN_to_ASN1_INTEGER(serial.get(), nullptr));
}

Status AddRevoked(X509_CRL* crl, const std::string& serial_hex, ASN1_TIME* when) {
  IntegerPtr serial = SerialFromHex(serial_hex);
  if (!serial) return InvalidArgumentError("revoked serial is not hex: \"" + serial_hex + "\"");
  RevokedPtr revoked(X509_REVOKED_new());
  if (!revoked || X509_REVOKED_set_serialNumber(revoked.get(), serial.get()) != 1 ||
      X509_REVOKED_set_revocationDate(revoked.get(), when) != 1 ||
      X509_CRL_add0_revoked(crl, revoked.get()) != 1) {
    return InternalError("adding a revoked certificate to the CRL failed");
  }
  revoked.release();  // the CRL owns it now
  return Status::Ok();
}

// Clears the errors about the CRL's own validity period, so that a CRL past its nextUpdate
// still revokes what it lists (x509.h, ClientCertificateVerifier::Verify).
int AcceptStaleCrl(int ok, X509_STORE_CTX* ctx) {
  if (ok == 0) {
    int error = X509_STORE_CTX_get_error(ctx);
    if (error == X509_V_ERR_CRL_HAS_EXPIRED || error == X509_V_ERR_CRL_NOT_YET_VALID) {
      X509_STORE_CTX_set_error(ctx, X509_V_OK);
      return 1;
    }
  }
  return ok;
}

// The reason of a failed client certificate verification.
std::string_view ClientVerifyReason(int error) {
  switch (error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "certificate_expired";
    case X509_V_ERR_CERT_REVOKED:
      return "certificate_revoked";
    default:
      return "certificate_untrusted";
  }
}

}  // namespace

Result<std::string> CertificateIssuer::IssueCrl(const std::vector<std::string>& revoked_serials,
                                                const Validity& validity) const {
  ClearErrorsOnExit clear;
  CrlPtr crl(X509_CRL_new());
  TimePtr this_update(ASN1_TIME_set(nullptr, static_cast<time_t>(validity.not_before_s)));
  TimePtr next_update(ASN1_TIME_set(nullptr, static_cast<time_t>(validity.not_after_s)));
  if (!this_update || !next_update) return InvalidArgumentError("CRL validity out of range");
  if (!crl || X509_CRL_set_version(crl.get(), 1) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(state_->cert.get())) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), this_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1) {
    return InternalError("setting up the CRL failed");
  }
  for (const std::string& serial : revoked_serials) {
    OUTPOST_RETURN_IF_ERROR(AddRevoked(crl.get(), serial, this_update.get()));
  }
  X509_CRL_sort(crl.get());
  const EVP_MD* md =
      EVP_PKEY_get_id(state_->key.get()) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (X509_CRL_sign(crl.get(), state_->key.get(), md) <= 0) {
      return InternalError("X509_CRL_sign failed");
    }
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_CRL(bio.get(), crl.get()) != 1) {
    return InternalError("writing a CRL as PEM failed");
  }
  return BioText(bio.get());
}

// ---- Client certificates

struct ClientCertificateVerifier::State {
  StorePtr store;  // the CA certificates and CRLs; shared by concurrent verifications
};

ClientCertificateVerifier::ClientCertificateVerifier(std::unique_ptr<State> state)
    : state_(std::move(state)) {}
ClientCertificateVerifier::~ClientCertificateVerifier() = default;

Result<std::unique_ptr<ClientCertificateVerifier>> ClientCertificateVerifier::Create(
    std::string_view ca_pem, std::string_view crl_pem) {
  ClearErrorsOnExit clear;
  auto state = std::make_unique<State>();
  state->store.reset(X509_STORE_new());
  if (!state->store) return InternalError("cannot set up certificate verification");
  X509_STORE* store = state->store.get();
  BioPtr ca_bio = ca_pem.size() <= kMaxCertBytes ? MemBio(ca_pem) : nullptr;
  int cas = 0;
  while (X509* ca = ca_bio ? PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr) : nullptr) {
    int added = X509_STORE_add_cert(store, ca);
    X509_free(ca);
    if (added != 1) {
      return ErrorWithReason(StatusCode::kInvalidArgument, "bad_client_ca",
                             "a client CA certificate cannot be used");
    }
    ++cas;
  }
  if (cas == 0) {
    return ErrorWithReason(StatusCode::kInvalidArgument, "bad_client_ca",
                           "no certificate in the client CA");
  }
  if (!crl_pem.empty()) {
    BioPtr crl_bio = crl_pem.size() <= kMaxCrlBytes ? MemBio(crl_pem) : nullptr;
    int crls = 0;
    while (X509_CRL* crl = crl_bio ? PEM_read_bio_X509_CRL(crl_bio.get(), nullptr, nullptr, nullptr)
                                   : nullptr) {
      int added = X509_STORE_add_crl(store, crl);
      X509_CRL_free(crl);
      if (added != 1) {
        return ErrorWithReason(StatusCode::kInvalidArgument, "bad_client_crl",
                               "a client CRL cannot be used");
      }
      ++crls;
    }
    if (crls == 0) {
      return ErrorWithReason(StatusCode::kInvalidArgument, "bad_client_crl",
                             "no CRL in the client CRL file");
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  }
  X509_STORE_set_purpose(store, X509_PURPOSE_SSL_CLIENT);
  X509_STORE_set_verify_cb(store, AcceptStaleCrl);
  return std::unique_ptr<ClientCertificateVerifier>(
      new ClientCertificateVerifier(std::move(state)));
}

Status ClientCertificateVerifier::Verify(std::string_view der, int64_t now_s) const {
  ClearErrorsOnExit clear;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  CertPtr cert(der.empty() || der.size() > kMaxCertBytes
                   ? nullptr
                   : d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    return ErrorWithReason(StatusCode::kPermissionDenied, "certificate_untrusted",
                           "the client certificate is not one DER certificate");
  }
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), state_->store.get(), cert.get(), nullptr) != 1) {
    return InternalError("cannot set up certificate verification");
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, static_cast<time_t>(now_s));
  if (X509_verify_cert(ctx.get()) == 1) return Status::Ok();
  int error = X509_STORE_CTX_get_error(ctx.get());
  return ErrorWithReason(
      StatusCode::kPermissionDenied, ClientVerifyReason(error),
      std::string("client certificate refused: ") + X509_verify_cert_error_string(error));
}

Status VerifyClientCertificateDer(std::string_view der, std::string_view ca_pem,
                                  std::string_view crl_pem, int64_t now_s) {
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<ClientCertificateVerifier> verifier,
                           ClientCertificateVerifier::Create(ca_pem, crl_pem));
  return verifier->Verify(der, now_s);
}

}  // namespace outpost::crypto
