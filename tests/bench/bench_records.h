#pragma once
// Benchmark support: RequestRecords the way a meshtel-proxy in an Istio mesh reports them — both
// workload identities (the source's SPIFFE principal), the destination service's name, an upstream
// cluster, trace ids, a request id, phase timings — so that one record serializes to about 300–500
// bytes. The same for a given seed but for the start times (the hour before now). Used by
// store_ingest_bench and export_bench; MakeMeshTraces() (the three hops of a request through two
// sidecars, with consistent trace context) by trace_pipeline_bench.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "meshtel/v1/record.pb.h"

namespace meshtel::bench {

// The proxy's phase timings of a request lasting `duration_ns` (offsets from its first byte):
// headers read, then routing, connecting and sending upstream in microseconds, the request sent
// by a tenth of the duration, the upstream's first byte at 8/10 and the last at 9/10.
inline void SetPhaseTimings(meshtel::v1::PhaseTimings& phases, uint64_t duration_ns,
                            uint64_t headers_done_ns, bool connection_reused) {
  phases.set_downstream_headers_done_ns(headers_done_ns);
  phases.set_route_chosen_ns(headers_done_ns + 3'000);
  phases.set_upstream_connected_ns(phases.route_chosen_ns() + 5'000);
  phases.set_upstream_connection_reused(connection_reused);
  phases.set_upstream_headers_sent_ns(phases.upstream_connected_ns() + 4'000);
  phases.set_upstream_request_done_ns(duration_ns / 10);
  phases.set_upstream_first_byte_ns(duration_ns * 8 / 10);
  phases.set_upstream_last_byte_ns(duration_ns * 9 / 10);
  phases.set_downstream_last_byte_ns(duration_ns);
}

inline std::vector<meshtel::v1::RequestRecord> MakeMeshRecords(size_t count, uint64_t seed) {
  static const char* const kServices[] = {"cart",    "checkout", "payment",  "reviews",
                                          "ratings", "details",  "frontend", "catalog"};
  static const char* const kNamespaces[] = {"shop", "payments", "catalog"};
  static const char* const kPaths[] = {
      "/cart",    "/api/v1/items?page=2&sort=price", "/checkout/confirm", "/reviews/42",
      "/healthz", "/static/js/app.3f9c2a.js"};
  static const char* const kAgents[] = {"curl/8.5.0", "Go-http-client/1.1",
                                        "python-requests/2.31.0", "grpc-go/1.62.1"};
  constexpr uint64_t kMs = 1'000'000;
  std::mt19937_64 random(seed);
  const uint64_t now_unix_nano =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  const auto identity = [&](meshtel::v1::WorkloadIdentity& id, const std::string& service,
                            const std::string& ns, const std::string& version, bool principal) {
    id.set_workload(service + "-" + version);
    id.set_namespace_(ns);
    if (principal) {  // the source's proxy knows its own app and version labels
      id.set_app(service);
      id.set_version(version);
    }
    if (principal) id.set_principal(fmt::format("spiffe://cluster.local/ns/{}/sa/{}", ns, service));
  };
  const auto random_bytes = [&](size_t n) {
    std::string bytes(n, '\0');
    for (char& c : bytes) c = static_cast<char>(random() & 0xff);
    return bytes;
  };
  std::vector<meshtel::v1::RequestRecord> records;
  records.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    meshtel::v1::RequestRecord record;
    const std::string source = kServices[random() % std::size(kServices)];
    const std::string destination = kServices[random() % std::size(kServices)];
    const std::string source_ns = kNamespaces[random() % std::size(kNamespaces)];
    const std::string destination_ns = kNamespaces[random() % std::size(kNamespaces)];
    const std::string version = random() % 3 == 0 ? "v2" : "v1";
    // Within the hour before now: exporters refuse records older than their age limit.
    record.set_start_time_unix_nano(now_unix_nano - 3'600'000 * kMs + random() % (3'600'000 * kMs));
    const uint64_t duration = (1 + random() % 300) * kMs + random() % kMs;
    record.set_duration_ns(duration);
    const uint64_t headers_done_ns = 20'000 + random() % 10'000;
    const bool connection_reused = random() % 10 != 0;
    SetPhaseTimings(*record.mutable_phases(), duration, headers_done_ns, connection_reused);
    record.set_reporter(random() % 2 == 0 ? meshtel::v1::REPORTER_SOURCE
                                          : meshtel::v1::REPORTER_DESTINATION);
    record.set_method(random() % 5 == 0 ? "POST" : "GET");
    record.set_scheme("http");
    record.set_authority(destination + ":8080");
    record.set_path(kPaths[random() % std::size(kPaths)]);
    record.set_protocol("HTTP/1.1");
    record.set_request_protocol(meshtel::v1::REQUEST_PROTOCOL_HTTP);
    record.set_user_agent(kAgents[random() % std::size(kAgents)]);
    if (random() % 4 == 0) record.set_forwarded_for("203.0.113.9");
    record.set_request_id(fmt::format("{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}", random() >> 32,
                                      random() >> 48, random() >> 52, random() >> 52,
                                      random() >> 16));
    const uint64_t outcome = random() % 20;
    record.set_response_code(outcome < 17 ? 200 : outcome == 17 ? 404 : 503);
    if (outcome >= 18) {
      record.set_response_flags(
          (uint64_t{1} << meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_FAILURE) |
          (uint64_t{1} << meshtel::v1::RESPONSE_FLAG_UPSTREAM_RETRY_LIMIT_EXCEEDED));
    }
    record.set_response_code_details(outcome < 18 ? "via_upstream" : "upstream_reset_before");
    record.set_request_bytes(200 + random() % 2000);
    record.set_response_bytes(300 + random() % 20000);
    record.set_upstream_host(fmt::format("10.0.{}.{}:8080", random() % 4, random() % 250));
    record.set_upstream_cluster(
        fmt::format("outbound|8080||{}.{}.svc.cluster.local", destination, destination_ns));
    record.set_downstream_remote_address(
        fmt::format("10.0.1.{}:{}", random() % 250, 30000 + random() % 30000));
    record.set_trace_id(random_bytes(16));
    record.set_span_id(random_bytes(8));
    record.set_sampled(random() % 100 == 0);
    identity(*record.mutable_source(), source, source_ns, version, true);
    identity(*record.mutable_destination(), destination, destination_ns, version, false);
    record.mutable_destination_service()->set_name(destination);
    record.mutable_destination_service()->set_namespace_(destination_ns);
    record.set_mutual_tls(true);
    records.push_back(std::move(record));
  }
  return records;
}

// The records of `traces` requests from outside the mesh through a frontend to a backend, three
// hops each, as the two sidecars report them with the trace context they propagated:
//   1. the frontend's inbound listener (reporter=destination, SERVER): the root, no parent;
//   2. the frontend's outbound listener (reporter=source, CLIENT): parent 1, sent while the
//      frontend app handles the request (between 1's request sent and response started);
//   3. the backend's inbound listener (reporter=destination, SERVER): parent 2, within 2's wait.
// One trace id and x-request-id per request, a new span id per hop; each record is one of
// MakeMeshRecords()' (300–500 bytes) with the identities, times and ids made consistent.
// Requests start over a window of traces / `requests_per_second` seconds ending now, so many
// overlap; the records are returned in the order the proxies finish them (end time), which puts
// every hop before the hop that caused it, so a trace's root comes last.
inline std::vector<meshtel::v1::RequestRecord> MakeMeshTraces(size_t traces, uint64_t seed,
                                                              bool sampled,
                                                              double requests_per_second = 10000) {
  constexpr uint64_t kUs = 1'000;
  std::vector<meshtel::v1::RequestRecord> base = MakeMeshRecords(3 * traces, seed);
  std::mt19937_64 random(seed ^ 0x5eedull);
  const uint64_t now_unix_nano =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  const uint64_t window_ns = std::max<uint64_t>(
      1, static_cast<uint64_t>(static_cast<double>(traces) / requests_per_second * 1e9));
  const auto version_of = [](const std::string& workload) {
    const size_t dash = workload.rfind('-');
    return dash == std::string::npos ? std::string("v1") : workload.substr(dash + 1);
  };
  std::vector<meshtel::v1::RequestRecord> records;
  records.reserve(3 * traces);
  for (size_t t = 0; t < traces; ++t) {
    meshtel::v1::RequestRecord root = std::move(base[3 * t]);
    meshtel::v1::RequestRecord client = std::move(base[3 * t + 1]);
    meshtel::v1::RequestRecord server = client;  // the same request, seen by the backend
    server.set_span_id(base[3 * t + 2].span_id());

    // 1: the frontend's inbound hop, called by the ingress gateway.
    root.set_reporter(meshtel::v1::REPORTER_DESTINATION);
    root.set_start_time_unix_nano(now_unix_nano - window_ns - 300'000 * kUs + random() % window_ns);
    meshtel::v1::WorkloadIdentity& gateway = *root.mutable_source();
    gateway.Clear();
    gateway.set_workload("istio-ingressgateway");
    gateway.set_namespace_("istio-system");
    gateway.set_app("istio-ingressgateway");
    gateway.set_principal(
        "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account");
    root.set_upstream_cluster("inbound|8080||");
    root.set_upstream_host("127.0.0.1:8080");
    root.clear_parent_span_id();

    // 2: the frontend's outbound call, while the frontend app handles request 1.
    const meshtel::v1::PhaseTimings& root_phases = root.phases();
    const uint64_t app_window =
        root_phases.upstream_first_byte_ns() - root_phases.upstream_request_done_ns();
    client.set_reporter(meshtel::v1::REPORTER_SOURCE);
    client.set_start_time_unix_nano(root.start_time_unix_nano() +
                                    root_phases.upstream_request_done_ns() + 50 * kUs);
    client.set_duration_ns(app_window - 100 * kUs);
    SetPhaseTimings(*client.mutable_phases(), client.duration_ns(),
                    client.phases().downstream_headers_done_ns(),
                    client.phases().upstream_connection_reused());
    meshtel::v1::WorkloadIdentity& frontend = *client.mutable_source();
    frontend = root.destination();
    frontend.set_app(root.destination_service().name());
    frontend.set_version(version_of(frontend.workload()));
    frontend.set_principal(
        fmt::format("spiffe://cluster.local/ns/{}/sa/{}", frontend.namespace_(), frontend.app()));
    client.set_downstream_remote_address(
        fmt::format("127.0.0.6:{}", 30000 + random() % 30000));  // the app's connection
    client.set_request_id(root.request_id());
    client.set_trace_id(root.trace_id());
    client.set_parent_span_id(root.span_id());

    // 3: the backend's inbound hop of request 2, within 2's wait on its upstream.
    server.set_reporter(meshtel::v1::REPORTER_DESTINATION);
    *server.mutable_source() = client.source();
    const meshtel::v1::PhaseTimings& client_phases = client.phases();
    server.set_start_time_unix_nano(client.start_time_unix_nano() +
                                    client_phases.upstream_headers_sent_ns() + 20 * kUs);
    server.set_duration_ns(client_phases.upstream_first_byte_ns() -
                           client_phases.upstream_headers_sent_ns() - 40 * kUs);
    SetPhaseTimings(*server.mutable_phases(), server.duration_ns(),
                    base[3 * t + 2].phases().downstream_headers_done_ns(), true);
    server.set_upstream_cluster("inbound|8080||");
    server.set_upstream_host("127.0.0.1:8080");
    server.set_downstream_remote_address(
        fmt::format("10.0.1.{}:{}", random() % 250, 30000 + random() % 30000));
    server.set_request_id(root.request_id());
    server.set_trace_id(root.trace_id());
    server.set_parent_span_id(client.span_id());

    for (meshtel::v1::RequestRecord* record : {&root, &client, &server}) {
      record->set_sampled(sampled);
    }
    records.push_back(std::move(server));
    records.push_back(std::move(client));
    records.push_back(std::move(root));
  }
  std::stable_sort(records.begin(), records.end(),
                   [](const meshtel::v1::RequestRecord& a, const meshtel::v1::RequestRecord& b) {
                     return a.start_time_unix_nano() + a.duration_ns() <
                            b.start_time_unix_nano() + b.duration_ns();
                   });
  return records;
}

}  // namespace meshtel::bench
