// `outpost keys` and `outpost bundle` end to end, with real XGBoost models: install with the
// health check (load, warm-up, expected outputs), an automatic revert when the check fails,
// rollback, events spooled and drained into a running edge's outbox, and the crash test —
// the installer (a real `outpost bundle install|rollback` process) is killed with SIGKILL at
// every step of install and of rollback; after each kill the repository holds complete
// versions only, and a restarted installer leaves exactly the old or exactly the new set.
// The killed processes are `outpost_test_hooks`, the build of `outpost` with the crash hook
// compiled in (apps/CMakeLists.txt); the shipped `outpost` recovers after each kill and is
// checked to ignore the hook's variable.
#include <gtest/gtest.h>

#include <charconv>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <map>
#include <thread>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/coding.h"
#include "base/file.h"
#include "base/http/client.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"
#include "bundle/bundle.h"
#include "bundle/crypto.h"
#include "bundle/metadata.h"
#include "engine/onnx/onnx_import.h"
#include "engine/onnx/test_models.h"
#include "serve/model_config.h"
#include "serve/repository.h"
#include "train/synthetic.h"
#include "train/xgboost_trainer.h"

namespace outpost {
namespace {

using testing::TempDir;

std::string ToHexSha256(std::string_view bytes) {
  return HexEncode(bundle::Sha256Of(bytes));
}

std::string Outpost() { return JoinPath(testing::BinaryDir(), "outpost"); }
// The same program built with OUTPOST_TEST_HOOKS: OUTPOST_BUNDLE_CRASH_AT kills it.
std::string OutpostWithTestHooks() { return JoinPath(testing::BinaryDir(), "outpost_test_hooks"); }

// Runs the shipped `outpost`, or, with `crash_at`, the test build killed at that step.
RunResult RunOutpost(std::vector<std::string> args, const std::string& crash_at = "") {
  std::vector<std::string> argv = {"/usr/bin/env"};
  if (!crash_at.empty()) argv.push_back("OUTPOST_BUNDLE_CRASH_AT=" + crash_at);
  argv.push_back(crash_at.empty() ? Outpost() : OutpostWithTestHooks());
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv);
}

// Every file under `dir` (relative path -> contents), hidden work folders skipped.
std::map<std::string, std::string> Tree(const std::string& dir) {
  std::map<std::string, std::string> out;
  if (!IsDirectory(dir)) return out;
  for (auto it = std::filesystem::recursive_directory_iterator(dir);
       it != std::filesystem::recursive_directory_iterator(); ++it) {
    std::string rel = std::filesystem::relative(it->path(), dir).string();
    if (rel[0] == '.') {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) out[rel] = ReadFile(it->path().string()).value_or("?");
  }
  return out;
}

class BundleInstallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OUTPOST_ASSERT_OK_AND_ASSIGN(data_, train::MakePumpReadings({.rows = 400, .seed = 5}));
    ASSERT_EQ(RunOutpost({"keys", "generate", "--dir", dir_.File("keys"), "--targets-keys", "2",
                   "--targets-threshold", "2"})
                  .exit_code,
              0);
    MakeModel("v1", 1, 3, false);
    MakeModel("v2", 2, 6, false);
    MakeModel("broken", 3, 4, true);
    b1_ = Create("v1", 1);
    b2_ = Create("v2", 2);
    broken_ = Create("broken", 3);
  }

  // A models folder with pump/<version>: a model trained with `rounds` rounds, its
  // descriptor and expected outputs (wrong ones when `wrong_expected`).
  void MakeModel(const std::string& folder, int version, int rounds, bool wrong_expected) {
    train::TrainOptions options;
    options.rounds = rounds;
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, train::TrainXGBoost(data_, options));
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, model->Serialize(train::ModelFormat::kJson));
    std::string v = dir_.File(folder + "/pump/" + std::to_string(version));
    OUTPOST_ASSERT_OK(MakeDirectories(v));
    OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File(folder + "/pump/config.yaml"),
                                          "backend: xgboost\n"
                                          "inputs: [{name: features, datatype: FP32, shape: [-1, 8]}]\n"
                                          "outputs: [{name: fault_probability, datatype: FP32, shape: [-1]}]\n"
                                          "# bundle " + folder + "\n"));
    OUTPOST_ASSERT_OK(WriteFileAtomically(v + "/model.json", bytes));
    OUTPOST_ASSERT_OK(WriteFileAtomically(
        v + "/descriptor.json",
        R"({"name":"pump","version":)" + std::to_string(version) +
            R"(,"engine":"xgboost","engine_version":"0.1.0",)"
            R"("inputs":[{"name":"features","datatype":"FP32","shape":[-1,8]}],)"
            R"("outputs":[{"name":"fault_probability","datatype":"FP32","shape":[-1]}],)"
            R"("metrics":{"auc":0.9},"lineage_sha256":")" + std::string(64, 'c') + R"("})"));
    std::span<const float> rows(data_.features.data(), 2 * 8);
    OUTPOST_ASSERT_OK_AND_ASSIGN(train::Predictions want,
                                 train::ReferencePredict(bytes, rows, 2, 8));
    std::string in, out;
    char buf[64];
    for (float f : rows) {
      auto [p, ec] = std::to_chars(buf, buf + sizeof buf, f);
      in += (in.empty() ? "" : ",") + std::string(buf, p);
    }
    for (float f : want.values) {
      auto [p, ec] = std::to_chars(buf, buf + sizeof buf, wrong_expected ? f + 0.5f : f);
      out += (out.empty() ? "" : ",") + std::string(buf, p);
    }
    OUTPOST_ASSERT_OK(WriteFileAtomically(
        v + "/expected.json",
        R"({"inputs":[{"name":"features","shape":[2,8],"data":[)" + in +
            R"(]}],"outputs":[{"name":"fault_probability","data":[)" + out +
            R"(]}],"tolerance":0.0001})"));
  }

  std::string Create(const std::string& folder, int version) {
    std::string out = dir_.File(folder + ".bundle");
    RunResult r = RunOutpost({"bundle", "create", "--models", dir_.File(folder), "--keys",
                       dir_.File("keys"), "--version", std::to_string(version), "--site",
                       "site-a", "-o", out});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return out;
  }

  // The flags that name a site: repository, state, spool and site id.
  std::vector<std::string> Site(const std::string& name, std::vector<std::string> args) {
    for (std::string a : std::vector<std::string>{"--repository", dir_.File(name + "/repo"), "--state-dir",
                          dir_.File(name + "/state"), "--data-dir", dir_.File(name + "/data"),
                          "--trusted-root", dir_.File("keys/root.json"), "--site", "site-a"}) {
      args.push_back(a);
    }
    return args;
  }

  std::map<std::string, std::string> Expected(const std::string& folder) {
    std::map<std::string, std::string> t = Tree(dir_.File(folder));
    return t;
  }

  TempDir dir_;
  train::Dataset data_;
  std::string b1_, b2_, broken_;
};

