#include "collector/common/program.h"

#include <csignal>
#include <cstdio>

#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace meshtel::common {

absl::StatusOr<CommandLine> ParseCommandLine(int argc, char** argv, std::string_view program,
                                             std::string_view usage) {
  CommandLine command_line;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("%.*s", static_cast<int>(usage.size()), usage.data());
      command_line.exit_now = true;
      return command_line;
    }
    if (arg == "--version") {
      std::printf("%.*s %s\n", static_cast<int>(program.size()), program.data(), MESHTEL_VERSION);
      command_line.exit_now = true;
      return command_line;
    }
    if (arg == "--config" && i + 1 < argc) {
      command_line.config_path = argv[++i];
      continue;
    }
    if (arg.starts_with("--config=")) {
      command_line.config_path = std::string(arg.substr(9));
      continue;
    }
    return absl::InvalidArgumentError(fmt::format("unknown argument '{}'; try --help", arg));
  }
  return command_line;
}

bool IsLogLevel(std::string_view level) {
  return spdlog::level::from_str(std::string(level)) != spdlog::level::off || level == "off";
}

absl::Status SetLogLevel(std::string_view level) {
  if (!IsLogLevel(level)) {
    return absl::InvalidArgumentError(fmt::format("'{}' is not a log level", level));
  }
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ [%n] %v", spdlog::pattern_time_type::utc);
  return absl::OkStatus();
}

namespace {
sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR1);
  return set;
}
}  // namespace

void BlockTerminationSignals() {
  sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

std::string WaitForTerminationSignal(const std::function<void()>& on_reopen_logs,
                                     const std::function<void()>& on_reload) {
  sigset_t set = TerminationSignals();
  for (;;) {
    int signal_number = 0;
    if (sigwait(&set, &signal_number) != 0) continue;
    if (signal_number == SIGHUP) {
      if (on_reload) {
        spdlog::info("SIGHUP received: reloading the configuration");
        on_reload();
      } else {
        spdlog::info("SIGHUP received; this program does not reload its configuration, ignoring");
      }
      continue;
    }
    if (signal_number == SIGUSR1) {
      if (on_reopen_logs) {
        spdlog::info("SIGUSR1 received: reopening log files");
        on_reopen_logs();
      } else {
        spdlog::info("SIGUSR1 received; no log file to reopen, ignoring");
      }
      continue;
    }
    return signal_number == SIGTERM ? "SIGTERM" : "SIGINT";
  }
}

}  // namespace meshtel::common
