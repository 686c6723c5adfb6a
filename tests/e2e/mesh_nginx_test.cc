// End to end with a real nginx (Debian's package) as the app: a client talks to proxy A's outbound
// listener, which routes backend.demo.svc.cluster.local to proxy B's inbound listener, whose app
// is nginx. Both proxies report to one meshtel-collector. Everything runs on 127.0.0.1.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "boost/asio/buffer.hpp"
#include "boost/asio/error.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http.hpp"
#include "collector/store/record_store.h"
#include "gtest/gtest.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace meshtel::e2e {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::ChildProcess;

constexpr char kNginx[] = "/usr/sbin/nginx";
constexpr char kBackendHost[] = "backend.demo.svc.cluster.local";
constexpr char kSlowHost[] = "slow.demo.svc.cluster.local";
constexpr char kDeadHost[] = "dead.demo.svc.cluster.local";
constexpr char kIndexBody[] = "hello from nginx behind two meshtel proxies\n";
constexpr size_t kBigSize = size_t{100} << 20;  // 100 MiB
constexpr double kRssLimitKiB = 64 * 1024;      // per proxy, during the 100 MiB transfers

// The byte at every offset of the big test body: position-dependent (so lost, repeated or
// reordered pieces are caught) and never '<' (so nginx's SSI filter finds no command in it).
void FillPattern(uint64_t offset, char* out, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    uint64_t x = (offset + i) / 8 + 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
    char byte = static_cast<char>(x >> (8 * ((offset + i) % 8)));
    out[i] = byte == '<' ? '>' : byte;
  }
}

// Offset of the first byte of `data` (which starts at `offset` of the pattern) that differs from
// the pattern, or -1.
int64_t FirstMismatch(uint64_t offset, const char* data, size_t size) {
  std::vector<char> expected(size);
  FillPattern(offset, expected.data(), size);
  if (std::memcmp(expected.data(), data, size) == 0) return -1;
  for (size_t i = 0; i < size; ++i) {
    if (expected[i] != data[i]) return static_cast<int64_t>(offset + i);
  }
  return -1;
}

// A blocking TCP client socket whose reads and writes give up after a timeout (Asio's own
// synchronous calls retry forever), usable with Beast's synchronous http::read / http::write.
class TimedSocket {
 public:
  explicit TimedSocket(uint16_t port, seconds timeout = seconds(30)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const timeval limit{static_cast<time_t>(timeout.count()), 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~TimedSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  TimedSocket(const TimedSocket&) = delete;
  TimedSocket& operator=(const TimedSocket&) = delete;

  bool connected() const { return fd_ >= 0; }

  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers, beast::error_code& error) {
    error = {};
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
         ++it) {
      asio::mutable_buffer buffer(*it);
      if (buffer.size() == 0) continue;
      for (;;) {
        const ssize_t got = ::recv(fd_, buffer.data(), buffer.size(), 0);
        if (got > 0) return static_cast<size_t>(got);
        if (got == 0) {
          error = asio::error::eof;
          return 0;
        }
        if (errno == EINTR) continue;
        error = beast::error_code(errno, boost::system::system_category());
        return 0;
      }
    }
    return 0;
  }
  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers) {
    beast::error_code error;
    const size_t got = read_some(buffers, error);
    if (error) throw boost::system::system_error(error);
    return got;
  }
  // Gathers the whole buffer sequence into one sendmsg, so a request head goes out in one piece.
  template <class ConstBufferSequence>
  size_t write_some(const ConstBufferSequence& buffers, beast::error_code& error) {
    error = {};
    iovec vectors[64];
    size_t count = 0;
    for (auto it = asio::buffer_sequence_begin(buffers);
         it != asio::buffer_sequence_end(buffers) && count < std::size(vectors); ++it) {
      asio::const_buffer buffer(*it);
      if (buffer.size() == 0) continue;
      vectors[count++] = iovec{const_cast<void*>(buffer.data()), buffer.size()};
    }
    if (count == 0) return 0;
    msghdr message{};
    message.msg_iov = vectors;
    message.msg_iovlen = count;
    for (;;) {
      const ssize_t sent = ::sendmsg(fd_, &message, MSG_NOSIGNAL);
      if (sent >= 0) return static_cast<size_t>(sent);
      if (errno == EINTR) continue;
      error = beast::error_code(errno, boost::system::system_category());
      return 0;
    }
  }
  template <class ConstBufferSequence>
  size_t write_some(const ConstBufferSequence& buffers) {
    beast::error_code error;
    const size_t sent = write_some(buffers, error);
    if (error) throw boost::system::system_error(error);
    return sent;
  }
  // Writes all of `data`; false on error or timeout.
  bool WriteAll(const char* data, size_t size) {
    while (size > 0) {
      beast::error_code error;
      const size_t sent = write_some(asio::const_buffer(data, size), error);
      if (error) return false;
      data += sent;
      size -= sent;
    }
    return true;
  }

 private:
  int fd_ = -1;
};

