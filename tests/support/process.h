#pragma once
// Test support: child processes, free loopback ports, temporary directories, polling.
// Used only by tests; every child is stopped when its ChildProcess is destroyed.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace meshtel::testing {

class ChildProcess {
 public:
  // Starts argv[0] with arguments; stdout and stderr go to `log_path`. Aborts the test on failure.
  static std::unique_ptr<ChildProcess> Start(const std::vector<std::string>& argv,
                                             const std::string& log_path);
  ~ChildProcess();

  // Sends SIGTERM and waits up to `grace`, then SIGKILL. Returns the exit code, or 128+signal.
  int Terminate(std::chrono::milliseconds grace = std::chrono::seconds(10));
  // Sends SIGKILL and reaps the process.
  void Kill();
  // Waits for the process to exit on its own (up to `timeout`); returns the exit code or -1.
  int Wait(std::chrono::milliseconds timeout);
  bool Running();
  std::string Log() const;
  pid_t pid() const { return pid_; }

 private:
  ChildProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_;
  std::string log_path_;
  int exit_code_ = -1;
  bool reaped_ = false;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
uint16_t FreePort();
// True when a TCP connection to 127.0.0.1:`port` succeeds (it is closed at once).
bool CanConnect(uint16_t port);
// A new empty directory under the system temporary directory.
std::string MakeTempDir(const std::string& prefix);
void WriteFile(const std::string& path, const std::string& content);
// Polls `condition` every 50 ms until it holds or `timeout` passes; returns its last value.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);
// Runs a shell command; returns its exit code and puts stdout+stderr in `output`.
int RunCommand(const std::string& command, std::string* output);
// True when `program` is on PATH.
bool HaveProgram(const std::string& program);

// Starts meshtel-collector with `--config config_path` (its output to `log_path`) into
// `collector`, then waits up to `timeout` until its admin server on 127.0.0.1:`admin_port`
// answers GET /readyz with 200. The failure, with the collector's log, when it never does.
// Use as ASSERT_TRUE(StartCollector(...)).
::testing::AssertionResult StartCollector(
    const std::string& config_path, const std::string& log_path, uint16_t admin_port,
    std::unique_ptr<ChildProcess>& collector,
    std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace meshtel::testing
