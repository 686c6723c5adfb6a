#include "collector/common/program.h"

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

}  // namespace
}  // namespace meshtel::common
