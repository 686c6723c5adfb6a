// Envoy gRPC Access Log Service v3 into the real collector: streams encoded with the official
// Envoy schema (../shared/specs/protos, DynamicMessage), as an Istio sidecar's Envoy writes them,
// and what comes out: Istio metrics on /metrics (the same labels as a meshtel-proxy's record of
// the same request), TCP metrics, access-log lines at a Loki receiver, a trace on /api/traces,
// and the counters of bad input, with the server serving other streams throughout.

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/text_format.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/sync_stream.h"
#include "gtest/gtest.h"
#include "meshtel/v1/record.pb.h"
#include "tests/support/als_stream.h"
#include "tests/support/http_get.h"
#include "tests/support/loki_receiver.h"
#include "tests/support/metrics_text.h"
#include "tests/support/official_schema.h"
#include "tests/support/process.h"

namespace meshtel::e2e {
namespace {

using std::chrono::seconds;
using testing::AlsStream;
using testing::ChildProcess;

// Entries start now: the Loki exporter refuses entries older than its reject_older_than.
std::string NowSeconds() {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count());
}

// A google.protobuf.Any holding a Struct of string fields (and one nested struct), as text for
// an Any field: Istio's peer metadata object.
std::string PeerAny(const std::vector<std::pair<std::string, std::string>>& fields,
                    const std::vector<std::pair<std::string, std::string>>& labels = {}) {
  google::protobuf::Struct object;
  for (const auto& [key, value] : fields) {
    (*object.mutable_fields())[key].set_string_value(value);
  }
  if (!labels.empty()) {
    auto& nested = *(*object.mutable_fields())["labels"].mutable_struct_value();
    for (const auto& [key, value] : labels) (*nested.mutable_fields())[key].set_string_value(value);
  }
  return "{ type_url: \"type.googleapis.com/google.protobuf.Struct\" value: \"" +
         absl::CEscape(object.SerializeAsString()) + "\" }";
}

// Istio node metadata for a Node, in text format.
std::string IstioNode(const std::string& pod, const std::string& ns, const std::string& workload,
                      const std::string& app, const std::string& version,
                      const std::string& extra_fields) {
  return "node { id: \"sidecar~10.0.0.1~" + pod + "." + ns + "~" + ns +
         ".svc.cluster.local\" cluster: \"" + workload + "." + ns +
         "\" metadata { "
         "fields { key: \"NAME\" value { string_value: \"" +
         pod + "\" } } fields { key: \"NAMESPACE\" value { string_value: \"" + ns +
         "\" } } fields { key: \"WORKLOAD_NAME\" value { string_value: \"" + workload +
         "\" } } fields { key: \"ISTIO_VERSION\" value { string_value: \"1.27.0\" } } " +
         extra_fields +
         "fields { key: \"LABELS\" value { struct_value { "
         "fields { key: \"app\" value { string_value: \"" +
         app + "\" } } fields { key: \"version\" value { string_value: \"" + version +
         "\" } } } } } } }";
}

// A final inbound HTTP entry (HTTP/1.1 GET 200) in text format.
std::string InboundHttpEntry(const std::string& authority, const std::string& request_id,
                             const std::string& peer_any, const std::string& extra_headers = "") {
  return "log_entry { protocol_version: HTTP11 common_properties { "
         "start_time { seconds: " +
         NowSeconds() +
         " nanos: 5000000 } "
         "time_to_last_rx_byte { nanos: 1000000 } time_to_first_upstream_tx_byte { nanos: 2000000 "
         "} "
         "time_to_first_upstream_rx_byte { nanos: 8000000 } "
         "time_to_last_downstream_tx_byte { nanos: 9000000 } duration { nanos: 10000000 } "
         "downstream_remote_address { socket_address { address: \"10.0.0.2\" port_value: 40000 } } "
         "downstream_local_address { socket_address { address: \"10.0.0.1\" port_value: 8080 } } "
         "upstream_remote_address { socket_address { address: \"127.0.0.1\" port_value: 8080 } } "
         "upstream_cluster: \"inbound|8080||\" route_name: \"default\" "
         "downstream_wire_bytes_received: 120 downstream_wire_bytes_sent: 300 "
         "access_log_type: DownstreamEnd " +
         (peer_any.empty()
              ? std::string()
              : "filter_state_objects { key: \"downstream_peer\" value " + peer_any + " } ") +
         "} request { request_method: GET scheme: \"http\" authority: \"" + authority +
         "\" path: \"/compare\" user_agent: \"als-test\" request_id: \"" + request_id + "\" " +
         extra_headers +
         "} response { response_code { value: 200 } response_code_details: \"via_upstream\" } }";
}

class AlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::OfficialMessage probe =
        testing::NewOfficialMessage("envoy.service.accesslog.v3.StreamAccessLogsMessage");
    if (!probe.unavailable.empty()) {
      GTEST_SKIP() << "official Envoy schema unavailable (needs ../shared): " << probe.unavailable;
    }
    dir_ = testing::MakeTempDir("meshtel-als");
    ingest_port_ = testing::FreePort();
    admin_port_ = testing::FreePort();
    als_port_ = testing::FreePort();
    testing::WriteFile(
        dir_ + "/collector.yaml",
        "ingest:\n  listen: \"127.0.0.1:" + std::to_string(ingest_port_) +
            "\"\n  als: {enabled: true, listen: \"127.0.0.1:" + std::to_string(als_port_) +
            "\", max_message_bytes: 65536}\n"
            "admin: {listen: \"127.0.0.1:" +
            std::to_string(admin_port_) + "\"}\nstore: {data_dir: \"" + dir_ +
            "/data\"}\nshutdown_grace: 1s\n"
            "traces:\n  assembly: {idle_timeout: 300ms, max_wait: 20s}\n"
            "  sampling: {latency_threshold: 0s}\n"
            "exporters:\n  - name: loki\n    type: loki\n    batch: {max_wait: 100ms}\n"
            "    loki: {url: \"" +
            loki_.url() + "\"}\n");
    ASSERT_TRUE(testing::StartCollector(dir_ + "/collector.yaml", dir_ + "/collector.log",
                                        admin_port_, collector_));
    ASSERT_TRUE(testing::WaitFor([&] { return testing::CanConnect(als_port_); }, seconds(20)));
  }

  void TearDown() override {
    if (HasFailure() && !dir_.empty()) {
      for (const char* name : {"collector", "backend-proxy"}) {
        std::string log;
        testing::RunCommand("tail -n 30 " + dir_ + "/" + name + ".log", &log);
        std::printf("---- %s.log ----\n%s\n", name, log.c_str());
      }
    }
  }

  // The bytes of a StreamAccessLogsMessage written in text format against the official schema.
  static std::string Official(const std::string& text) {
    testing::OfficialMessage message =
        testing::NewOfficialMessage("envoy.service.accesslog.v3.StreamAccessLogsMessage");
    EXPECT_TRUE(message.unavailable.empty()) << message.unavailable;
    if (!message.message) return {};
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, message.message.get())) << text;
    return message.message->SerializeAsString();
  }

  std::string Metrics() { return testing::HttpGet(admin_port_, "/metrics").body; }

  double Sum(const std::string& name, const std::vector<std::string>& fragments) {
    return testing::SumSamples(Metrics(), name, fragments);
  }

  bool WaitForSum(const std::string& name, const std::vector<std::string>& fragments,
                  double value) {
    return testing::WaitFor([&] { return Sum(name, fragments) == value; }, seconds(20));
  }

  std::vector<std::string> LokiLines() {
    std::vector<std::string> lines;
    for (const testing::LokiPush& push : loki_.Pushes()) {
      for (const auto& stream : push.request.streams()) {
        for (const auto& entry : stream.entries()) lines.push_back(entry.line());
      }
    }
    return lines;
  }

  bool LokiHasLine(const std::vector<std::string>& fragments) {
    return testing::WaitFor(
        [&] {
          for (const std::string& line : LokiLines()) {
            bool all = true;
            for (const std::string& fragment : fragments) {
              all = all && line.find(fragment) != std::string::npos;
            }
            if (all) return true;
          }
          return false;
        },
        seconds(20));
  }

  testing::LokiReceiver loki_;
  std::string dir_;
  uint16_t ingest_port_ = 0, admin_port_ = 0, als_port_ = 0;
  std::unique_ptr<ChildProcess> collector_;
};

