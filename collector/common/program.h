#pragma once
// What every meshtel program does the same way before and after its real work: the command line
// (--config, --help, --version), logging through spdlog, and waiting for SIGTERM/SIGINT.
//
// Threading: call BlockTerminationSignals() first thing in main(), before any thread starts, so
// that every thread inherits the blocked mask and only WaitForTerminationSignal() receives them.

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace meshtel::common {

struct CommandLine {
  std::string config_path;  // empty when --config was not given
  bool exit_now = false;    // --help or --version was answered; exit 0
};

// Parses argv. `usage` is printed for --help. Unknown arguments are InvalidArgument.
absl::StatusOr<CommandLine> ParseCommandLine(int argc, char** argv, std::string_view program,
                                             std::string_view usage);

// Sets the default spdlog logger's level: trace, debug, info, warn, error, critical, off.
absl::Status SetLogLevel(std::string_view level);
// True for the level names SetLogLevel() accepts.
bool IsLogLevel(std::string_view level);

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (and so in threads it starts later).
void BlockTerminationSignals();
// Waits until SIGTERM or SIGINT arrives; returns its name.
std::string WaitForTerminationSignal();

}  // namespace meshtel::common
