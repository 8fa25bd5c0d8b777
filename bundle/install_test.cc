// Tests of the installer in process (bundle/install.h): install, health check and automatic
// revert, rollback, events, and recovery of a switch caught half-way (the state of the
// folders is copied from inside the health check, as a crash there would leave it).
// tests/bundle_install_test.cc runs the real `outpost bundle` processes and kills them.
#include "bundle/install.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/file.h"
#include "base/testing/test_util.h"
#include "bundle/reason.h"
#include "bundle/spool.h"

namespace outpost::bundle {
namespace {

using outpost::testing::TempDir;

constexpr int64_t kStart = 1'700'000'000;
constexpr int64_t kDay = 86'400;

KeyPair Key(char fill) { return *KeyPairFromSeed(std::string(kSeedBytes, fill)); }

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

class InstallerTest : public ::testing::Test {
 protected:
  InstallerTest() : r1_(Key('a')), t1_(Key('c')) {
    Root root{.version = 1, .expires = kStart + 365 * kDay};
    root.keys[KeyId(r1_.public_key)] = r1_.public_key;
    root.keys[KeyId(t1_.public_key)] = t1_.public_key;
    root.root = {.keyids = {KeyId(r1_.public_key)}, .threshold = 1};
    root.targets = {.keyids = {KeyId(t1_.public_key)}, .threshold = 1};
    root_file_ = *SignMetadata(*RootToJson(root), {r1_});
  }

  // Bundle `version` holding model "pump" version `model_version` (content `model`).
  std::string Bundle(uint64_t version, int model_version, const std::string& model) {
    std::string models = dir_.File("models" + std::to_string(version));
    std::string v = models + "/pump/" + std::to_string(model_version);
    EXPECT_TRUE(MakeDirectories(v).ok());
    EXPECT_TRUE(WriteFileAtomically(models + "/pump/config.yaml",
                                    "backend: xgboost # " + std::to_string(version) + "\n")
                    .ok());
    EXPECT_TRUE(WriteFileAtomically(v + "/model.json", model).ok());
    EXPECT_TRUE(WriteFileAtomically(
                    v + "/descriptor.json",
                    R"({"name":"pump","version":)" + std::to_string(model_version) +
                        R"(,"engine":"xgboost","engine_version":"0.1.0",)"
                        R"("inputs":[{"name":"f","datatype":"FP32","shape":[-1,4]}],)"
                        R"("outputs":[{"name":"s","datatype":"FP32","shape":[-1]}],)"
                        R"("metrics":{},"lineage_sha256":")" + std::string(64, 'a') + R"("})")
                    .ok());
    std::string out = dir_.File("b" + std::to_string(version) + ".bundle");
    Status s = CreateBundle(models, {t1_},
                            {.version = version, .created = kStart - kDay,
                             .expires = kStart + 30 * kDay, .sites = {"site-a"}},
                            out);
    EXPECT_TRUE(s.ok()) << s.ToString();
    expected_[version] = Tree(models);
    return out;
  }

  std::unique_ptr<Installer> Open(const std::string& site, HealthCheck check = nullptr) {
    auto installer = Installer::Open({.repository = dir_.File(site + "/repo"),
                                      .state_dir = dir_.File(site + "/state"),
                                      .spool_dir = dir_.File(site + "/spool"),
                                      .site_id = "site-a",
                                      .clock = &clock_,
                                      .health_check = std::move(check),
                                      .provision_root = root_file_});
    EXPECT_TRUE(installer.ok()) << installer.status().ToString();
    return installer.ok() ? std::move(*installer) : nullptr;
  }

