#include <CLI/CLI.hpp>

#include <cstdio>

#include "apps/commands.h"

namespace outpost::apps {

const char* OutpostVersion() { return OUTPOST_VERSION; }

void AddVersionCommand(CLI::App& app, Action& run) {
  CLI::App* cmd = app.add_subcommand("version", "Print Outpost's version");
  cmd->callback([&run] {
    run = [] {
      std::printf("outpost %s\n", OutpostVersion());
      return Status();
    };
  });
}

}  // namespace outpost::apps
