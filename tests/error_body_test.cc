// Every Outpost listener answers an error with the same body shape (base/status_mapping.h):
// one JSON object with exactly the members "error" (for people) and "reason" (for code), and
// the same reason and HTTP status for the same failure. Real processes on real sockets: the
// edge's REST listener, the hub's site listener (TLS) and its operator listener, asked with
// curl; the edge's gRPC listener carries the same reason in its trailing metadata
// (tests/edge_server_test.cc checks that one).
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/json/json.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "tests/sync_test_support.h"

namespace outpost {
namespace {

using testing::TempDir;

std::string Outpost() { return JoinPath(testing::BinaryDir(), "outpost"); }

struct Answer {
  int status = 0;
  std::string body;
};

// curl's status and body; `args` end with the URL.
Answer Curl(std::vector<std::string> args) {
  std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "-w", "\n%{http_code}"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = RunProgram(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  Answer out;
  size_t nl = r.out.rfind('\n');
  if (nl != std::string::npos) {
    out.body = r.out.substr(0, nl);
    out.status = std::atoi(r.out.c_str() + nl + 1);
  }
  return out;
}

// Checks that `answer` is `status` with the common error body and `reason` (any reason when
// empty).
void ExpectErrorBody(const Answer& answer, int status, std::string_view reason,
                     const std::string& where) {
  SCOPED_TRACE(where + ": " + answer.body);
  EXPECT_EQ(answer.status, status);
  json::Parser parser;
  Result<json::Value> root = parser.Parse(answer.body);
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  ASSERT_TRUE(root->is_object());
  EXPECT_EQ(root->size(), 2u);
  Result<std::string_view> error = (*root)["error"].GetString();
  ASSERT_TRUE(error.ok());
  EXPECT_FALSE(error->empty());
  Result<std::string_view> got = (*root)["reason"].GetString();
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->empty());
  if (!reason.empty()) {
    EXPECT_EQ(*got, reason);
  }
}

class ErrorBodyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OUTPOST_ASSERT_OK(MakeDirectories(dir_.File("models")));
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("policy.yaml"), testing::kAnomalyPolicy));
    OUTPOST_ASSERT_OK(WriteFileAtomically(
        dir_.File("edge.yaml"), "listen: 127.0.0.1:0\nthreads: 1\nsite_id: test-site\n"
                                "model_repository: " + dir_.File("models") + "\n"
                                "data_dir: " + dir_.File("edge") + "\n"));
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        edge_, Subprocess::Start({Outpost(), "edge", "--config", dir_.File("edge.yaml")},
                                 dir_.File("edge.log")));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, edge_->ReadLine());
    ASSERT_EQ(line.rfind("listening on http://", 0), 0u) << line;
    edge_url_ = line.substr(std::string("listening on ").size());

    RunResult op = RunProgram({Outpost(), "hub", "operator", "add", "--tokens-file",
                               dir_.File("operators.yaml"), "--name", "ops", "--tenant", "acme"});
    ASSERT_EQ(op.exit_code, 0) << op.err;
    operator_token_ = op.out.substr(0, op.out.find('\n'));
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        hub_, Subprocess::Start(
                  {Outpost(), "hub", "serve", "--data-dir", dir_.File("hub"), "--listen",
                   "127.0.0.1:0", "--operator-listen", "127.0.0.1:0", "--policy",
                   dir_.File("policy.yaml"), "--operator-tokens-file", dir_.File("operators.yaml")},
                  dir_.File("hub.log")));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string site_line, hub_->ReadLine());
    ASSERT_EQ(site_line.rfind("listening on https://", 0), 0u) << site_line;
    site_url_ = site_line.substr(std::string("listening on ").size());
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string op_line, hub_->ReadLine());
    ASSERT_EQ(op_line.rfind("operator listening on http://", 0), 0u) << op_line;
    operator_url_ = op_line.substr(std::string("operator listening on ").size());
    // The hub's CA, to verify the site listener (fetching it needs no credential).
    Answer ca = Curl({"-k", site_url_ + "/enrol/v1/ca"});
    ASSERT_EQ(ca.status, 200);
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("hub_ca.crt"), ca.body + "\n"));
  }

  void TearDown() override {
    for (auto* process : {&edge_, &hub_}) {
      if (*process == nullptr) continue;
      OUTPOST_EXPECT_OK((*process)->Signal(SIGTERM));
      EXPECT_EQ((*process)->Wait(), 0);
    }
  }

  Answer Site(std::vector<std::string> args) {
    args.insert(args.begin(), {"--cacert", dir_.File("hub_ca.crt")});
    return Curl(args);
  }
  Answer Operator(std::vector<std::string> args) {
    args.insert(args.begin(), {"-H", "Authorization: Bearer " + operator_token_});
    return Curl(args);
  }

  TempDir dir_;
  std::unique_ptr<Subprocess> edge_, hub_;
  std::string edge_url_, site_url_, operator_url_, operator_token_;
};

TEST_F(ErrorBodyTest, AnUnknownPathIsNotFoundEverywhere) {
  ExpectErrorBody(Curl({edge_url_ + "/no/such/path"}), 404, "not_found", "edge");
  ExpectErrorBody(Site({site_url_ + "/no/such/path"}), 404, "not_found", "hub site listener");
  ExpectErrorBody(Operator({operator_url_ + "/no/such/path"}), 404, "not_found",
                  "hub operator listener");
}

TEST_F(ErrorBodyTest, AWrongMethodIsRefusedTheSameWayEverywhere) {
  ExpectErrorBody(Curl({"-X", "DELETE", edge_url_ + "/v2/health/live"}), 405,
                  "method_not_allowed", "edge");
  ExpectErrorBody(Site({site_url_ + "/enrol/v1"}), 405, "method_not_allowed",
                  "hub site listener (enrolment)");
  ExpectErrorBody(Operator({"-X", "POST", operator_url_ + "/api/v1/sites"}), 405,
                  "method_not_allowed", "hub operator listener");
}

TEST_F(ErrorBodyTest, AMalformedBodyIsABadRequestEverywhere) {
  // The edge reads a body only when its Content-Type says JSON (curl's default is a form).
  ExpectErrorBody(Curl({"-H", "Content-Type: application/json", "--data-binary", "{not json",
                        edge_url_ + "/v1/feedback"}),
                  400, "", "edge");
  ExpectErrorBody(Site({"--data-binary", "{not json", site_url_ + "/enrol/v1"}), 400,
                  "malformed_json", "hub site listener (enrolment)");
}

}  // namespace
}  // namespace outpost
