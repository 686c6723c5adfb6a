#pragma once
// End-to-end fixture: the real binaries on 127.0.0.1 — a collector, two demo services (frontend
// calls backend) each behind a meshtel-proxy, and the demo load generator. Used by the tests that
// also run a real Prometheus against the collector.

#include <cctype>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace meshtel::e2e {

using std::chrono::seconds;
using testing::ChildProcess;

// Percent-encodes `text` for a URL query parameter.
inline std::string UrlEncode(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

class MeshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("meshtel-e2e");
    ingest_port_ = testing::FreePort();
    admin_port_ = testing::FreePort();
    backend_port_ = testing::FreePort();
    backend_inbound_port_ = testing::FreePort();
    frontend_port_ = testing::FreePort();
    frontend_inbound_port_ = testing::FreePort();
    frontend_outbound_port_ = testing::FreePort();
    backend_admin_port_ = testing::FreePort();
    frontend_admin_port_ = testing::FreePort();

    testing::WriteFile(dir_ + "/collector.yaml",
                       "ingest: {listen: \"127.0.0.1:" + std::to_string(ingest_port_) + "\"}\n" +
                           "admin: {listen: \"127.0.0.1:" + std::to_string(admin_port_) + "\"}\n" +
                           "store: {data_dir: \"" + dir_ + "/data\"}\n" + "shutdown_grace: 1s\n" +
                           ExtraCollectorConfig());
    const std::string reporter =
        "reporter: {collector: \"127.0.0.1:" + std::to_string(ingest_port_) +
        "\", flush_interval: 50ms, reconnect_max_backoff: 500ms}\n" + ExtraProxyConfig();
    testing::WriteFile(dir_ + "/backend-proxy.yaml",
                       "io_threads: 1\n"
                       "workload: {name: backend, namespace: " +
                           BackendNamespace() +
                           ", app: backend, version: v1}\n"
                           "inbound: {listen: \"127.0.0.1:" +
                           std::to_string(backend_inbound_port_) +
                           "\", app: \"127.0.0.1:" + std::to_string(backend_port_) + "\"}\n" +
                           "outbound: {enabled: false}\n" + "admin: {listen: \"127.0.0.1:" +
                           std::to_string(backend_admin_port_) + "\"}\n" + reporter);
    testing::WriteFile(
        dir_ + "/frontend-proxy.yaml",
        "io_threads: 1\n"
        "workload: {name: frontend, namespace: demo, app: frontend, version: v1}\n"
        "inbound: {listen: \"127.0.0.1:" +
            std::to_string(frontend_inbound_port_) +
            "\", app: \"127.0.0.1:" + std::to_string(frontend_port_) + "\"}\n" +
            "outbound:\n  listen: \"127.0.0.1:" + std::to_string(frontend_outbound_port_) + "\"\n" +
            "  routes:\n    - host: backend.demo.svc.cluster.local\n      addresses: "
            "[\"127.0.0.1:" +
            std::to_string(backend_inbound_port_) + "\"]\n" + "admin: {listen: \"127.0.0.1:" +
            std::to_string(frontend_admin_port_) + "\"}\n" + reporter);

    StartCollector();
    backend_ = ChildProcess::Start(
        {MESHTEL_DEMO_BIN, "backend", "--listen", "127.0.0.1:" + std::to_string(backend_port_)},
        dir_ + "/backend.log");
    frontend_ = ChildProcess::Start(
        {MESHTEL_DEMO_BIN, "frontend", "--listen", "127.0.0.1:" + std::to_string(frontend_port_),
         "--backend", "127.0.0.1:" + std::to_string(frontend_outbound_port_), "--backend-host",
         "backend.demo"},
        dir_ + "/frontend.log");
    backend_proxy_ = ChildProcess::Start(
        {MESHTEL_PROXY_BIN, "--config", dir_ + "/backend-proxy.yaml"}, dir_ + "/backend-proxy.log");
    frontend_proxy_ =
        ChildProcess::Start({MESHTEL_PROXY_BIN, "--config", dir_ + "/frontend-proxy.yaml"},
                            dir_ + "/frontend-proxy.log");
    for (uint16_t port : {backend_port_, frontend_port_, backend_inbound_port_,
                          frontend_inbound_port_, frontend_outbound_port_}) {
      ASSERT_TRUE(testing::WaitFor([&] { return testing::CanConnect(port); }, seconds(20)))
          << "port " << port << " never opened; see logs in " << dir_;
    }
  }

  // The backend workload's namespace (the frontend's is demo).
  virtual std::string BackendNamespace() const { return "demo"; }

  // Top-level YAML appended to the collector's and to both proxies' configs: a subclass
  // overrides these, or sets collector_extra_yaml_ / proxy_extra_yaml_ before SetUp runs.
  virtual std::string ExtraCollectorConfig() const { return collector_extra_yaml_; }
  virtual std::string ExtraProxyConfig() const { return proxy_extra_yaml_; }

  void TearDown() override {
    if (HasFailure()) {
      for (const char* name : {"collector", "frontend-proxy", "backend-proxy", "prometheus"}) {
        std::string log;
        testing::RunCommand("tail -n 30 " + dir_ + "/" + name + ".log", &log);
        std::printf("---- %s.log ----\n%s\n", name, log.c_str());
      }
    }
  }

  void StartCollector() {
    ASSERT_TRUE(testing::StartCollector(dir_ + "/collector.yaml", dir_ + "/collector.log",
                                        admin_port_, collector_));
  }

  // Runs the demo load generator against the frontend's sidecar; returns its output.
  std::string SendLoad(int requests) {
    std::string output;
    const int code = testing::RunCommand(
        std::string(MESHTEL_DEMO_BIN) +
            " load --target 127.0.0.1:" + std::to_string(frontend_inbound_port_) +
            " --host frontend.demo --requests " + std::to_string(requests) + " --concurrency 4",
        &output);
    EXPECT_EQ(code, 0) << output;
    EXPECT_NE(output.find("ok=" + std::to_string(requests) + " failed=0"), std::string::npos)
        << output;
    return output;
  }

  std::string Metrics() { return testing::HttpGet(admin_port_, "/metrics").body; }

  double SourceRequests() {
    return testing::SumSamples(Metrics(), "istio_requests_total", {"reporter=\"source\""});
  }

  // Appended to the collector's and to both proxies' YAML (set before SetUp runs).
  std::string collector_extra_yaml_;
  std::string proxy_extra_yaml_;
  std::string dir_;
  uint16_t ingest_port_ = 0, admin_port_ = 0, backend_port_ = 0, backend_inbound_port_ = 0,
           frontend_port_ = 0, frontend_inbound_port_ = 0, frontend_outbound_port_ = 0,
           backend_admin_port_ = 0, frontend_admin_port_ = 0;
  std::unique_ptr<ChildProcess> collector_, backend_, frontend_, backend_proxy_, frontend_proxy_;
};

}  // namespace meshtel::e2e
