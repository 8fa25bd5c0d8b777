// The simulated sites' credentials. Each site gets its own Ed25519 key and its own
// certificate, issued by the hub CA exactly as the enrolment endpoint issues it
// (hub::HubCa::IssueSiteCertificate), and its row in the store carries that certificate's
// serial, which is the state a real enrolment leaves (hub/FORMAT.md section 3). The
// enrolment's HTTP exchange itself is skipped: ten thousand `outpost hub site add` processes
// and enrolments would take most of the run's set-up and measure nothing this benchmark is
// about; tests/hub_cli_test.cc covers the endpoint.
#include <openssl/pem.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <thread>

#include "base/clock.h"
#include "bench/fleet/fleet.h"
#include "hub/ca.h"

namespace outpost::fleet {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};

Status LoadCredential(Site& site, const std::string& cert_pem, const std::string& key_pem) {
  std::unique_ptr<BIO, BioFree> cert_bio(
      BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  std::unique_ptr<BIO, BioFree> key_bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  if (!cert_bio || !key_bio) return InternalError("BIO_new_mem_buf failed");
  site.cert.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  site.key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!site.cert || !site.key) return InternalError("cannot read the credential of " + site.id);
  return Status::Ok();
}

Status MakeSite(const Options& options, const hub::HubCa& ca, hub::Store& store, Site& site) {
  OUTPOST_ASSIGN_OR_RETURN(hub::KeyPairPem key, hub::GenerateEd25519Key());
  OUTPOST_ASSIGN_OR_RETURN(hub::IssuedCertificate cert,
                           ca.IssueSiteCertificate(key.public_pem, site.id, options.tenant));
  OUTPOST_RETURN_IF_ERROR(
      store.CreateSite(hub::Site{.site_id = site.id,
                                 .tenant = options.tenant,
                                 .region = options.region,
                                 .created_ms = UnixMillis(std::chrono::system_clock::now()),
                                 .credential_serial = cert.serial}));
  return LoadCredential(site, cert.certificate_pem, key.private_pem);
}

}  // namespace

Result<std::vector<Site>> MakeSites(const Options& options) {
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<hub::HubCa> ca,
                           hub::HubCa::OpenOrCreate(options.ca_dir, {}));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<hub::Store> store, hub::OpenStore(options.store_url));
  std::vector<Site> sites(static_cast<size_t>(options.sites));
  for (size_t i = 0; i < sites.size(); ++i) {
    char id[32];
    snprintf(id, sizeof id, "site-%05zu", i);
    sites[i].id = id;
    sites[i].hub = i % options.hubs.size();
    // 127.0.0.2 upwards: every site is its own peer address, as real sites are, so the
    // hub's per-address connection limit sees one site per address.
    sites[i].source_ip = 0x7F000002u + static_cast<uint32_t>(i);
    sites[i].rng.seed(options.seed * 1'000'003 + i);
  }
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status failure;
  std::vector<std::thread> threads;
  for (int t = 0; t < options.setup_threads; ++t) {
    threads.emplace_back([&] {
      for (size_t i = next++; i < sites.size(); i = next++) {
        Status s = MakeSite(options, *ca, *store, sites[i]);
        if (!s.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          failure = s;
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  if (!failure.ok()) return failure;
  return sites;
}

}  // namespace outpost::fleet
