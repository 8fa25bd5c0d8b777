// Enrolment (hub/FORMAT.md sections 2 to 4): the hub side makes a site with a one-time token
// that pins the hub's CA, and answers /enrol/v1 with the site's certificate; the site side
// (EnrolSite) generates the site's Ed25519 key, enrols and writes the credential files that
// the forwarder and exports read.
#ifndef OUTPOST_HUB_ENROL_H_
#define OUTPOST_HUB_ENROL_H_

#include <chrono>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/http/server.h"
#include "base/status.h"
#include "hub/ca.h"
#include "hub/http.h"
#include "hub/store.h"

namespace outpost::hub {

inline constexpr size_t kMaxEnrolBodyBytes = 16 * 1024;
inline constexpr std::chrono::hours kDefaultTokenTtl{24};
inline constexpr std::chrono::hours kMaxTokenTtl{24 * 30};

// OK when `site_id` is a SiteId (base/names.h) that also fits a certificate's common name,
// which X.509 bounds at 64 bytes (FORMAT.md section 3); InvalidArgument with reason
// invalid_site_id otherwise. Tenants and regions are checked with Tenant and Region.
Status ValidateEnrolledSiteId(std::string_view site_id);

// The parts of an enrolment token "op1.<secret>.<ca fingerprint>".
struct TokenParts {
  std::string secret{};
  std::string ca_fingerprint{};
};
// InvalidArgument "bad_token" for anything not of that form.
Result<TokenParts> ParseToken(std::string_view token);

// The hub side. `store`, `ca` and `clock` outlive the object. Thread-safe.
class Enrolment {
 public:
  Enrolment(Store& store, const HubCa& ca, Clock& clock = SystemClock())
      : store_(store), ca_(ca), clock_(clock) {}

  // Creates site `site_id` (or, for an existing site not yet enrolled, or with `reissue`,
  // keeps it) and returns a fresh one-time token valid for `ttl`. FailedPrecondition
  // "site_enrolled" for an enrolled site without `reissue`; PermissionDenied for a revoked
  // site; AlreadyExists when the site exists with another tenant or region.
  Result<std::string> AddSite(std::string_view site_id, std::string_view tenant,
                              std::string_view region, std::chrono::seconds ttl,
                              bool reissue = false);

  // Whether `target` is an enrolment endpoint.
  static bool Owns(std::string_view target);
  // Registers GET /enrol/v1/ca and POST /enrol/v1 (FORMAT.md section 3) on the site
  // listener's router (base/http/server.h), which answers other methods with 405. This
  // object must outlive the router's server.
  void RegisterRoutes(http::Router& router);
  // Answers an enrolment request without a router (tests, fuzzing): the routes above, 405
  // for another method, 404 for another target.
  HubResponse Handle(const HubRequest& request);

 private:
  HubResponse CaCertificate() const;
  // POST /enrol/v1: spends the token and issues the site's certificate.
  HubResponse Enrol(const HubRequest& request);

  Store& store_;
  const HubCa& ca_;
  Clock& clock_;
};

// The site side: `outpost enrol`.
struct EnrolSiteOptions {
  std::string hub_url{};          // https://host:port
  std::string token{};
  std::string site_id{};
  std::string credentials_dir{};
  bool force = false;             // overwrite existing credentials
};
// Enrols and writes site.key, site.crt, hub_ca.crt, hub.url and, when the hub sends them, its
// export key as hub_export.pub and its receipt certificate as hub_receipt.crt, the pin every
// receipt is checked against (FORMAT.md section 4). Errors carry the hub's reason
// ("token_expired", "ca_mismatch", "bad_export_key", "bad_receipt_certificate", ...) at the
// start of their message.
Status EnrolSite(const EnrolSiteOptions& options);

}  // namespace outpost::hub

#endif  // OUTPOST_HUB_ENROL_H_
