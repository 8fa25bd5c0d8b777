// Roles, bearer tokens, the credentials file and the Authenticator: every 401 and 403 reason
// of auth.h, each refusal checked together with what stayed the same (the entries, the
// callers that still authenticate).
#include "base/auth/auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "base/coding.h"
#include "base/crypto/crypto.h"
#include "base/crypto/x509.h"
#include "base/file.h"
#include "base/logging.h"
#include "base/testing/test_util.h"

namespace outpost::auth {
namespace {

using crypto::CertificateIssuer;
using crypto::CertificateSpec;
using crypto::ExtendedKeyUsage;
using crypto::KeyAlgorithm;
using crypto::KeyPairPem;
using crypto::Validity;

constexpr RoleSet kInferBit = RoleBit(Role::kInfer);
constexpr RoleSet kReadBit = RoleBit(Role::kRead);
constexpr RoleSet kLabelBit = RoleBit(Role::kLabel);
constexpr RoleSet kAdminBit = RoleBit(Role::kAdmin);

int64_t NowS() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The DER of the first certificate of a PEM text.
std::string PemToDer(const std::string& pem) {
  const std::string begin = "-----BEGIN CERTIFICATE-----";
  const std::string end = "-----END CERTIFICATE-----";
  const size_t from = pem.find(begin) + begin.size();
  const size_t to = pem.find(end);
  std::string body;
  for (size_t i = from; i < to; ++i) {
    if (pem[i] != '\n' && pem[i] != '\r') body += pem[i];
  }
  Result<std::string> der = Base64Decode(body);
  EXPECT_TRUE(der.ok()) << der.status().ToString();
  return der.ok() ? *der : std::string();
}

// A CA for client certificates, with the issuer that signs them and their CRLs.
struct TestCa {
  KeyPairPem key;
  std::string cert_pem;
  std::unique_ptr<CertificateIssuer> issuer;

  static TestCa Make(const std::string& name) {
    TestCa ca;
    ca.key = *crypto::GenerateKeyPairPem(KeyAlgorithm::kEcdsaP256);
    CertificateSpec spec{
        .common_name = name,
        .validity = {.not_before_s = NowS() - 3600, .not_after_s = NowS() + 30 * 86400},
        .is_ca = true,
        .key_usage = crypto::kKeyCertSign | crypto::kCrlSign};
    ca.cert_pem = *crypto::SelfSignCertificate(spec, ca.key.private_pem);
    ca.issuer = std::move(*CertificateIssuer::Open(ca.cert_pem, ca.key.private_pem));
    return ca;
  }

  // A client certificate (DER) for `common_name`, valid from -1 hour to +1 day unless told.
  std::string Client(const std::string& common_name, Validity validity = {},
                     std::vector<ExtendedKeyUsage> usage = {ExtendedKeyUsage::kClientAuth}) const {
    if (validity.not_after_s == 0) validity = {NowS() - 3600, NowS() + 86400};
    KeyPairPem client = *crypto::GenerateKeyPairPem(KeyAlgorithm::kEcdsaP256);
    CertificateSpec spec{.common_name = common_name,
                         .validity = validity,
                         .key_usage = crypto::kDigitalSignature,
                         .extended_key_usage = usage};
    Result<std::string> pem = issuer->Issue(spec, client.public_pem);
    EXPECT_TRUE(pem.ok()) << pem.status().ToString();
    return PemToDer(*pem);
  }

