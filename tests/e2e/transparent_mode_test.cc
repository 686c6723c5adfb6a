// End to end: transparent mode. Two network namespaces joined by a veth pair stand for two pods:
//
//   pod A (10.250.0.1): meshtel-proxy as uid 1337, deploy/iptables/meshtel-iptables.sh, an app
//                        on 127.0.0.1:9080, and a client (curl) that knows nothing of the proxy
//   pod B (10.250.0.2): a server on 10.250.0.2:8080, and a client calling pod A's app
//
// Outbound: A's curl to 10.250.0.2:8080 is redirected to the proxy's outbound listener, which
// finds no route and forwards to the original destination (PassthroughCluster). Inbound: B's curl
// to 10.250.0.1:9080 is redirected to the proxy's inbound listener, which forwards to the app on
// 127.0.0.1 at the dialled port. Both servers echo the request headers, so the test sees the
// headers the proxy added. Needs root, iproute2 and iptables; skips with the reason otherwise.

#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace meshtel::e2e {
namespace {

using testing::ChildProcess;

constexpr char kEchoServer[] = R"(import http.server, sys
class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = "".join(f"{k.lower()}: {v}\n" for k, v in self.headers.items()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Echo).serve_forever()
)";

class TransparentModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces";
    for (const char* program : {"ip", "iptables", "setpriv", "python3", "curl"}) {
      if (!testing::HaveProgram(program)) GTEST_SKIP() << "needs " << program;
    }
    const std::string id = std::to_string(::getpid() % 100000);
    pod_a_ = "mtpa" + id;
    pod_b_ = "mtpb" + id;
    const std::string veth_a = "mtva" + id;
    const std::string veth_b = "mtvb" + id;
    std::string output;
    if (testing::RunCommand("ip netns add " + pod_a_, &output) != 0) {
      GTEST_SKIP() << "cannot create a network namespace here: " << output;
    }
    created_ = true;
    ASSERT_EQ(Run("ip netns add " + pod_b_), 0);
    ASSERT_EQ(Run("ip link add " + veth_a + " type veth peer name " + veth_b), 0);
    ASSERT_EQ(Run("ip link set " + veth_a + " netns " + pod_a_), 0);
    ASSERT_EQ(Run("ip link set " + veth_b + " netns " + pod_b_), 0);
    for (const auto& [ns, veth, address] : {std::tuple{pod_a_, veth_a, "10.250.0.1/24"},
                                            std::tuple{pod_b_, veth_b, "10.250.0.2/24"}}) {
      ASSERT_EQ(Run(InPod(ns, "ip link set lo up")), 0);
      ASSERT_EQ(Run(InPod(ns, "ip addr add " + std::string(address) + " dev " + veth)), 0);
      ASSERT_EQ(Run(InPod(ns, "ip link set " + veth + " up")), 0);
    }
    const std::string rules =
        std::string(MESHTEL_SOURCE_DIR) + "/deploy/iptables/meshtel-iptables.sh";
    if (testing::RunCommand(InPod(pod_a_, rules), &output) != 0) {
      GTEST_SKIP() << "iptables nat rules cannot be installed here: " << output;
    }

    // `ip netns exec` execs its command, so each child's pid is the server's own.
    ASSERT_EQ(testing::RunCommand("command -v ip", &ip_), 0);
    ip_.erase(ip_.find_last_not_of("\n") + 1);

    dir_ = testing::MakeTempDir("meshtel-transparent");
    ::chmod(dir_.c_str(), 0755);  // the proxy runs as uid 1337
    testing::WriteFile(dir_ + "/echo.py", kEchoServer);
    testing::WriteFile(dir_ + "/proxy.yaml",
                       "io_threads: 1\n"
                       "workload: {name: pod-a, namespace: test}\n"
                       "inbound: {listen: \"0.0.0.0:15006\", app: \"127.0.0.1:8080\", "
                       "transparent: true}\n"
                       "outbound: {listen: \"127.0.0.1:15001\", transparent: true}\n"
                       "reporter: {collector: \"127.0.0.1:15140\"}\n"
                       "admin: {listen: \"127.0.0.1:15000\"}\n"
                       "drain_timeout: 0s\n");
    ::chmod((dir_ + "/proxy.yaml").c_str(), 0644);
    ::chmod((dir_ + "/echo.py").c_str(), 0644);

    app_ = ChildProcess::Start(
        {ip_, "netns", "exec", pod_a_, "python3", dir_ + "/echo.py", "127.0.0.1", "9080"},
        dir_ + "/app.log");
    remote_ = ChildProcess::Start(
        {ip_, "netns", "exec", pod_b_, "python3", dir_ + "/echo.py", "10.250.0.2", "8080"},
        dir_ + "/remote.log");
    proxy_ = ChildProcess::Start(
        {ip_, "netns", "exec", pod_a_, "setpriv", "--reuid=1337", "--regid=1337", "--clear-groups",
         MESHTEL_PROXY_BIN, "--config", dir_ + "/proxy.yaml"},
        dir_ + "/proxy.log");
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          return Run(InPod(pod_a_, "curl -sf -m 2 http://127.0.0.1:15000/healthz/ready")) == 0;
        },
        std::chrono::seconds(20)))
        << proxy_->Log();
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          return Run(InPod(pod_b_, "curl -s -m 2 -o /dev/null http://10.250.0.2:8080/")) == 0 &&
                 Run(InPod(pod_a_, "curl -s -m 2 -o /dev/null http://127.0.0.1:9080/")) == 0;
        },
        std::chrono::seconds(20)));
  }

  void TearDown() override {
    proxy_.reset();
    app_.reset();
    remote_.reset();
    if (created_) {
      std::string ignored;
      testing::RunCommand("ip netns del " + pod_a_, &ignored);
      testing::RunCommand("ip netns del " + pod_b_, &ignored);
    }
  }

  static std::string InPod(const std::string& ns, const std::string& command) {
    return "ip netns exec " + ns + " " + command;
  }
  static int Run(const std::string& command) {
    std::string ignored;
    return testing::RunCommand(command, &ignored);
  }
  std::string Curl(const std::string& ns, const std::string& url) {
    std::string output;
    EXPECT_EQ(testing::RunCommand(InPod(ns, "curl -sS -m 10 " + url), &output), 0) << output;
    return output;
  }
  std::string Stats() {
    std::string output;
    testing::RunCommand(InPod(pod_a_, "curl -s -m 5 http://127.0.0.1:15000/stats/prometheus"),
                        &output);
    return output;
  }

  bool created_ = false;
  std::string pod_a_;
  std::string pod_b_;
  std::string dir_;
  std::string ip_;
  std::unique_ptr<ChildProcess> app_;
  std::unique_ptr<ChildProcess> remote_;
  std::unique_ptr<ChildProcess> proxy_;
};

