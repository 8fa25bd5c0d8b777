// libFuzzer target for what the hub parses from the network before anything is trusted:
// enrolment tokens, certificates (PEM and DER, as peers and export files carry them), and
// enrolment bodies through the real handler on a scratch SQLite store.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "hub/ca.h"
#include "hub/enrol.h"
#include "hub/store.h"

namespace {

struct World {
  std::string dir;
  std::unique_ptr<outpost::hub::HubCa> ca;
  std::unique_ptr<outpost::hub::Store> store;
  std::unique_ptr<outpost::hub::Enrolment> enrolment;
  outpost::FakeClock clock;
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
  return 0;
}