  std::string Crl(const std::vector<std::string>& serials, int64_t next_update_s = 0) const {
    if (next_update_s == 0) next_update_s = NowS() + 86400;
    Result<std::string> crl = issuer->IssueCrl(serials, {NowS() - 60, next_update_s});
    EXPECT_TRUE(crl.ok()) << crl.status().ToString();
    return *crl;
  }
};

std::string SerialOf(const std::string& der) { return crypto::ParseCertificateDer(der)->serial; }

Credential TokenEntry(const std::string& name, const std::string& token, RoleSet roles) {
  return Credential{.name = name, .roles = roles, .token_sha256 = crypto::Sha256(token)};
}

std::string Bearer(const std::string& token) { return "Bearer " + token; }

void ExpectRefused(const Status& status, StatusCode code, std::string_view reason) {
  EXPECT_EQ(status.code(), code) << status.ToString();
  EXPECT_EQ(status.reason(), reason) << status.ToString();
}

// ---- Roles

TEST(Roles, NamesReadBackAndUnknownNamesAreRefused) {
  for (Role role : {Role::kInfer, Role::kLabel, Role::kRead, Role::kAdmin}) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(Role parsed, ParseRole(RoleName(role)));
    EXPECT_EQ(parsed, role);
  }
  for (std::string_view bad : {"", "Infer", "root", "infer ", "read,admin"}) {
    ExpectRefused(ParseRole(bad).status(), StatusCode::kInvalidArgument, "bad_role");
  }
}

TEST(Roles, SetNamesFollowTheEnumOrder) {
  EXPECT_EQ(RoleSetName(0), "");
  EXPECT_EQ(RoleSetName(kReadBit | kInferBit), "infer,read");
  EXPECT_EQ(RoleSetName(kAllRoles), "infer,label,read,admin");
}

TEST(Roles, AuthorizeNamesTheRoleAndTheCredential) {
  Principal principal{.name = "scorer-1", .roles = kInferBit};
  OUTPOST_EXPECT_OK(Authorize(principal, Role::kInfer));
  Status refused = Authorize(principal, Role::kAdmin);
  ExpectRefused(refused, StatusCode::kPermissionDenied, "role_required");
  EXPECT_NE(refused.message().find("admin"), std::string_view::npos);
  EXPECT_NE(refused.message().find("scorer-1"), std::string_view::npos);
  EXPECT_EQ(principal.roles, kInferBit);
}

// ---- Bearer tokens

TEST(ParseBearer, AcceptsTheSchemeInAnyCaseAndSeveralSpaces) {
  const std::string token(22, 'a');
  for (std::string header : {"Bearer " + token, "bearer " + token, "BEARER   " + token}) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string_view parsed, ParseBearer(header));
    EXPECT_EQ(parsed, token);
    // A view into the header, at its end.
    EXPECT_EQ(parsed.data() + parsed.size(), header.data() + header.size());
  }
}

TEST(ParseBearer, AcceptsTheWholeAlphabetAndTrailingPadding) {
  const std::string token = "AZaz09-._~+/AZaz09-._~+/==";
  const std::string header = Bearer(token);  // the parsed view points into it
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string_view parsed, ParseBearer(header));
  EXPECT_EQ(parsed, token);
}

TEST(ParseBearer, LengthBoundsAreInclusive) {
  EXPECT_TRUE(ParseBearer(Bearer(std::string(kMinTokenBytes, 'x'))).ok());
  EXPECT_TRUE(ParseBearer(Bearer(std::string(kMaxTokenBytes, 'x'))).ok());
  ExpectRefused(ParseBearer(Bearer(std::string(kMinTokenBytes - 1, 'x'))).status(),
                StatusCode::kUnauthenticated, "credential_malformed");
  ExpectRefused(ParseBearer(Bearer(std::string(kMaxTokenBytes + 1, 'x'))).status(),
                StatusCode::kUnauthenticated, "credential_malformed");
}

TEST(ParseBearer, RefusesEverythingElseAsMalformed) {
  const std::string token(30, 'k');
  const std::vector<std::string> bad = {
      "",
      "Bearer",
      "Bearer ",
      "Bearer      ",
      "Bearer" + token,
      "Bearer\t" + token,
      " Bearer " + token,
      "Basic " + token,
      "Bearers " + token,
      "Bearer " + token + " ",
      "Bearer " + token + " extra",
      "Bearer " + token.substr(0, 15) + " " + token.substr(15),
      "Bearer " + token + "==x",
      "Bearer " + token + "\n",
      "Bearer " + std::string(30, '='),
      "Bearer " + token.substr(0, 10) + "\"" + token.substr(10),
      "Bearer " + token.substr(0, 10) + "%2F" + token.substr(10),
      "Bearer " + token.substr(0, 10) + std::string(1, '\0') + token.substr(10),
      "Bearer " + token.substr(0, 10) + "\xc3\xa9" + token.substr(10),
  };
  for (const std::string& header : bad) {
    Result<std::string_view> parsed = ParseBearer(header);
    ExpectRefused(parsed.status(), StatusCode::kUnauthenticated, "credential_malformed");
    // The message never repeats what was presented.
    EXPECT_EQ(parsed.status().message().find(token), std::string_view::npos);
  }
}

TEST(FindTokenHash, GivesTheIndexOfTheMatchingHashAndSizeMaxForNone) {
  const std::vector<std::string> hashes = {crypto::Sha256("opt_first-token-of-the-three"),
                                           crypto::Sha256("opt_second-token-of-the-three"),
                                           crypto::Sha256("opt_third-token-of-the-three")};
  auto at = [&hashes](size_t i) { return std::string_view(hashes[i]); };
  EXPECT_EQ(FindTokenHash("opt_first-token-of-the-three", hashes.size(), at), 0u);
  EXPECT_EQ(FindTokenHash("opt_third-token-of-the-three", hashes.size(), at), 2u);
  EXPECT_EQ(FindTokenHash("opt_a-token-nobody-holds-here", hashes.size(), at), SIZE_MAX);
  // Only the first `count` hashes are looked at.
  EXPECT_EQ(FindTokenHash("opt_third-token-of-the-three", 2, at), SIZE_MAX);
  EXPECT_EQ(FindTokenHash("opt_first-token-of-the-three", 0, at), SIZE_MAX);
}

