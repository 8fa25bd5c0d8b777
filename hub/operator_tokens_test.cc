// Operator tokens and store URLs (hub/FORMAT.md section 6): the tokens file parsed and
// refused entry by entry, written back unchanged, a looser mode warned about; `operator
// add`'s token shown once and stored as a hash; presented tokens checked against every
// entry (unknown, short, malformed refused); tokens in URLs recognised; store URLs with a
// password refused where they could be read and taken from a file or the environment.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <mutex>
#include <string>
#include <vector>

#include "base/crypto/crypto.h"
#include "base/file.h"
#include "base/logging.h"
#include "base/testing/test_util.h"
#include "hub/operator_tokens.h"
#include "hub/secrets.h"

namespace outpost::hub {
namespace {

using ::outpost::testing::TempDir;

const std::string kHashA(64, 'a');
const std::string kHashB(64, 'b');

std::string Entry(const std::string& name, const std::string& tenant, const std::string& hash) {
  return "  - name: " + name + "\n    tenant: " + tenant + "\n    token_sha256: " + hash + "\n";
}

// Collects the warnings logged while it lives.
class LogCapture {
 public:
  LogCapture() {
    SetLogOptions({.min_level = LogLevel::kWarning, .sink = [this](std::string_view line) {
                     std::lock_guard<std::mutex> lock(mu_);
                     lines_.emplace_back(line);
                   }});
  }
  ~LogCapture() { SetLogOptions({}); }
  std::string All() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string all;
    for (const std::string& l : lines_) all += l + "\n";
    return all;
  }

 private:
  std::mutex mu_;  // guards lines_
  std::vector<std::string> lines_;
};

TEST(OperatorTokens, ParsesEntriesAndFormatsThemBackUnchanged) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(OperatorTokens tokens,
                               ParseOperatorTokens("operators:\n" + Entry("alice", "acme", kHashA) +
                                                   Entry("bob.ops", "globex", kHashB)));
  ASSERT_EQ(tokens.entries.size(), 2u);
  EXPECT_EQ(tokens.entries[0].name, "alice");
  EXPECT_EQ(tokens.entries[0].tenant, "acme");
  EXPECT_EQ(tokens.entries[0].token_sha256, std::string(32, '\xaa'));
  EXPECT_EQ(tokens.entries[1].tenant, "globex");
  OUTPOST_ASSERT_OK_AND_ASSIGN(OperatorTokens again,
                               ParseOperatorTokens(FormatOperatorTokens(tokens)));
  ASSERT_EQ(again.entries.size(), 2u);
  EXPECT_EQ(again.entries[1].name, "bob.ops");
  EXPECT_EQ(again.entries[1].token_sha256, tokens.entries[1].token_sha256);
  // Names that YAML would read as another type when bare are written quoted.
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      OperatorTokens typed,
      ParseOperatorTokens("operators:\n" + Entry("\"true\"", "\"null\"", kHashA)));
  EXPECT_EQ(typed.entries[0].tenant, "null");
  OUTPOST_ASSERT_OK_AND_ASSIGN(OperatorTokens typed_again,
                               ParseOperatorTokens(FormatOperatorTokens(typed)));
  EXPECT_EQ(typed_again.entries[0].name, "true");
  EXPECT_EQ(typed_again.entries[0].tenant, "null");
  EXPECT_FALSE(ParseOperatorTokens("operators:\n" + Entry("alice", "null", kHashA)).ok());
  // An empty file, or an empty list, holds no operator.
  EXPECT_TRUE(ParseOperatorTokens("").value().entries.empty());
  EXPECT_TRUE(ParseOperatorTokens("operators: []\n").value().entries.empty());
  EXPECT_TRUE(ParseOperatorTokens(FormatOperatorTokens({})).value().entries.empty());
}

