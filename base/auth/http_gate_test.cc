// The edge's HTTP gate: Host (DNS rebinding), Content-Type (drive-by form posts), then the
// route's access, with and without an authenticator, and a swap of the authenticator while
// the gate is in use. Each refusal is checked with what it leaves alone: the caller stays
// kNone and, through a Router, the handler never runs.
#include "base/auth/http_gate.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "base/crypto/crypto.h"
#include "base/testing/test_util.h"

namespace outpost::auth {
namespace {

constexpr uint32_t kInfer = RoleBit(Role::kInfer);
constexpr uint32_t kAdmin = RoleBit(Role::kAdmin);
constexpr uint32_t kLabel = RoleBit(Role::kLabel);

// A request as a listener hands it over; `headers` point to literals or to `storage`.
struct TestRequest {
  std::vector<std::string> storage;
  http::Request request;

  TestRequest(std::string method, std::string host) {
    request.method = std::move(method);
    request.target = "/v2/models/pump/infer";
    if (!host.empty()) Add("Host", host);
  }
  TestRequest& Add(std::string name, std::string value) {
    storage.reserve(64);  // the views below must not move
    storage.push_back(std::move(name));
    const std::string& n = storage.back();
    storage.push_back(std::move(value));
    request.headers.push_back({n, storage.back()});
    return *this;
  }
  TestRequest& Body(std::string body, std::string content_type = "application/json") {
    request.body = std::move(body);
    if (!content_type.empty()) Add("Content-Type", content_type);
    return *this;
  }
};

std::string Bearer(const std::string& token) { return "Bearer " + token; }

std::shared_ptr<const Authenticator> MakeAuthenticator(const std::string& token,
                                                       const std::string& name, RoleSet roles) {
  Credentials credentials;
  credentials.entries.push_back(
      {.name = name, .roles = roles, .token_sha256 = crypto::Sha256(token)});
  return *Authenticator::FromParts(std::move(credentials), "", "");
}

// The reason in an error body, as {"error": ..., "reason": "<reason>"} spells it.
bool BodyHasReason(const http::Response& response, const std::string& reason) {
  return response.body.find("\"reason\":\"" + reason + "\"") != std::string::npos ||
         response.body.find("\"reason\": \"" + reason + "\"") != std::string::npos;
}

bool HasHeader(const http::Response& response, const std::string& name, const std::string& value) {
  for (const auto& [n, v] : response.headers) {
    if (n == name && v == value) return true;
  }
  return false;
}

// Runs the gate and checks a refusal: the status, the reason, and the caller left alone.
void ExpectRefusal(const HttpGate& gate, const http::Request& request, uint32_t access, int status,
                   const std::string& reason) {
  http::Response response;
  EXPECT_FALSE(gate.Authorize(request, access, response));
  EXPECT_EQ(response.status, status) << response.body;
  EXPECT_TRUE(BodyHasReason(response, reason)) << response.body;
  EXPECT_EQ(response.content_type, "application/json");
  EXPECT_EQ(HasHeader(response, "WWW-Authenticate", "Bearer"), status == 401);
  EXPECT_EQ(request.caller.kind, http::Caller::Kind::kNone);
}

void ExpectAllowed(const HttpGate& gate, const http::Request& request, uint32_t access) {
  http::Response response;
  EXPECT_TRUE(gate.Authorize(request, access, response)) << response.body;
  EXPECT_EQ(response.status, 200);
  EXPECT_TRUE(response.body.empty());
}

// ---- Host

TEST(HttpGateHost, AcceptsTheLoopbackNamesWithAndWithoutPort) {
  HttpGate gate({});
  for (std::string host : {"localhost", "localhost:8000", "LocalHost:1", "localhost.", "127.0.0.1",
                           "127.0.0.1:8000", "[::1]", "[::1]:8000"}) {
    TestRequest rq("GET", host);
    ExpectAllowed(gate, rq.request, kInfer);
  }
}

TEST(HttpGateHost, AcceptsTheMachinesNameAndConfiguredNames) {
  char name[256] = {};
  ASSERT_EQ(::gethostname(name, sizeof(name) - 1), 0);
  HttpGate gate({.allowed_hosts = {"Edge.Plant.Example", "10.0.0.7", "fe80::1"}});
  for (std::string host :
       {std::string(name), std::string(name) + ":8000", std::string("edge.plant.example:8000"),
        std::string("10.0.0.7"), std::string("[FE80::1]:80")}) {
    TestRequest rq("GET", host);
    ExpectAllowed(gate, rq.request, kInfer);
  }
}

TEST(HttpGateHost, RefusesOtherHostsAndMalformedOnesWith421) {
  HttpGate gate({.allowed_hosts = {"edge.plant.example"}});
  for (std::string host : {"", "evil.example", "evil.example:8000", "localhost.evil.example",
                           "localhost:", "localhost:80a", "localhost:8000:1", "[::1", "[::1]x",
                           "::1", "127.0.0.2.evil", "edge.plant.example.evil", "user@localhost",
                           "10.0.0.256", "[fe80::zz]"}) {
    TestRequest rq("GET", host);
    ExpectRefusal(gate, rq.request, kInfer, 421, "host_not_allowed");
  }
}

// DNS rebinding needs a name the attacker controls; a Host that is an address is how probes
// and LAN clients reach a node by its pod or interface address.
TEST(HttpGateHost, AcceptsAnyAddressLiteral) {
  HttpGate gate({});
  for (std::string host : {"127.0.0.2", "10.1.2.3:8000", "192.168.0.9", "[fe80::1]:8000",
                           "[2001:db8::7]"}) {
    TestRequest rq("GET", host);
    http::Response refusal;
    EXPECT_TRUE(gate.Authorize(rq.request, 0, refusal)) << host;
  }
}

TEST(HttpGateHost, AStarAcceptsAnyHost) {
  HttpGate gate({.allowed_hosts = {"*"}});
  TestRequest rq("GET", "rebound.evil.example");
  ExpectAllowed(gate, rq.request, kInfer);
}

TEST(HttpGateHost, IsCheckedBeforeContentTypeAndCredentials) {
  HttpGate gate({});
  gate.SetAuthenticator(MakeAuthenticator("opt_secret-token-0123456789", "a", kInfer));
  TestRequest rq("POST", "evil.example");
  rq.Body("a=1", "application/x-www-form-urlencoded");
  ExpectRefusal(gate, rq.request, kInfer, 421, "host_not_allowed");
}

// ---- Content-Type

TEST(HttpGateContentType, RefusesABodyOfABrowserFormsTypeWith415) {
  HttpGate gate({});
  for (std::string type :
       {"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
        "application/jsonx", "application/json-patch+json", "text/json"}) {
    TestRequest rq("POST", "localhost");
    rq.Body("{}", type);
    ExpectRefusal(gate, rq.request, kInfer, 415, "unsupported_content_type");
  }
}

TEST(HttpGateContentType, AcceptsJsonWithParametersAndBinaryTensors) {
  HttpGate gate({});
  for (std::string type :
       {"application/json", "Application/JSON", "application/json; charset=utf-8",
        "application/json ;charset=UTF-8", "application/octet-stream"}) {
    TestRequest rq("POST", "localhost");
    rq.Body("{}", type);
    ExpectAllowed(gate, rq.request, kInfer);
  }
}

TEST(HttpGateContentType, AppliesOnlyToRequestsWithABody) {
  HttpGate gate({});
  TestRequest no_body("POST", "localhost");
  ExpectAllowed(gate, no_body.request, kInfer);
  TestRequest zero_length("POST", "localhost");
  zero_length.Add("Content-Length", "0");
  ExpectAllowed(gate, zero_length.request, kInfer);
  TestRequest announced("POST", "localhost");
  announced.Add("Content-Length", "12");
  ExpectRefusal(gate, announced.request, kInfer, 415, "unsupported_content_type");
}

// ---- Access without an authenticator

TEST(HttpGateAnonymous, CallersHoldTheAnonymousRoles) {
  HttpGate gate({.anonymous_roles = kInfer | kLabel});
  TestRequest rq("GET", "localhost");
  ExpectAllowed(gate, rq.request, kLabel);
  EXPECT_EQ(rq.request.caller.kind, http::Caller::Kind::kAnonymous);
  EXPECT_EQ(rq.request.caller.roles, kInfer | kLabel);
  EXPECT_TRUE(rq.request.caller.credential.empty());
  TestRequest admin("POST", "localhost");
  ExpectRefusal(gate, admin.request, kAdmin, 403, "role_required");
}

TEST(HttpGateAnonymous, OpenRoutesNeedNoRole) {
  HttpGate gate({.anonymous_roles = 0});
  TestRequest rq("GET", "localhost");
  ExpectAllowed(gate, rq.request, 0);
  EXPECT_EQ(rq.request.caller.kind, http::Caller::Kind::kAnonymous);
}

// ---- Access with an authenticator

class HttpGateAuthTest : public ::testing::Test {
 protected:
  HttpGateAuthTest() : gate_({}) {
    gate_.SetAuthenticator(MakeAuthenticator(token_, "scorer-1", kInfer));
  }
  HttpGate gate_;
  const std::string token_ = "opt_the-scorers-token-0123456789";
};

TEST_F(HttpGateAuthTest, EachRefusalHasItsStatusAndReason) {
  TestRequest none("POST", "localhost");
  ExpectRefusal(gate_, none.request, kInfer, 401, "credential_missing");
  TestRequest malformed("POST", "localhost");
  malformed.Add("Authorization", "Basic dXNlcjpwYXNz");
  ExpectRefusal(gate_, malformed.request, kInfer, 401, "credential_malformed");
  TestRequest wrong("POST", "localhost");
  wrong.Add("Authorization", Bearer("opt_someone-elses-token-0123456789"));
  ExpectRefusal(gate_, wrong.request, kInfer, 401, "credential_invalid");
  TestRequest cert("POST", "localhost");
  cert.request.peer.cert_der = "some certificate";
  ExpectRefusal(gate_, cert.request, kInfer, 401, "certificate_untrusted");
  TestRequest role("POST", "localhost");
  role.Add("Authorization", Bearer(token_));
  ExpectRefusal(gate_, role.request, kAdmin, 403, "role_required");
  TestRequest both("POST", "localhost");
  both.Add("Authorization", Bearer(token_));
  ExpectRefusal(gate_, both.request, kInfer | kAdmin, 403, "role_required");
}

TEST_F(HttpGateAuthTest, TheRightRoleSetsTheCaller) {
  TestRequest rq("POST", "localhost");
  rq.Add("authorization", Bearer(token_)).Body("{}");
  ExpectAllowed(gate_, rq.request, kInfer);
  EXPECT_EQ(rq.request.caller.kind, http::Caller::Kind::kClient);
  EXPECT_EQ(rq.request.caller.credential, "scorer-1");
  EXPECT_EQ(rq.request.caller.roles, kInfer);
}

TEST_F(HttpGateAuthTest, OpenRoutesAreAnonymousWithNoRoles) {
  TestRequest rq("GET", "localhost");
  ExpectAllowed(gate_, rq.request, 0);
  EXPECT_EQ(rq.request.caller.kind, http::Caller::Kind::kAnonymous);
  EXPECT_EQ(rq.request.caller.roles, 0u);
}

TEST_F(HttpGateAuthTest, SwappingTheAuthenticatorChangesWhoIsServed) {
  const std::string second = "opt_the-second-token-0123456789";
  std::shared_ptr<const Authenticator> first = gate_.authenticator();
  ASSERT_NE(first, nullptr);
  gate_.SetAuthenticator(MakeAuthenticator(second, "scorer-2", kInfer));
  EXPECT_NE(gate_.authenticator(), first);
  TestRequest old_token("POST", "localhost");
  old_token.Add("Authorization", Bearer(token_));
  ExpectRefusal(gate_, old_token.request, kInfer, 401, "credential_invalid");
  TestRequest new_token("POST", "localhost");
  new_token.Add("Authorization", Bearer(second));
  ExpectAllowed(gate_, new_token.request, kInfer);
  EXPECT_EQ(new_token.request.caller.credential, "scorer-2");
  // The old authenticator, held by a request in flight, still answers as before.
  EXPECT_TRUE(first->Authenticate({.authorization = Bearer(token_)}).ok());
  // No authenticator: callers are anonymous again.
  gate_.SetAuthenticator(nullptr);
  TestRequest anonymous("POST", "localhost");
  ExpectAllowed(gate_, anonymous.request, kInfer);
  EXPECT_EQ(anonymous.request.caller.kind, http::Caller::Kind::kAnonymous);
}

TEST_F(HttpGateAuthTest, AsARoutersAuthorizerTheHandlerRunsOnlyWhenAllowed) {
  http::Router router;
  int runs = 0;
  std::string seen;
  router.Exact(
      "POST", "/v2/models/pump/infer",
      [&](const http::Request& request, http::Response&) {
        ++runs;
        seen = request.caller.credential;
      },
      kInfer);
  router.Exact(
      "GET", "/v2/health/ready", [&](const http::Request&, http::Response&) { ++runs; }, 0);
  router.SetAuthorizer(gate_.AsAuthorizer());

  TestRequest refused("POST", "localhost");
  http::Response response;
  router.Handle(refused.request, response);
  EXPECT_EQ(response.status, 401);
  EXPECT_EQ(runs, 0);

  TestRequest allowed("POST", "localhost");
  allowed.Add("Authorization", Bearer(token_));
  response.Clear();
  router.Handle(allowed.request, response);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(seen, "scorer-1");

  TestRequest probe("GET", "localhost");
  probe.request.target = "/v2/health/ready";
  response.Clear();
  router.Handle(probe.request, response);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(runs, 2);
}

}  // namespace
}  // namespace outpost::auth