TEST(MakeToken, MakesDistinctLongTokensThatParse) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string a, MakeToken());
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string b, MakeToken());
  EXPECT_NE(a, b);
  ASSERT_EQ(a.size(), 4u + 43u);
  EXPECT_TRUE(a.starts_with("opt_"));
  const std::string header = Bearer(a);  // the parsed view points into it
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string_view parsed, ParseBearer(header));
  EXPECT_EQ(parsed, a);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string random, Base64Decode(a.substr(4), Base64Alphabet::kUrl));
  EXPECT_EQ(random.size(), 32u);
}

// ---- The credentials file

constexpr std::string_view kExample = R"(version: 1
credentials:
  - name: scorer-1
    token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    roles: [infer]
  - name: historian
    cert_common_name: historian.plant.example
    roles: [infer, read]
  - name: line-3-camera
    cert_sha256: 60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752
    roles:
      - label
      - infer
)";

TEST(Credentials, ParsesEachKindOfIdentity) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(Credentials parsed, ParseCredentials(kExample));
  ASSERT_EQ(parsed.entries.size(), 3u);
  EXPECT_EQ(parsed.entries[0].name, "scorer-1");
  EXPECT_EQ(parsed.entries[0].roles, kInferBit);
  EXPECT_EQ(HexEncode(parsed.entries[0].token_sha256),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  EXPECT_EQ(parsed.entries[1].cert_common_name, "historian.plant.example");
  EXPECT_EQ(parsed.entries[1].roles, kInferBit | kReadBit);
  EXPECT_EQ(parsed.entries[2].cert_sha256.size(), 32u);
  EXPECT_EQ(parsed.entries[2].roles, kInferBit | kLabelBit);
}

TEST(Credentials, FormatReadsBackUnchanged) {
  Credentials credentials;
  credentials.entries.push_back(TokenEntry("scorer-1", "token-one-aaaaaaaaaaaaaaaa", kInferBit));
  credentials.entries.push_back(
      {.name = "null", .roles = 0, .cert_common_name = "a \"quoted\" \\ name: # here "});
  credentials.entries.push_back(
      {.name = "cam.3_x-y", .roles = kAllRoles, .cert_sha256 = crypto::Sha256("der")});
  const std::string text = FormatCredentials(credentials);
  OUTPOST_ASSERT_OK_AND_ASSIGN(Credentials parsed, ParseCredentials(text));
  ASSERT_EQ(parsed.entries.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(parsed.entries[i].name, credentials.entries[i].name);
    EXPECT_EQ(parsed.entries[i].roles, credentials.entries[i].roles);
    EXPECT_EQ(parsed.entries[i].token_sha256, credentials.entries[i].token_sha256);
    EXPECT_EQ(parsed.entries[i].cert_common_name, credentials.entries[i].cert_common_name);
    EXPECT_EQ(parsed.entries[i].cert_sha256, credentials.entries[i].cert_sha256);
  }
  EXPECT_EQ(FormatCredentials(parsed), text);
  // The token itself is nowhere in the file.
  EXPECT_EQ(text.find("token-one"), std::string::npos);
}

TEST(Credentials, AnEmptyFileFormatsAndReadsBack) {
  const std::string text = FormatCredentials({});
  OUTPOST_ASSERT_OK_AND_ASSIGN(Credentials parsed, ParseCredentials(text));
  EXPECT_TRUE(parsed.entries.empty());
  OUTPOST_ASSERT_OK_AND_ASSIGN(Credentials null_list,
                               ParseCredentials("version: 1\ncredentials:\n"));
  EXPECT_TRUE(null_list.entries.empty());
}

// One entry's text with `body` as its lines after "  - ".
std::string OneEntry(const std::string& body) {
  return "version: 1\ncredentials:\n  - " + body + "\n";
}

const std::string kHash(64, 'a');

