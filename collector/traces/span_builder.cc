#include "collector/traces/span_builder.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>

#include "collector/common/record_names.h"
#include "collector/common/response_flag_codes.h"

namespace meshtel::collector {
namespace {

using meshtel::v1::PhaseTimings;
using meshtel::v1::RequestRecord;
using meshtel::v1::Span;

// Envoy truncates the path in http.url to this many characters (max_path_tag_length).
constexpr size_t kMaxPathTagLength = 256;

bool AllZero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

void AddString(Span& span, std::string_view key, std::string_view value) {
  meshtel::v1::SpanAttribute* attribute = span.add_attributes();
  attribute->set_key(std::string(key));
  attribute->set_string_value(std::string(value));
}

void AddInt(Span& span, std::string_view key, int64_t value) {
  meshtel::v1::SpanAttribute* attribute = span.add_attributes();
  attribute->set_key(std::string(key));
  attribute->set_int_value(value);
}

void AddBool(Span& span, std::string_view key, bool value) {
  meshtel::v1::SpanAttribute* attribute = span.add_attributes();
  attribute->set_key(std::string(key));
  attribute->set_bool_value(value);
}

void AddResource(Span& span, std::string_view key, std::string_view value) {
  if (value.empty()) return;
  meshtel::v1::SpanAttribute* attribute = span.add_resource_attributes();
  attribute->set_key(std::string(key));
  attribute->set_string_value(std::string(value));
}

std::string_view OrDash(std::string_view value) { return value.empty() ? "-" : value; }
std::string_view OrUnknown(std::string_view value) { return value.empty() ? "unknown" : value; }

// "host:port" split; port empty when absent. Handles "[v6]:port".
std::pair<std::string_view, std::string_view> SplitHostPort(std::string_view authority) {
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return {authority, {}};
    std::string_view rest = authority.substr(close + 1);
    return {authority.substr(0, close + 1), rest.starts_with(':') ? rest.substr(1) : ""};
  }
  const size_t colon = authority.rfind(':');
  if (colon == std::string_view::npos || authority.find(':') != colon) return {authority, {}};
  return {authority.substr(0, colon), authority.substr(colon + 1)};
}

// The port of an Istio-style cluster name, "" when it has none.
std::string_view ClusterPort(std::string_view cluster) {
  const size_t first = cluster.find('|');
  if (first == std::string_view::npos) return {};
  const size_t second = cluster.find('|', first + 1);
  if (second == std::string_view::npos) return {};
  return cluster.substr(first + 1, second - first - 1);
}

std::string_view AddressIp(std::string_view address) { return SplitHostPort(address).first; }

uint64_t LoadBigEndian64(std::string_view bytes) {
  uint64_t value = 0;
  for (char c : bytes.substr(0, 8)) value = (value << 8) | static_cast<unsigned char>(c);
  return value;
}

uint64_t Mix64(uint64_t value) {
  value += 0x9e3779b97f4a7c15ull;
  value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ull;
  value = (value ^ (value >> 27)) * 0x94d049bb133111ebull;
  return value ^ (value >> 31);
}

struct Phase {
  std::string_view name;
  // Offsets (ns after the record's start) of the phase's start and end; 0 = not reached.
  uint64_t (*from)(const PhaseTimings&);
  uint64_t (*to)(const PhaseTimings&);
  bool from_request_start;  // the phase starts at the first downstream byte (offset 0)
};

uint64_t SentUpstream(const PhaseTimings& phases) {
  return phases.upstream_request_done_ns() != 0 ? phases.upstream_request_done_ns()
                                                : phases.upstream_headers_sent_ns();
}

constexpr std::array<Phase, 6> kPhases = {{
    {"proxy.read_request", nullptr,
     [](const PhaseTimings& p) { return p.downstream_headers_done_ns(); }, true},
    {"proxy.route", [](const PhaseTimings& p) { return p.downstream_headers_done_ns(); },
     [](const PhaseTimings& p) { return p.route_chosen_ns(); }, false},
    {"proxy.upstream_connect", [](const PhaseTimings& p) { return p.route_chosen_ns(); },
     [](const PhaseTimings& p) { return p.upstream_connected_ns(); }, false},
    {"proxy.upstream_send", [](const PhaseTimings& p) { return p.upstream_connected_ns(); },
     &SentUpstream, false},
    {"proxy.upstream_wait", &SentUpstream,
     [](const PhaseTimings& p) { return p.upstream_first_byte_ns(); }, false},
    {"proxy.response", [](const PhaseTimings& p) { return p.upstream_first_byte_ns(); },
     [](const PhaseTimings& p) { return p.downstream_last_byte_ns(); }, false},
}};

// The offsets of the phase's window in a record lasting `duration`; false when the record's
// timings show no such phase.
bool PhaseWindow(const Phase& phase, const PhaseTimings& phases, uint64_t duration, uint64_t& from,
                 uint64_t& to) {
  from = phase.from_request_start ? 0 : phase.from(phases);
  to = std::min(phase.to(phases), duration);
  return (phase.from_request_start || from != 0) && phase.to(phases) != 0 && to >= from;
}

uint64_t PhaseSpanIdValue(uint64_t hop_span_id, size_t phase) {
  const uint64_t id = Mix64(hop_span_id ^ Mix64(phase + 1));
  return id == 0 ? 1 : id;
}

// What makes Build's hop span status ERROR: no response, HTTP 5xx, a gRPC error.
bool IsHopError(const RequestRecord& record) {
  return record.response_code() == 0 || record.response_code() >= 500 ||
         (record.has_grpc_status() && record.grpc_status() != 0);
}

}  // namespace