TEST(OperatorTokens, RefusesEveryMalformedFileWithItsReason) {
  const std::vector<std::string> bad = {
      "operators: {a: 1}\n",
      "- a list\n",
      "operators:\n" + Entry("alice", "acme", kHashA) + "tokens: []\n",  // unknown top key
      "operators:\n  - {name: alice, tenant: acme}\n",                   // no hash
      "operators:\n  - {name: alice, tenant: acme, token_sha256: " + kHashA + ", role: x}\n",
      "operators:\n  - {name: alice, tenant: acme, token: op-secret}\n",  // a token in the clear
      "operators:\n" + Entry("alice", "acme", std::string(63, 'a')),
      "operators:\n" + Entry("alice", "acme", std::string(64, 'A')),  // upper case
      "operators:\n" + Entry("alice", "acme", std::string(64, 'g')),  // not hex
      "operators:\n" + Entry("al ice", "acme", kHashA),
      "operators:\n" + Entry("alice", "ac/me", kHashA),
      "operators:\n" + Entry("alice", "acme", kHashA) + Entry("alice", "globex", kHashB),
      "operators:\n" + Entry("alice", "acme", kHashA) + Entry("bob", "acme", kHashA),
      "operators:\n  - {name: [x], tenant: acme, token_sha256: " + kHashA + "}\n",
      "operators: [\n",  // not YAML
  };
  for (const std::string& text : bad) {
    Result<OperatorTokens> parsed = ParseOperatorTokens(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(parsed.status().reason(), "bad_operator_tokens")
        << text << parsed.status().ToString();
  }
  EXPECT_FALSE(ParseOperatorTokens(std::string(kMaxOperatorTokensBytes + 1, '#')).ok());
}

TEST(OperatorTokens, AddPrintsATokenOnceAndStoresOnlyItsHash) {
  TempDir dir;
  const std::string path = dir.File("operators.yaml");
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string token, AddOperatorToken(path, "alice", "acme"));
  EXPECT_TRUE(token.starts_with("opt_")) << token;
  EXPECT_GE(token.size(), 47u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string text, ReadFile(path));
  EXPECT_EQ(text.find(token), std::string::npos) << "the token itself is stored";
  EXPECT_EQ(text.find(token.substr(4)), std::string::npos);
  EXPECT_NE(text.find(crypto::Sha256Hex(token)), std::string::npos) << text;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string second, AddOperatorToken(path, "bob", "globex"));
  EXPECT_NE(second, token);
  OUTPOST_ASSERT_OK_AND_ASSIGN(OperatorTokens loaded, LoadOperatorTokens(path));
  ASSERT_EQ(loaded.entries.size(), 2u);
  OUTPOST_ASSERT_OK_AND_ASSIGN(Caller alice, AuthenticateOperator(loaded, "Bearer " + token));
  EXPECT_EQ(alice.kind, Caller::Kind::kOperator);
  EXPECT_EQ(alice.tenant, "acme");
  EXPECT_EQ(alice.credential, "alice");
  OUTPOST_ASSERT_OK_AND_ASSIGN(Caller bob, AuthenticateOperator(loaded, "bearer  " + second));
  EXPECT_EQ(bob.tenant, "globex");

  // A name already there, a bad name or tenant: refused, the file unchanged.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string before, ReadFile(path));
  Result<std::string> again = AddOperatorToken(path, "alice", "globex");
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(again.status().reason(), "operator_exists");
  EXPECT_EQ(AddOperatorToken(path, "-x", "acme").status().reason(), "bad_operator_tokens");
  EXPECT_EQ(AddOperatorToken(path, "carol", "a b").status().reason(), "bad_operator_tokens");
  EXPECT_EQ(ReadFile(path).value(), before);
  // A damaged file is not overwritten.
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("bad.yaml"), "operators: 7\n", 0600));
  EXPECT_EQ(AddOperatorToken(dir.File("bad.yaml"), "carol", "acme").status().reason(),
            "bad_operator_tokens");
  EXPECT_EQ(ReadFile(dir.File("bad.yaml")).value(), "operators: 7\n");
}

TEST(OperatorTokens, AFileOthersMayReadIsLoadedWithAWarningNamingIt) {
  TempDir dir;
  const std::string path = dir.File("operators.yaml");
  OUTPOST_ASSERT_OK(
      WriteFileAtomically(path, "operators:\n" + Entry("alice", "acme", kHashA), 0600));
  {
    LogCapture log;
    OUTPOST_EXPECT_OK(LoadOperatorTokens(path).status());
    EXPECT_EQ(log.All(), "");
  }
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  LogCapture log;
  OUTPOST_ASSERT_OK_AND_ASSIGN(OperatorTokens tokens, LoadOperatorTokens(path));
  EXPECT_EQ(tokens.entries.size(), 1u);
  const std::string warned = log.All();
  EXPECT_NE(warned.find(path), std::string::npos) << warned;
  EXPECT_NE(warned.find("0644"), std::string::npos) << warned;
  EXPECT_EQ(LoadOperatorTokens(dir.File("absent.yaml")).status().code(), StatusCode::kNotFound);
}

TEST(OperatorTokens, PresentedTokensAreCheckedAgainstEveryEntry) {
  const std::string token = "opt_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
  OperatorTokens tokens;
  tokens.entries.push_back({.name = "a", .tenant = "acme", .token_sha256 = crypto::Sha256("x")});
  tokens.entries.push_back(
      {.name = "b", .tenant = "globex", .token_sha256 = crypto::Sha256(token)});
  OUTPOST_ASSERT_OK_AND_ASSIGN(Caller caller, AuthenticateOperator(tokens, "Bearer " + token));
  EXPECT_EQ(caller.tenant, "globex");
  const std::vector<std::string> refused = {
      "",                               // none
      "Bearer",                         // no token
      "Bearer x",                       // the first entry's token, far under 128 bits
      "Bearer " + token.substr(0, 21),  // 21 characters: under the minimum
      "Bearer " + token + "A",          // a longer token
      "Bearer " + token.substr(0, token.size() - 1),
      "Basic " + token,                   // another scheme
      "Bearer " + token + " extra",       // trailing text
      "Bearer " + std::string(600, 'a'),  // over the maximum
      token,                              // no scheme
  };
  for (const std::string& header : refused) {
    Result<Caller> who = AuthenticateOperator(tokens, header);
    ASSERT_FALSE(who.ok()) << header;
    EXPECT_EQ(who.status().code(), StatusCode::kUnauthenticated) << header;
    EXPECT_EQ(who.status().reason(), "operator_token") << header;
  }
  // No operators: nothing authenticates.
  EXPECT_FALSE(AuthenticateOperator(OperatorTokens{}, "Bearer " + token).ok());
}

