#include "collector/common/program.h"

#include <pthread.h>

#include <csignal>
#include <vector>

#include "gtest/gtest.h"

namespace meshtel::common {
namespace {

absl::StatusOr<CommandLine> Parse(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data(), "prog", "usage\n");
}

TEST(ProgramTest, ConfigInBothSpellings) {
  EXPECT_EQ(Parse({"prog", "--config", "a.yaml"})->config_path, "a.yaml");
  EXPECT_EQ(Parse({"prog", "--config=b.yaml"})->config_path, "b.yaml");
  EXPECT_EQ(Parse({"prog"})->config_path, "");
  EXPECT_FALSE(Parse({"prog"})->exit_now);
}

TEST(ProgramTest, HelpAndVersionExitAtOnce) {
  testing::internal::CaptureStdout();
  EXPECT_TRUE(Parse({"prog", "--help"})->exit_now);
  EXPECT_TRUE(Parse({"prog", "--version"})->exit_now);
  EXPECT_EQ(testing::internal::GetCapturedStdout(),
            std::string("usage\nprog ") + MESHTEL_VERSION + "\n");
}

TEST(ProgramTest, UnknownArgumentsAreRejected) {
  auto parsed = Parse({"prog", "--verbose"});
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(), "unknown argument '--verbose'; try --help");
  EXPECT_FALSE(Parse({"prog", "--config"}).ok());  // missing its value
}

TEST(ProgramTest, LogLevels) {
  for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    EXPECT_TRUE(IsLogLevel(level)) << level;
    EXPECT_TRUE(SetLogLevel(level).ok()) << level;
  }
  EXPECT_FALSE(IsLogLevel("loud"));
  EXPECT_EQ(SetLogLevel("loud").message(), "'loud' is not a log level");
  EXPECT_TRUE(SetLogLevel("info").ok());
}

struct TestConfig {
  std::string log_level = "info";
  std::string source;
};

absl::StatusOr<TestConfig> LoadTestConfig(const std::string& path) {
  if (path == "bad.yaml") return absl::InvalidArgumentError("x: 'y' is not a number");
  return TestConfig{.source = path};
}

std::variant<TestConfig, int> Start(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  return StartProgram<TestConfig>(static_cast<int>(argv.size()), argv.data(), "prog", "usage\n",
                                  &LoadTestConfig);
}

TEST(ProgramTest, StartProgramLoadsTheConfigOrSaysHowToExit) {
  auto started = Start({"prog", "--config", "good.yaml"});
  ASSERT_TRUE(std::holds_alternative<TestConfig>(started));
  EXPECT_EQ(std::get<TestConfig>(started).source, "good.yaml");

  testing::internal::CaptureStderr();
  EXPECT_EQ(std::get<int>(Start({"prog", "--config", "bad.yaml"})), 2);
  EXPECT_EQ(std::get<int>(Start({"prog", "--nope"})), 2);
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "prog: invalid configuration: x: 'y' is not a number\n"
            "prog: unknown argument '--nope'; try --help\n");
  testing::internal::CaptureStdout();
  EXPECT_EQ(std::get<int>(Start({"prog", "--version"})), 0);
  testing::internal::GetCapturedStdout();
}

// Signals sent to this thread stay pending (they are blocked) until WaitForTerminationSignal()
// takes them: SIGHUP and SIGUSR1 do not end the wait, SIGUSR1 calls the reopen callback, and
// SIGTERM ends it.
TEST(ProgramTest, WaitForTerminationSignalReopensLogsOnSigusr1) {
  BlockTerminationSignals();
  int reopened = 0;
  ASSERT_EQ(pthread_kill(pthread_self(), SIGHUP), 0);
  ASSERT_EQ(pthread_kill(pthread_self(), SIGUSR1), 0);
  ASSERT_EQ(pthread_kill(pthread_self(), SIGTERM), 0);
  EXPECT_EQ(WaitForTerminationSignal([&] { ++reopened; }), "SIGTERM");
  EXPECT_EQ(reopened, 1);

  // Without a callback SIGUSR1 is ignored, not fatal.
  ASSERT_EQ(pthread_kill(pthread_self(), SIGUSR1), 0);
  ASSERT_EQ(pthread_kill(pthread_self(), SIGINT), 0);
  EXPECT_EQ(WaitForTerminationSignal(), "SIGINT");
}

// SIGHUP calls the reload callback and does not end the wait.
TEST(ProgramTest, WaitForTerminationSignalReloadsOnSighup) {
  BlockTerminationSignals();
  int reloaded = 0;
  ASSERT_EQ(pthread_kill(pthread_self(), SIGHUP), 0);
  ASSERT_EQ(pthread_kill(pthread_self(), SIGTERM), 0);
  EXPECT_EQ(WaitForTerminationSignal({}, [&] { ++reloaded; }), "SIGTERM");
  EXPECT_EQ(reloaded, 1);
}

}  // namespace
}  // namespace meshtel::common