TEST_F(AlsTest, IstioNodeMetadataGivesWorkloadLabelsLogsAndTraces) {
  const std::string identifier =
      "identifier { " +
      IstioNode("reviews-v1-abc", "shop", "reviews-v1", "reviews", "v1",
                "fields { key: \"CLUSTER_ID\" value { string_value: \"east\" } } ") +
      " log_name: \"http_envoy_accesslog\" } ";
  const std::string peer = PeerAny({{"workload", "productpage-v1"},
                                    {"namespace", "shop"},
                                    {"cluster", "west"},
                                    {"app", "productpage"},
                                    {"version", "v1"},
                                    {"type", "deployment"}});
  const std::string traced =
      InboundHttpEntry("reviews.shop.svc.cluster.local:8080", "als-traced-request", peer,
                       "request_headers { key: \"traceparent\" value: "
                       "\"00-5af7183fb1d4cf5f11ca6e5e42e81a61-00f067aa0ba902b7-01\" } ");
  AlsStream stream(als_port_);
  ASSERT_TRUE(stream.Write(Official(
      identifier + "http_logs { " +
      InboundHttpEntry("reviews.shop.svc.cluster.local:8080", "als-request-1", peer) +
      InboundHttpEntry("reviews.shop.svc.cluster.local:8080", "als-request-2", peer) + "}")));
  // Later messages carry no identifier: the stream's first one still applies.
  ASSERT_TRUE(stream.Write(Official("http_logs { " + traced + "}")));

  const std::vector<std::string> labels = {"reporter=\"destination\"",
                                           "source_workload=\"productpage-v1\"",
                                           "source_canonical_service=\"productpage\"",
                                           "source_workload_namespace=\"shop\"",
                                           "source_app=\"productpage\"",
                                           "source_cluster=\"west\"",
                                           "destination_workload=\"reviews-v1\"",
                                           "destination_workload_namespace=\"shop\"",
                                           "destination_app=\"reviews\"",
                                           "destination_version=\"v1\"",
                                           "destination_service=\"reviews.shop.svc.cluster.local\"",
                                           "destination_canonical_service=\"reviews\"",
                                           "destination_canonical_revision=\"v1\"",
                                           "destination_service_name=\"reviews\"",
                                           "destination_service_namespace=\"shop\"",
                                           "destination_cluster=\"east\"",
                                           "request_protocol=\"http\"",
                                           "response_code=\"200\"",
                                           "response_flags=\"-\"",
                                           "connection_security_policy=\"none\""};
  EXPECT_TRUE(WaitForSum("istio_requests_total", labels, 3)) << Metrics();
  EXPECT_EQ(Sum("meshtel_als_entries_total", {"result=\"stored\""}), 3);
  EXPECT_EQ(Sum("meshtel_als_messages_total", {"result=\"ok\""}), 2);
  EXPECT_EQ(Sum("istio_request_duration_milliseconds_count", labels), 3);

  // Stored: the access-log lines reach Loki, and the traced entry's span is a stored trace.
  EXPECT_TRUE(LokiHasLine({"\"GET /compare HTTP/1.1\" 200", "als-request-2", "inbound|8080||"}))
      << LokiLines().size()
      << " lines at Loki; exporters: " << testing::HttpGet(admin_port_, "/api/exporters").body;
  testing::HttpResult trace;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        trace = testing::HttpGet(admin_port_, "/api/traces/5af7183fb1d4cf5f11ca6e5e42e81a61");
        return trace.status == 200;
      },
      seconds(30)))
      << trace.status << " " << trace.body;
  EXPECT_NE(trace.body.find("00f067aa0ba902b7"), std::string::npos) << trace.body;  // the parent
  EXPECT_NE(trace.body.find("reviews.shop"), std::string::npos) << trace.body;
  EXPECT_TRUE(stream.Finish().ok());
}

