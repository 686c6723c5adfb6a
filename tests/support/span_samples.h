#pragma once
// Test support: stored spans (meshtel.v1.Span in a StoredRecord of the spans family) as the span
// assembler writes them, for the trace exporters' tests and benchmarks. Header only.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "collector/store/record_store.h"
#include "meshtel/v1/span.pb.h"

namespace meshtel::testing {

// `hex` (an even number of hex digits) as bytes.
inline std::string Unhex(std::string_view hex) {
  const auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10;
  };
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(digit(hex[i]) * 16 + digit(hex[i + 1])));
  }
  return out;
}

inline void AddString(google::protobuf::RepeatedPtrField<meshtel::v1::SpanAttribute>& to,
                      std::string key, std::string value) {
  meshtel::v1::SpanAttribute* attribute = to.Add();
  attribute->set_key(std::move(key));
  attribute->set_string_value(std::move(value));
}

// A server span of `service` in namespace `ns` as the inbound proxy reports it: HTTP semantic
// convention attributes, Istio's tags, resource attributes, scope meshtel-proxy.
inline meshtel::v1::Span SampleSpan(std::string_view trace_hex, std::string_view span_hex,
                                    std::string_view parent_hex, std::string service,
                                    std::string ns = "shop") {
  meshtel::v1::Span span;
  span.set_trace_id(Unhex(trace_hex));
  span.set_span_id(Unhex(span_hex));
  span.set_parent_span_id(Unhex(parent_hex));
  span.set_name("cart.shop.svc.cluster.local:8080/*");
  span.set_kind(meshtel::v1::SPAN_KIND_SERVER);
  span.set_start_time_unix_nano(1'755'000'000'123'456'789ull);
  span.set_end_time_unix_nano(1'755'000'000'135'456'789ull);
  span.set_flags(1);
  auto& attributes = *span.mutable_attributes();
  AddString(attributes, "http.request.method", "GET");
  AddString(attributes, "url.full", "http://cart.shop:8080/cart?id=42");
  meshtel::v1::SpanAttribute* status = attributes.Add();
  status->set_key("http.response.status_code");
  status->set_int_value(200);
  meshtel::v1::SpanAttribute* size = attributes.Add();
  size->set_key("http.response.body.size");
  size->set_int_value(1832);
  AddString(attributes, "guid:x-request-id", "6f1c2b9e-3d1a-4b8e-9c55-0a1d2e3f4a5b");
  AddString(attributes, "user_agent.original", "curl/8.1.2");
  AddString(attributes, "upstream_cluster", "inbound|8080||");
  AddString(attributes, "istio.canonical_service", service);
  AddString(attributes, "istio.namespace", ns);
  meshtel::v1::SpanAttribute* sampled = attributes.Add();
  sampled->set_key("meshtel.sampled");
  sampled->set_bool_value(true);
  meshtel::v1::SpanAttribute* ratio = attributes.Add();
  ratio->set_key("sampling.ratio");
  ratio->set_double_value(0.25);
  span.set_service_name(service);
  auto& resource = *span.mutable_resource_attributes();
  AddString(resource, "service.namespace", ns);
  AddString(resource, "k8s.namespace.name", ns);
  AddString(resource, "k8s.pod.name", service + "-7d9f8b6c5-x2x9z");
  span.set_scope_name("meshtel-proxy");
  span.set_scope_version("0.1.0");
  return span;
}

inline collector::StoredRecord StoredSpan(meshtel::v1::Span span, uint64_t sequence = 1) {
  collector::StoredRecord record;
  record.key.time_unix_nano = 1'755'000'001'000'000'000ull;
  record.key.sequence = sequence;
  record.family = collector::RecordFamily::kSpans;
  record.span = std::move(span);
  return record;
}

}  // namespace meshtel::testing