struct Response {
  int status = 0;  // 0: transport error (see `error`)
  std::string body;
  bool keep_alive = false;
  std::string error;
};

// One keep-alive client connection.
class Client {
 public:
  explicit Client(uint16_t port) : socket_(port) {}
  bool connected() const { return socket_.connected(); }

  Response Get(const std::string& host, const std::string& target,
               const std::string& user_agent = "") {
    Response result;
    http::request<http::empty_body> request{http::verb::get, target, 11};
    request.set(http::field::host, host);
    if (!user_agent.empty()) request.set(http::field::user_agent, user_agent);
    beast::error_code error;
    http::write(socket_, request, error);
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 << 20);
    if (!error) http::read(socket_, buffer_, parser, error);
    if (error) {
      result.error = error.message();
      return result;
    }
    result.status = static_cast<int>(parser.get().result_int());
    result.body = parser.get().body();
    result.keep_alive = parser.get().keep_alive();
    return result;
  }

  TimedSocket& socket() { return socket_; }
  beast::flat_buffer& buffer() { return buffer_; }

 private:
  TimedSocket socket_;
  beast::flat_buffer buffer_;
};

// A loopback port held by this test. Listening, it accepts TCP connections (the kernel completes
// the handshake into the backlog) but never reads or answers: an upstream that is alive and too
// slow. Not listening, every connection to it is refused: a dead upstream. Either way no other
// process can take the port while the test runs.
class HeldPort {
 public:
  explicit HeldPort(bool listening) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
        (!listening || ::listen(fd_, 64) == 0) &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      port_ = ntohs(address.sin_port);
    }
  }
  ~HeldPort() { ::close(fd_); }
  HeldPort(const HeldPort&) = delete;
  HeldPort& operator=(const HeldPort&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// VmRSS of a process in KiB, or 0 when it cannot be read.
double RssKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6));
  }
  return 0;
}

// Samples the peak VmRSS of some processes in a thread until destroyed.
class RssSampler {
 public:
  explicit RssSampler(std::vector<pid_t> pids) : pids_(std::move(pids)), peaks_(pids_.size()) {
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        for (size_t i = 0; i < pids_.size(); ++i) {
          peaks_[i] = std::max(peaks_[i].load(), RssKiB(pids_[i]));
        }
        std::this_thread::sleep_for(milliseconds(10));
      }
    });
  }
  ~RssSampler() { Stop(); }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  double peak(size_t i) const { return peaks_[i].load(); }

 private:
  std::vector<pid_t> pids_;
  std::vector<std::atomic<double>> peaks_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Sum of the samples of metric `name` whose labels contain every fragment.