bool IsValidTraceId(std::string_view id) { return id.size() == 16 && !AllZero(id); }
bool IsValidSpanId(std::string_view id) { return id.size() == 8 && !AllZero(id); }

SpanBuilder::SpanBuilder(const TracesConfig& config)
    : phase_spans_(config.phase_spans),
      service_name_(config.service_name),
      mesh_id_(config.mesh_id),
      scope_version_(MESHTEL_VERSION) {}

std::string SpanBuilder::PhaseSpanId(std::string_view hop_span_id, size_t phase) {
  return SpanIdBytes(PhaseSpanIdValue(LoadBigEndian64(hop_span_id), phase));
}

std::string SpanBuilder::ServiceName(const RequestRecord& record) const {
  return ServiceName(record.reporter() == meshtel::v1::REPORTER_SOURCE ? record.source()
                                                                       : record.destination());
}

size_t SpanBuilder::Summarize(const RequestRecord& record, std::vector<SpanSummary>& out,
                              const SpanOptions& options) const {
  if (!IsValidTraceId(record.trace_id()) || !IsValidSpanId(record.span_id())) return 0;
  const uint64_t start = record.start_time_unix_nano();
  const uint64_t duration = record.duration_ns();
  SpanSummary& hop = out.emplace_back();
  hop.span_id = SpanIdValue(record.span_id());
  hop.parent_span_id = SpanIdValue(record.parent_span_id());  // 0 for no valid id, as in Build
  hop.start_time_unix_nano = start;
  hop.end_time_unix_nano = start + duration;
  // Build's status ERROR; its own http.status_code / http.response.status_code tags are the
  // response code, an error already when 500 or more; custom and formatter tags may name them too.
  hop.error = IsHopError(record);
  for (const meshtel::v1::SpanTag& tag : record.custom_tags()) {
    if (HttpStatusOf(tag.name(), tag.value()) >= 500) hop.error = true;
  }
  if (!hop.error && !options.formatter_tags.empty()) {
    std::string value;
    for (const auto& [name, format] : options.formatter_tags) {
      if (!IsHttpStatusKey(name)) continue;  // not rendered: only a status tag matters here
      value.clear();
      format->Render(record, value);
      while (!value.empty() && value.back() == '\n') value.pop_back();
      if (HttpStatusOf(name, value) >= 500) hop.error = true;
    }
  }
  const uint64_t hop_id = hop.span_id;
  size_t summarized = 1;
  if (!options.phase_spans) return summarized;
  const PhaseTimings& phases = record.phases();
  for (size_t i = 0; i < kPhases.size(); ++i) {
    uint64_t from = 0, to = 0;
    if (!PhaseWindow(kPhases[i], phases, duration, from, to)) continue;
    SpanSummary& child = out.emplace_back();
    child.span_id = PhaseSpanIdValue(hop_id, i);
    child.parent_span_id = hop_id;
    child.start_time_unix_nano = start + from;
    child.end_time_unix_nano = start + to;
    ++summarized;
  }
  return summarized;
}