TEST(Credentials, RefusesEveryBreakOfTheFormatNamingTheLine) {
  struct Case {
    std::string text;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"version: 1\ncredentials: []\nextra: 1\n", "line 3: unknown key"},
      {"credentials: []\n", "version is missing"},
      {"version: 2\ncredentials: []\n", "version must be 1"},
      {"version: 1\n", "credentials is missing"},
      {"version: 1\nversion: 1\ncredentials: []\n", "given twice"},
      {"version: 1\ncredentials: {a: 1}\n", "must be a list"},
      {"version: 1\ncredentials:\n  - just-text\n", "line 3: an entry must be a map"},
      {"- a\n- b\n", "must be a map"},
      {"version: 1\ncredentials: [\n", "credentials file"},
      {OneEntry("token_sha256: " + kHash + "\n    roles: [infer]"), "needs a name"},
      {OneEntry("name: Bad\n    token_sha256: " + kHash + "\n    roles: []"), "credential name"},
      {OneEntry("name: -x\n    token_sha256: " + kHash + "\n    roles: []"), "credential name"},
      {OneEntry("name: [a]\n    token_sha256: " + kHash + "\n    roles: []"), "must be text"},
      {OneEntry("name: a\n    token_sha256: " + kHash), "needs roles"},
      {OneEntry("name: a\n    token_sha256: " + kHash + "\n    roles: infer"), "list of role"},
      {OneEntry("name: a\n    token_sha256: " + kHash + "\n    roles: [root]"), "line 5"},
      {OneEntry("name: a\n    token_sha256: " + kHash + "\n    roles: [read, read]"),
       "listed twice"},
      {OneEntry("name: a\n    roles: [read]"), "exactly one"},
      {OneEntry("name: a\n    token_sha256: " + kHash + "\n    cert_sha256: " + kHash +
                "\n    roles: [read]"),
       "exactly one"},
      {OneEntry("name: a\n    token_sha256: " + std::string(64, 'A') + "\n    roles: []"),
       "64 lowercase hex"},
      {OneEntry("name: a\n    cert_sha256: abcd\n    roles: []"), "64 lowercase hex"},
      {OneEntry("name: a\n    cert_common_name: ''\n    roles: []"), "empty"},
      {OneEntry("name: a\n    cert_common_name: " + std::string(65, 'c') + "\n    roles: []"),
       "longer than 64"},
      {OneEntry("name: a\n    cert_common_name: \"caf\\u00e9\"\n    roles: []"), "printable ASCII"},
      {OneEntry("name: a\n    cert_common_name: \"a\\tb\"\n    roles: []"), "printable ASCII"},
      {OneEntry("name: a\n    token_sha256: " + kHash + "\n    roles: []\n    role: [x]"),
       "unknown key \"role\""},
      {OneEntry("name: a\n    name: b\n    token_sha256: " + kHash + "\n    roles: []"),
       "given twice"},
      {"version: 1\ncredentials:\n  - {name: a, cert_common_name: x, roles: []}\n"
       "  - {name: a, cert_common_name: y, roles: []}\n",
       "line 4: the name \"a\" is given twice"},
      {"version: 1\ncredentials:\n  - {name: a, token_sha256: " + kHash + ", roles: []}\n" +
           "  - {name: b, token_sha256: " + kHash + ", roles: [read]}\n",
       "identity of an earlier entry"},
      {"version: 1\ncredentials:\n  - {name: a, cert_common_name: x, roles: []}\n"
       "  - {name: b, cert_common_name: x, roles: []}\n",
       "identity of an earlier entry"},
  };
  for (const Case& c : cases) {
    Result<Credentials> parsed = ParseCredentials(c.text);
    ExpectRefused(parsed.status(), StatusCode::kInvalidArgument, "bad_credentials");
    EXPECT_NE(parsed.status().message().find(c.says), std::string_view::npos)
        << c.text << " -> " << parsed.status().ToString();
  }
}

TEST(Credentials, RefusesMoreThan4096EntriesAndMoreThanOneMebibyte) {
  std::string many = "version: 1\ncredentials:\n";
  for (int i = 0; i < 4097; ++i) {
    many += "  - {name: n" + std::to_string(i) + ", cert_common_name: c" + std::to_string(i) +
            ", roles: []}\n";
  }
  Result<Credentials> parsed = ParseCredentials(many);
  ExpectRefused(parsed.status(), StatusCode::kInvalidArgument, "bad_credentials");
  EXPECT_NE(parsed.status().message().find("4096"), std::string_view::npos);

  std::string big = "version: 1\ncredentials: []\n# " + std::string(1 << 20, 'x') + "\n";
  ExpectRefused(ParseCredentials(big).status(), StatusCode::kInvalidArgument, "bad_credentials");
}

// ---- The Authenticator: tokens

struct TokenFixture {
  std::vector<std::string> tokens;
  std::shared_ptr<const Authenticator> authenticator;
};

// `n` token entries "client-<i>"; entry i holds role infer, and read when i is odd.
TokenFixture ManyTokens(int n) {
  TokenFixture fixture;
  Credentials credentials;
  for (int i = 0; i < n; ++i) {
    fixture.tokens.push_back(*MakeToken());
    credentials.entries.push_back(TokenEntry("client-" + std::to_string(i), fixture.tokens.back(),
                                             kInferBit | (i % 2 ? kReadBit : 0)));
  }
  fixture.authenticator = *Authenticator::FromParts(std::move(credentials), "", "");
  return fixture;
}