TEST(OperatorTokens, TokenInQueryFindsTokenAndAccessTokenParametersOnly) {
  EXPECT_TRUE(TokenInQuery("/?token=abc"));
  EXPECT_TRUE(TokenInQuery("/api/v1/sites?x=1&token=abc"));
  EXPECT_TRUE(TokenInQuery("/api/v1/sites?Token"));
  EXPECT_TRUE(TokenInQuery("/x?access_token=abc#frag"));
  EXPECT_FALSE(TokenInQuery("/token"));
  EXPECT_FALSE(TokenInQuery("/api/v1/sites?tokens=1&my_token=2"));
  EXPECT_FALSE(TokenInQuery("/x#token=abc"));
  EXPECT_FALSE(TokenInQuery("/x"));
}

TEST(StoreUrl, APasswordIsFoundInTheUserInfoOrTheQuery) {
  EXPECT_TRUE(StoreUrlHasPassword("postgresql://hub:s3cret@db:5432/outpost"));
  EXPECT_TRUE(StoreUrlHasPassword("postgres://hub:@db/outpost"));
  EXPECT_TRUE(StoreUrlHasPassword("postgresql://db/outpost?sslmode=require&password=x"));
  EXPECT_TRUE(StoreUrlHasPassword("postgresql:///outpost?host=/run&PASSWORD=x"));
  EXPECT_FALSE(StoreUrlHasPassword("postgresql://hub@db:5432/outpost"));
  EXPECT_FALSE(StoreUrlHasPassword("postgresql://[::1]:5432/outpost?user=hub"));
  EXPECT_FALSE(StoreUrlHasPassword("postgresql://hub@db/out:post"));
  EXPECT_FALSE(StoreUrlHasPassword("sqlite:/var/lib/outpost-hub/hub.db"));
  EXPECT_FALSE(StoreUrlHasPassword("sqlite:///var/lib/a:b@c/hub.db"));
}

TEST(StoreUrl, ResolvedFromTheFlagTheFileTheEnvironmentOrTheFallback) {
  TempDir dir;
  ::unsetenv(kStoreUrlEnv);
  const std::string secret = "postgresql://hub:s3cret@db/outpost";
  // A password given directly is refused, naming the safe ways and not echoing the URL.
  Result<std::string> refused = ResolveStoreUrl({.url = secret});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().reason(), "store_url_password");
  EXPECT_NE(refused.status().message().find("--store-url-file"), std::string_view::npos);
  EXPECT_NE(refused.status().message().find(kStoreUrlEnv), std::string_view::npos);
  EXPECT_EQ(refused.status().message().find("s3cret"), std::string_view::npos);
  EXPECT_EQ(ResolveStoreUrl({.url = "sqlite:/x.db"}).value(), "sqlite:/x.db");

  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("url"), "  " + secret + "\n", 0600));
  EXPECT_EQ(ResolveStoreUrl({.url_file = dir.File("url")}).value(), secret);
  EXPECT_EQ(ResolveStoreUrl({.url = "sqlite:/x.db", .url_file = dir.File("url")}).status().code(),
            StatusCode::kInvalidArgument);
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("empty"), "\n", 0600));
  EXPECT_EQ(ResolveStoreUrl({.url_file = dir.File("empty")}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveStoreUrl({.url_file = dir.File("absent")}).status().code(),
            StatusCode::kNotFound);

  EXPECT_EQ(ResolveStoreUrl({.fallback = "sqlite:/d/hub.db"}).value(), "sqlite:/d/hub.db");
  EXPECT_FALSE(ResolveStoreUrl({}).ok());
  ASSERT_EQ(::setenv(kStoreUrlEnv, secret.c_str(), 1), 0);
  EXPECT_EQ(ResolveStoreUrl({.fallback = "sqlite:/d/hub.db"}).value(), secret);
  EXPECT_EQ(ResolveStoreUrl({.url = "sqlite:/x.db"}).value(), "sqlite:/x.db");
  ::unsetenv(kStoreUrlEnv);
}

}  // namespace
}  // namespace outpost::hub