double Sample(const std::string& text, const std::string& name,
              const std::vector<std::string>& fragments) {
  return testing::SumSamples(text, name, fragments);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class MeshNginxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kNginx, X_OK) != 0) {
      GTEST_SKIP() << kNginx << " is missing: install Debian's nginx package (see the README's "
                   << "test peers) to run the nginx end-to-end tests";
    }
    dir_ = testing::MakeTempDir("meshtel-e2e-nginx");
    for (const char* sub : {"/www", "/dav", "/nginx-tmp", "/data"}) {
      ASSERT_EQ(mkdir((dir_ + sub).c_str(), 0755), 0) << dir_ + sub;
    }
    testing::WriteFile(dir_ + "/www/index.html", kIndexBody);
    nginx_port_ = DistinctFreePort();
    ingest_port_ = DistinctFreePort();
    collector_admin_port_ = DistinctFreePort();
    outbound_port_ = DistinctFreePort();  // proxy A
    a_admin_port_ = DistinctFreePort();
    inbound_port_ = DistinctFreePort();  // proxy B
    b_admin_port_ = DistinctFreePort();
    ASSERT_NE(silent_.port(), 0);
    ASSERT_NE(dead_.port(), 0);

    WriteNginxConfig();
    nginx_ = ChildProcess::Start({kNginx, "-p", dir_, "-c", dir_ + "/nginx.conf", "-e",
                                  dir_ + "/nginx-error.log", "-g", "daemon off;"},
                                 dir_ + "/nginx.log");
    ASSERT_TRUE(testing::WaitFor([&] { return testing::CanConnect(nginx_port_); }, seconds(20)))
        << "nginx never listened:\n"
        << nginx_->Log() << ReadFile(dir_ + "/nginx-error.log");

    const auto listen = [](uint16_t port) { return "\"127.0.0.1:" + std::to_string(port) + "\""; };
    testing::WriteFile(dir_ + "/collector.yaml",
                       "ingest: {listen: " + listen(ingest_port_) + "}\n" +
                           "admin: {listen: " + listen(collector_admin_port_) + "}\n" +
                           "store: {data_dir: \"" + dir_ + "/data\"}\n" + "shutdown_grace: 1s\n");
    const std::string reporter = "reporter: {collector: " + listen(ingest_port_) +
                                 ", flush_interval: 50ms, reconnect_initial_backoff: 50ms, "
                                 "reconnect_max_backoff: 500ms}\n";
    // Proxy A: the client's sidecar; outbound only.
    testing::WriteFile(dir_ + "/proxy-a.yaml",
                       "io_threads: 1\n"
                       "drain_timeout: 1s\n"
                       "workload: {name: client, namespace: demo, app: client, version: v1}\n"
                       "inbound: {enabled: false}\n"
                       "outbound:\n"
                       "  listen: " +
                           listen(outbound_port_) +
                           "\n"
                           "  routes:\n"
                           "    - {host: " +
                           kBackendHost + ", addresses: [" + listen(inbound_port_) +
                           "], timeout: 60s}\n"
                           "    - {host: " +
                           kSlowHost + ", addresses: [" + listen(silent_.port()) +
                           "], timeout: 500ms}\n"
                           "    - {host: " +
                           kDeadHost + ", addresses: [" + listen(dead_.port()) + "]}\n" +
                           "admin: {listen: " + listen(a_admin_port_) + "}\n" + reporter);
    // Proxy B: nginx's sidecar; inbound only.
    testing::WriteFile(dir_ + "/proxy-b.yaml",
                       "io_threads: 1\n"
                       "drain_timeout: 1s\n"
                       "workload: {name: backend, namespace: demo, app: backend, version: v1}\n"
                       "inbound: {listen: " +
                           listen(inbound_port_) + ", app: " + listen(nginx_port_) +
                           ", timeout: 60s}\n" + "outbound: {enabled: false}\n" +
                           "admin: {listen: " + listen(b_admin_port_) + "}\n" + reporter);

    StartCollector();
    proxy_a_ = ChildProcess::Start({MESHTEL_PROXY_BIN, "--config", dir_ + "/proxy-a.yaml"},
                                   dir_ + "/proxy-a.log");
    proxy_b_ = ChildProcess::Start({MESHTEL_PROXY_BIN, "--config", dir_ + "/proxy-b.yaml"},
                                   dir_ + "/proxy-b.log");
    for (uint16_t port : {outbound_port_, inbound_port_, a_admin_port_, b_admin_port_}) {
      ASSERT_TRUE(testing::WaitFor([&] { return testing::CanConnect(port); }, seconds(20)))
          << "port " << port << " never opened; see the logs in " << dir_;
    }
  }

  void TearDown() override {
    if (dir_.empty()) return;
    if (HasFailure()) {
      for (const char* name : {"collector.log", "proxy-a.log", "proxy-b.log", "nginx-error.log"}) {
        std::string log;
        testing::RunCommand("tail -n 30 " + dir_ + "/" + name, &log);
        std::printf("---- %s ----\n%s\n", name, log.c_str());
      }
    }
    for (auto* child : {&proxy_a_, &proxy_b_, &collector_, &nginx_}) {
      if (*child != nullptr) (*child)->Terminate(seconds(5));
    }
    // The big files are never worth keeping; the rest only when something failed.
    testing::RunCommand(
        HasFailure() ? "rm -rf " + dir_ + "/www/big.bin " + dir_ + "/dav" : "rm -rf " + dir_,
        nullptr);
  }

  // testing::FreePort() releases the port it found, so two calls can return the same one.
  uint16_t DistinctFreePort() {
    for (;;) {
      const uint16_t port = testing::FreePort();
      if (used_ports_.insert(port).second) return port;
    }
  }

  void WriteNginxConfig() {
    // Running as root, nginx would switch its worker to "nobody", who cannot read the 0700 temp
    // directory; keep the worker as the current user.
    std::string user_line;
    if (geteuid() == 0) {
      const passwd* entry = getpwuid(0);
      user_line = std::string("user ") + (entry != nullptr ? entry->pw_name : "root") + ";\n";
    }
    std::string config = user_line + R"(worker_processes 1;
pid @DIR@/nginx.pid;
error_log @DIR@/nginx-error.log info;
events { worker_connections 256; }
http {
  log_format meshtel '$connection $connection_requests $request_method $uri $status '
                     '$request_length $body_bytes_sent';
  access_log @DIR@/nginx-access.log meshtel;
  client_body_temp_path @DIR@/nginx-tmp;
  proxy_temp_path @DIR@/nginx-tmp;
  fastcgi_temp_path @DIR@/nginx-tmp;
  uwsgi_temp_path @DIR@/nginx-tmp;
  scgi_temp_path @DIR@/nginx-tmp;
  # nginx's default, spelled out: the 2000-request test crosses it, so proxy B sees nginx
  # close a kept-alive connection.
  keepalive_requests 1000;
  server {
    listen 127.0.0.1:@PORT@;
    root @DIR@/www;
    # PUT stores the body in a file: nginx reads all of it before answering 201.
    location /upload/ {
      root @DIR@/dav;
      dav_methods PUT;
      create_full_put_path on;
      client_max_body_size 0;
      client_body_buffer_size 64k;
    }
    # The SSI filter drops Content-Length, so static files go out chunked.
    location /chunked/ {
      alias @DIR@/www/;
      ssi on;
      ssi_types *;
    }
  }
}
)";
    for (const auto& [placeholder, value] : {std::pair<std::string, std::string>{"@DIR@", dir_},
                                             {"@PORT@", std::to_string(nginx_port_)}}) {
      for (size_t at; (at = config.find(placeholder)) != std::string::npos;) {
        config.replace(at, placeholder.size(), value);
      }
    }
    testing::WriteFile(dir_ + "/nginx.conf", config);
  }

  void StartCollector() {
    ASSERT_TRUE(testing::StartCollector(dir_ + "/collector.yaml", dir_ + "/collector.log",
                                        collector_admin_port_, collector_));
  }

  std::string CollectorMetrics() {
    return testing::HttpGet(collector_admin_port_, "/metrics").body;
  }
  double Requests(const std::vector<std::string>& fragments) {
    return testing::SumSamples(CollectorMetrics(), "istio_requests_total", fragments);
  }
  static std::string ProxyStats(uint16_t admin_port) {
    return testing::HttpGet(admin_port, "/stats/prometheus").body;
  }
  static double ProxyStat(uint16_t admin_port, const std::string& name,
                          const std::vector<std::string>& fragments = {}) {
    return Sample(ProxyStats(admin_port), name, fragments);
  }

  // The lines of nginx's access log for `uri`, split into fields ($connection
  // $connection_requests $request_method $uri $status $request_length $body_bytes_sent). nginx
  // logs a request after answering it, so this waits (a while) for `count` such lines.
  std::vector<std::vector<std::string>> AccessLog(const std::string& uri, size_t count) {
    std::vector<std::vector<std::string>> lines;
    testing::WaitFor(
        [&] {
          lines.clear();
          std::stringstream text(ReadFile(dir_ + "/nginx-access.log"));
          for (std::string line; std::getline(text, line);) {
            std::stringstream fields(line);
            std::vector<std::string> parts;
            for (std::string field; fields >> field;) parts.push_back(field);
            if (parts.size() == 7 && parts[3] == uri) lines.push_back(std::move(parts));
          }
          return lines.size() >= count;
        },
        seconds(10));
    return lines;
  }

  std::string dir_;
  uint16_t nginx_port_ = 0, ingest_port_ = 0, collector_admin_port_ = 0, outbound_port_ = 0,
           a_admin_port_ = 0, inbound_port_ = 0, b_admin_port_ = 0;
  std::set<uint16_t> used_ports_;
  HeldPort silent_{/*listening=*/true};  // the slow upstream
  HeldPort dead_{/*listening=*/false};   // the dead upstream
  std::unique_ptr<ChildProcess> nginx_, collector_, proxy_a_, proxy_b_;
};