TEST(Authenticator, EveryTokenFindsItsOwnEntryAmongMany) {
  TokenFixture fixture = ManyTokens(40);
  EXPECT_EQ(fixture.authenticator->size(), 40u);
  for (int i = 0; i < 40; ++i) {
    const std::string header = Bearer(fixture.tokens[i]);
    OUTPOST_ASSERT_OK_AND_ASSIGN(Principal who,
                                 fixture.authenticator->Authenticate({.authorization = header}));
    EXPECT_EQ(who.name, "client-" + std::to_string(i));
    EXPECT_EQ(who.roles, kInferBit | (i % 2 ? kReadBit : 0));
    EXPECT_EQ(who.via, Principal::Via::kToken);
  }
}

TEST(Authenticator, RefusesAMissingAMalformedAndAnUnknownToken) {
  TokenFixture fixture = ManyTokens(5);
  ExpectRefused(fixture.authenticator->Authenticate({}).status(), StatusCode::kUnauthenticated,
                "credential_missing");
  ExpectRefused(fixture.authenticator->Authenticate({.authorization = "Basic abc"}).status(),
                StatusCode::kUnauthenticated, "credential_malformed");
  ExpectRefused(fixture.authenticator->Authenticate({.authorization = "Bearer short"}).status(),
                StatusCode::kUnauthenticated, "credential_malformed");
  const std::string stranger = Bearer(*MakeToken());
  Result<Principal> refused = fixture.authenticator->Authenticate({.authorization = stranger});
  ExpectRefused(refused.status(), StatusCode::kUnauthenticated, "credential_invalid");
  EXPECT_EQ(refused.status().message().find(stranger.substr(7)), std::string_view::npos);
  // A token that differs from a stored one in its last character.
  std::string near = fixture.tokens[2];
  near.back() = near.back() == 'A' ? 'B' : 'A';
  ExpectRefused(fixture.authenticator->Authenticate({.authorization = Bearer(near)}).status(),
                StatusCode::kUnauthenticated, "credential_invalid");
  // Nothing changed: the entries still authenticate.
  EXPECT_EQ(fixture.authenticator->size(), 5u);
  const std::string header = Bearer(fixture.tokens[2]);
  EXPECT_TRUE(fixture.authenticator->Authenticate({.authorization = header}).ok());
}

TEST(Authenticator, TheHashOfAShortSecretIsNeverLookedUp) {
  // An entry whose token is shorter than the minimum can never be presented.
  Credentials credentials;
  credentials.entries.push_back(TokenEntry("short", "abc", kAllRoles));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto authenticator,
                               Authenticator::FromParts(std::move(credentials), "", ""));
  ExpectRefused(authenticator->Authenticate({.authorization = "Bearer abc"}).status(),
                StatusCode::kUnauthenticated, "credential_malformed");
}

TEST(Authenticator, FromPartsRefusesBadEntriesAndACrlWithoutACa) {
  Credentials two_identities;
  Credential both = TokenEntry("a", "t", kInferBit);
  both.cert_common_name = "x";
  two_identities.entries.push_back(both);
  ExpectRefused(Authenticator::FromParts(two_identities, "", "").status(),
                StatusCode::kInvalidArgument, "bad_credentials");
  Credentials short_hash;
  short_hash.entries.push_back({.name = "a", .token_sha256 = "abc"});
  ExpectRefused(Authenticator::FromParts(short_hash, "", "").status(), StatusCode::kInvalidArgument,
                "bad_credentials");
  Credentials bad_roles;
  bad_roles.entries.push_back({.name = "a", .roles = 1u << 7, .cert_common_name = "x"});
  ExpectRefused(Authenticator::FromParts(bad_roles, "", "").status(), StatusCode::kInvalidArgument,
                "bad_credentials");

  TestCa ca = TestCa::Make("clients");
  ExpectRefused(Authenticator::FromParts({}, "", ca.Crl({})).status(),
                StatusCode::kFailedPrecondition, "bad_client_crl");
  ExpectRefused(Authenticator::FromParts({}, "not a certificate", "").status(),
                StatusCode::kFailedPrecondition, "bad_client_ca");
  ExpectRefused(Authenticator::FromParts({}, ca.cert_pem, "not a crl").status(),
                StatusCode::kFailedPrecondition, "bad_client_crl");
  OUTPOST_EXPECT_OK(Authenticator::FromParts({}, ca.cert_pem, ca.Crl({})).status());
}

// ---- The Authenticator: certificates

class CertificateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = TestCa::Make("clients CA");
    pinned_der_ = ca_.Client("pinned-camera");
    revoked_der_ = ca_.Client("historian.plant.example");
    Credentials credentials;
    credentials.entries.push_back({.name = "historian",
                                   .roles = kInferBit | kReadBit,
                                   .cert_common_name = "historian.plant.example"});
    credentials.entries.push_back(
        {.name = "camera", .roles = kLabelBit, .cert_sha256 = crypto::Sha256(pinned_der_)});
    // The same common name as the pinned certificate: the pin wins.
    credentials.entries.push_back(
        {.name = "camera-by-name", .roles = kAdminBit, .cert_common_name = "pinned-camera"});
    credentials.entries.push_back(TokenEntry("scorer", token_, kInferBit));
    credentials_ = credentials;
    authenticator_ =
        *Authenticator::FromParts(credentials, ca_.cert_pem, ca_.Crl({SerialOf(revoked_der_)}));
  }

  Status Refusal(const std::string& der) const {
    return authenticator_->Authenticate({.cert_der = der}).status();
  }

  TestCa ca_;
  std::string pinned_der_, revoked_der_;
  const std::string token_ = "opt_token-of-the-scorer-0123456789";
  Credentials credentials_;
  std::shared_ptr<const Authenticator> authenticator_;
};

TEST_F(CertificateTest, MatchesByCommonNameAndByPinPinFirst) {
  const std::string der = ca_.Client("historian.plant.example");
  OUTPOST_ASSERT_OK_AND_ASSIGN(Principal by_name, authenticator_->Authenticate({.cert_der = der}));
  EXPECT_EQ(by_name.name, "historian");
  EXPECT_EQ(by_name.roles, kInferBit | kReadBit);
  EXPECT_EQ(by_name.via, Principal::Via::kCertificate);
  OUTPOST_ASSERT_OK_AND_ASSIGN(Principal pinned,
                               authenticator_->Authenticate({.cert_der = pinned_der_}));
  EXPECT_EQ(pinned.name, "camera");
  // Another certificate with the pinned one's name matches by name.
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      Principal named, authenticator_->Authenticate({.cert_der = ca_.Client("pinned-camera")}));
  EXPECT_EQ(named.name, "camera-by-name");
}

TEST_F(CertificateTest, RepeatedCallsGiveTheSameAnswer) {
  for (int i = 0; i < 5; ++i) {
    OUTPOST_ASSERT_OK_AND_ASSIGN(Principal who,
                                 authenticator_->Authenticate({.cert_der = pinned_der_}));
    EXPECT_EQ(who.name, "camera");
    ExpectRefused(Refusal(revoked_der_), StatusCode::kUnauthenticated, "certificate_revoked");
  }
}

TEST_F(CertificateTest, AVerifiedCertificateNoEntryNamesIsInvalid) {
  ExpectRefused(Refusal(ca_.Client("stranger")), StatusCode::kUnauthenticated,
                "credential_invalid");
}

TEST_F(CertificateTest, ACertificateFromAnotherCaIsUntrusted) {
  TestCa other = TestCa::Make("clients CA");  // the same name, another key
  ExpectRefused(Refusal(other.Client("historian.plant.example")), StatusCode::kUnauthenticated,
                "certificate_untrusted");
  // Nothing changed: the CA's own certificates still pass.
  EXPECT_TRUE(authenticator_->Authenticate({.cert_der = pinned_der_}).ok());
}

TEST_F(CertificateTest, AnExpiredOrNotYetValidCertificateIsExpired) {
  ExpectRefused(
      Refusal(ca_.Client("historian.plant.example", {NowS() - 7 * 86400, NowS() - 86400})),
      StatusCode::kUnauthenticated, "certificate_expired");
  ExpectRefused(
      Refusal(ca_.Client("historian.plant.example", {NowS() + 86400, NowS() + 7 * 86400})),
      StatusCode::kUnauthenticated, "certificate_expired");
}

TEST_F(CertificateTest, ARevokedCertificateIsRevokedAndOthersStillPass) {
  ExpectRefused(Refusal(revoked_der_), StatusCode::kUnauthenticated, "certificate_revoked");
  EXPECT_TRUE(
      authenticator_->Authenticate({.cert_der = ca_.Client("historian.plant.example")}).ok());
}

TEST_F(CertificateTest, ACertificateForServersOnlyIsUntrusted) {
  ExpectRefused(Refusal(ca_.Client("historian.plant.example", {}, {ExtendedKeyUsage::kServerAuth})),
                StatusCode::kUnauthenticated, "certificate_untrusted");
}

TEST_F(CertificateTest, BytesThatAreNoCertificateAreUntrusted) {
  ExpectRefused(Refusal("not DER"), StatusCode::kUnauthenticated, "certificate_untrusted");
  ExpectRefused(Refusal(pinned_der_ + "x"), StatusCode::kUnauthenticated, "certificate_untrusted");
  ExpectRefused(Refusal(pinned_der_.substr(0, pinned_der_.size() - 1)),
                StatusCode::kUnauthenticated, "certificate_untrusted");
}

