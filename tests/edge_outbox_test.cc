// `outpost edge` with its outbox, as a site operator runs it: feedback sent over HTTP is
// listed by the local query and counted by the outbox state, and a feedback record that was
// acknowledged survives SIGKILL of the edge and is served again after a restart on the same
// data_dir.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "base/file.h"
#include "base/http/client.h"
#include "base/json/json.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"

namespace outpost {
namespace {

using testing::TempDir;

std::string Outpost() { return JoinPath(testing::BinaryDir(), "outpost"); }

class EdgeOutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Feedback is taken only for a model the repository holds or held: a folder for pump
    // (nothing in it loads; the labels need only its name). The records are listed as they
    // were written: without a policy, GET /v1/records lists them only to a raw-read role,
    // here read, which an anonymous caller on loopback holds.
    OUTPOST_ASSERT_OK(MakeDirectories(dir_.File("models/pump")));
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("edge.yaml"),
                                          "listen: 127.0.0.1:0\ngrpc_listen: \"\"\nthreads: 2\n"
                                          "site_id: plant-7\nnode_id: edge-1\n"
                                          "model_repository: " + dir_.File("models") + "\n"
                                          "data_dir: " + dir_.File("data") + "\n"
                                          "auth:\n  raw_read_roles: [read]\n"));
  }

  // Starts the edge and connects a client to it.
  void Start() {
    client_.reset();
    OUTPOST_ASSERT_OK_AND_ASSIGN(
        edge_, Subprocess::Start({Outpost(), "edge", "--config", dir_.File("edge.yaml"),
                                  "--log-format", "json"},
                                 dir_.File("edge.log")));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, edge_->ReadLine());
    ASSERT_EQ(line.rfind("listening on http://127.0.0.1:", 0), 0u) << line;
    uint16_t port = static_cast<uint16_t>(std::atoi(line.c_str() + line.rfind(':') + 1));
    OUTPOST_ASSERT_OK_AND_ASSIGN(client_, http::Client::Connect("127.0.0.1", port));
  }

  // Sends one request and parses its JSON answer, which must have `status`.
  json::Value Call(std::string_view method, std::string_view target, int status,
                   std::string_view body = {}) {
    Result<http::ClientResponse> result = client_->Request(method, target, body);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    if (!result.ok()) return {};
    EXPECT_EQ(result->status, status) << target << " -> " << result->body;
    bodies_.push_back(result->body);
    Result<json::Value> root = parser_.Parse(bodies_.back());
    EXPECT_TRUE(root.ok()) << result->body;
    return root.ok() ? *root : json::Value();
  }

  // The request ids of the feedback records the edge lists, in its order.
  std::vector<std::string> FeedbackIds() {
    std::vector<std::string> ids;
    json::Value records = Call("GET", "/v1/records?kind=feedback", 200)["records"];
    if (records.is_missing()) {
      ADD_FAILURE() << "no records array";
      return ids;
    }
    for (json::Value r : records.Items()) {
      EXPECT_EQ(std::string_view(r["kind"].GetString().value()), "feedback");
      ids.emplace_back(r["payload"]["request_id"].GetString().value());
    }
    return ids;
  }

  TempDir dir_;
  std::unique_ptr<Subprocess> edge_;
  std::unique_ptr<http::Client> client_;
  json::Parser parser_;
  std::vector<std::string> bodies_;  // kept: parsed elements point into the parser only
};

TEST_F(EdgeOutboxTest, FeedbackIsListedCountedAndSurvivesSigkillOfTheEdge) {
  ASSERT_NO_FATAL_FAILURE(Start());
  json::Value ack = Call("POST", "/v1/feedback", 200,
                         R"({"request_id":"r-42","model":"pump","label":1})");
  EXPECT_EQ(std::string_view(ack["stream"].GetString().value()), "pump");
  EXPECT_EQ(ack["seq"].GetUint64().value(), 1u);

  EXPECT_EQ(FeedbackIds(), std::vector<std::string>{"r-42"});
  json::Value state = Call("GET", "/v1/outbox", 200);
  EXPECT_EQ(state["records"].GetUint64().value(), 1u);
  EXPECT_EQ(std::string_view(state["site_id"].GetString().value()), "plant-7");
  EXPECT_EQ(std::string_view(state["node_id"].GetString().value()), "edge-1");
  json::Value classes = state["classes"];
  for (json::Value c : classes.Items()) {
    bool is_feedback = std::string_view(c["kind"].GetString().value()) == "feedback";
    EXPECT_EQ(c["records"].GetUint64().value(), is_feedback ? 1u : 0u);
  }
  // A bad body is refused and stores nothing.
  Call("POST", "/v1/feedback", 400, R"({"request_id":"r-43","model":"pump"})");

  // Acknowledged means durable: no chance to flush anything after SIGKILL.
  OUTPOST_ASSERT_OK(edge_->Signal(SIGKILL));
  EXPECT_EQ(edge_->Wait(), 128 + SIGKILL);

  ASSERT_NO_FATAL_FAILURE(Start());
  EXPECT_EQ(FeedbackIds(), std::vector<std::string>{"r-42"});
  // The stream's seq goes on after the restart.
  EXPECT_EQ(Call("POST", "/v1/feedback", 200,
                 R"({"request_id":"r-44","model":"pump","label":"ok"})")["seq"]
                .GetUint64()
                .value(),
            2u);
  EXPECT_EQ(FeedbackIds(), (std::vector<std::string>{"r-42", "r-44"}));
  EXPECT_EQ(Call("GET", "/v1/outbox", 200)["records"].GetUint64().value(), 2u);

  OUTPOST_ASSERT_OK(edge_->Signal(SIGTERM));
  EXPECT_EQ(edge_->Wait(), 0);
}