TEST_F(MeshNginxTest, KeepAliveConnectionsAreReusedOnEveryHop) {
  constexpr int kRequests = 8;
  Client client(outbound_port_);
  ASSERT_TRUE(client.connected());
  for (int i = 0; i < kRequests; ++i) {
    const Response response = client.Get(kBackendHost, "/index.html");
    ASSERT_EQ(response.status, 200) << "request " << i << ": " << response.error;
    EXPECT_EQ(response.body, kIndexBody);
    EXPECT_TRUE(response.keep_alive) << "request " << i;
  }

  // Each proxy opened one upstream connection and sent every later request on it. (A proxy
  // counts a request after its response went out, so wait for the last one to be counted.)
  for (const auto& [port, direction] :
       {std::pair<uint16_t, std::string>{a_admin_port_, "outbound"}, {b_admin_port_, "inbound"}}) {
    const std::string label = "direction=\"" + direction + "\"";
    std::string stats;
    EXPECT_TRUE(testing::WaitFor(
        [&, port = port] {
          stats = ProxyStats(port);
          return testing::SumSamples(stats, "meshtel_proxy_requests_total", {label}) == kRequests;
        },
        seconds(10)))
        << stats;
    EXPECT_EQ(
        testing::SumSamples(stats, "meshtel_proxy_upstream_connections_opened_total", {label}), 1)
        << stats;
    EXPECT_EQ(testing::SumSamples(
                  stats, "meshtel_proxy_upstream_requests_on_reused_connections_total", {label}),
              kRequests - 1)
        << stats;
  }

  // nginx saw all requests on one connection, numbered 1..kRequests.
  std::set<std::string> connections;
  std::vector<std::string> numbers;
  for (const auto& fields : AccessLog("/index.html", kRequests)) {
    EXPECT_EQ(fields[4], "200");
    connections.insert(fields[0]);
    numbers.push_back(fields[1]);
  }
  ASSERT_EQ(numbers.size(), static_cast<size_t>(kRequests)) << ReadFile(dir_ + "/nginx-access.log");
  EXPECT_EQ(connections.size(), 1u) << ReadFile(dir_ + "/nginx-access.log");
  EXPECT_EQ(numbers.back(), std::to_string(kRequests));

  // The collector counted every request once per reporter, between the right workloads.
  const std::vector<std::string> source = {"reporter=\"source\"", "source_workload=\"client\"",
                                           "destination_workload=\"backend\"",
                                           "response_code=\"200\"", "response_flags=\"-\""};
  ASSERT_TRUE(testing::WaitFor([&] { return Requests(source) == kRequests; }, seconds(30)))
      << CollectorMetrics();
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return Requests({"reporter=\"destination\"", "source_workload=\"client\"",
                         "destination_workload=\"backend\"", "response_code=\"200\""}) == kRequests;
      },
      seconds(30)))
      << CollectorMetrics();
}