TEST_F(TransparentModeTest, OutboundToAnUnroutedAddressPassesThroughTheProxy) {
  // The app dials the remote server directly; iptables hands the connection to the proxy.
  const std::string echoed = Curl(pod_a_, "http://10.250.0.2:8080/out");
  EXPECT_NE(echoed.find("x-request-id: "), std::string::npos) << echoed;
  EXPECT_NE(echoed.find("x-envoy-peer-metadata-id: pod-a.test"), std::string::npos) << echoed;
  EXPECT_NE(echoed.find("host: 10.250.0.2:8080"), std::string::npos) << echoed;
  EXPECT_NE(Stats().find("meshtel_proxy_requests_total{direction=\"outbound\"} 1"),
            std::string::npos)
      << Stats();
}

TEST_F(TransparentModeTest, InboundReachesTheAppAtTheDialledPort) {
  // The app listens on 127.0.0.1 only: from pod B it is reachable solely through the proxy.
  const std::string echoed = Curl(pod_b_, "http://10.250.0.1:9080/in");
  EXPECT_NE(echoed.find("x-request-id: "), std::string::npos) << echoed;
  EXPECT_NE(Stats().find("meshtel_proxy_requests_total{direction=\"inbound\"} 1"),
            std::string::npos)
      << Stats();
}

TEST_F(TransparentModeTest, ProxyOwnTrafficAndLoopbackAreNotRedirected) {
  // Loopback traffic of the app goes straight to its destination (no proxy, no request id).
  const std::string echoed = Curl(pod_a_, "http://127.0.0.1:9080/local");
  EXPECT_EQ(echoed.find("x-request-id: "), std::string::npos) << echoed;
  EXPECT_NE(Stats().find("meshtel_proxy_requests_total{direction=\"outbound\"} 0"),
            std::string::npos)
      << Stats();
}

}  // namespace
}  // namespace meshtel::e2e
