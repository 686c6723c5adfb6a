#pragma once
// Benchmark support: RequestRecords the way a meshtel-proxy in an Istio mesh reports them — both
// workload identities (the source's SPIFFE principal), the destination service's name, an upstream
// cluster, trace ids, a request id, phase timings — so that one record serializes to about 300–500
// bytes. The same for a given seed but for the start times (the hour before now). Used by
// store_ingest_bench and export_bench.

#include <chrono>
#include <cstdint>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "meshtel/v1/record.pb.h"

namespace meshtel::bench {

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
    meshtel::v1::PhaseTimings& phases = *record.mutable_phases();
    phases.set_downstream_headers_done_ns(20'000 + random() % 10'000);
    phases.set_route_chosen_ns(phases.downstream_headers_done_ns() + 3'000);
    phases.set_upstream_connected_ns(phases.route_chosen_ns() + 5'000);
    phases.set_upstream_connection_reused(random() % 10 != 0);
    phases.set_upstream_headers_sent_ns(phases.upstream_connected_ns() + 4'000);
    phases.set_upstream_request_done_ns(duration / 10);
    phases.set_upstream_first_byte_ns(duration * 8 / 10);
    phases.set_upstream_last_byte_ns(duration * 9 / 10);
    phases.set_downstream_last_byte_ns(duration);
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

}  // namespace meshtel::bench