TEST_F(MeshNginxTest, HundredMebibyteChunkedBodiesStreamBothWaysInBoundedMemory) {
  // The file nginx serves: written in 1 MiB pieces of the pattern.
  {
    std::vector<char> piece(1 << 20);
    std::FILE* file = std::fopen((dir_ + "/www/big.bin").c_str(), "wb");
    ASSERT_NE(file, nullptr);
    for (uint64_t offset = 0; offset < kBigSize; offset += piece.size()) {
      FillPattern(offset, piece.data(), piece.size());
      ASSERT_EQ(std::fwrite(piece.data(), 1, piece.size(), file), piece.size());
    }
    ASSERT_EQ(std::fclose(file), 0);
  }
  const double rss_before_a = RssKiB(proxy_a_->pid());
  const double rss_before_b = RssKiB(proxy_b_->pid());
  RssSampler rss({proxy_a_->pid(), proxy_b_->pid()});

  // Request direction: PUT 100 MiB in 64 KiB chunks; nginx's DAV module stores it in a file.
  {
    TimedSocket socket(outbound_port_);
    ASSERT_TRUE(socket.connected());
    const std::string head = std::string("PUT /upload/big.bin HTTP/1.1\r\nHost: ") + kBackendHost +
                             "\r\nTransfer-Encoding: chunked\r\n"
                             "Content-Type: application/octet-stream\r\n\r\n";
    ASSERT_TRUE(socket.WriteAll(head.data(), head.size()));
    std::vector<char> piece(64 << 10);
    for (uint64_t offset = 0; offset < kBigSize; offset += piece.size()) {
      FillPattern(offset, piece.data(), piece.size());
      char size_line[32];
      const int length = std::snprintf(size_line, sizeof(size_line), "%zx\r\n", piece.size());
      ASSERT_TRUE(socket.WriteAll(size_line, static_cast<size_t>(length)))
          << "upload stalled at offset " << offset;
      ASSERT_TRUE(socket.WriteAll(piece.data(), piece.size()))
          << "upload stalled at offset " << offset;
      ASSERT_TRUE(socket.WriteAll("\r\n", 2));
    }
    ASSERT_TRUE(socket.WriteAll("0\r\n\r\n", 5));
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    beast::error_code error;
    http::read(socket, buffer, response, error);
    ASSERT_FALSE(error) << error.message();
    EXPECT_EQ(response.result_int(), 201u) << response;
  }
  // nginx read the whole body, and stored exactly the bytes sent.
  const auto put_log = AccessLog("/upload/big.bin", 1);
  ASSERT_EQ(put_log.size(), 1u) << ReadFile(dir_ + "/nginx-access.log");
  EXPECT_EQ(put_log[0][2], "PUT");
  EXPECT_EQ(put_log[0][4], "201");
  EXPECT_GT(std::stoull(put_log[0][5]), kBigSize) << "$request_length: headers + chunked body";
  {
    std::FILE* file = std::fopen((dir_ + "/dav/upload/big.bin").c_str(), "rb");
    ASSERT_NE(file, nullptr);
    std::vector<char> piece(1 << 20);
    uint64_t offset = 0;
    for (size_t got; (got = std::fread(piece.data(), 1, piece.size(), file)) > 0; offset += got) {
      const int64_t mismatch = FirstMismatch(offset, piece.data(), got);
      ASSERT_EQ(mismatch, -1) << "stored upload differs at byte " << mismatch;
    }
    std::fclose(file);
    EXPECT_EQ(offset, kBigSize);
  }

  // Response direction: nginx sends the file chunked (SSI filter); every byte must arrive.
  {
    TimedSocket socket(outbound_port_);
    ASSERT_TRUE(socket.connected());
    http::request<http::empty_body> request{http::verb::get, "/chunked/big.bin", 11};
    request.set(http::field::host, kBackendHost);
    beast::error_code error;
    http::write(socket, request, error);
    ASSERT_FALSE(error) << error.message();
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(kBigSize * 2);
    http::read_header(socket, buffer, parser, error);
    ASSERT_FALSE(error) << error.message();
    EXPECT_EQ(parser.get().result_int(), 200u);
    EXPECT_TRUE(parser.chunked()) << parser.get().base();
    EXPECT_EQ(parser.get()[http::field::transfer_encoding], "chunked");
    std::vector<char> piece(256 << 10);
    uint64_t received = 0;
    while (!parser.is_done()) {
      parser.get().body().data = piece.data();
      parser.get().body().size = piece.size();
      http::read(socket, buffer, parser, error);
      if (error == http::error::need_buffer) error = {};
      ASSERT_FALSE(error) << error.message() << " after " << received << " bytes";
      const size_t got = piece.size() - parser.get().body().size;
      const int64_t mismatch = FirstMismatch(received, piece.data(), got);
      ASSERT_EQ(mismatch, -1) << "downloaded body differs at byte " << mismatch;
      received += got;
    }
    EXPECT_EQ(received, kBigSize);
  }
  const auto get_log = AccessLog("/chunked/big.bin", 1);
  ASSERT_EQ(get_log.size(), 1u) << ReadFile(dir_ + "/nginx-access.log");
  EXPECT_EQ(get_log[0][4], "200");
  // $body_bytes_sent counts nginx's chunk framing too: nginx itself sent the body chunked.
  EXPECT_GT(std::stoull(get_log[0][6]), kBigSize);
  rss.Stop();
  std::printf("VmRSS KiB: proxy A %.0f before, peak %.0f; proxy B %.0f before, peak %.0f\n",
              rss_before_a, rss.peak(0), rss_before_b, rss.peak(1));
  EXPECT_GT(rss.peak(0), 0);
  EXPECT_LT(rss.peak(0), kRssLimitKiB) << "proxy A held the body in memory";
  EXPECT_LT(rss.peak(1), kRssLimitKiB) << "proxy B held the body in memory";

  // Both transfers were recorded by both reporters, with their sizes.
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return Requests({"reporter=\"source\"", "response_code=\"201\""}) == 1 &&
               Requests({"reporter=\"destination\"", "response_code=\"201\""}) == 1 &&
               Requests({"reporter=\"source\"", "response_code=\"200\""}) == 1 &&
               Requests({"reporter=\"destination\"", "response_code=\"200\""}) == 1;
      },
      seconds(30)))
      << CollectorMetrics();
}

