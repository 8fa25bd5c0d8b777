// Helpers shared by the tests that run a real `outpost edge`: a credential made as an
// operator makes one, for the tests whose callers need more than an anonymous caller holds
// (trusted labels, the admin role).
#ifndef OUTPOST_TESTS_EDGE_TEST_SUPPORT_H_
#define OUTPOST_TESTS_EDGE_TEST_SUPPORT_H_

#include <string>
#include <vector>

#include "base/status.h"

namespace outpost::testing {

// `outpost edge credential add --data-dir data_dir --name name --role R...`: the bearer token
// it printed once. The edge on `data_dir` then reads <data_dir>/credentials.yaml, so every
// caller but the probes must send a token, and its default listen address is no longer
// loopback (pass --listen or `listen:` explicitly). Internal when the command fails or prints
// something other than a token.
Result<std::string> AddEdgeCredential(const std::string& data_dir, const std::string& name,
                                      const std::vector<std::string>& roles);

}  // namespace outpost::testing

#endif  // OUTPOST_TESTS_EDGE_TEST_SUPPORT_H_