TEST_F(AlsTest, TcpEntriesGiveIstioTcpMetricsAndLines) {
  const std::string identifier =
      "identifier { " + IstioNode("reviews-v1-abc", "shop", "reviews-v1", "reviews", "v1", "") +
      " log_name: \"tcp_envoy_accesslog\" } ";
  const std::string peer = PeerAny({{"workload", "db-v1"}, {"namespace", "data"}, {"app", "db"}},
                                   {{"service.istio.io/canonical-name", "database"}});
  const auto entry = [&](int received, int sent, const std::string& type) {
    return "log_entry { common_properties { start_time { seconds: " + NowSeconds() +
           " } "
           "duration { seconds: 3 } upstream_cluster: \"outbound|5432||db.data.svc.cluster.local\" "
           "upstream_remote_address { socket_address { address: \"10.0.9.9\" port_value: 5432 } } "
           "access_log_type: " +
           type + " filter_state_objects { key: \"upstream_peer\" value " + peer +
           " } } connection_properties { received_bytes: " + std::to_string(received) +
           " sent_bytes: " + std::to_string(sent) + " } }";
  };
  AlsStream stream(als_port_);
  ASSERT_TRUE(
      stream.Write(Official(identifier + "tcp_logs { " + entry(1000, 2000, "TcpConnectionEnd") +
                            entry(5, 5, "TcpPeriodic") + entry(10, 20, "TcpConnectionEnd") + "}")));
  const std::vector<std::string> labels = {"reporter=\"source\"",
                                           "source_workload=\"reviews-v1\"",
                                           "destination_workload=\"db-v1\"",
                                           "destination_workload_namespace=\"data\"",
                                           "destination_canonical_service=\"database\"",
                                           "destination_service=\"db.data.svc.cluster.local\"",
                                           "destination_service_name=\"db\"",
                                           "request_protocol=\"tcp\"",
                                           "connection_security_policy=\"unknown\""};
  EXPECT_TRUE(WaitForSum("istio_tcp_sent_bytes_total", labels, 2020)) << Metrics();
  EXPECT_EQ(Sum("istio_tcp_received_bytes_total", labels), 1010);
  EXPECT_EQ(Sum("istio_tcp_connections_opened_total", labels), 2);
  EXPECT_EQ(Sum("istio_tcp_connections_closed_total", labels), 2);
  EXPECT_EQ(Sum("meshtel_als_entries_total", {"result=\"intermediate\""}), 1);
  // TCP series carry no response_code / grpc_response_status, and no request metrics appear.
  for (const std::string& line :
       testing::SampleLines(Metrics(), "istio_tcp_sent_bytes_total", {})) {
    EXPECT_EQ(line.find("response_code"), std::string::npos) << line;
  }
  EXPECT_EQ(Sum("istio_requests_total", {"request_protocol=\"tcp\""}), 0);
  // Access-log lines as Envoy renders TCP entries: no method, path, protocol or status.
  EXPECT_TRUE(LokiHasLine({"\"- - -\" 0 -", " 1000 2000 3000 ", "10.0.9.9:5432"}))
      << LokiLines().size()
      << " lines at Loki; exporters: " << testing::HttpGet(admin_port_, "/api/exporters").body;
  EXPECT_TRUE(stream.Finish().ok());
}