TEST_F(CertificateTest, ATokenWinsOverACertificate) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      Principal who,
      authenticator_->Authenticate({.authorization = Bearer(token_), .cert_der = pinned_der_}));
  EXPECT_EQ(who.name, "scorer");
  // A bad token is refused even with a good certificate.
  ExpectRefused(
      authenticator_
          ->Authenticate({.authorization = Bearer(std::string(30, 'z')), .cert_der = pinned_der_})
          .status(),
      StatusCode::kUnauthenticated, "credential_invalid");
}

TEST_F(CertificateTest, WithoutAClientCaEveryCertificateIsUntrusted) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto no_ca, Authenticator::FromParts(credentials_, "", ""));
  Status refused = no_ca->Authenticate({.cert_der = pinned_der_}).status();
  ExpectRefused(refused, StatusCode::kUnauthenticated, "certificate_untrusted");
  // Tokens still work.
  EXPECT_TRUE(no_ca->Authenticate({.authorization = Bearer(token_)}).ok());
}

TEST_F(CertificateTest, AStaleCrlStillRevokes) {
  const std::string der = ca_.Client("historian.plant.example");
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto stale,
      Authenticator::FromParts(credentials_, ca_.cert_pem, ca_.Crl({SerialOf(der)}, NowS() - 30)));
  ExpectRefused(stale->Authenticate({.cert_der = der}).status(), StatusCode::kUnauthenticated,
                "certificate_revoked");
  EXPECT_TRUE(stale->Authenticate({.cert_der = pinned_der_}).ok());
}

TEST_F(CertificateTest, ManyDistinctCertificatesOverflowTheCacheWithoutChangingAnswers) {
  // More distinct certificates than the cache holds: each is refused, and the ones that
  // pass still pass afterwards.
  for (int i = 0; i < 1100; ++i) {
    ExpectRefused(Refusal("not a certificate " + std::to_string(i)), StatusCode::kUnauthenticated,
                  "certificate_untrusted");
  }
  EXPECT_TRUE(authenticator_->Authenticate({.cert_der = pinned_der_}).ok());
  ExpectRefused(Refusal(revoked_der_), StatusCode::kUnauthenticated, "certificate_revoked");
}

TEST_F(CertificateTest, ConcurrentCallersGetTheSameAnswers) {
  const std::string by_name = ca_.Client("historian.plant.example");
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        Result<Principal> pinned = authenticator_->Authenticate({.cert_der = pinned_der_});
        Result<Principal> named = authenticator_->Authenticate({.cert_der = by_name});
        Status revoked = Refusal(revoked_der_);
        if (!pinned.ok() || pinned->name != "camera" || !named.ok() || named->name != "historian" ||
            revoked.reason() != "certificate_revoked") {
          ++wrong;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(ClientCertificateVerifier, GivesEachReasonDirectly) {
  TestCa ca = TestCa::Make("clients");
  const std::string good = ca.Client("a");
  const std::string revoked = ca.Client("b");
  const std::string crl = ca.Crl({SerialOf(revoked)});
  OUTPOST_EXPECT_OK(crypto::VerifyClientCertificateDer(good, ca.cert_pem, crl, NowS()));
  ExpectRefused(crypto::VerifyClientCertificateDer(revoked, ca.cert_pem, crl, NowS()),
                StatusCode::kPermissionDenied, "certificate_revoked");
  ExpectRefused(crypto::VerifyClientCertificateDer(good, ca.cert_pem, crl, NowS() + 2 * 86400),
                StatusCode::kPermissionDenied, "certificate_expired");
  ExpectRefused(crypto::VerifyClientCertificateDer(good, TestCa::Make("x").cert_pem, "", NowS()),
                StatusCode::kPermissionDenied, "certificate_untrusted");
  ExpectRefused(crypto::VerifyClientCertificateDer(good, "", "", NowS()),
                StatusCode::kInvalidArgument, "bad_client_ca");
  EXPECT_EQ(ca.issuer->IssueCrl({"not hex"}, {NowS(), NowS() + 60}).status().code(),
            StatusCode::kInvalidArgument);
}

// ---- Loading files

class LoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = dir_.File("auth");
    OUTPOST_ASSERT_OK(MakeDirectories(folder_, 0700));
    ::chmod(folder_.c_str(), 0700);
    path_ = folder_ + "/credentials.yaml";
    token_ = *MakeToken();
    Credentials credentials;
    credentials.entries.push_back(TokenEntry("scorer-1", token_, kInferBit));
    OUTPOST_ASSERT_OK(WriteFileAtomically(path_, FormatCredentials(credentials), 0600));
    SetLogOptions({.sink = [this](std::string_view line) { log_.emplace_back(line); }});
  }
  void TearDown() override { SetLogOptions({}); }

  // Whether a warning names exactly `path` (not a file inside it).
  bool Warned(const std::string& path) const {
    const std::string field = "path=" + path;
    for (const std::string& line : log_) {
      const size_t at = line.find(field);
      const size_t after = at + field.size();
      if (line.find("WARN") != std::string::npos && at != std::string::npos &&
          (after == line.size() || line[after] == ' ')) {
        return true;
      }
    }
    return false;
  }

  testing::TempDir dir_;
  std::string folder_, path_, token_;
  std::vector<std::string> log_;
};