// HTTP lets header values and targets carry bytes that are not UTF-8 (obs-text); a record's
// text fields are proto3 strings, which the collector refuses unless they are UTF-8. Such a
// request is proxied as it came, and its record (sanitized, as Envoy does: U+FFFD for each byte
// that is not UTF-8) is counted like any other: no batch of records is lost for it.
TEST_F(MeshNginxTest, BytesThatAreNotUtf8InARequestLoseNoRecord) {
  constexpr int kRequests = 10;
  Client client(outbound_port_);
  ASSERT_TRUE(client.connected());
  for (int i = 0; i < kRequests; ++i) {
    const Response response =
        i % 3 == 0 ? client.Get(kBackendHost, "/index.html?q=caf\xe9", "agent \xff\xfe/1")
                   : client.Get(kBackendHost, "/index.html");
    ASSERT_EQ(response.status, 200) << "request " << i << ": " << response.error;
  }
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return Requests({"reporter=\"source\"", "response_code=\"200\""}) == kRequests &&
               Requests({"reporter=\"destination\"", "response_code=\"200\""}) == kRequests;
      },
      seconds(30)))
      << CollectorMetrics();
  for (const uint16_t port : {a_admin_port_, b_admin_port_}) {
    EXPECT_EQ(ProxyStat(port, "meshtel_proxy_records_rejected_total"), 0) << ProxyStats(port);
    EXPECT_EQ(ProxyStat(port, "meshtel_proxy_records_invalid_utf8_total"), (kRequests + 2) / 3)
        << ProxyStats(port);
  }
  EXPECT_EQ(testing::SumSamples(CollectorMetrics(), "meshtel_ingest_batches_total",
                                {"result=\"invalid\""}),
            0);
}