  TempDir dir_;
  FakeClock clock_;
  KeyPair r1_, t1_;
  std::string root_file_;
  std::map<uint64_t, std::map<std::string, std::string>> expected_;
};

TEST_F(InstallerTest, InstallRevertRollbackAndEvents) {
  std::string b1 = Bundle(1, 1, "model one"), b2 = Bundle(2, 2, "model two"),
              b3 = Bundle(3, 3, "model three");
  int checks = 0;
  auto installer = Open("s", [&](const std::string& model_dir, const std::string& name,
                                 uint64_t version) -> Status {
    ++checks;
    EXPECT_EQ(name, "pump");
    EXPECT_TRUE(PathExists(model_dir + "/" + std::to_string(version) + "/model.json"));
    if (version == 3) return FailedPreconditionError("warm-up failed");
    return Status::Ok();
  });
  ASSERT_NE(installer, nullptr);
  OUTPOST_ASSERT_OK_AND_ASSIGN(InstallResult r1, installer->Install(b1));
  EXPECT_EQ(r1.bundle_version, 1u);
  EXPECT_EQ(Tree(dir_.File("s/repo")), expected_[1]);
  OUTPOST_ASSERT_OK(installer->Install(b2).status());
  EXPECT_EQ(Tree(dir_.File("s/repo")), expected_[2]);

  Result<InstallResult> failed = installer->Install(b3);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(ReasonOf(failed.status()), Reason::kHealthCheck) << failed.status().ToString();
  EXPECT_EQ(Tree(dir_.File("s/repo")), expected_[2]);
  EXPECT_EQ(checks, 3);

  Result<InstallResult> rollback_attack = installer->Install(b1);
  EXPECT_EQ(ReasonOf(rollback_attack.status()), Reason::kVersionRollback);

  OUTPOST_ASSERT_OK_AND_ASSIGN(InstallResult back, installer->Rollback());
  EXPECT_EQ(back.bundle_version, 1u);
  EXPECT_EQ(back.previous_version, 2u);
  EXPECT_EQ(Tree(dir_.File("s/repo")), expected_[1]);
  OUTPOST_ASSERT_OK_AND_ASSIGN(SiteStatus st, installer->Describe());
  EXPECT_EQ(st.installed, (std::vector<uint64_t>{1}));
  EXPECT_EQ(st.state.installed_version, 2u);  // anti-rollback kept
  Result<InstallResult> none = installer->Rollback();
  EXPECT_EQ(none.status().code(), StatusCode::kFailedPrecondition);

  OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<std::string> events, ListSpool(dir_.File("s/spool")));
  std::string all;
  for (const std::string& e : events) all += *ReadFile(dir_.File("s/spool/" + e));
  for (std::string want : {"bundle_installed", "\"reason\":\"HEALTH_CHECK\"",
                           "\"reason\":\"VERSION_ROLLBACK\"", "bundle_rolled_back",
                           "bundle_rollback_failed"}) {
    EXPECT_NE(all.find(want), std::string::npos) << want << " in " << all;
  }
  EXPECT_EQ(events.size(), 6u);  // installed 1, installed 2, failed 3, refused 1, rolled back, none
}

// The folders as a crash during the health check leaves them: a fresh installer on a copy
// undoes the switch; after the commit point it finishes it instead.
TEST_F(InstallerTest, RecoveryUndoesBeforeTheCommitPointAndFinishesAfterIt) {
  std::string b1 = Bundle(1, 1, "model one"), b2 = Bundle(2, 2, "model two");
  auto copy_site = [&](const std::string& to) {
    std::filesystem::copy(dir_.File("s"), dir_.File(to), std::filesystem::copy_options::recursive);
  };
  auto installer = Open("s", [&](const std::string&, const std::string&, uint64_t v) {
    if (v == 2) copy_site("mid");
    return Status::Ok();
  });
  OUTPOST_ASSERT_OK(installer->Install(b1).status());
  OUTPOST_ASSERT_OK(installer->Install(b2).status());
  ASSERT_TRUE(PathExists(dir_.File("mid/state/journal.json")));
  ASSERT_NE(Tree(dir_.File("mid/repo")), expected_[1]);  // switched, not committed

  // A crash right after the commit point: installed.json names the new bundle and the
  // journal's serial; the site state was not written yet.
  std::filesystem::copy(dir_.File("mid"), dir_.File("committed"),
                        std::filesystem::copy_options::recursive);
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("committed/state/installed.json"),
                                        "{\"history\":[1,2],\"serial\":2}\n"));
  {
    auto finished = Open("committed");
    ASSERT_NE(finished, nullptr);
    EXPECT_EQ(Tree(dir_.File("committed/repo")), expected_[2]);
    EXPECT_FALSE(PathExists(dir_.File("committed/state/journal.json")));
    OUTPOST_ASSERT_OK_AND_ASSIGN(SiteStatus st, finished->Describe());
    EXPECT_EQ(st.installed, (std::vector<uint64_t>{1, 2}));
    EXPECT_EQ(st.state.installed_version, 2u);
  }

  auto undone = Open("mid");
  ASSERT_NE(undone, nullptr);
  EXPECT_EQ(Tree(dir_.File("mid/repo")), expected_[1]);
  EXPECT_FALSE(PathExists(dir_.File("mid/state/journal.json")));
  EXPECT_FALSE(PathExists(dir_.File("mid/repo/.outpost-install")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(SiteStatus st, undone->Describe());
  EXPECT_EQ(st.installed, (std::vector<uint64_t>{1}));
  EXPECT_EQ(st.state.installed_version, 1u);
  // Recovery is idempotent, and the install then completes.
  undone.reset();
  ASSERT_NE(Open("mid"), nullptr);
  OUTPOST_ASSERT_OK(Open("mid")->Install(b2).status());
  EXPECT_EQ(Tree(dir_.File("mid/repo")), expected_[2]);
}

// An installer for a site whose models are deployed elsewhere (a cluster): no repository.
std::unique_ptr<Installer> OpenElsewhere(const TempDir& dir, const FakeClock& clock,
                                         const std::string& root_file) {
  auto installer = Installer::Open({.state_dir = dir.File("k/state"),
                                    .spool_dir = dir.File("k/spool"),
                                    .site_id = "site-a",
                                    .clock = &clock,
                                    .provision_root = root_file});
  EXPECT_TRUE(installer.ok()) << installer.status().ToString();
  return installer.ok() ? std::move(*installer) : nullptr;
}

TEST_F(InstallerTest, DeployPersistsTheSiteStateAndRefusesARollbackWithInstallsReason) {
  std::string b1 = Bundle(1, 1, "model one"), b2 = Bundle(2, 2, "model two");
  auto installer = OpenElsewhere(dir_, clock_, root_file_);
  ASSERT_NE(installer, nullptr);
  std::vector<uint64_t> deployed;
  auto deploy = [&](const VerifiedBundle& v) -> Status {
    EXPECT_TRUE(PathExists(v.staging_dir + "/index.json"));
    deployed.push_back(v.targets.version);
    return Status::Ok();
  };
  OUTPOST_ASSERT_OK_AND_ASSIGN(InstallResult r, installer->Deploy(b2, deploy));
  EXPECT_EQ(r.bundle_version, 2u);
  EXPECT_EQ(r.previous_version, 0u);
  EXPECT_EQ(r.models, (std::vector<ModelVersion>{{"pump", 2}}));
  EXPECT_EQ(deployed, (std::vector<uint64_t>{2}));
  OUTPOST_ASSERT_OK_AND_ASSIGN(SiteState state, LoadSiteState(dir_.File("k/state/state.json")));
  EXPECT_EQ(state.installed_version, 2u);
  EXPECT_EQ(state.time_floor, kStart);
  EXPECT_FALSE(PathExists(dir_.File("k/state/journal.json")));
  EXPECT_FALSE(PathExists(dir_.File("k/state/staging")));

  // The older bundle is refused with the reason a plain install gives, before deploy runs,
  // and nothing in the state folder changes.
  auto before = Tree(dir_.File("k/state"));
  Result<InstallResult> attack = installer->Deploy(b1, deploy);
  EXPECT_EQ(ReasonOf(attack.status()), Reason::kVersionRollback) << attack.status().ToString();
  EXPECT_EQ(deployed, (std::vector<uint64_t>{2}));
  EXPECT_EQ(Tree(dir_.File("k/state")), before);
  auto plain = Open("s");
  ASSERT_NE(plain, nullptr);
  OUTPOST_ASSERT_OK(plain->Install(b2).status());
  EXPECT_EQ(ReasonOf(plain->Install(b1).status()), Reason::kVersionRollback);

  // A reopened installer keeps the state; Install and Rollback need a repository.
  installer.reset();
  installer = OpenElsewhere(dir_, clock_, root_file_);
  ASSERT_NE(installer, nullptr);
  EXPECT_EQ(ReasonOf(installer->Deploy(b1, deploy).status()), Reason::kVersionRollback);
  EXPECT_EQ(installer->Install(b2).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(installer->Rollback().status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Tree(dir_.File("k/state")), before);

  OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<std::string> events, ListSpool(dir_.File("k/spool")));
  std::string all;
  for (const std::string& e : events) all += *ReadFile(dir_.File("k/spool/" + e));
  EXPECT_NE(all.find("\"event\":\"bundle_installed\""), std::string::npos) << all;
  EXPECT_NE(all.find("\"reason\":\"VERSION_ROLLBACK\""), std::string::npos) << all;
}

TEST_F(InstallerTest, AFailedDeployChangesNothing) {
  std::string b1 = Bundle(1, 1, "model one"), b2 = Bundle(2, 2, "model two");
  auto installer = OpenElsewhere(dir_, clock_, root_file_);
  ASSERT_NE(installer, nullptr);
  OUTPOST_ASSERT_OK(installer->Deploy(b1, [](const VerifiedBundle&) { return Status::Ok(); })
                        .status());
  auto before = Tree(dir_.File("k/state"));
  Result<InstallResult> failed = installer->Deploy(
      b2, [](const VerifiedBundle&) { return FailedPreconditionError("kubectl apply failed"); });
  EXPECT_EQ(failed.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Tree(dir_.File("k/state")), before);
  EXPECT_FALSE(PathExists(dir_.File("k/state/journal.json")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(SiteState state, LoadSiteState(dir_.File("k/state/state.json")));
  EXPECT_EQ(state.installed_version, 1u);
  // The same bundle deploys once the cluster takes it.
  OUTPOST_ASSERT_OK(installer->Deploy(b2, [](const VerifiedBundle&) { return Status::Ok(); })
                        .status());
  OUTPOST_ASSERT_OK_AND_ASSIGN(state, LoadSiteState(dir_.File("k/state/state.json")));
  EXPECT_EQ(state.installed_version, 2u);
}

// A deploy killed after its commit point (installed.json written, the state not yet) is
// finished by the next installer, as a switch is.
TEST_F(InstallerTest, ADeployInterruptedAfterItsCommitPointIsFinishedOnOpen) {
  std::string b1 = Bundle(1, 1, "model one");
  auto installer = OpenElsewhere(dir_, clock_, root_file_);
  ASSERT_NE(installer, nullptr);
  OUTPOST_ASSERT_OK(installer->Deploy(b1, [&](const VerifiedBundle&) {
    // The folder as a crash right after the commit point would leave it: the journal is
    // written; the commit is simulated on a copy.
    std::filesystem::copy(dir_.File("k"), dir_.File("mid"),
                          std::filesystem::copy_options::recursive);
    return Status::Ok();
  }).status());
  ASSERT_TRUE(PathExists(dir_.File("mid/state/journal.json")));
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir_.File("mid/state/installed.json"),
                                        "{\"history\":[],\"serial\":1}\n"));
  auto finished = Installer::Open({.state_dir = dir_.File("mid/state"),
                                   .site_id = "site-a",
                                   .clock = &clock_});
  OUTPOST_ASSERT_OK(finished.status());
  EXPECT_FALSE(PathExists(dir_.File("mid/state/journal.json")));
  OUTPOST_ASSERT_OK_AND_ASSIGN(SiteState state, LoadSiteState(dir_.File("mid/state/state.json")));
  EXPECT_EQ(state.installed_version, 1u);
}

TEST(Spool, EventsAreWrittenAtomicallyAndListedInOrder) {
  TempDir dir;
  EXPECT_TRUE(ListSpool(dir.File("none"))->empty());
  OUTPOST_ASSERT_OK(SpoolEvent(dir.File("spool"), R"({"event":"a"})"));
  OUTPOST_ASSERT_OK(SpoolEvent(dir.File("spool"), R"({"event":"b"})"));
  EXPECT_EQ(SpoolEvent(dir.File("spool"), std::string(kMaxSpoolEventBytes + 1, ' ')).code(),
            StatusCode::kInvalidArgument);
  OUTPOST_ASSERT_OK(WriteFileAtomically(dir.File("spool/x.json.tmp.1.2"), "partial"));
  OUTPOST_ASSERT_OK_AND_ASSIGN(std::vector<std::string> names, ListSpool(dir.File("spool")));
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(*ReadFile(dir.File("spool/" + names[0])), "{\"event\":\"a\"}\n");
  EXPECT_EQ(*ReadFile(dir.File("spool/" + names[1])), "{\"event\":\"b\"}\n");
}

}  // namespace
}  // namespace outpost::bundle