TEST_F(LoadTest, LoadsAPrivateFileWithoutAWarning) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto authenticator,
                               Authenticator::Load({.credentials_file = path_}));
  EXPECT_EQ(authenticator->size(), 1u);
  EXPECT_TRUE(authenticator->Authenticate({.authorization = Bearer(token_)}).ok());
  EXPECT_FALSE(Warned(path_));
}

TEST_F(LoadTest, WarnsNamingALooseFileOrFolderAndStillLoads) {
  ASSERT_EQ(::chmod(path_.c_str(), 0644), 0);
  ASSERT_EQ(::chmod(folder_.c_str(), 0755), 0);
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto authenticator,
                               Authenticator::Load({.credentials_file = path_}));
  EXPECT_EQ(authenticator->size(), 1u);
  EXPECT_TRUE(Warned(path_));
  EXPECT_TRUE(Warned(folder_));
  // Load only warns: the modes are as they were.
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST_F(LoadTest, RefusesMissingAndBadFiles) {
  ExpectRefused(Authenticator::Load({.credentials_file = dir_.File("absent.yaml")}).status(),
                StatusCode::kFailedPrecondition, "auth_file_unreadable");
  ExpectRefused(
      Authenticator::Load({.credentials_file = path_, .client_ca_file = dir_.File("ca.pem")})
          .status(),
      StatusCode::kFailedPrecondition, "auth_file_unreadable");
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("ca.pem"), "garbage", 0644));
  ExpectRefused(
      Authenticator::Load({.credentials_file = path_, .client_ca_file = dir_.File("ca.pem")})
          .status(),
      StatusCode::kFailedPrecondition, "bad_client_ca");
  const std::string bad = dir_.File("bad.yaml");
  OUTPOST_ASSERT_OK(WriteFileAtomically(bad, "version: 1\ncredentials: 7\n", 0600));
  Status refused = Authenticator::Load({.credentials_file = bad}).status();
  ExpectRefused(refused, StatusCode::kInvalidArgument, "bad_credentials");
  EXPECT_NE(refused.message().find(bad), std::string_view::npos);
}

TEST_F(LoadTest, AReloadIsANewAuthenticatorAndTheOldOneIsUnchanged) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto before, Authenticator::Load({.credentials_file = path_}));
  const std::string new_token = *MakeToken();
  Credentials replaced;
  replaced.entries.push_back(TokenEntry("scorer-2", new_token, kInferBit | kReadBit));
  OUTPOST_ASSERT_OK(WriteFileAtomically(path_, FormatCredentials(replaced), 0600));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto after, Authenticator::Load({.credentials_file = path_}));
  EXPECT_TRUE(before->Authenticate({.authorization = Bearer(token_)}).ok());
  ExpectRefused(before->Authenticate({.authorization = Bearer(new_token)}).status(),
                StatusCode::kUnauthenticated, "credential_invalid");
  ExpectRefused(after->Authenticate({.authorization = Bearer(token_)}).status(),
                StatusCode::kUnauthenticated, "credential_invalid");
  OUTPOST_ASSERT_OK_AND_ASSIGN(Principal who,
                               after->Authenticate({.authorization = Bearer(new_token)}));
  EXPECT_EQ(who.name, "scorer-2");
}

TEST_F(LoadTest, LoadsAClientCaAndCrl) {
  TestCa ca = TestCa::Make("clients");
  const std::string revoked = ca.Client("cam");
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("ca.pem"), ca.cert_pem, 0644));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("crl.pem"), ca.Crl({SerialOf(revoked)}), 0644));
  Credentials credentials;
  credentials.entries.push_back({.name = "cam", .roles = kInferBit, .cert_common_name = "cam"});
  OUTPOST_ASSERT_OK(WriteFileAtomically(path_, FormatCredentials(credentials), 0600));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto authenticator,
                               Authenticator::Load({.credentials_file = path_,
                                                    .client_ca_file = dir_.File("ca.pem"),
                                                    .client_crl_file = dir_.File("crl.pem")}));
  EXPECT_TRUE(authenticator->Authenticate({.cert_der = ca.Client("cam")}).ok());
  ExpectRefused(authenticator->Authenticate({.cert_der = revoked}).status(),
                StatusCode::kUnauthenticated, "certificate_revoked");
}

}  // namespace
}  // namespace outpost::auth
