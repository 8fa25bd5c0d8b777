// The subcommands of the `outpost` binary. Each Add*Command registers its flags on the CLI11
// app and sets `run` to the action to take when that subcommand was chosen. An action
// returns OK (exit 0) or an error whose one-line message is printed (exit 1); usage errors
// are CLI11's (exit 2).
#ifndef OUTPOST_APPS_COMMANDS_H_
#define OUTPOST_APPS_COMMANDS_H_

#include <functional>
#include <string_view>

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

// `outpost hub` and its subcommands (hub_command.cc): ingestion, import, the dashboard.
void AddHubCommand(CLI::App& app, Action& run);
// `outpost export` and `outpost import-receipt` (export_command.cc): records across the
// air gap on removable media.
void AddExportCommands(CLI::App& app, Action& run);
// `outpost keys generate|rotate` (keys_command.cc).
void AddKeysCommand(CLI::App& app, Action& run);
// Called at each named step of a bundle switch (bundle/install.h, StepHook); null in the
// shipped binary.
using BundleStepHook = std::function<void(std::string_view step)>;
// `outpost bundle create|sign|verify|inspect|install|rollback|list|push` (bundle_command.cc).
// `step_hook` reaches the installer; only the test build of the binary passes one
// (apps/main.cc).
void AddBundleCommand(CLI::App& app, Action& run, BundleStepHook step_hook = nullptr);
// `outpost image build` (image_command.cc): the runtime OCI image (image/FORMAT.md).
void AddImageCommand(CLI::App& app, Action& run);
// `outpost train` (train_command.cc): data set from the hub's records, train, evaluate,
// register.
void AddTrainCommand(CLI::App& app, Action& run);

// The version string of this build ("0.1.0").
const char* OutpostVersion();

}  // namespace outpost::apps

#endif  // OUTPOST_APPS_COMMANDS_H_