std::string SpanBuilder::ServiceName(const meshtel::v1::WorkloadIdentity& workload) const {
  const std::string_view canonical =
      !workload.canonical_service().empty() ? workload.canonical_service() : workload.workload();
  const std::string_view app = !workload.app().empty() ? workload.app() : canonical;
  switch (service_name_) {
    case TraceServiceName::kCanonicalNameOnly:
      return std::string(OrUnknown(canonical));
    case TraceServiceName::kCanonicalNameAndNamespace:
      return std::string(OrUnknown(canonical)) + "." +
             std::string(OrUnknown(workload.namespace_()));
    case TraceServiceName::kAppLabelAndNamespace:
      break;
  }
  return std::string(OrUnknown(app)) + "." + std::string(OrUnknown(workload.namespace_()));
}

size_t SpanBuilder::Build(const RequestRecord& record, std::vector<Span>& out,
                          const SpanOptions& options) const {
  if (!IsValidTraceId(record.trace_id()) || !IsValidSpanId(record.span_id())) return 0;
  const bool client = record.reporter() == meshtel::v1::REPORTER_SOURCE;
  // The workload this proxy runs beside: the caller for an outbound hop, the callee inbound.
  const meshtel::v1::WorkloadIdentity& self = client ? record.source() : record.destination();
  const uint64_t start = record.start_time_unix_nano();
  const uint64_t end = start + record.duration_ns();

  Span& span = out.emplace_back();
  span.set_trace_id(record.trace_id());
  span.set_span_id(record.span_id());
  if (IsValidSpanId(record.parent_span_id())) span.set_parent_span_id(record.parent_span_id());
  span.set_kind(client ? meshtel::v1::SPAN_KIND_CLIENT : meshtel::v1::SPAN_KIND_SERVER);
  span.set_start_time_unix_nano(start);
  span.set_end_time_unix_nano(end);
  span.set_flags(record.sampled() ? 1 : 0);
  span.set_service_name(ServiceName(self));
  span.set_scope_name(std::string(kProxyScopeName));
  span.set_scope_version(scope_version_);
  AddResource(span, "service.namespace", self.namespace_());
  AddResource(span, "service.version", self.version());
  AddResource(span, "k8s.namespace.name", self.namespace_());
  AddResource(span, "k8s.cluster.name", self.cluster());
  AddResource(span, "istio.workload.name", self.workload());

  // Operation name: Envoy's default route decorator, "<host>:<port>/*".
  const auto [authority_host, authority_port] = SplitHostPort(record.authority());
  const std::string_view host = !record.destination_service().host().empty()
                                    ? std::string_view(record.destination_service().host())
                                    : authority_host;
  // The port the caller addressed; else the service port of the cluster
  // ("outbound|<port>||<host>", "inbound|<port>||"), as Istio names clusters.
  std::string_view port = authority_port;
  if (port.empty()) port = ClusterPort(record.upstream_cluster());
  if (port.empty()) port = record.scheme() == "https" ? "443" : "80";
  span.set_name(std::string(OrUnknown(host)) + ":" + std::string(port) + "/*");

  const bool no_response = record.response_code() == 0;
  const bool server_error = record.response_code() >= 500;
  const bool grpc_error = record.has_grpc_status() && record.grpc_status() != 0;
  const bool error = no_response || server_error || grpc_error;
  if (error) {
    span.set_status_code(meshtel::v1::SPAN_STATUS_CODE_ERROR);
    if (no_response) {
      span.set_status_message("no response");
    } else if (server_error) {
      span.set_status_message("HTTP " + std::to_string(record.response_code()));
    } else {
      span.set_status_message("gRPC status " + std::to_string(record.grpc_status()));
    }
  }

  std::string_view scheme = record.scheme();
  if (scheme.empty()) scheme = "http";
  const std::string_view path = std::string_view(record.path()).substr(0, kMaxPathTagLength);
  std::string flags;
  common::AppendResponseFlagCodes(flags, record.response_flags());
  const std::string_view self_ip =
      AddressIp(client ? record.upstream_local_address() : record.downstream_local_address());

  // Envoy's tags.
  AddString(span, "component", "proxy");
  AddString(span, "node_id",
            "sidecar~" + std::string(OrUnknown(self_ip)) + "~" +
                std::string(OrUnknown(self.workload())) + "." +
                std::string(OrUnknown(self.namespace_())) + "~" +
                std::string(OrUnknown(self.namespace_())) + ".svc.cluster.local");
  AddString(span, "guid:x-request-id", record.request_id());
  AddString(span, "http.url", std::string(scheme) + "://" + record.authority() + std::string(path));
  AddString(span, "http.method", record.method());
  AddString(span, "http.protocol", record.protocol());
  AddString(span, "downstream_cluster", "-");
  AddString(span, "user_agent", OrDash(record.user_agent()));
  AddString(span, "peer.address", OrDash(record.downstream_remote_address()));
  AddString(span, "request_size", std::to_string(record.request_bytes()));
  AddString(span, "response_size", std::to_string(record.response_bytes()));
  AddString(span, "response_flags", flags);
  AddString(span, "http.status_code", std::to_string(record.response_code()));
  if (record.has_grpc_status()) {
    AddString(span, "grpc.status_code", std::to_string(record.grpc_status()));
  }
  AddString(span, "upstream_cluster", OrDash(record.upstream_cluster()));
  AddString(span, "upstream_cluster.name", OrDash(record.upstream_cluster()));
  if (!record.upstream_host().empty()) AddString(span, "upstream_address", record.upstream_host());
  if (error) AddBool(span, "error", true);
  // Istio's custom tags.
  AddString(span, "istio.canonical_revision", OrDash(self.canonical_revision()));
  AddString(span, "istio.canonical_service", OrDash(self.canonical_service()));
  AddString(span, "istio.mesh_id", mesh_id_);
  AddString(span, "istio.namespace", OrDash(self.namespace_()));
  // OpenTelemetry HTTP semantic conventions, for OTLP backends.
  AddString(span, "http.request.method", record.method());
  if (!no_response) AddInt(span, "http.response.status_code", record.response_code());
  AddString(span, "url.scheme", scheme);
  AddString(span, "url.path", path);
  AddString(span, "server.address", OrUnknown(host));
  int64_t port_number = 0;
  if (std::from_chars(port.data(), port.data() + port.size(), port_number).ec == std::errc()) {
    AddInt(span, "server.port", port_number);
  }
  if (!record.protocol().empty() && record.protocol().starts_with("HTTP/")) {
    AddString(span, "network.protocol.version", std::string_view(record.protocol()).substr(5));
  }
  if (!record.user_agent().empty()) AddString(span, "user_agent.original", record.user_agent());
  if (!client && !record.downstream_remote_address().empty()) {
    AddString(span, "client.address", AddressIp(record.downstream_remote_address()));
  }
  for (const meshtel::v1::SpanTag& tag : record.custom_tags()) {
    AddString(span, tag.name(), tag.value());
  }
  if (!options.formatter_tags.empty()) {
    std::string value;
    for (const auto& [name, format] : options.formatter_tags) {
      value.clear();
      format->Render(record, value);
      while (!value.empty() && value.back() == '\n') value.pop_back();
      AddString(span, name, value);
    }
  }
  for (const std::string& exporter : options.exporters) span.add_exporters(exporter);
  size_t built = 1;
  if (!options.phase_spans) return built;

  const PhaseTimings& phases = record.phases();
  const uint64_t duration = record.duration_ns();
  const uint32_t flags_bits = span.flags();
  const std::string service_name = span.service_name();
  const auto resource_attributes = span.resource_attributes();
  // `span` is not used past here: appending the phase spans may move it.
  for (size_t i = 0; i < kPhases.size(); ++i) {
    uint64_t from = 0, to = 0;
    if (!PhaseWindow(kPhases[i], phases, duration, from, to)) continue;
    const Phase& phase = kPhases[i];
    Span& child = out.emplace_back();
    child.set_trace_id(record.trace_id());
    child.set_span_id(PhaseSpanId(record.span_id(), i));
    child.set_parent_span_id(record.span_id());
    child.set_name(std::string(phase.name));
    child.set_kind(meshtel::v1::SPAN_KIND_INTERNAL);
    child.set_start_time_unix_nano(start + from);
    child.set_end_time_unix_nano(start + to);
    child.set_flags(flags_bits);
    child.set_service_name(service_name);
    *child.mutable_resource_attributes() = resource_attributes;
    child.set_scope_name(std::string(kProxyScopeName));
    child.set_scope_version(scope_version_);
    for (const std::string& exporter : options.exporters) child.add_exporters(exporter);
    AddString(child, "component", "proxy");
    AddString(child, "guid:x-request-id", record.request_id());
    if (i == 2)
      AddBool(child, "meshtel.upstream_connection_reused", phases.upstream_connection_reused());
    ++built;
  }
  return built;
}

}  // namespace meshtel::collector
