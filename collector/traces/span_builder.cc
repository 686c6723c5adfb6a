#include "collector/traces/span_builder.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <type_traits>

#include "collector/common/protobuf_wire.h"
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

using common::WireAppender;
using common::WireType;

// Field numbers of meshtel.v1.Span and meshtel.v1.SpanAttribute (proto/meshtel/v1/span.proto).
enum SpanField : uint32_t {
  kTraceId = 1,
  kSpanId = 2,
  kParentSpanId = 3,
  kName = 5,
  kKind = 6,
  kStartTime = 7,
  kEndTime = 8,
  kAttributes = 9,
  kStatusCode = 10,
  kStatusMessage = 11,
  kFlags = 12,
  kServiceName = 13,
  kResourceAttributes = 14,
  kScopeName = 15,
  kScopeVersion = 16,
  kAnomalies = 17,
  kExporters = 18,
};
enum AttributeField : uint32_t { kKey = 1, kStringValue = 2, kBoolValue = 3, kIntValue = 4 };

// The head of a SpanAttribute, as field `field` (attributes or resource attributes), whose value
// (field `value_field`) takes `value_size` bytes after it: the attribute's tag and length, the key
// (left out when empty, as protobuf does) and the value's tag — and, for a length-delimited value,
// its length. Written with one append while the key is short (the span rules' keys are): an
// attribute costs a few appends, not a call per varint.
void AttributeHead(WireAppender& out, uint32_t field, std::string_view key, uint32_t value_field,
                   WireType value_type, size_t value_size) {
  const size_t key_size = key.empty() ? 0 : common::LengthDelimitedSize(kKey, key.size());
  const bool delimited = value_type == WireType::kLengthDelimited;
  const size_t value_field_size =
      common::TagSize(value_field) + (delimited ? common::VarintSize(value_size) : 0) + value_size;
  constexpr size_t kShortKey = 64;
  char head[kShortKey + 32];
  size_t at = common::EncodeVarint(common::FieldTag(field, WireType::kLengthDelimited), head);
  at += common::EncodeVarint(key_size + value_field_size, head + at);
  std::string& bytes = out.out();
  if (!key.empty()) {
    at += common::EncodeVarint(common::FieldTag(kKey, WireType::kLengthDelimited), head + at);
    at += common::EncodeVarint(key.size(), head + at);
    if (key.size() <= kShortKey) {
      std::memcpy(head + at, key.data(), key.size());
      at += key.size();
    } else {
      bytes.append(head, at);
      bytes.append(key);
      at = 0;
    }
  }
  at += common::EncodeVarint(common::FieldTag(value_field, value_type), head + at);
  if (delimited) at += common::EncodeVarint(value_size, head + at);
  bytes.append(head, at);
}

// A SpanAttribute with a string value made of `pieces`, as field `field` (attributes or resource
// attributes). As protobuf writes it: an empty key left out, the value (a oneof) always written.
void StringAttribute(WireAppender& out, uint32_t field, std::string_view key,
                     std::initializer_list<std::string_view> pieces) {
  size_t value_size = 0;
  for (std::string_view piece : pieces) value_size += piece.size();
  AttributeHead(out, field, key, kStringValue, WireType::kLengthDelimited, value_size);
  for (std::string_view piece : pieces) out.out().append(piece);
}

void StringAttribute(WireAppender& out, std::string_view key,
                     std::initializer_list<std::string_view> pieces) {
  StringAttribute(out, kAttributes, key, pieces);
}

void IntAttribute(WireAppender& out, std::string_view key, int64_t value) {
  const auto bits = static_cast<uint64_t>(value);
  AttributeHead(out, kAttributes, key, kIntValue, WireType::kVarint, common::VarintSize(bits));
  out.Varint(bits);
}

void BoolAttribute(WireAppender& out, std::string_view key, bool value) {
  AttributeHead(out, kAttributes, key, kBoolValue, WireType::kVarint, 1);
  out.Varint(value ? 1 : 0);
}

void ResourceAttribute(WireAppender& out, std::string_view key, std::string_view value) {
  if (value.empty()) return;
  StringAttribute(out, kResourceAttributes, key, {value});
}

// Decimal digits of `value`.
struct Decimal {
  explicit Decimal(uint64_t value) {
    size = static_cast<size_t>(std::to_chars(digits, digits + sizeof(digits), value).ptr - digits);
  }
  std::string_view view() const { return std::string_view(digits, size); }
  char digits[24];
  size_t size = 0;
};

