#include "tests/edge_test_support.h"

#include "base/file.h"
#include "base/subprocess.h"
#include "base/testing/test_util.h"

namespace outpost::testing {

Result<std::string> AddEdgeCredential(const std::string& data_dir, const std::string& name,
                                      const std::vector<std::string>& roles) {
  std::vector<std::string> argv = {JoinPath(BinaryDir(), "outpost"), "edge", "credential", "add"};
  argv.insert(argv.end(), {"--data-dir", data_dir, "--name", name});
  for (const std::string& role : roles) {
    argv.push_back("--role");
    argv.push_back(role);
  }
  RunResult r = RunProgram(argv);
  if (r.exit_code != 0) return InternalError("edge credential add " + name + ": " + r.err);
  std::string token = r.out.substr(0, r.out.find('\n'));
  if (token.rfind("opt_", 0) != 0) {
    return InternalError("edge credential add " + name + " printed no token: " + r.out);
  }
  return token;
}

}  // namespace outpost::testing
