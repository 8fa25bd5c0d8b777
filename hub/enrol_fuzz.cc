// libFuzzer target for what the hub parses from the network: enrolment tokens, certificates
// (PEM and DER, as peers and export files carry them), enrolment bodies, and an enrolled
// site's status reports and batch uploads, through the real handlers on a scratch SQLite
// store.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "hub/ca.h"
#include "hub/enrol.h"
#include "hub/ingest.h"
#include "policy/policy.h"
#include "hub/store.h"

namespace {

struct World {
  std::string dir;
  std::unique_ptr<outpost::hub::HubCa> ca;
  std::unique_ptr<outpost::hub::Store> store;
  std::unique_ptr<outpost::hub::Enrolment> enrolment;
  outpost::FakeClock clock;
  outpost::hub::PolicySet policies;
  std::unique_ptr<outpost::hub::HubService> service;
  outpost::hub::PeerCredential peer;
};

World* MakeWorld() {
  auto* world = new World();
  char pattern[] = "/tmp/hub_enrol_fuzz.XXXXXX";
  if (::mkdtemp(pattern) == nullptr) std::abort();
  world->dir = pattern;
  world->ca = std::move(outpost::hub::HubCa::OpenOrCreate(world->dir, {}).value());
  world->store = std::move(outpost::hub::OpenStore("sqlite:" + world->dir + "/hub.db").value());
  world->enrolment =
      std::make_unique<outpost::hub::Enrolment>(*world->store, *world->ca, world->clock);
  (void)world->enrolment->AddSite("plant-7", "acme", "us", std::chrono::hours(1));
  if (!world->store->SetCredential("plant-7", "abc").ok()) std::abort();
  world->policies.Add("*", outpost::policy::ParsePolicy(
                               "format: 1\nversion: 1\nregions: {us: {raw: true}}\n"
                               "default_region: us\nkinds: {anomaly: {fields: {v: keep}}}\n")
                               .value());
  world->service = std::make_unique<outpost::hub::HubService>(
      *world->store, *world->enrolment, world->policies, nullptr,
      outpost::hub::HubServiceOptions{}, world->clock);
  world->peer = {.presented = true, .verified = true,
                 .certificate = {.common_name = "plant-7", .serial = "abc"}};
  return world;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = MakeWorld();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)outpost::hub::ParseToken(input);
  (void)outpost::hub::ParseCertificatePem(input);
  (void)outpost::hub::ParseCertificateDer(input);
  outpost::hub::HubRequest request{.method = "POST", .target = "/enrol/v1",
                                   .body = std::string(input)};
  outpost::hub::HubResponse response = world->enrolment->Handle(request);
  if (response.status == 200) std::abort();  // no token in the corpus can be valid
  for (const char* target : {"/sync/v1/status", "/sync/v1/batches"}) {
    request.target = target;
    (void)world->service->HandleSite(request, world->peer);
  }
  return 0;
}