TEST_F(AlsTest, BadMessagesAreCountedAndOtherStreamsGoOn) {
  const std::string identifier = "identifier { " +
                                 IstioNode("ratings-1", "shop", "ratings", "ratings", "v1", "") +
                                 " log_name: \"http_envoy_accesslog\" } ";
  const std::vector<std::string> labels = {"destination_workload=\"ratings\""};

  // A stream whose first message is not a message ends (Envoy reconnects).
  AlsStream broken(als_port_);
  broken.Write(std::string("\xff\xff\xff\xff\x0f", 5));
  EXPECT_EQ(broken.Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(WaitForSum("meshtel_als_messages_total", {"result=\"invalid\""}, 1));

  // A stream without an identifier ends too.
  AlsStream anonymous(als_port_);
  anonymous.Write(Official("http_logs { " + InboundHttpEntry("ratings:9080", "anon", "") + "}"));
  EXPECT_EQ(anonymous.Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Sum("meshtel_als_messages_total", {"result=\"no_identifier\""}), 1);
  EXPECT_EQ(Sum("istio_requests_total", labels), 0);

  // Once the identifier is known, a bad or oversized message is skipped and the stream goes on.
  AlsStream stream(als_port_);
  ASSERT_TRUE(stream.Write(
      Official(identifier + "http_logs { " + InboundHttpEntry("ratings:9080", "r1", "") + "}")));
  EXPECT_TRUE(WaitForSum("istio_requests_total", labels, 1));
  ASSERT_TRUE(stream.Write(std::string("\x12\xff\xff\xff\xff\x0f", 6)));
  // Over max_message_bytes (65536), under gRPC's own limit (4x that).
  std::string entries;
  std::string big_bytes;
  while (big_bytes.size() <= 70'000) {
    for (int i = 0; i < 20; ++i) entries += InboundHttpEntry("ratings:9080", "big", "");
    big_bytes = Official("http_logs { " + entries + "}");
  }
  ASSERT_LT(big_bytes.size(), 4u * 65536);
  ASSERT_TRUE(stream.Write(big_bytes));
  // Meanwhile another stream is served.
  AlsStream other(als_port_);
  ASSERT_TRUE(other.Write(
      Official(identifier + "http_logs { " + InboundHttpEntry("ratings:9080", "o1", "") + "}")));
  EXPECT_TRUE(other.Finish().ok());
  ASSERT_TRUE(
      stream.Write(Official("http_logs { " + InboundHttpEntry("ratings:9080", "r2", "") + "}")));
  EXPECT_TRUE(WaitForSum("istio_requests_total", labels, 3)) << Metrics();
  EXPECT_EQ(Sum("meshtel_als_messages_total", {"result=\"invalid\""}), 2);
  EXPECT_EQ(Sum("meshtel_als_messages_total", {"result=\"too_large\""}), 1);
  EXPECT_TRUE(stream.Finish().ok());
  std::string log;
  testing::RunCommand("cat " + dir_ + "/collector.log", &log);
  EXPECT_NE(log.find("exceeds ingest.als.max_message_bytes (65536)"), std::string::npos) << log;
  EXPECT_NE(log.find("is not a valid StreamAccessLogsMessage"), std::string::npos) << log;
  EXPECT_EQ(testing::HttpGet(admin_port_, "/readyz").status, 200);
}

// Envoy logs a client's User-Agent as it came; bytes that are not UTF-8 make protobuf refuse the
// whole message. The collector keeps every entry of it, that text made valid (U+FFFD), counted.
TEST_F(AlsTest, AnEntryWithTextThatIsNotUtf8IsKeptWithTheOthers) {
  const std::string identifier = "identifier { " +
                                 IstioNode("details-1", "shop", "details", "details", "v1", "") +
                                 " log_name: \"http_envoy_accesslog\" } ";
  // The fourth entry has metadata, as many of Envoy's do: the receiver hands it to protobuf.
  std::string with_metadata = InboundHttpEntry("details:9080", "u4", "");
  const std::string type_field = "access_log_type: DownstreamEnd ";
  with_metadata.replace(with_metadata.find(type_field), type_field.size(),
                        type_field +
                            "metadata { filter_metadata { key: \"istio\" value { fields { key: "
                            "\"k\" value { string_value: \"v\" } } } } } ");
  std::string bytes =
      Official(identifier + "http_logs { " + InboundHttpEntry("details:9080", "u1", "") +
               InboundHttpEntry("details:9080", "u2", "") +
               InboundHttpEntry("details:9080", "u3", "") + with_metadata + "}");
  // The second and fourth entries' User-Agent ("als-test"), of the same length: every length
  // prefix stays.
  size_t at = 0;
  for (int entry = 1; entry <= 4; ++entry) {
    at = bytes.find("als-test", at + 1);
    ASSERT_NE(at, std::string::npos) << entry;
    if (entry % 2 == 0) bytes.replace(at, 8, std::string("als\xff\xfetst", 8));
  }

  AlsStream stream(als_port_);
  ASSERT_TRUE(stream.Write(bytes));
  EXPECT_TRUE(stream.Finish().ok());
  EXPECT_TRUE(WaitForSum("meshtel_als_entries_total", {"result=\"stored\""}, 4)) << Metrics();
  EXPECT_EQ(Sum("meshtel_als_entries_text_repaired_total", {}), 2);
  EXPECT_EQ(Sum("meshtel_als_messages_total", {"result=\"invalid\""}), 0);
  EXPECT_TRUE(WaitForSum("istio_requests_total", {"destination_workload=\"details\""}, 4));
  for (const char* request_id : {"u2", "u4"}) {
    EXPECT_TRUE(LokiHasLine({request_id, "als\xef\xbf\xbd\xef\xbf\xbdtst"}))
        << request_id << ": " << LokiLines().size() << " lines at Loki";
  }
}

// The same request, once seen by a meshtel-proxy and once described by an Istio sidecar's Envoy
// over ALS, updates the same istio_requests_total series.
TEST_F(AlsTest, SameRequestViaProxyAndAlsHasTheSameLabels) {
  const uint16_t backend_port = testing::FreePort();
  const uint16_t inbound_port = testing::FreePort();
  const uint16_t proxy_admin_port = testing::FreePort();
  testing::WriteFile(
      dir_ + "/backend-proxy.yaml",
      "io_threads: 1\n"
      "workload: {name: backend, namespace: demo, app: backend, version: v1}\n"
      "inbound: {listen: \"127.0.0.1:" +
          std::to_string(inbound_port) + "\", app: \"127.0.0.1:" + std::to_string(backend_port) +
          "\"}\noutbound: {enabled: false}\nadmin: {listen: \"127.0.0.1:" +
          std::to_string(proxy_admin_port) + "\"}\nreporter: {collector: \"127.0.0.1:" +
          std::to_string(ingest_port_) + "\", flush_interval: 50ms}\n");
  auto backend = ChildProcess::Start(
      {MESHTEL_DEMO_BIN, "backend", "--listen", "127.0.0.1:" + std::to_string(backend_port)},
      dir_ + "/backend.log");
  auto proxy = ChildProcess::Start({MESHTEL_PROXY_BIN, "--config", dir_ + "/backend-proxy.yaml"},
                                   dir_ + "/backend-proxy.log");
  for (uint16_t port : {backend_port, inbound_port}) {
    ASSERT_TRUE(testing::WaitFor([&] { return testing::CanConnect(port); }, seconds(20)));
  }
  // The caller is the frontend workload: its proxy's peer metadata header, as a meshtel-proxy
  // on the client side would send it.
  meshtel::v1::WorkloadIdentity frontend;
  frontend.set_workload("frontend");
  frontend.set_namespace_("demo");
  frontend.set_app("frontend");
  frontend.set_version("v1");
  std::string peer_header;
  absl::Base64Escape(frontend.SerializeAsString(), &peer_header);
  const testing::HttpResult answer =
      testing::HttpGet(inbound_port, "/compare",
                       {{"Host", "backend.demo.svc.cluster.local:8080"},
                        {"x-request-id", "same-request"},
                        {"x-envoy-peer-metadata", peer_header}});
  ASSERT_EQ(answer.status, 200) << answer.error;

  const std::vector<std::string> fragments = {"reporter=\"destination\"",
                                              "destination_workload=\"backend\""};
  ASSERT_TRUE(WaitForSum("istio_requests_total", fragments, 1)) << Metrics();
  const std::vector<std::string> lines =
      testing::SampleLines(Metrics(), "istio_requests_total", fragments);
  ASSERT_EQ(lines.size(), 1u);
  const std::string series = lines[0].substr(0, lines[0].rfind(' '));
  EXPECT_NE(series.find("source_workload=\"frontend\""), std::string::npos) << series;

  // The same request as the backend's Istio sidecar logs it over ALS (CLUSTER_ID: Istio's
  // default cluster name, which meshtel-proxy also assumes).
  const std::string identifier =
      "identifier { " +
      IstioNode("backend-5d9f-x", "demo", "backend", "backend", "v1",
                "fields { key: \"CLUSTER_ID\" value { string_value: \"Kubernetes\" } } ") +
      " log_name: \"http_envoy_accesslog\" } ";
  const std::string peer = PeerAny(
      {{"workload", "frontend"}, {"namespace", "demo"}, {"app", "frontend"}, {"version", "v1"}});
  AlsStream stream(als_port_);
  ASSERT_TRUE(stream.Write(Official(
      identifier + "http_logs { " +
      InboundHttpEntry("backend.demo.svc.cluster.local:8080", "same-request", peer) + "}")));
  EXPECT_TRUE(WaitForSum("meshtel_als_entries_total", {"result=\"stored\""}, 1));
  const std::vector<std::string> after =
      testing::SampleLines(Metrics(), "istio_requests_total", fragments);
  std::string all;
  for (const std::string& line : after) all += line + "\n";
  ASSERT_EQ(after.size(), 1u) << "ALS and the proxy gave different label sets:\n" << all;
  EXPECT_EQ(after[0], series + " 2");
  EXPECT_TRUE(stream.Finish().ok());
}

}  // namespace
}  // namespace meshtel::e2e
