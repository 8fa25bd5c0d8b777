// The `outpost` binary: one program, one subcommand per role (docs/ARCHITECTURE.md section 2).
// Exit codes: 0 ok, 1 failure (with a one-line reason on stderr), 2 usage error.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "apps/commands.h"
#include "base/logging.h"

#ifdef OUTPOST_TEST_HOOKS
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#endif

namespace {

#ifdef OUTPOST_TEST_HOOKS
// Compiled only into `outpost_test_hooks`, the build of this program that the crash tests
// run (apps/CMakeLists.txt): OUTPOST_BUNDLE_CRASH_AT=<step> kills the process with SIGKILL
// at that step of a bundle switch (bundle/install.h, StepHook). The shipped `outpost` is
// compiled without it and ignores the variable.
outpost::apps::BundleStepHook BundleStepHook() {
  const char* at = std::getenv("OUTPOST_BUNDLE_CRASH_AT");
  if (at == nullptr || *at == '\0') return nullptr;
  return [crash_at = std::string(at)](std::string_view step) {
    if (step == crash_at) ::kill(::getpid(), SIGKILL);
  };
}
#else
outpost::apps::BundleStepHook BundleStepHook() { return nullptr; }
#endif

int Main(int argc, char** argv) {
  CLI::App app("Outpost: AI for sites that are cut off from the internet.", "outpost");
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Print help for every subcommand");
  outpost::apps::Action run;
  outpost::apps::AddEdgeCommand(app, run);
  outpost::apps::AddVersionCommand(app, run);
  outpost::apps::AddDemoCommand(app, run);
  outpost::apps::AddHubCommand(app, run);
  outpost::apps::AddExportCommands(app, run);
  outpost::apps::AddKeysCommand(app, run);
  outpost::apps::AddBundleCommand(app, run, BundleStepHook());
  outpost::apps::AddTrainCommand(app, run);
  outpost::apps::AddImageCommand(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  if (!run) {
    std::fprintf(stderr, "outpost: no command chosen; see outpost --help\n");
    return 2;
  }
  outpost::Status status = run();
  if (!status.ok()) {
    std::string line(status.message());
    for (char& c : line) {
      if (c == '\n') c = ' ';
    }
    std::fprintf(stderr, "outpost: %s\n", line.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