TEST_F(MeshNginxTest, SlowUpstreamIsAnswered504WithFlagUT) {
  Client client(outbound_port_);
  ASSERT_TRUE(client.connected());
  const Response response = client.Get(kSlowHost, "/never");
  EXPECT_EQ(response.status, 504) << response.error;
  // The mesh keeps working on another connection.
  Client other(outbound_port_);
  EXPECT_EQ(other.Get(kBackendHost, "/index.html").status, 200);

  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return ProxyStat(a_admin_port_, "meshtel_proxy_response_flags_total",
                         {"direction=\"outbound\"", "response_flag=\"UT\""}) == 1;
      },
      seconds(10)))
      << ProxyStats(a_admin_port_);
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return Requests(
                   {"reporter=\"source\"", "response_code=\"504\"", "response_flags=\"UT\""}) == 1;
      },
      seconds(30)))
      << CollectorMetrics();
  EXPECT_EQ(Requests({"response_flags=\"UT\""}), 1);
}

TEST_F(MeshNginxTest, DeadUpstreamIsAnswered503WithFlagUF) {
  Client client(outbound_port_);
  ASSERT_TRUE(client.connected());
  const Response response = client.Get(kDeadHost, "/");
  EXPECT_EQ(response.status, 503) << response.error;

  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return ProxyStat(a_admin_port_, "meshtel_proxy_response_flags_total",
                         {"direction=\"outbound\"", "response_flag=\"UF\""}) == 1;
      },
      seconds(10)))
      << ProxyStats(a_admin_port_);
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return Requests(
                   {"reporter=\"source\"", "response_code=\"503\"", "response_flags=\"UF\""}) == 1;
      },
      seconds(30)))
      << CollectorMetrics();
}