TEST_F(EdgeOutboxTest, AnOutboxWrittenForAnotherSiteIsRefusedAtStart) {
  ASSERT_NO_FATAL_FAILURE(Start());
  Call("POST", "/v1/feedback", 200, R"({"request_id":"r-1","model":"pump","label":0})");
  OUTPOST_ASSERT_OK(edge_->Signal(SIGTERM));
  ASSERT_EQ(edge_->Wait(), 0);

  RunResult other = RunProgram({Outpost(), "edge", "--config", dir_.File("edge.yaml"),
                                "--site-id", "plant-8"});
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("outbox " + JoinPath(dir_.File("data"), "outbox.db")),
            std::string::npos)
      << other.err;
}

TEST_F(EdgeOutboxTest, ASecondEdgeOnTheSameDataDirIsRefusedWhileTheFirstRuns) {
  ASSERT_NO_FATAL_FAILURE(Start());
  RunResult second = RunProgram({Outpost(), "edge", "--config", dir_.File("edge.yaml")});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("is in use by another outpost edge"), std::string::npos)
      << second.err;
  // The first one still answers.
  Call("GET", "/v1/outbox", 200);
}

int ModeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

// What the edge keeps is its owner's alone: data_dir 0700, LOCK and the outbox's files 0600.
// A data_dir and LOCK an older Outpost left open to others are tightened, with a warning
// naming each.
TEST_F(EdgeOutboxTest, TheDataDirAndItsFilesAreTheOwnersAlone) {
  const std::string data = dir_.File("data");
  OUTPOST_ASSERT_OK(MakeDirectories(data));
  ASSERT_EQ(::chmod(data.c_str(), 0755), 0);
  OUTPOST_ASSERT_OK(WriteFileAtomically(JoinPath(data, "LOCK"), "", 0644));
  ASSERT_EQ(::chmod(JoinPath(data, "LOCK").c_str(), 0644), 0);
  ASSERT_NO_FATAL_FAILURE(Start());
  Call("POST", "/v1/feedback", 200, R"({"request_id":"r-1","model":"pump","label":0})");
  EXPECT_EQ(ModeOf(data), 0700);
  EXPECT_EQ(ModeOf(JoinPath(data, "LOCK")), 0600);
  for (const char* name : {"outbox.db", "outbox.db-wal", "outbox.db-shm"}) {
    EXPECT_EQ(ModeOf(JoinPath(data, name)), 0600) << name;
  }
  OUTPOST_ASSERT_OK(edge_->Signal(SIGTERM));
  EXPECT_EQ(edge_->Wait(), 0);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string log, ReadFile(dir_.File("edge.log")));
  EXPECT_NE(log.find("made it the owner's alone"), std::string::npos) << log;
  EXPECT_NE(log.find(JoinPath(data, "LOCK")), std::string::npos) << log;

  // A fresh data_dir is created private, whatever the umask the edge was started with.
  const std::string fresh = dir_.File("fresh/data");
  OUTPOST_ASSERT_OK(WriteFileAtomically(
      dir_.File("edge.yaml"), "listen: 127.0.0.1:0\ngrpc_listen: \"\"\nthreads: 2\n"
                              "site_id: plant-7\nnode_id: edge-1\n"
                              "model_repository: " + dir_.File("models") + "\n"
                              "data_dir: " + fresh + "\n"));
  ASSERT_NO_FATAL_FAILURE(Start());
  EXPECT_EQ(ModeOf(fresh), 0700);
  EXPECT_EQ(ModeOf(JoinPath(fresh, "outbox.db")), 0600);
  OUTPOST_ASSERT_OK(edge_->Signal(SIGTERM));
  EXPECT_EQ(edge_->Wait(), 0);
}

}  // namespace
}  // namespace outpost
