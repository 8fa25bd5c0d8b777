// The subcommands of the `outpost` binary. Each Add*Command registers its flags on the CLI11
// app and sets `run` to the action to take when that subcommand was chosen. An action
// returns OK (exit 0) or an error whose one-line message is printed (exit 1); usage errors
// are CLI11's (exit 2).
#ifndef OUTPOST_APPS_COMMANDS_H_
#define OUTPOST_APPS_COMMANDS_H_

#include <functional>

#include "base/status.h"

namespace CLI {
class App;
}

namespace outpost::apps {

using Action = std::function<Status()>;

// `outpost edge`: the site's scoring server.
void AddEdgeCommand(CLI::App& app, Action& run);
// `outpost version`.
void AddVersionCommand(CLI::App& app, Action& run);
// `outpost demo`: the demo that `make demo` runs.
void AddDemoCommand(CLI::App& app, Action& run);

// The version string of this build ("0.1.0").
const char* OutpostVersion();

}  // namespace outpost::apps

#endif  // OUTPOST_APPS_COMMANDS_H_