TEST_F(MeshNginxTest, CollectorKilledDuringLoadNeitherBlocksTrafficNorLosesOrRepeatsRecords) {
  constexpr int kRequests = 2000;
  std::atomic<int> sent{0};
  std::atomic<int> ok{0};
  std::atomic<bool> killed{false};
  std::vector<std::string> failures;
  std::thread load([&] {
    auto client = std::make_unique<Client>(outbound_port_);
    for (int i = 0; i < kRequests; ++i) {
      // The load is fast; make sure the kill lands before its second half.
      if (i == kRequests / 2) testing::WaitFor([&] { return killed.load(); }, seconds(30));
      const Response response = client->Get(kBackendHost, "/index.html");
      if (response.status == 200 && response.body == kIndexBody) {
        ok.fetch_add(1);
      } else if (failures.size() < 10) {
        failures.push_back("request " + std::to_string(i) + ": status " +
                           std::to_string(response.status) + " " + response.error);
      }
      if (response.status == 0 || !response.keep_alive) {
        client = std::make_unique<Client>(outbound_port_);
      }
      sent.fetch_add(1);
    }
  });
  // Let some records be acknowledged, then kill the collector while requests flow.
  testing::WaitFor([&] { return sent.load() >= kRequests / 4; }, seconds(60));
  const double scraped_source_before_kill = Requests({"reporter=\"source\""});
  const double scraped_destination_before_kill = Requests({"reporter=\"destination\""});
  collector_->Kill();
  const int sent_at_kill = sent.load();
  killed.store(true);
  load.join();
  EXPECT_EQ(ok.load(), kRequests) << "first failures:\n" << ::testing::PrintToString(failures);
  EXPECT_GT(sent_at_kill, 0);
  EXPECT_LT(sent_at_kill, kRequests) << "the load ended before the collector was killed";

  // With the collector gone, the acknowledged counts are final for its lifetime.
  struct Reporter {
    uint16_t admin_port;
    const char* label;
    double acked_before_restart = 0;
    double dropped = 0;
    double counted_after_restart = 0;
  };
  Reporter reporters[] = {{a_admin_port_, "reporter=\"source\""},
                          {b_admin_port_, "reporter=\"destination\""}};
  for (Reporter& reporter : reporters) {
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          return ProxyStat(reporter.admin_port, "meshtel_proxy_records_submitted_total") ==
                     kRequests &&
                 ProxyStat(reporter.admin_port, "meshtel_proxy_collector_connected") == 0;
        },
        seconds(10)))
        << ProxyStats(reporter.admin_port);
    std::this_thread::sleep_for(milliseconds(200));
    reporter.acked_before_restart =
        ProxyStat(reporter.admin_port, "meshtel_proxy_records_acked_total");
  }

  StartCollector();  // same ports, same data directory
  for (Reporter& reporter : reporters) {
    // Everything submitted is eventually acknowledged, dropped (buffer full) or rejected.
    double acked = 0, dropped = 0, rejected = 0;
    const bool settled = testing::WaitFor(
        [&] {
          const std::string stats = ProxyStats(reporter.admin_port);
          acked = Sample(stats, "meshtel_proxy_records_acked_total", {});
          dropped = Sample(stats, "meshtel_proxy_records_dropped_total", {});
          rejected = Sample(stats, "meshtel_proxy_records_rejected_total", {});
          return acked + dropped + rejected == kRequests;
        },
        seconds(30));
    EXPECT_TRUE(settled) << reporter.label << ": acked " << acked << " dropped " << dropped
                         << " rejected " << rejected;
    EXPECT_EQ(rejected, 0) << reporter.label;
    EXPECT_EQ(ProxyStat(reporter.admin_port, "meshtel_proxy_collector_connected"), 1)
        << reporter.label << " did not reconnect";
    reporter.dropped = dropped;
    // The new collector counts in its (fresh) metrics what it stored itself: the batches the
    // killed one had not stored. A batch the killed collector stored but could not acknowledge
    // is recognised on resend (the dedup progress is in the store) and not counted again.
    testing::WaitFor(
        [&] {
          return Requests({reporter.label}) + reporter.acked_before_restart + dropped >=
                 kRequests - 50;
        },
        seconds(30));
    std::this_thread::sleep_for(milliseconds(500));  // a late duplicate would show up here
    reporter.counted_after_restart = Requests({reporter.label});
  }
  // Every record is in the store exactly once: stored by the killed collector (epoch 1 of the
  // store) or by the restarted one, never by both.
  ASSERT_EQ(collector_->Terminate(), 0) << collector_->Log();
  prometheus::Registry registry;
  collector::StoreConfig store_config;
  store_config.data_dir = dir_ + "/data";
  auto store = collector::RecordStore::Open(store_config, registry);
  ASSERT_TRUE(store.ok()) << store.status();
  auto stored = (*store)->Read(collector::RecordFamily::kLogs, collector::StoreKey{},
                               collector::StoreKey{~uint64_t{0}, ~uint64_t{0}}, 1'000'000);
  ASSERT_TRUE(stored.ok()) << stored.status();
  for (Reporter& reporter : reporters) {
    const auto kind = reporter.admin_port == a_admin_port_ ? meshtel::v1::REPORTER_SOURCE
                                                           : meshtel::v1::REPORTER_DESTINATION;
    std::set<std::string> request_ids;
    size_t records = 0;
    size_t by_killed = 0;
    const uint64_t first_epoch = stored->empty() ? 0 : stored->front().key.sequence >> 40;
    for (const auto& record : *stored) {
      if (record.record.reporter() != kind) continue;
      ++records;
      request_ids.insert(record.record.request_id());
      if (record.key.sequence >> 40 == first_epoch) ++by_killed;
    }
    std::printf(
        "%s: %d requests; acked before the kill %.0f (last scrape of the killed collector %.0f); "
        "dropped %.0f; stored by the killed collector %zu, by the restarted one %zu (its metrics "
        "count %.0f)\n",
        reporter.label, kRequests, reporter.acked_before_restart,
        reporter.admin_port == a_admin_port_ ? scraped_source_before_kill
                                             : scraped_destination_before_kill,
        reporter.dropped, by_killed, records - by_killed, reporter.counted_after_restart);
    EXPECT_EQ(records, static_cast<size_t>(kRequests - reporter.dropped)) << reporter.label;
    EXPECT_EQ(request_ids.size(), records) << reporter.label << ": a record was stored twice";
    EXPECT_GE(static_cast<double>(by_killed), reporter.acked_before_restart) << reporter.label;
    EXPECT_EQ(reporter.counted_after_restart, static_cast<double>(records - by_killed))
        << reporter.label;
  }
}

}  // namespace
}  // namespace meshtel::e2e