void StoreBigEndian64(uint64_t value, char* out) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(value & 0xFF);
    value >>= 8;
  }
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
template <typename Record>
bool IsHopError(const Record& record) {
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
  return ServiceNameOf(record.reporter() == meshtel::v1::REPORTER_SOURCE ? record.source()
                                                                         : record.destination());
}

std::string SpanBuilder::ServiceName(const RecordView& record) const {
  return ServiceNameOf(record.reporter() == meshtel::v1::REPORTER_SOURCE ? record.source()
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

template <typename Workload>
std::array<std::string_view, 3> SpanBuilder::ServiceNamePieces(const Workload& workload) const {
  const std::string_view canonical =
      !workload.canonical_service().empty() ? workload.canonical_service() : workload.workload();
  const std::string_view app = !workload.app().empty() ? workload.app() : canonical;
  switch (service_name_) {
    case TraceServiceName::kCanonicalNameOnly:
      return {OrUnknown(canonical), {}, {}};
    case TraceServiceName::kCanonicalNameAndNamespace:
      return {OrUnknown(canonical), ".", OrUnknown(workload.namespace_())};
    case TraceServiceName::kAppLabelAndNamespace:
      break;
  }
  return {OrUnknown(app), ".", OrUnknown(workload.namespace_())};
}

template <typename Workload>
std::string SpanBuilder::ServiceNameOf(const Workload& workload) const {
  const std::array<std::string_view, 3> pieces = ServiceNamePieces(workload);
  std::string name;
  for (std::string_view piece : pieces) name.append(piece);
  return name;
}

size_t SpanBuilder::Build(const RequestRecord& record, std::vector<Span>& out,
                          const SpanOptions& options) const {
  SerializedSpans encoded;
  const size_t encoded_count = Encode(record, options, SpanMarks{}, encoded);
  size_t built = 0;
  for (size_t i = 0; i < encoded_count; ++i) {
    const std::string_view bytes = encoded.bytes(i);
    // Encode writes what protobuf writes (SpanBuilderTest checks it); a span that did not parse
    // back would be left out, not returned half-made.
    if (out.emplace_back().ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      ++built;
    } else {
      out.pop_back();
    }
  }
  return built;
}

size_t SpanBuilder::Encode(const RequestRecord& record, const SpanOptions& options,
                           const SpanMarks& marks, SerializedSpans& out) const {
  return EncodeRecord(record, options, marks, out);
}

size_t SpanBuilder::Encode(const RecordView& record, const SpanOptions& options,
                           const SpanMarks& marks, SerializedSpans& out) const {
  if (!options.formatter_tags.empty()) return 0;  // rendered from a RequestRecord only
  return EncodeRecord(record, options, marks, out);
}

template <typename Record>
size_t SpanBuilder::EncodeRecord(const Record& record, const SpanOptions& options,
                                 const SpanMarks& marks, SerializedSpans& out) const {
  if (!IsValidTraceId(record.trace_id()) || !IsValidSpanId(record.span_id())) return 0;
  const bool client = record.reporter() == meshtel::v1::REPORTER_SOURCE;
  // The workload this proxy runs beside: the caller for an outbound hop, the callee inbound.
  const auto& self = client ? record.source() : record.destination();
  const uint64_t start = record.start_time_unix_nano();
  const uint64_t end = start + record.duration_ns();

  // The times and marks of the record's span `index`, and the fits that apply to it.
  const auto times_of = [&](size_t index, uint64_t own_start, uint64_t own_end) {
    if (index < marks.summaries.size()) {
      const SpanSummary& summary = marks.summaries[index];
      return std::array<uint64_t, 3>{summary.start_time_unix_nano, summary.end_time_unix_nano,
                                     summary.anomalies};
    }
    return std::array<uint64_t, 3>{own_start, own_end, 0};
  };
  const auto add_fits = [&](WireAppender& span, size_t index) {
    for (const SpanFit& fit : marks.fits) {
      if (fit.span == marks.first_summary + index) {
        IntAttribute(span, kFittedToParentAttribute, static_cast<int64_t>(fit.trimmed_ns));
      }
    }
  };

  std::string& buffer = out.Begin(record.trace_id(), record.span_id());
  WireAppender span(buffer);
  span.BytesField(kTraceId, record.trace_id());
  span.BytesField(kSpanId, record.span_id());
  if (IsValidSpanId(record.parent_span_id()))
    span.BytesField(kParentSpanId, record.parent_span_id());

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
  span.BytesField(kName, {OrUnknown(host), ":", port, "/*"});
  span.VarintField(kKind, client ? meshtel::v1::SPAN_KIND_CLIENT : meshtel::v1::SPAN_KIND_SERVER);
  const std::array<uint64_t, 3> hop_times = times_of(0, start, end);
  if (hop_times[0] != 0) span.Fixed64Field(kStartTime, hop_times[0]);
  if (hop_times[1] != 0) span.Fixed64Field(kEndTime, hop_times[1]);

  const bool no_response = record.response_code() == 0;
  const bool server_error = record.response_code() >= 500;
  const bool grpc_error = record.has_grpc_status() && record.grpc_status() != 0;
  const bool error = no_response || server_error || grpc_error;

  std::string_view scheme = record.scheme();
  if (scheme.empty()) scheme = "http";
  const std::string_view path = std::string_view(record.path()).substr(0, kMaxPathTagLength);
  std::string flags;  // short: no allocation for the usual codes
  common::AppendResponseFlagCodes(flags, record.response_flags());
  const std::string_view self_ip =
      AddressIp(client ? record.upstream_local_address() : record.downstream_local_address());
  const std::string_view self_namespace = OrUnknown(self.namespace_());

  // Envoy's tags.
  StringAttribute(span, "component", {"proxy"});
  StringAttribute(span, "node_id",
                  {"sidecar~", OrUnknown(self_ip), "~", OrUnknown(self.workload()), ".",
                   self_namespace, "~", self_namespace, ".svc.cluster.local"});
  StringAttribute(span, "guid:x-request-id", {record.request_id()});
  StringAttribute(span, "http.url", {scheme, "://", record.authority(), path});
  StringAttribute(span, "http.method", {record.method()});
  StringAttribute(span, "http.protocol", {record.protocol()});
  StringAttribute(span, "downstream_cluster", {"-"});
  StringAttribute(span, "user_agent", {OrDash(record.user_agent())});
  StringAttribute(span, "peer.address", {OrDash(record.downstream_remote_address())});
  StringAttribute(span, "request_size", {Decimal(record.request_bytes()).view()});
  StringAttribute(span, "response_size", {Decimal(record.response_bytes()).view()});
  StringAttribute(span, "response_flags", {flags});
  StringAttribute(span, "http.status_code", {Decimal(record.response_code()).view()});
  if (record.has_grpc_status()) {
    StringAttribute(span, "grpc.status_code", {Decimal(record.grpc_status()).view()});
  }
  StringAttribute(span, "upstream_cluster", {OrDash(record.upstream_cluster())});
  StringAttribute(span, "upstream_cluster.name", {OrDash(record.upstream_cluster())});
  if (!record.upstream_host().empty()) {
    StringAttribute(span, "upstream_address", {record.upstream_host()});
  }
  if (error) BoolAttribute(span, "error", true);
  // Istio's custom tags.
  StringAttribute(span, "istio.canonical_revision", {OrDash(self.canonical_revision())});
  StringAttribute(span, "istio.canonical_service", {OrDash(self.canonical_service())});
  StringAttribute(span, "istio.mesh_id", {mesh_id_});
  StringAttribute(span, "istio.namespace", {OrDash(self.namespace_())});
  // OpenTelemetry HTTP semantic conventions, for OTLP backends.
  StringAttribute(span, "http.request.method", {record.method()});
  if (!no_response) IntAttribute(span, "http.response.status_code", record.response_code());
  StringAttribute(span, "url.scheme", {scheme});
  StringAttribute(span, "url.path", {path});
  StringAttribute(span, "server.address", {OrUnknown(host)});
  int64_t port_number = 0;
  if (std::from_chars(port.data(), port.data() + port.size(), port_number).ec == std::errc()) {
    IntAttribute(span, "server.port", port_number);
  }
  if (!record.protocol().empty() && record.protocol().starts_with("HTTP/")) {
    StringAttribute(span, "network.protocol.version",
                    {std::string_view(record.protocol()).substr(5)});
  }
  if (!record.user_agent().empty()) {
    StringAttribute(span, "user_agent.original", {record.user_agent()});
  }
  if (!client && !record.downstream_remote_address().empty()) {
    StringAttribute(span, "client.address", {AddressIp(record.downstream_remote_address())});
  }
  for (const auto& tag : record.custom_tags()) {
    StringAttribute(span, tag.name(), {tag.value()});
  }
  if constexpr (std::is_same_v<Record, RequestRecord>) {
    if (!options.formatter_tags.empty()) {
      std::string value;
      for (const auto& [name, format] : options.formatter_tags) {
        value.clear();
        format->Render(record, value);
        while (!value.empty() && value.back() == '\n') value.pop_back();
        StringAttribute(span, name, {value});
      }
    }
  }
  add_fits(span, 0);

  if (error) {
    span.VarintField(kStatusCode, meshtel::v1::SPAN_STATUS_CODE_ERROR);
    if (no_response) {
      span.BytesField(kStatusMessage, "no response");
    } else if (server_error) {
      span.BytesField(kStatusMessage, {"HTTP ", Decimal(record.response_code()).view()});
    } else {
      span.BytesField(kStatusMessage, {"gRPC status ", Decimal(record.grpc_status()).view()});
    }
  }
  const uint32_t flags_bits = record.sampled() ? 1 : 0;
  if (flags_bits != 0) span.VarintField(kFlags, flags_bits);
  // Service name, resource attributes and scope (fields 13-16): the same for the phase spans,
  // which copy these bytes.
  const size_t shared_begin = buffer.size();
  const std::array<std::string_view, 3> service = ServiceNamePieces(self);
  span.BytesField(kServiceName, {service[0], service[1], service[2]});
  ResourceAttribute(span, "service.namespace", self.namespace_());
  ResourceAttribute(span, "service.version", self.version());
  ResourceAttribute(span, "k8s.namespace.name", self.namespace_());
  ResourceAttribute(span, "k8s.cluster.name", self.cluster());
  ResourceAttribute(span, "istio.workload.name", self.workload());
  span.BytesField(kScopeName, kProxyScopeName);
  if (!scope_version_.empty()) span.BytesField(kScopeVersion, scope_version_);
  const size_t shared_size = buffer.size() - shared_begin;
  if (hop_times[2] != 0) span.VarintField(kAnomalies, hop_times[2]);
  for (const std::string& exporter : options.exporters) span.BytesField(kExporters, exporter);
  size_t built = 1;
  if (!options.phase_spans) return built;

  const PhaseTimings& phases = record.phases();
  const uint64_t duration = record.duration_ns();
  const uint64_t hop_id = LoadBigEndian64(record.span_id());
  for (size_t i = 0; i < kPhases.size(); ++i) {
    uint64_t from = 0, to = 0;
    if (!PhaseWindow(kPhases[i], phases, duration, from, to)) continue;
    char phase_span_id[8];
    StoreBigEndian64(PhaseSpanIdValue(hop_id, i), phase_span_id);
    // The buffer is the hop span's too: the shared fields are copied from within it (append
    // copies before it may reallocate).
    std::string& child_buffer =
        out.Begin(record.trace_id(), std::string_view(phase_span_id, sizeof(phase_span_id)));
    WireAppender child(child_buffer);
    child.BytesField(kTraceId, record.trace_id());
    child.BytesField(kSpanId, std::string_view(phase_span_id, sizeof(phase_span_id)));
    child.BytesField(kParentSpanId, record.span_id());
    child.BytesField(kName, kPhases[i].name);
    child.VarintField(kKind, meshtel::v1::SPAN_KIND_INTERNAL);
    const std::array<uint64_t, 3> times = times_of(built, start + from, start + to);
    if (times[0] != 0) child.Fixed64Field(kStartTime, times[0]);
    if (times[1] != 0) child.Fixed64Field(kEndTime, times[1]);
    StringAttribute(child, "component", {"proxy"});
    StringAttribute(child, "guid:x-request-id", {record.request_id()});
    if (i == 2) {
      BoolAttribute(child, "meshtel.upstream_connection_reused",
                    phases.upstream_connection_reused());
    }
    add_fits(child, built);
    if (flags_bits != 0) child.VarintField(kFlags, flags_bits);
    child_buffer.append(child_buffer, shared_begin, shared_size);
    if (times[2] != 0) child.VarintField(kAnomalies, times[2]);
    for (const std::string& exporter : options.exporters) child.BytesField(kExporters, exporter);
    ++built;
  }
  return built;
}

}  // namespace meshtel::collector
