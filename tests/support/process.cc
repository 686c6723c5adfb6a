#include "tests/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "boost/asio.hpp"
#include "gtest/gtest.h"
#include "tests/support/http_get.h"

namespace meshtel::testing {

std::unique_ptr<ChildProcess> ChildProcess::Start(const std::vector<std::string>& argv,
                                                  const std::string& log_path) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork failed";
    return nullptr;
  }
  if (pid == 0) {
    const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    // Children must not inherit a blocked signal mask or ignored signals from the test.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    setpgid(0, 0);
    execv(args[0], args.data());
    std::perror("execv");
    _exit(127);
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, log_path));
}

ChildProcess::~ChildProcess() {
  if (!reaped_) Terminate(std::chrono::seconds(5));
}

bool ChildProcess::Running() {
  if (reaped_) return false;
  int status = 0;
  const pid_t result = waitpid(pid_, &status, WNOHANG);
  if (result == pid_) {
    reaped_ = true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

int ChildProcess::Wait(std::chrono::milliseconds timeout) {
  WaitFor([this] { return !Running(); }, timeout);
  return reaped_ ? exit_code_ : -1;
}

int ChildProcess::Terminate(std::chrono::milliseconds grace) {
  if (reaped_) return exit_code_;
  kill(pid_, SIGTERM);
  if (Wait(grace) >= 0 || reaped_) return exit_code_;
  Kill();
  return exit_code_;
}

void ChildProcess::Kill() {
  if (reaped_) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  reaped_ = true;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string ChildProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

uint16_t FreePort() {
  // The kernel may hand out a port it just gave us again once that socket is closed: remember
  // what this process handed out, so two servers of one test never get the same port.
  static std::mutex mutex;
  static std::set<uint16_t> handed_out;
  std::lock_guard<std::mutex> lock(mutex);
  for (;;) {
    boost::asio::io_context io_context;
    boost::asio::ip::tcp::acceptor acceptor(
        io_context, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    const uint16_t port = acceptor.local_endpoint().port();
    if (handed_out.insert(port).second) return port;
  }
}

bool CanConnect(uint16_t port) {
  boost::asio::io_context io_context;
  boost::asio::ip::tcp::socket socket(io_context);
  boost::system::error_code error;
  socket.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port),
                 error);
  return !error;
}

std::string MakeTempDir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/" + prefix + "-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed for " << pattern;
    return "/tmp";
  }
  return buffer.data();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path);
  out << content;
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

int RunCommand(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  std::string text;
  size_t read = 0;
  while ((read = fread(buffer, 1, sizeof(buffer), pipe)) > 0) text.append(buffer, read);
  const int status = pclose(pipe);
  if (output != nullptr) *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool HaveProgram(const std::string& program) {
  return RunCommand("command -v " + program, nullptr) == 0;
}

::testing::AssertionResult StartCollector(const std::string& config_path,
                                          const std::string& log_path, uint16_t admin_port,
                                          std::unique_ptr<ChildProcess>& collector,
                                          std::chrono::milliseconds timeout) {
  collector = ChildProcess::Start({MESHTEL_COLLECTOR_BIN, "--config", config_path}, log_path);
  if (collector == nullptr) return ::testing::AssertionFailure() << "meshtel-collector not started";
  if (WaitFor([&] { return HttpGet(admin_port, "/readyz").status == 200; }, timeout)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "meshtel-collector (admin port " << admin_port
                                       << ") not ready after " << timeout.count() << " ms; log:\n"
                                       << collector->Log();
}

}  // namespace meshtel::testing
