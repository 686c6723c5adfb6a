#pragma once
// What every meshtel program does the same way before and after its real work: the command line
// (--config, --help, --version), logging through spdlog, and waiting for SIGTERM/SIGINT.
//
// Threading: call BlockTerminationSignals() first thing in main(), before any thread starts, so
// that every thread inherits the blocked mask and only WaitForTerminationSignal() receives them.

#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <variant>

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

// Blocks SIGTERM, SIGINT, SIGHUP and SIGUSR1 in the calling thread (and so in threads it starts
// later).
void BlockTerminationSignals();
// Waits until SIGTERM or SIGINT arrives; returns its name. SIGHUP calls `on_reload` (reload the
// configuration), or is logged and ignored when that is empty; SIGUSR1 calls `on_reopen_logs`
// (log rotation: reopen the files the program writes), or is logged and ignored when that is
// empty.
std::string WaitForTerminationSignal(const std::function<void()>& on_reopen_logs = {},
                                     const std::function<void()>& on_reload = {});

// What every main() does first: blocks the termination signals, parses the command line, loads
// the configuration with `load` and sets the log level from it. Returns the configuration, or
// the exit code main() must return now (0 after --help/--version, 2 for a bad command line or
// configuration, with the reason on stderr prefixed by `program`).
// `config_path`, when given, receives the --config path (empty without one).
template <class Config>
std::variant<Config, int> StartProgram(int argc, char** argv, std::string_view program,
                                       std::string_view usage,
                                       absl::StatusOr<Config> (*load)(const std::string&),
                                       std::string* config_path = nullptr) {
  BlockTerminationSignals();
  absl::StatusOr<CommandLine> command_line = ParseCommandLine(argc, argv, program, usage);
  if (!command_line.ok()) {
    std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(program.size()), program.data(),
                 std::string(command_line.status().message()).c_str());
    return 2;
  }
  if (command_line->exit_now) return 0;
  if (config_path != nullptr) *config_path = command_line->config_path;
  absl::StatusOr<Config> config = load(command_line->config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "%.*s: invalid configuration: %s\n", static_cast<int>(program.size()),
                 program.data(), std::string(config.status().message()).c_str());
    return 2;
  }
  (void)SetLogLevel(config->log_level);
  return *std::move(config);
}

}  // namespace meshtel::common