TEST_F(BundleInstallTest, InstallHealthCheckRevertRollbackAndEvents) {
  RunResult r = RunOutpost(Site("s", {"bundle", "install", b1_}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Tree(dir_.File("s/repo")), Expected("v1"));
  r = RunOutpost(Site("s", {"bundle", "install", b2_}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Tree(dir_.File("s/repo")), Expected("v2"));

  // A model whose outputs differ from the expected ones is switched back automatically.
  r = RunOutpost(Site("s", {"bundle", "install", broken_}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("HEALTH_CHECK"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fault_probability"), std::string::npos) << r.err;
  EXPECT_EQ(Tree(dir_.File("s/repo")), Expected("v2"));

  // Refusals name their reason; an older bundle is a rollback attack.
  r = RunOutpost(Site("s", {"bundle", "install", b1_}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("VERSION_ROLLBACK"), std::string::npos) << r.err;
  r = RunOutpost({"bundle", "install"});
  EXPECT_EQ(r.exit_code, 2);

  // Rollback returns to bundle 1 on request; bundle 2 can then be installed again.
  r = RunOutpost(Site("s", {"bundle", "rollback"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Tree(dir_.File("s/repo")), Expected("v1"));
  r = RunOutpost(Site("s", {"bundle", "list"}));
  EXPECT_NE(r.out.find("bundle 1 (active)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("anti-rollback version 2"), std::string::npos) << r.out;
  r = RunOutpost(Site("s", {"bundle", "install", b2_}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Tree(dir_.File("s/repo")), Expected("v2"));

  // Every outcome was spooled as an event for the hub.
  std::string events;
  for (const auto& [name, text] : Tree(dir_.File("s/data/spool"))) events += text;
  for (std::string e : {"\"event\":\"bundle_installed\"", "\"event\":\"bundle_install_failed\"",
                        "\"reason\":\"HEALTH_CHECK\"", "\"event\":\"bundle_refused\"",
                        "\"reason\":\"VERSION_ROLLBACK\"", "\"event\":\"bundle_rolled_back\""}) {
    EXPECT_NE(events.find(e), std::string::npos) << e << " in " << events;
  }
}

// Kills the installer at each step of an install (bundle 1 -> 2) and of a rollback (2 -> 1).
TEST_F(BundleInstallTest, KilledAtEveryStepTheRepositoryIsOldOrNew) {
  const auto v1 = Expected("v1"), v2 = Expected("v2");
  std::vector<std::string> steps = {"verified", "kept", "staged", "journal"};
  for (int i = 1; i <= 8; ++i) steps.push_back("move-" + std::to_string(i));
  for (std::string s : {"checked", "committed", "root", "state", "finished"}) steps.push_back(s);

  for (const std::string op : {"install", "rollback"}) {
    ASSERT_EQ(RunOutpost(Site(op + "-template", {"bundle", "install", b1_})).exit_code, 0);
    if (op == "rollback") {
      ASSERT_EQ(RunOutpost(Site(op + "-template", {"bundle", "install", b2_})).exit_code, 0);
    }
    int killed = 0;
    for (const std::string& step : steps) {
      SCOPED_TRACE(op + " killed at " + step);
      std::string site = op + "-" + step;
      // Each step starts from a copy of the same installed site.
      std::filesystem::copy(dir_.File(op + "-template"), dir_.File(site),
                            std::filesystem::copy_options::recursive);
      const auto& before = op == "install" ? v1 : v2;
      const auto& after = op == "install" ? v2 : v1;
      std::vector<std::string> args =
          op == "install" ? Site(site, {"bundle", "install", b2_}) : Site(site, {"bundle", "rollback"});
      RunResult r = RunOutpost(args, step);
      if (r.exit_code == 0) {
        // No such step in this switch (fewer renames): it completed.
        EXPECT_EQ(Tree(dir_.File(site + "/repo")), after);
        continue;
      }
      ASSERT_EQ(r.exit_code, 128 + 9) << r.err;
      ++killed;
      // Right after the kill: every version folder present is complete, old or new.
      auto now = Tree(dir_.File(site + "/repo"));
      for (const auto& [path, text] : now) {
        bool in_old = before.count(path) > 0 && before.at(path) == text;
        bool in_new = after.count(path) > 0 && after.at(path) == text;
        EXPECT_TRUE(in_old || in_new) << path << " is neither the old nor the new file";
      }
      for (const std::string version : {"pump/1", "pump/2"}) {
        bool any = false, all = true;
        const auto& ref = version == "pump/1" ? v1 : v2;
        for (const auto& [path, text] : ref) {
          if (path.rfind(version + "/", 0) != 0) continue;
          any = any || now.count(path) > 0;
          all = all && now.count(path) > 0;
        }
        EXPECT_TRUE(!any || all) << version << " is partly there";
      }
      // A restarted installer recovers to exactly one side.
      RunResult list = RunOutpost(Site(site, {"bundle", "list"}));
      ASSERT_EQ(list.exit_code, 0) << list.err;
      auto recovered = Tree(dir_.File(site + "/repo"));
      bool is_old = recovered == before, is_new = recovered == after;
      EXPECT_TRUE(is_old || is_new) << "after recovery the repository is a mix";
      const char* active = is_new == (op == "install") ? "bundle 2 (active)" : "bundle 1 (active)";
      EXPECT_NE(list.out.find(active), std::string::npos) << list.out;
      EXPECT_FALSE(PathExists(dir_.File(site + "/state/journal.json")));
      EXPECT_FALSE(PathExists(dir_.File(site + "/repo/.outpost-install")));
      // And the operation can be run to completion afterwards.
      if (is_old) {
        RunResult again = RunOutpost(args);
        ASSERT_EQ(again.exit_code, 0) << again.err;
      }
      EXPECT_EQ(Tree(dir_.File(site + "/repo")), after);
    }
    EXPECT_GE(killed, 10) << op;
    std::printf("%s: killed at %d steps, recovered each time\n", op.c_str(), killed);
  }
}

TEST_F(BundleInstallTest, TheShippedBinaryIgnoresTheCrashHooksVariable) {
  RunResult r = RunProgram({"/usr/bin/env", "OUTPOST_BUNDLE_CRASH_AT=verified", Outpost(), "bundle",
                            "install", b1_, "--repository", dir_.File("h/repo"), "--state-dir",
                            dir_.File("h/state"), "--trusted-root", dir_.File("keys/root.json"),
                            "--site", "site-a"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Tree(dir_.File("h/repo")), Expected("v1"));
  // The test build does stop there, and leaves the repository as it was.
  r = RunOutpost(Site("h", {"bundle", "install", b2_}), "verified");
  EXPECT_EQ(r.exit_code, 128 + 9) << r.err;
  EXPECT_EQ(Tree(dir_.File("h/repo")), Expected("v1"));
}

// The arguments of `outpost bundle install --kubernetes` for `bundle`, rendering into `out`
// with the site state in <site>/state.
std::vector<std::string> KubernetesArgs(const std::string& bundle, const std::string& out,
                                        const std::string& state_dir,
                                        const std::string& trusted_root, const std::string& site) {
  return {Outpost(), "bundle", "install", bundle, "--kubernetes",
          JoinPath(OUTPOST_SOURCE_DIR, "deploy/k8s"), "-o", out, "--state-dir", state_dir,
          "--trusted-root", trusted_root, "--site", site, "--image",
          "registry.local:5000/outpost:0.1.0", "--registry", "registry.local:5000"};
}

RunResult RunWithoutCluster(const TempDir& dir, std::vector<std::string> args) {
  args.insert(args.begin(), {"/usr/bin/env", "KUBECONFIG=" + dir.File("no-kubeconfig")});
  return RunProgram(args);
}

TEST_F(BundleInstallTest, KubernetesOverlayIsRenderedAndApplyingIsSkippedWithoutACluster) {
  std::string out = dir_.File("overlay");
  std::string state = dir_.File("k/state");
  RunResult r = RunWithoutCluster(
      dir_, KubernetesArgs(b2_, out, state, dir_.File("keys/root.json"), "site-a"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The site state is persisted as a plain install persists it: anti-rollback version 2.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string state_text, ReadFile(state + "/state.json"));
  EXPECT_NE(state_text.find("\"installed_version\":2"), std::string::npos) << state_text;
  EXPECT_TRUE(PathExists(state + "/root.json"));
  EXPECT_FALSE(PathExists(state + "/journal.json"));
  if (!PathExists("/usr/bin/kubectl")) GTEST_SKIP() << "kubectl is not installed";
  EXPECT_NE(r.out.find("no Kubernetes cluster is configured"), std::string::npos) << r.out;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string y, ReadFile(out + "/rendered.yaml"));
  for (std::string want : {"kind: StatefulSet", "kind: Service", "volumeClaimTemplates:",
                           "path: /v2/health/live", "path: /v2/health/ready",
                           "image: registry.local:5000/outpost:0.1.0", "BUNDLE_VERSION: \"2\"",
                           "MODELS: pump-2", "REGISTRY: registry.local:5000",
                           "REGISTRY_REPOSITORY: outpost/models", "targets.json: '{\"signatures\"",
                           "name: install", "command:",
                           "outpost.io/bundle-version: \"2\"", "value: site-a"}) {
    EXPECT_NE(y.find(want), std::string::npos) << want << " missing from\n" << y;
  }
  // A bundle for another site is refused before anything is rendered.
  r = RunWithoutCluster(dir_, KubernetesArgs(b2_, dir_.File("overlay2"), dir_.File("k2/state"),
                                             dir_.File("keys/root.json"), "site-b"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("WRONG_SITE"), std::string::npos) << r.err;
  EXPECT_FALSE(PathExists(dir_.File("overlay2")));
}

// The --kubernetes path keeps the site state as the plain install does: an older bundle after
// a newer one is refused with the plain install's reason, and nothing changes.
TEST_F(BundleInstallTest, KubernetesInstallRefusesARollbackAndChangesNothing) {
  std::string out = dir_.File("overlay");
  std::string state = dir_.File("k/state");
  RunResult r = RunWithoutCluster(
      dir_, KubernetesArgs(b2_, out, state, dir_.File("keys/root.json"), "site-a"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto state_before = Tree(state);
  auto overlay_before = Tree(out);
  ASSERT_FALSE(overlay_before.empty());
  r = RunWithoutCluster(dir_,
                        KubernetesArgs(b1_, out, state, dir_.File("keys/root.json"), "site-a"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("VERSION_ROLLBACK"), std::string::npos) << r.err;
  EXPECT_EQ(Tree(state), state_before);
  EXPECT_EQ(Tree(out), overlay_before);
  // The plain install on a node refuses the same bundle with the same reason.
  ASSERT_EQ(RunOutpost(Site("plain", {"bundle", "install", b2_})).exit_code, 0);
  RunResult plain = RunOutpost(Site("plain", {"bundle", "install", b1_}));
  EXPECT_EQ(plain.exit_code, 1);
  EXPECT_NE(plain.err.find("VERSION_ROLLBACK"), std::string::npos) << plain.err;
  // Without a state folder there is no state to keep: refused as a usage error of the flags.
  r = RunWithoutCluster(dir_, {Outpost(), "bundle", "install", b2_, "--kubernetes",
                               JoinPath(OUTPOST_SOURCE_DIR, "deploy/k8s"), "-o",
                               dir_.File("overlay3"), "--trusted-root",
                               dir_.File("keys/root.json"), "--site", "site-a"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--state-dir"), std::string::npos) << r.err;
  EXPECT_FALSE(PathExists(dir_.File("overlay3")));
}

// `bundle rollback --kubernetes` renders the bundle deployed before the active one with
// OPERATION=rollback (the pods return to the copy they kept); the anti-rollback version stays,
// and there is nothing before the first.
TEST_F(BundleInstallTest, KubernetesRollbackRendersThePreviousBundle) {
  if (!PathExists("/usr/bin/kubectl")) GTEST_SKIP() << "kubectl is not installed";
  std::string out = dir_.File("overlay");
  std::string state = dir_.File("k/state");
  for (const std::string& b : {b1_, b2_}) {
    RunResult r = RunWithoutCluster(
        dir_, KubernetesArgs(b, out, state, dir_.File("keys/root.json"), "site-a"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::vector<std::string> rollback = {Outpost(), "bundle", "rollback", "--kubernetes",
                                       JoinPath(OUTPOST_SOURCE_DIR, "deploy/k8s"), "-o", out,
                                       "--state-dir", state, "--site", "site-a",
                                       "--image", "registry.local:5000/outpost:0.1.0",
                                       "--registry", "registry.local:5000"};
  RunResult r = RunWithoutCluster(dir_, rollback);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rolled back to bundle version 1 (was 2)"), std::string::npos) << r.out;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string y, ReadFile(out + "/rendered.yaml"));
  for (std::string want : {"OPERATION: rollback", "BUNDLE_VERSION: \"1\"", "MODELS: pump-1",
                           "outpost.io/bundle-version: \"1\""}) {
    EXPECT_NE(y.find(want), std::string::npos) << want << " missing from\n" << y;
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string state_text, ReadFile(state + "/state.json"));
  EXPECT_NE(state_text.find("\"installed_version\":2"), std::string::npos) << state_text;
  auto overlay_before = Tree(out);
  r = RunWithoutCluster(dir_, rollback);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("NO_PREVIOUS_BUNDLE"), std::string::npos) << r.err;
  EXPECT_EQ(Tree(out), overlay_before);
}

// The trusted root must be signed by its own root keys on the --kubernetes path too.
TEST_F(BundleInstallTest, KubernetesInstallRefusesATrustedRootNotSignedByItsOwnKeys) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string root, ReadFile(dir_.File("keys/root.json")));
  size_t sig = root.find("\"sig\":\"");
  ASSERT_NE(sig, std::string::npos) << root;
  char& c = root[sig + 7];
  c = c == '0' ? '1' : '0';
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("forged-root.json"), root));
  std::string state = dir_.File("f/state");
  RunResult r = RunWithoutCluster(
      dir_, KubernetesArgs(b2_, dir_.File("overlay"), state, dir_.File("forged-root.json"),
                           "site-a"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("ROOT_SIGNATURE"), std::string::npos) << r.err;
  EXPECT_FALSE(PathExists(dir_.File("overlay")));
  EXPECT_FALSE(PathExists(state + "/root.json"));
  EXPECT_FALSE(PathExists(state + "/state.json"));
}

// k-of-n signing across people (`bundle sign`), then a key rotation: a site provisioned with
// root 1 installs a bundle signed by the new keys because the bundle carries root 2.
TEST_F(BundleInstallTest, SignAddsSignaturesAndRotatedKeysAreTrustedThroughTheChain) {
  std::string one = dir_.File("one.bundle");
  ASSERT_EQ(RunOutpost({"bundle", "create", "--models", dir_.File("v1"), "--key",
                        dir_.File("keys/targets-1.key"), "--version", "1", "--site", "site-a", "-o",
                        one})
                .exit_code,
            0);
  std::vector<std::string> verify = {"bundle", "verify", "", "--trusted-root",
                                     dir_.File("keys/root.json"), "--site", "site-a"};
  verify[2] = one;
  RunResult r = RunOutpost(verify);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("SIGNATURE_THRESHOLD"), std::string::npos) << r.err;
  std::string two = dir_.File("two.bundle");
  r = RunOutpost({"bundle", "sign", one, "--key", dir_.File("keys/targets-2.key"), "-o", two});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  verify[2] = two;
  r = RunOutpost(verify);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("OK: bundle version 1"), std::string::npos) << r.out;
  r = RunOutpost({"bundle", "inspect", two});
  EXPECT_NE(r.out.find("2 signatures"), std::string::npos) << r.out;

  // The site is provisioned with root 1 before the rotation.
  ASSERT_EQ(RunOutpost(Site("rot", {"bundle", "install", two})).exit_code, 0);
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string root1, ReadFile(dir_.File("keys/root.json")));
  r = RunOutpost({"keys", "rotate", "--dir", dir_.File("keys"), "--targets-keys", "2",
                  "--targets-threshold", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(PathExists(dir_.File("keys/roots/2.json")));
  std::string rotated = Create("v2", 2);  // signed by the new targets keys, carries root 2
  r = RunOutpost(Site("rot", {"bundle", "install", rotated}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string site_root, ReadFile(dir_.File("rot/state/root.json")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string root2, ReadFile(dir_.File("keys/roots/2.json")));
  EXPECT_EQ(site_root, root2);
  EXPECT_NE(site_root, root1);
  r = RunOutpost(Site("rot", {"bundle", "list"}));
  EXPECT_NE(r.out.find("root version 2"), std::string::npos) << r.out;
  // A newer bundle signed by the retired targets keys is now refused.
  std::string retired = dir_.File("retired.bundle");
  ASSERT_EQ(RunOutpost({"bundle", "create", "--models", dir_.File("v2"), "--key",
                        dir_.File("keys/old/1/targets-1.key"), "--key",
                        dir_.File("keys/old/1/targets-2.key"), "--version", "3", "--site",
                        "site-a", "-o", retired})
                .exit_code,
            0);
  r = RunOutpost(Site("rot", {"bundle", "install", retired}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("SIGNATURE_THRESHOLD"), std::string::npos) << r.err;
}

// A running edge: events spooled while it was down are in its outbox when it answers; a
// bundle installed while it runs is picked up by its watcher and its event drained.
TEST_F(BundleInstallTest, RunningEdgeServesInstalledVersionsAndReceivesEvents) {
  ASSERT_EQ(RunOutpost(Site("e", {"bundle", "install", b1_})).exit_code, 0);
  ASSERT_EQ(RunOutpost(Site("e", {"bundle", "install", broken_})).exit_code, 1);
  // The events are read as they were written: without a policy, GET /v1/records lists them
  // only to a raw-read role, here read, which an anonymous caller on loopback holds.
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("edge.yaml"),
                                        "listen: 127.0.0.1:0\nthreads: 2\nsite_id: site-a\n"
                                        "grpc_listen: \"\"\n"
                                        "model_repository: " + dir_.File("e/repo") + "\n"
                                        "data_dir: " + dir_.File("e/data") + "\n"
                                        "auth:\n  raw_read_roles: [read]\n"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      auto edge, Subprocess::Start({Outpost(), "edge", "--config", dir_.File("edge.yaml")},
                                   dir_.File("edge.log")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string line, edge->ReadLine());
  ASSERT_EQ(line.rfind("listening on http://127.0.0.1:", 0), 0u) << line;
  uint16_t port = static_cast<uint16_t>(std::atoi(line.c_str() + line.rfind(':') + 1));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto client, http::Client::Connect("127.0.0.1", port));
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse events,
                               client->Request("GET", "/v1/records?kind=event"));
  EXPECT_EQ(events.status, 200) << events.body;
  EXPECT_NE(events.body.find("bundle_installed"), std::string::npos) << events.body;
  EXPECT_NE(events.body.find("HEALTH_CHECK"), std::string::npos) << events.body;
  EXPECT_TRUE(Tree(dir_.File("e/data/spool")).empty());
  OUTPOST_ASSERT_OK_AND_ASSIGN(http::ClientResponse ready,
                               client->Request("GET", "/v2/models/pump/versions/1/ready"));
  EXPECT_EQ(ready.status, 200) << ready.body;

  // Install bundle 2 while the edge runs: its watcher loads pump 2 (live update), and the
  // event reaches the outbox within a drain period. Both are waited for with a deadline.
  ASSERT_EQ(RunOutpost(Site("e", {"bundle", "install", b2_})).exit_code, 0);
  bool served = false, recorded = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!(served && recorded) && std::chrono::steady_clock::now() < deadline) {
    auto r = client->Request("GET", "/v2/models/pump/versions/2/ready");
    served = r.ok() && r->status == 200;
    auto e = client->Request("GET", "/v1/records?kind=event");
    recorded = e.ok() && e->body.find("\"bundle_version\":2") != std::string::npos;
    if (!(served && recorded)) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(served) << "pump 2 was not loaded by the running edge";
  EXPECT_TRUE(recorded) << "the install event of bundle 2 did not reach the outbox";
}

// Debian's docker-registry on loopback, storing under <dir>/registry.
struct Registry {
  std::unique_ptr<Subprocess> process;
  std::string port;
  std::string url() const { return "http://127.0.0.1:" + port; }
};

Result<Registry> StartRegistry(const TempDir& dir) {
  OUTPOST_RETURN_IF_ERROR(WriteFileAtomically(
      dir.File("registry.yml"),
      "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: " +
          dir.File("registry") + "\nhttp:\n  addr: 127.0.0.1:0\n"));
  // Its log goes to a file: a pipe nobody drains would stop the registry once full.
  const std::string log = dir.File("registry.log");
  Registry r;
  OUTPOST_ASSIGN_OR_RETURN(
      r.process, Subprocess::Start({"/bin/sh", "-c",
                                    "exec /usr/bin/docker-registry serve " +
                                        dir.File("registry.yml") + " >" + log + " 2>&1"}));
  for (int i = 0; i < 200 && r.port.empty(); ++i) {
    std::string text = ReadFile(log).value_or("");
    size_t at = text.find("listening on 127.0.0.1:");
    if (at != std::string::npos) {
      r.port = text.substr(at + 23, text.find_first_not_of("0123456789", at + 23) - at - 23);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  if (r.port.empty()) return UnavailableError("docker-registry did not start: " + ReadFile(log).value_or(""));
  return r;
}

// The bytes of blob `hex` in the registry's storage.
std::string RegistryBlob(const TempDir& dir, const std::string& hex) {
  return dir.File("registry/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex +
                  "/data");
}

bool HaveRegistry() {
  return PathExists("/usr/bin/docker-registry") && PathExists("/usr/bin/skopeo");
}

// `outpost bundle push` into Debian's docker-registry on loopback; skopeo reads the images
// back from the registry (manifest, configuration, every blob).
TEST_F(BundleInstallTest, PushToARegistryOnLoopback) {
  if (!HaveRegistry()) {
    GTEST_SKIP() << "docker-registry or skopeo is not installed (scripts/setup.sh installs both)";
  }
  OUTPOST_ASSERT_OK_AND_ASSIGN(Registry registry, StartRegistry(dir_));
  const std::string& port = registry.port;
  std::string url = registry.url();
  std::vector<std::string> trust = {"--trusted-root", dir_.File("keys/root.json"), "--site", "site-a"};
  for (int round = 0; round < 2; ++round) {  // the second push finds every blob there
    std::vector<std::string> args = {"bundle", "push", b2_, "--registry", url, "--repository",
                                     "site/models"};
    args.insert(args.end(), trust.begin(), trust.end());
    RunResult r = RunOutpost(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "pushed 127.0.0.1:" + port + "/site/models:pump-2\n");
  }
  std::string ref = "docker://127.0.0.1:" + port + "/site/models:pump-2";
  RunResult inspect = RunProgram({"/usr/bin/skopeo", "inspect", "--tls-verify=false", ref});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_NE(inspect.out.find("\"org.outpost.model.version\": \"2\""), std::string::npos)
      << inspect.out;
  std::string copy = dir_.File("pulled");
  RunResult pulled = RunProgram(
      {"/usr/bin/skopeo", "copy", "--quiet", "--src-tls-verify=false", ref, "dir:" + copy});
  ASSERT_EQ(pulled.exit_code, 0) << pulled.err;
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string model, ReadFile(dir_.File("v2/pump/2/model.json")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(
      std::string got, ReadFile(copy + "/" + ToHexSha256(model)));
  EXPECT_EQ(got, model);
  // A bundle that carries a runtime image (a stand-in layout of one layer): the image goes to
  // its own repository and is read back by its digest.
  std::string image = dir_.File("image");
  OUTPOST_ASSERT_OK(MakeDirectories(image + "/blobs/sha256"));
  std::map<std::string, std::string> blobs;
  auto put = [&](const std::string& bytes) {
    std::string hex = ToHexSha256(bytes);
    blobs[hex] = bytes;
    EXPECT_TRUE(WriteFileAtomically(image + "/blobs/sha256/" + hex, bytes).ok());
    return R"({"digest":"sha256:)" + hex + R"(","size":)" + std::to_string(bytes.size());
  };
  std::string config = put(R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})");
  std::string layer = put(std::string(300000, 'x'));
  std::string manifest_bytes =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":)" +
      config + R"(,"mediaType":"application/vnd.oci.image.config.v1+json"},"layers":[)" + layer +
      R"(,"mediaType":"application/vnd.oci.image.layer.v1.tar"}]})";
  std::string manifest = put(manifest_bytes);
  OUTPOST_ASSERT_OK(WriteFileAtomically(
      image + "/index.json", R"({"schemaVersion":2,"manifests":[)" + manifest +
                                 R"(,"mediaType":"application/vnd.oci.image.manifest.v1+json"}]})"));
  std::string with_runtime = dir_.File("runtime.bundle");
  RunResult created = RunOutpost({"bundle", "create", "--models", dir_.File("v2"), "--keys",
                                  dir_.File("keys"), "--version", "4", "--site", "site-a",
                                  "--runtime", image, "-o", with_runtime});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  std::vector<std::string> runtime_push = {"bundle", "push", with_runtime, "--registry", url,
                                           "--repository", "site/models", "--runtime-repository",
                                           "site/runtime"};
  runtime_push.insert(runtime_push.end(), trust.begin(), trust.end());
  RunResult pushed_runtime = RunOutpost(runtime_push);
  ASSERT_EQ(pushed_runtime.exit_code, 0) << pushed_runtime.err;
  std::string runtime_ref = "127.0.0.1:" + port + "/site/runtime@sha256:" + ToHexSha256(manifest_bytes);
  EXPECT_NE(pushed_runtime.out.find("runtime " + runtime_ref), std::string::npos) << pushed_runtime.out;
  RunResult runtime_copy = RunProgram({"/usr/bin/skopeo", "copy", "--quiet", "--src-tls-verify=false",
                                       "docker://" + runtime_ref, "dir:" + dir_.File("runtime-copy")});
  ASSERT_EQ(runtime_copy.exit_code, 0) << runtime_copy.err;
  EXPECT_EQ(ReadFile(dir_.File("runtime-copy/") + ToHexSha256(std::string(300000, 'x'))).value_or(""),
            std::string(300000, 'x'));

  // A bundle is verified before anything is pushed: one for another site, or without a trusted
  // root, pushes nothing.
  RunResult wrong = RunOutpost({"bundle", "push", b1_, "--registry", url, "--repository",
                                "site/models", "--trusted-root", dir_.File("keys/root.json"),
                                "--site", "site-b"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("WRONG_SITE"), std::string::npos) << wrong.err;
  RunResult untrusted = RunOutpost({"bundle", "push", b1_, "--registry", url});
  EXPECT_EQ(untrusted.exit_code, 1);
  EXPECT_EQ(RunProgram({"/usr/bin/skopeo", "inspect", "--tls-verify=false",
                        "docker://127.0.0.1:" + port + "/site/models:pump-1"})
                .exit_code,
            1);
  // Nothing listens here: a clear error, exit 1.
  std::vector<std::string> refused_args = {"bundle", "push", b2_, "--registry", "http://127.0.0.1:1"};
  refused_args.insert(refused_args.end(), trust.begin(), trust.end());
  EXPECT_EQ(RunOutpost(refused_args).exit_code, 1);
  RunResult usage = RunOutpost({"bundle", "push", b2_});
  EXPECT_EQ(usage.exit_code, 2);
}

// An edge pod's init container (`outpost bundle fetch`) without a container runtime: the
// metadata folder stands for the mounted ConfigMap outpost-bundle of the rendered overlay, the
// folders under "pod" for the pod's volume. The registry is trusted for nothing: a blob altered
// there is refused and the pod keeps the models it had.
TEST_F(BundleInstallTest, FetchInstallsFromTheRegistryAndRefusesAnAlteredBlob) {
  if (!HaveRegistry()) GTEST_SKIP() << "docker-registry is not installed";
  OUTPOST_ASSERT_OK_AND_ASSIGN(Registry registry, StartRegistry(dir_));
  for (const std::string& b : {b1_, b2_}) {
    RunResult r = RunOutpost({"bundle", "push", b, "--registry", registry.url(), "--repository",
                              "outpost/models", "--trusted-root", dir_.File("keys/root.json"),
                              "--site", "site-a"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // The overlay of each bundle, rendered by the operator's installer; its bundle/ folder holds
  // the ConfigMap's files, and the literals become files as a ConfigMap volume has them.
  auto metadata = [&](const std::string& bundle, const std::string& name,
                      const std::string& operation) {
    std::string out = dir_.File("overlay-" + name);
    RunResult r = RunWithoutCluster(dir_, {Outpost(), "bundle", "install", bundle, "--kubernetes",
                                           JoinPath(OUTPOST_SOURCE_DIR, "deploy/k8s"), "-o", out,
                                           "--state-dir", dir_.File("operator-" + name),
                                           "--trusted-root", dir_.File("keys/root.json"),
                                           "--site", "site-a", "--registry",
                                           "127.0.0.1:" + registry.port});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string m = out + "/bundle";
    EXPECT_TRUE(WriteFileAtomically(m + "/REGISTRY", "127.0.0.1:" + registry.port).ok());
    EXPECT_TRUE(WriteFileAtomically(m + "/REGISTRY_REPOSITORY", "outpost/models").ok());
    EXPECT_TRUE(WriteFileAtomically(m + "/OPERATION", operation).ok());
    return m;
  };
  auto fetch = [&](const std::string& m, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"bundle", "fetch", "--metadata", m};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunOutpost(Site("pod", args));
  };
  std::string m1 = metadata(b1_, "1", "install");
  std::string m2 = metadata(b2_, "2", "install");
  RunResult r = fetch(m1);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("installed bundle version 1"), std::string::npos) << r.out;
  EXPECT_EQ(Tree(dir_.File("pod/repo")), Expected("v1"));
  r = fetch(m1);  // every start of the pod runs it: the second time there is nothing to do
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("installed already"), std::string::npos) << r.out;

  // Bundle 2's model file, altered in the registry: refused by its hash, version 1 serves on.
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string model, ReadFile(dir_.File("v2/pump/2/model.json")));
  std::string blob = RegistryBlob(dir_, ToHexSha256(model));
  ASSERT_TRUE(PathExists(blob));
  std::string altered = model;
  altered[altered.size() / 2] ^= 1;
  OUTPOST_ASSERT_OK(WriteFileAtomically(blob, altered));
  r = fetch(m2);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("TARGET_HASH"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("keeps serving bundle version 1"), std::string::npos) << r.out;
  EXPECT_EQ(Tree(dir_.File("pod/repo")), Expected("v1"));
  r = fetch(m2, {"--strict"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(Tree(dir_.File("pod/repo")), Expected("v1"));

  // Put right in the registry, bundle 2 installs; the operator's rollback goes back to the
  // copy of bundle 1 the pod kept, and an older bundle offered as an install is refused.
  OUTPOST_ASSERT_OK(WriteFileAtomically(blob, model));
  r = fetch(m2);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Tree(dir_.File("pod/repo")), Expected("v2"));
  r = fetch(m1, {"--strict"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("VERSION_ROLLBACK"), std::string::npos) << r.err;
  EXPECT_EQ(Tree(dir_.File("pod/repo")), Expected("v2"));
  std::string back = metadata(b1_, "back", "rollback");
  r = fetch(back);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rolled back to bundle version 1"), std::string::npos) << r.out;
  EXPECT_EQ(Tree(dir_.File("pod/repo")), Expected("v1"));
}

// --- Bring your own model: `bundle create` derives the descriptor from the model, or checks a
// written one against it (bundle/FORMAT.md section 5, "Derived and checked descriptors") ---

class BundleCreateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(RunOutpost({"keys", "generate", "--dir", dir_.File("keys"), "--targets-keys", "1",
                          "--targets-threshold", "1"})
                  .exit_code,
              0);
  }

  RunResult Create(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"bundle", "create", "--models", dir_.File("models"),
                                     "--keys", dir_.File("keys"), "--version", "1", "--site",
                                     "site-a", "-o", Out()};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunOutpost(args);
  }
  std::string Out() const { return dir_.File("byo.bundle"); }

  // The descriptors of the bundle, verified as site-a verifies it.
  std::vector<bundle::ModelDescriptor> Descriptors() {
    Result<std::string> root_text = ReadFile(dir_.File("keys/root.json"));
    EXPECT_TRUE(root_text.ok());
    Result<bundle::Envelope> env = bundle::ParseEnvelope(root_text.value_or(""));
    EXPECT_TRUE(env.ok()) << env.status().ToString();
    if (!env.ok()) return {};
    Result<bundle::Root> root = bundle::RootFromJson(env->signed_value);
    EXPECT_TRUE(root.ok()) << root.status().ToString();
    if (!root.ok()) return {};
    Result<bundle::VerifiedBundle> v = bundle::VerifyBundle(
        Out(), *root, {},
        {.site_id = "site-a", .staging_dir = dir_.File("staging"), .clock = &SystemClock()});
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? v->descriptors : std::vector<bundle::ModelDescriptor>{};
  }

  // Expects the descriptor's engine, inputs and outputs to be the signature that the engine
  // serving `model` (config.yaml's backend) reads from version 1.
  void ExpectSignatureOf(const std::string& model, const bundle::ModelDescriptor& d) {
    const std::string dir = dir_.File("models/" + model);
    OUTPOST_ASSERT_OK_AND_ASSIGN(std::string config_text, ReadFile(dir + "/config.yaml"));
    OUTPOST_ASSERT_OK_AND_ASSIGN(serve::ModelConfig config,
                                 serve::ParseModelConfig(config_text, model));
    OUTPOST_ASSERT_OK_AND_ASSIGN(auto loaded, serve::LoadModelVersion(config, dir + "/1"));
    const engine::Signature& sig = loaded->signature();
    EXPECT_EQ(d.engine, config.backend);
    for (auto [written, read] : {std::pair{&d.inputs, &sig.inputs},
                                 std::pair{&d.outputs, &sig.outputs}}) {
      ASSERT_EQ(written->size(), read->size());
      for (size_t i = 0; i < read->size(); ++i) {
        EXPECT_EQ((*written)[i].name, (*read)[i].name);
        EXPECT_EQ((*written)[i].datatype, engine::DataTypeName((*read)[i].type));
        EXPECT_EQ((*written)[i].shape, (*read)[i].shape);
      }
    }
    EXPECT_TRUE(d.metrics.empty());
    EXPECT_EQ(d.lineage_sha256, "");
  }

  TempDir dir_;
};

// A tiny ONNX model: x FP32 [N, 3] -> Gemm (3x2) -> y.
std::string TinyOnnxModel() {
  engine::onnx::testing::GraphBuilder b;
  engine::onnx::ValueId x = b.Input("x", engine::DataType::kFp32, {-1, 3});
  engine::onnx::ValueId y =
      b.Op("Gemm", {x, b.Floats("w", {3, 2}, {1, 2, 3, 4, 5, 6}), b.Floats("b", {2}, {0.5, -0.5})},
           {"y"});
  b.Output(y);
  Result<std::string> bytes = engine::onnx::ExportModel(b.graph());
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return bytes.value_or("");
}

TEST_F(BundleCreateTest, OnnxModelWithOnlyItsConfigBundlesWithTheModelsSignature) {
  OUTPOST_ASSERT_OK(MakeDirectories(dir_.File("models/iris/1")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("models/iris/config.yaml"), "backend: onnx\n"));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("models/iris/1/model.onnx"), TinyOnnxModel()));
  const auto before = Tree(dir_.File("models"));
  RunResult r = Create();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (std::string said : {"created ", "iris version 1: descriptor derived from the model by the "
                           "onnx engine", "inputs 'x' FP32 [-1,3]", "metrics and lineage empty"}) {
    EXPECT_NE(r.out.find(said), std::string::npos) << said << " in " << r.out;
  }
  EXPECT_EQ(Tree(dir_.File("models")), before);  // no descriptor.json written into the folder
  std::vector<bundle::ModelDescriptor> d = Descriptors();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].name, "iris");
  EXPECT_EQ(d[0].version, 1u);
  ASSERT_EQ(d[0].inputs.size(), 1u);
  EXPECT_EQ(d[0].inputs[0].shape, (std::vector<int64_t>{-1, 3}));
  ExpectSignatureOf("iris", d[0]);

  // The site's health check loads what was bundled (warm-up on a zero input).
  r = RunOutpost({"bundle", "install", Out(), "--repository", dir_.File("site/repo"),
                  "--state-dir", dir_.File("site/state"), "--data-dir", dir_.File("site/data"),
                  "--trusted-root", dir_.File("keys/root.json"), "--site", "site-a"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(PathExists(dir_.File("site/repo/iris/1/model.onnx")));
}

TEST_F(BundleCreateTest, XGBoostModelWithoutADescriptorBundlesWithTheModelsSignature) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset data,
                               train::MakePumpReadings({.rows = 200, .seed = 5}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, train::TrainXGBoost(data, {.rounds = 3}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, model->Serialize(train::ModelFormat::kJson));
  OUTPOST_ASSERT_OK(MakeDirectories(dir_.File("models/pump/1")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("models/pump/config.yaml"), "backend: xgboost\n"));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("models/pump/1/model.json"), bytes));
  RunResult r = Create();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("pump version 1: descriptor derived from the model by the xgboost engine"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("inputs 'input' FP32 [-1,8]"), std::string::npos) << r.out;
  EXPECT_FALSE(PathExists(dir_.File("models/pump/1/descriptor.json")));
  std::vector<bundle::ModelDescriptor> d = Descriptors();
  ASSERT_EQ(d.size(), 1u);
  ExpectSignatureOf("pump", d[0]);
}

TEST_F(BundleCreateTest, WrittenDescriptorThatDisagreesWithTheModelIsRefusedAndNothingIsWritten) {
  OUTPOST_ASSERT_OK_AND_ASSIGN(train::Dataset data,
                               train::MakePumpReadings({.rows = 200, .seed = 5}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(auto model, train::TrainXGBoost(data, {.rounds = 3}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::string bytes, model->Serialize(train::ModelFormat::kJson));
  OUTPOST_ASSERT_OK(MakeDirectories(dir_.File("models/pump/1")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(
      dir_.File("models/pump/config.yaml"),
      "backend: xgboost\ninputs: [{name: features, datatype: FP32, shape: [-1, 8]}]\n"
      "outputs: [{name: fault_probability, datatype: FP32, shape: [-1]}]\n"));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("models/pump/1/model.json"), bytes));
  OUTPOST_ASSERT_OK(WriteFileAtomically(
      dir_.File("models/pump/1/descriptor.json"),
      R"({"name":"pump","version":1,"engine":"xgboost","engine_version":"0.1.0",)"
      R"("inputs":[{"name":"features","datatype":"FP32","shape":[-1,4]}],)"
      R"("outputs":[{"name":"fault_probability","datatype":"FP32","shape":[-1]}],)"
      R"("metrics":{"auc":0.9},"lineage_sha256":")" + std::string(64, 'c') + R"("})"));
  const auto before = Tree(dir_.File("models"));
  RunResult r = Create();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("descriptor_mismatch"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("input 'features': descriptor says FP32 [-1,4], the model says FP32 [-1,8]"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(PathExists(Out()));
  EXPECT_FALSE(PathExists(Out() + ".tmp"));
  EXPECT_EQ(Tree(dir_.File("models")), before);

  // A model folder whose config names no backend cannot be read, so it is refused too.
  OUTPOST_ASSERT_OK(RemoveTree(dir_.File("models/pump/config.yaml")));
  r = Create();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("config.yaml is missing"), std::string::npos) << r.err;
  EXPECT_FALSE(PathExists(Out()));

  // --no-model-check takes the descriptor as written, as before this check existed.
  r = Create({"--no-model-check"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace outpost
