#include "collector/ingest/als_converter.h"

// Tested by: tests/collector/ingest/als_converter_test.cc

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/wrappers.pb.h"

namespace meshtel::collector {
namespace {

using envoy::data::accesslog::v3::AccessLogCommon;
using envoy::data::accesslog::v3::HTTPAccessLogEntry;
using envoy::data::accesslog::v3::TCPAccessLogEntry;
using google::protobuf::Struct;
using meshtel::v1::RequestRecord;
using meshtel::v1::WorkloadIdentity;

constexpr std::string_view kCanonicalName = "service.istio.io/canonical-name";
constexpr std::string_view kCanonicalRevision = "service.istio.io/canonical-revision";

std::string_view StringField(const Struct& fields, const std::string& key) {
  const auto it = fields.fields().find(key);
  if (it == fields.fields().end() || !it->second.has_string_value()) return {};
  return it->second.string_value();
}

const Struct* StructField(const Struct& fields, const std::string& key) {
  const auto it = fields.fields().find(key);
  if (it == fields.fields().end() || !it->second.has_struct_value()) return nullptr;
  return &it->second.struct_value();
}

void SetIfEmpty(std::string* field, std::string_view value) {
  if (field->empty() && !value.empty()) field->assign(value);
}

// app, version and the canonical labels from a LABELS / labels struct.
void ReadLabels(const Struct& labels, WorkloadIdentity& identity) {
  SetIfEmpty(identity.mutable_app(), StringField(labels, "app"));
  SetIfEmpty(identity.mutable_app(), StringField(labels, "app.kubernetes.io/name"));
  SetIfEmpty(identity.mutable_version(), StringField(labels, "version"));
  SetIfEmpty(identity.mutable_version(), StringField(labels, "app.kubernetes.io/version"));
  SetIfEmpty(identity.mutable_canonical_service(),
             StringField(labels, std::string(kCanonicalName)));
  SetIfEmpty(identity.mutable_canonical_revision(),
             StringField(labels, std::string(kCanonicalRevision)));
}

// Istio node metadata (NAME, NAMESPACE, WORKLOAD_NAME, CLUSTER_ID, LABELS, ...).
void ReadNodeMetadata(const Struct& metadata, WorkloadIdentity& identity) {
  SetIfEmpty(identity.mutable_workload(), StringField(metadata, "WORKLOAD_NAME"));
  SetIfEmpty(identity.mutable_workload(), StringField(metadata, "NAME"));
  SetIfEmpty(identity.mutable_namespace_(), StringField(metadata, "NAMESPACE"));
  SetIfEmpty(identity.mutable_cluster(), StringField(metadata, "CLUSTER_ID"));
  if (const Struct* labels = StructField(metadata, "LABELS")) ReadLabels(*labels, identity);
}

// Istio's peer-metadata object keys (workload, namespace, cluster, service, revision, app,
// version, identity, labels).
void ReadPeerObject(const Struct& object, WorkloadIdentity& identity) {
  SetIfEmpty(identity.mutable_workload(), StringField(object, "workload"));
  SetIfEmpty(identity.mutable_namespace_(), StringField(object, "namespace"));
  SetIfEmpty(identity.mutable_cluster(), StringField(object, "cluster"));
  SetIfEmpty(identity.mutable_canonical_service(), StringField(object, "service"));
  SetIfEmpty(identity.mutable_canonical_revision(), StringField(object, "revision"));
  SetIfEmpty(identity.mutable_app(), StringField(object, "app"));
  SetIfEmpty(identity.mutable_version(), StringField(object, "version"));
  SetIfEmpty(identity.mutable_principal(), StringField(object, "identity"));
  if (const Struct* labels = StructField(object, "labels")) ReadLabels(*labels, identity);
}

// "type=deployment,workload=reviews-v1,namespace=default,..." (serializeAsString of the object).
void ReadPeerPairs(std::string_view text, WorkloadIdentity& identity) {
  Struct object;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view pair = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t equals = pair.find('=');
    if (equals == std::string_view::npos) continue;
    (*object.mutable_fields())[std::string(pair.substr(0, equals))].set_string_value(
        std::string(pair.substr(equals + 1)));
  }
  ReadPeerObject(object, identity);
}

bool HasTypeSuffix(const std::string& type_url, std::string_view name) {
  return type_url.size() > name.size() && type_url.ends_with(name) &&
         type_url[type_url.size() - name.size() - 1] == '/';
}

// The peer identity an Any holds, when it is in a form Istio sends.
void DecodePeer(const google::protobuf::Any& any, WorkloadIdentity& identity) {
  if (HasTypeSuffix(any.type_url(), "google.protobuf.Struct")) {
    Struct object;
    if (!object.ParseFromString(any.value())) return;
    ReadPeerObject(object, identity);
    ReadNodeMetadata(object, identity);
  } else if (HasTypeSuffix(any.type_url(), "google.protobuf.StringValue")) {
    google::protobuf::StringValue value;
    if (value.ParseFromString(any.value())) ReadPeerPairs(value.value(), identity);
  } else if (HasTypeSuffix(any.type_url(), "google.protobuf.BytesValue")) {
    google::protobuf::BytesValue value;
    if (value.ParseFromString(any.value())) ReadPeerPairs(value.value(), identity);
  }
}

// The peer identity in filter_state_objects[key]. A sidecar talks to few peers, so the same
// object bytes repeat from entry to entry: decoded identities are kept per thread (each stream
// has its own thread), keyed by type and bytes, up to kPeerCacheSize of them.
constexpr size_t kPeerCacheSize = 256;

void ReadPeer(const AccessLogCommon& common, const std::string& key, WorkloadIdentity& identity) {
  const auto it = common.filter_state_objects().find(key);
  if (it == common.filter_state_objects().end()) return;
  const google::protobuf::Any& any = it->second;
  thread_local absl::flat_hash_map<std::string, WorkloadIdentity> cache;
  thread_local std::string cache_key;
  cache_key.assign(any.type_url());
  cache_key.push_back('\0');
  cache_key.append(any.value());
  const auto cached = cache.find(cache_key);
  if (cached != cache.end()) {
    identity = cached->second;
    return;
  }
  DecodePeer(any, identity);
  if (cache.size() >= kPeerCacheSize) cache.clear();
  cache.emplace(cache_key, identity);
}

uint64_t DurationNs(const google::protobuf::Duration& duration) {
  if (duration.seconds() < 0 || duration.nanos() < 0) return 0;
  return static_cast<uint64_t>(duration.seconds()) * 1'000'000'000ull +
         static_cast<uint64_t>(duration.nanos());
}

std::string AddressText(const envoy::config::core::v3::Address& address) {
  if (address.has_socket_address()) {
    const auto& socket = address.socket_address();
    const std::string port =
        socket.has_named_port() ? socket.named_port() : std::to_string(socket.port_value());
    if (socket.address().find(':') != std::string::npos) {
      return "[" + socket.address() + "]:" + port;
    }
    return socket.address() + ":" + port;
  }
  if (address.has_pipe()) return address.pipe().path();
  if (address.has_envoy_internal_address()) {
    return "envoy://" + address.envoy_internal_address().server_listener_name() + "/" +
           address.envoy_internal_address().endpoint_id();
  }
  return {};
}

uint64_t ResponseFlagBits(const envoy::data::accesslog::v3::ResponseFlags& flags) {
  using meshtel::v1::ResponseFlag;
  const std::array<std::pair<bool, ResponseFlag>, 28> bits = {{
      {flags.failed_local_healthcheck(), meshtel::v1::RESPONSE_FLAG_FAILED_LOCAL_HEALTHCHECK},
      {flags.no_healthy_upstream(), meshtel::v1::RESPONSE_FLAG_NO_HEALTHY_UPSTREAM},
      {flags.upstream_request_timeout(), meshtel::v1::RESPONSE_FLAG_UPSTREAM_REQUEST_TIMEOUT},
      {flags.local_reset(), meshtel::v1::RESPONSE_FLAG_LOCAL_RESET},
      {flags.upstream_remote_reset(), meshtel::v1::RESPONSE_FLAG_UPSTREAM_REMOTE_RESET},
      {flags.upstream_connection_failure(), meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_FAILURE},
      {flags.upstream_connection_termination(),
       meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_TERMINATION},
      {flags.upstream_overflow(), meshtel::v1::RESPONSE_FLAG_UPSTREAM_OVERFLOW},
      {flags.no_route_found(), meshtel::v1::RESPONSE_FLAG_NO_ROUTE_FOUND},
      {flags.delay_injected(), meshtel::v1::RESPONSE_FLAG_DELAY_INJECTED},
      {flags.fault_injected(), meshtel::v1::RESPONSE_FLAG_FAULT_INJECTED},
      {flags.rate_limited(), meshtel::v1::RESPONSE_FLAG_RATE_LIMITED},
      {flags.unauthorized_details().reason() ==
           envoy::data::accesslog::v3::ResponseFlags::Unauthorized::EXTERNAL_SERVICE,
       meshtel::v1::RESPONSE_FLAG_UNAUTHORIZED_EXTERNAL_SERVICE},
      {flags.rate_limit_service_error(), meshtel::v1::RESPONSE_FLAG_RATE_LIMIT_SERVICE_ERROR},
      {flags.downstream_connection_termination(),
       meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_CONNECTION_TERMINATION},
      {flags.upstream_retry_limit_exceeded(),
       meshtel::v1::RESPONSE_FLAG_UPSTREAM_RETRY_LIMIT_EXCEEDED},
      {flags.stream_idle_timeout(), meshtel::v1::RESPONSE_FLAG_STREAM_IDLE_TIMEOUT},
      {flags.invalid_envoy_request_headers(),
       meshtel::v1::RESPONSE_FLAG_INVALID_ENVOY_REQUEST_HEADERS},
      {flags.downstream_protocol_error(), meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_PROTOCOL_ERROR},
      {flags.upstream_max_stream_duration_reached(),
       meshtel::v1::RESPONSE_FLAG_UPSTREAM_MAX_STREAM_DURATION_REACHED},
      {flags.response_from_cache_filter(), meshtel::v1::RESPONSE_FLAG_RESPONSE_FROM_CACHE_FILTER},
      {flags.no_filter_config_found(), meshtel::v1::RESPONSE_FLAG_NO_FILTER_CONFIG_FOUND},
      {flags.duration_timeout(), meshtel::v1::RESPONSE_FLAG_DURATION_TIMEOUT},
      {flags.upstream_protocol_error(), meshtel::v1::RESPONSE_FLAG_UPSTREAM_PROTOCOL_ERROR},
      {flags.no_cluster_found(), meshtel::v1::RESPONSE_FLAG_NO_CLUSTER_FOUND},
      {flags.overload_manager(), meshtel::v1::RESPONSE_FLAG_OVERLOAD_MANAGER},
      {flags.dns_resolution_failure(), meshtel::v1::RESPONSE_FLAG_DNS_RESOLUTION_FAILURE},
      {flags.downstream_remote_reset(), meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_REMOTE_RESET},
  }};
  uint64_t set = 0;
  for (const auto& [on, flag] : bits) {
    if (on) set |= uint64_t{1} << static_cast<int>(flag);
  }
  return set;
}

bool IsIntermediate(const AccessLogCommon& common) {
  using envoy::data::accesslog::v3::AccessLogType;
  switch (common.access_log_type()) {
    case envoy::data::accesslog::v3::NotSet:
      // Senders before access_log_type marked intermediate entries with the deprecated flag.
      return common.intermediate_log_entry();
    case envoy::data::accesslog::v3::TcpConnectionEnd:
    case envoy::data::accesslog::v3::DownstreamEnd:
    case envoy::data::accesslog::v3::UpstreamEnd:
      return false;
    default:
      return true;
  }
}

bool IsServerSide(std::string_view cluster) {
  return cluster.starts_with("inbound|") || cluster.starts_with("InboundPassthroughCluster");
}

// Splits "host:port" / "[v6]:port" and returns the host.
std::string_view HostOf(std::string_view authority) {
  if (authority.starts_with("[")) {
    const size_t close = authority.find(']');
    return close == std::string_view::npos ? authority : authority.substr(1, close - 1);
  }
  const size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(':') == colon) {
    return authority.substr(0, colon);
  }
  return authority;
}

// Istio's destination_service* labels from the cluster name, else the authority.
void FillDestinationService(std::string_view cluster, std::string_view authority,
                            meshtel::v1::ServiceIdentity& service) {
  if (cluster == "PassthroughCluster" || cluster == "BlackHoleCluster" ||
      cluster.starts_with("InboundPassthroughCluster")) {
    service.set_host(std::string(authority.empty() ? cluster : HostOf(authority)));
    service.set_name(std::string(cluster));
    return;
  }
  std::string_view host;
  if (cluster.starts_with("outbound|") || cluster.starts_with("inbound|")) {
    // direction|port|subset|host
    std::string_view rest = cluster;
    for (int i = 0; i < 3 && !rest.empty(); ++i) {
      const size_t bar = rest.find('|');
      rest = bar == std::string_view::npos ? std::string_view() : rest.substr(bar + 1);
    }
    host = rest;
  }
  if (host.empty()) host = HostOf(authority);
  if (host.empty()) return;
  service.set_host(std::string(host));
  const size_t dot = host.find('.');
  if (dot == std::string_view::npos) {
    service.set_name(std::string(host));
    return;
  }
  service.set_name(std::string(host.substr(0, dot)));
  const std::string_view after = host.substr(dot + 1);
  service.set_namespace_(std::string(after.substr(0, after.find('.'))));
}

std::string_view FirstUriSan(
    const envoy::data::accesslog::v3::TLSProperties::CertificateProperties& certificate) {
  for (const auto& san : certificate.subject_alt_name()) {
    if (san.has_uri() && !san.uri().empty()) return san.uri();
  }
  return {};
}

// Fills reporter, the two workloads, destination service, principals, addresses and the other
// fields HTTP and TCP entries share.
void FillCommon(const AccessLogCommon& common, const AlsNodeIdentity& node, RequestRecord& out) {
  if (common.has_start_time()) {
    const auto& start = common.start_time();
    if (start.seconds() > 0 && start.nanos() >= 0) {
      out.set_start_time_unix_nano(static_cast<uint64_t>(start.seconds()) * 1'000'000'000ull +
                                   static_cast<uint64_t>(start.nanos()));
    }
  }
  uint64_t duration = DurationNs(common.duration());
  if (duration == 0) duration = DurationNs(common.time_to_last_downstream_tx_byte());
  out.set_duration_ns(duration);
  meshtel::v1::PhaseTimings& phases = *out.mutable_phases();
  phases.set_upstream_headers_sent_ns(DurationNs(common.time_to_first_upstream_tx_byte()));
  phases.set_upstream_request_done_ns(DurationNs(common.time_to_last_upstream_tx_byte()));
  phases.set_upstream_first_byte_ns(DurationNs(common.time_to_first_upstream_rx_byte()));
  phases.set_upstream_last_byte_ns(DurationNs(common.time_to_last_upstream_rx_byte()));
  phases.set_downstream_last_byte_ns(DurationNs(common.time_to_last_downstream_tx_byte()));

  const bool server = IsServerSide(common.upstream_cluster());
  out.set_reporter(server ? meshtel::v1::REPORTER_DESTINATION : meshtel::v1::REPORTER_SOURCE);
  WorkloadIdentity& self = server ? *out.mutable_destination() : *out.mutable_source();
  WorkloadIdentity& peer = server ? *out.mutable_source() : *out.mutable_destination();
  self = node.workload;
  ReadPeer(common, server ? "downstream_peer" : "upstream_peer", peer);
  if (server && common.has_tls_properties()) {
    const auto& tls = common.tls_properties();
    const std::string_view peer_principal = FirstUriSan(tls.peer_certificate_properties());
    const std::string_view own_principal = FirstUriSan(tls.local_certificate_properties());
    if (!peer_principal.empty()) peer.set_principal(std::string(peer_principal));
    if (!own_principal.empty()) self.set_principal(std::string(own_principal));
    out.set_mutual_tls(!peer_principal.empty() && !own_principal.empty());
  }

  out.set_response_flags(ResponseFlagBits(common.response_flags()));
  out.set_upstream_host(AddressText(common.upstream_remote_address()));
  out.set_upstream_cluster(common.upstream_cluster());
  out.set_downstream_remote_address(AddressText(common.downstream_remote_address()));
  out.set_downstream_local_address(AddressText(common.downstream_local_address()));
  out.set_upstream_local_address(AddressText(common.upstream_local_address()));
  out.set_route_name(common.route_name());
}

std::string_view MethodName(envoy::config::core::v3::RequestMethod method) {
  switch (method) {
    case envoy::config::core::v3::GET:
      return "GET";
    case envoy::config::core::v3::HEAD:
      return "HEAD";
    case envoy::config::core::v3::POST:
      return "POST";
    case envoy::config::core::v3::PUT:
      return "PUT";
    case envoy::config::core::v3::DELETE:
      return "DELETE";
    case envoy::config::core::v3::CONNECT:
      return "CONNECT";
    case envoy::config::core::v3::OPTIONS:
      return "OPTIONS";
    case envoy::config::core::v3::TRACE:
      return "TRACE";
    case envoy::config::core::v3::PATCH:
      return "PATCH";
    default:
      return {};
  }
}

std::string_view ProtocolName(HTTPAccessLogEntry::HTTPVersion version) {
  switch (version) {
    case HTTPAccessLogEntry::HTTP10:
      return "HTTP/1.0";
    case HTTPAccessLogEntry::HTTP11:
      return "HTTP/1.1";
    case HTTPAccessLogEntry::HTTP2:
      return "HTTP/2";
    case HTTPAccessLogEntry::HTTP3:
      return "HTTP/3";
    default:
      return {};
  }
}

// A logged header, looked up case-insensitively (Envoy logs the names as configured).
std::optional<std::string_view> Header(const google::protobuf::Map<std::string, std::string>& map,
                                       std::string_view name) {
  const auto exact = map.find(std::string(name));
  if (exact != map.end()) return std::string_view(exact->second);
  for (const auto& [key, value] : map) {
    if (key.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < key.size() && same; ++i) {
      same = static_cast<char>(std::tolower(static_cast<unsigned char>(key[i]))) == name[i];
    }
    if (same) return std::string_view(value);
  }
  return std::nullopt;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Hex → bytes, left-padded with zero bytes to `size`; nullopt when not hex, too long or zero.
std::optional<std::string> HexId(std::string_view hex, size_t size, bool lower_case_only) {
  if (hex.empty() || hex.size() % 2 != 0 || hex.size() > size * 2) return std::nullopt;
  std::string bytes(size - hex.size() / 2, '\0');
  bool nonzero = false;
  for (size_t i = 0; i < hex.size(); i += 2) {
    if (lower_case_only && (std::isupper(static_cast<unsigned char>(hex[i])) ||
                            std::isupper(static_cast<unsigned char>(hex[i + 1])))) {
      return std::nullopt;
    }
    const int high = HexValue(hex[i]);
    const int low = HexValue(hex[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    const char byte = static_cast<char>(high * 16 + low);
    nonzero |= byte != 0;
    bytes.push_back(byte);
  }
  if (!nonzero) return std::nullopt;
  return bytes;
}

struct LoggedContext {
  std::string trace_id;  // 16 bytes
  std::string span_id;   // 8 bytes: the caller's span
  bool sampled = false;
};

std::optional<LoggedContext> FromTraceparent(std::string_view value) {
  // version "-" trace-id "-" parent-id "-" flags; version 00 is exactly 55 characters.
  if (value.size() < 55 || value[2] != '-' || value[35] != '-' || value[52] != '-') {
    return std::nullopt;
  }
  const std::string_view version = value.substr(0, 2);
  if (version == "ff" || HexValue(version[0]) < 0 || HexValue(version[1]) < 0) return std::nullopt;
  if (version == "00" && value.size() != 55) return std::nullopt;
  if (value.size() > 55 && value[55] != '-') return std::nullopt;
  auto trace = HexId(value.substr(3, 32), 16, true);
  auto span = HexId(value.substr(36, 16), 8, true);
  const int flags_high = HexValue(value[53]);
  const int flags_low = HexValue(value[54]);
  if (!trace || !span || flags_high < 0 || flags_low < 0) return std::nullopt;
  return LoggedContext{*std::move(trace), *std::move(span), (flags_low & 1) != 0};
}

std::optional<bool> B3Sampled(std::string_view value) {
  if (value == "1" || value == "d" || value == "true") return true;
  if (value == "0" || value == "false") return false;
  return std::nullopt;
}

std::optional<LoggedContext> FromB3Single(std::string_view value) {
  // traceid-spanid[-sampled[-parentspanid]]
  const size_t first = value.find('-');
  if (first == std::string_view::npos) return std::nullopt;
  const std::string_view rest = value.substr(first + 1);
  const size_t second = rest.find('-');
  auto trace = HexId(value.substr(0, first), 16, true);
  auto span = HexId(rest.substr(0, second), 8, true);
  if (!trace || !span || (first != 16 && first != 32) || rest.substr(0, second).size() != 16) {
    return std::nullopt;
  }
  LoggedContext context{*std::move(trace), *std::move(span), false};
  if (second != std::string_view::npos) {
    const std::string_view sampled =
        rest.substr(second + 1, rest.find('-', second + 1) - second - 1);
    context.sampled = B3Sampled(sampled).value_or(false);
  }
  return context;
}

std::optional<LoggedContext> FromB3Multi(
    const google::protobuf::Map<std::string, std::string>& map) {
  const auto trace_hex = Header(map, "x-b3-traceid");
  const auto span_hex = Header(map, "x-b3-spanid");
  if (!trace_hex || !span_hex) return std::nullopt;
  if ((trace_hex->size() != 16 && trace_hex->size() != 32) || span_hex->size() != 16) {
    return std::nullopt;
  }
  auto trace = HexId(*trace_hex, 16, false);
  auto span = HexId(*span_hex, 8, false);
  if (!trace || !span) return std::nullopt;
  LoggedContext context{*std::move(trace), *std::move(span), false};
  if (const auto flags = Header(map, "x-b3-flags"); flags && *flags == "1") {
    context.sampled = true;
  } else if (const auto sampled = Header(map, "x-b3-sampled")) {
    context.sampled = B3Sampled(*sampled).value_or(false);
  }
  return context;
}

// FNV-1a over the pieces; 8 bytes big-endian, never zero.
std::string DerivedSpanId(std::initializer_list<std::string_view> pieces) {
  uint64_t hash = 14695981039346656037ull;
  for (std::string_view piece : pieces) {
    for (unsigned char c : piece) {
      hash ^= c;
      hash *= 1099511628211ull;
    }
    hash ^= 0xff;
    hash *= 1099511628211ull;
  }
  if (hash == 0) hash = 1;
  std::string id(8, '\0');
  for (int i = 7; i >= 0; --i) {
    id[static_cast<size_t>(i)] = static_cast<char>(hash & 0xff);
    hash >>= 8;
  }
  return id;
}

void FillTraceContext(const google::protobuf::Map<std::string, std::string>& headers,
                      RequestRecord& out) {
  if (headers.empty()) return;
  std::optional<LoggedContext> context;
  if (const auto traceparent = Header(headers, "traceparent")) {
    context = FromTraceparent(*traceparent);
  } else if (const auto b3 = Header(headers, "b3")) {
    context = FromB3Single(*b3);
  } else {
    context = FromB3Multi(headers);
  }
  if (!context) return;
  const std::string start = std::to_string(out.start_time_unix_nano());
  out.set_span_id(DerivedSpanId({context->trace_id, context->span_id,
                                 out.reporter() == meshtel::v1::REPORTER_SOURCE ? "s" : "d",
                                 out.request_id(), start}));
  out.set_trace_id(std::move(context->trace_id));
  out.set_parent_span_id(std::move(context->span_id));
  out.set_sampled(context->sampled);
}

std::optional<uint32_t> GrpcStatus(const envoy::data::accesslog::v3::HTTPResponseProperties& r) {
  auto status = Header(r.response_trailers(), "grpc-status");
  if (!status) status = Header(r.response_headers(), "grpc-status");
  if (!status || status->empty() || status->size() > 9) return std::nullopt;
  uint32_t value = 0;
  for (char c : *status) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  return value;
}

}  // namespace

AlsNodeIdentity AlsNodeIdentity::FromIdentifier(
    const envoy::service::accesslog::v3::StreamAccessLogsMessage::Identifier& identifier) {
  AlsNodeIdentity node;
  node.node_id = identifier.node().id();
  node.log_name = identifier.log_name();
  ReadNodeMetadata(identifier.node().metadata(), node.workload);
  return node;
}

bool ConvertHttpEntry(const HTTPAccessLogEntry& entry, const AlsNodeIdentity& node,
                      RequestRecord& out) {
  out.Clear();
  const AccessLogCommon& common = entry.common_properties();
  if (IsIntermediate(common)) return false;
  FillCommon(common, node, out);
  const auto& request = entry.request();
  const auto& response = entry.response();

  std::string_view method = MethodName(request.request_method());
  if (method.empty()) method = Header(request.request_headers(), ":method").value_or("");
  out.set_method(std::string(method));
  out.set_scheme(request.scheme());
  out.set_authority(request.authority());
  out.set_path(request.original_path().empty() ? request.path() : request.original_path());
  out.set_protocol(std::string(ProtocolName(entry.protocol_version())));
  out.set_user_agent(request.user_agent());
  out.set_forwarded_for(request.forwarded_for());
  out.set_request_id(request.request_id());

  out.set_response_code(response.has_response_code() ? response.response_code().value() : 0);
  out.set_response_code_details(response.response_code_details());
  const std::optional<uint32_t> grpc_status = GrpcStatus(response);
  const bool grpc = Header(request.request_headers(), "content-type")
                        .value_or("")
                        .starts_with("application/grpc") ||
                    grpc_status.has_value();
  out.set_request_protocol(grpc ? meshtel::v1::REQUEST_PROTOCOL_GRPC
                                : meshtel::v1::REQUEST_PROTOCOL_HTTP);
  if (grpc && grpc_status) out.set_grpc_status(*grpc_status);

  out.set_request_bytes(common.downstream_wire_bytes_received() != 0
                            ? common.downstream_wire_bytes_received()
                            : request.request_headers_bytes() + request.request_body_bytes());
  out.set_response_bytes(common.downstream_wire_bytes_sent() != 0
                             ? common.downstream_wire_bytes_sent()
                             : response.response_headers_bytes() + response.response_body_bytes());

  FillDestinationService(common.upstream_cluster(), request.authority(),
                         *out.mutable_destination_service());
  FillTraceContext(request.request_headers(), out);

  if (!request.request_headers().empty()) {
    std::vector<std::pair<std::string, const std::string*>> headers;
    headers.reserve(request.request_headers().size());
    for (const auto& [name, value] : request.request_headers()) {
      std::string lower = name;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      headers.emplace_back(std::move(lower), &value);
    }
    std::sort(headers.begin(), headers.end());
    for (auto& [name, value] : headers) {
      meshtel::v1::CapturedHeader& header = *out.add_captured_headers();
      header.set_name(std::move(name));
      header.set_value(*value);
    }
  }
  return true;
}

bool ConvertTcpEntry(const TCPAccessLogEntry& entry, const AlsNodeIdentity& node,
                     RequestRecord& out) {
  out.Clear();
  const AccessLogCommon& common = entry.common_properties();
  if (IsIntermediate(common)) return false;
  FillCommon(common, node, out);
  out.set_request_protocol(meshtel::v1::REQUEST_PROTOCOL_TCP);
  out.set_request_bytes(entry.connection_properties().received_bytes());
  out.set_response_bytes(entry.connection_properties().sent_bytes());
  std::string_view sni;
  if (common.has_tls_properties()) sni = common.tls_properties().tls_sni_hostname();
  FillDestinationService(common.upstream_cluster(), sni, *out.mutable_destination_service());
  return true;
}

AlsConversion ConvertAlsMessage(
    const envoy::service::accesslog::v3::StreamAccessLogsMessage& message,
    const AlsNodeIdentity& node, google::protobuf::RepeatedPtrField<RequestRecord>& out) {
  AlsConversion result;
  const auto convert = [&](const auto& entries, auto function) {
    for (const auto& entry : entries) {
      RequestRecord* record = out.Add();
      if (function(entry, node, *record)) {
        ++result.converted;
      } else {
        out.RemoveLast();
        ++result.skipped;
      }
    }
  };
  if (message.has_http_logs()) {
    convert(message.http_logs().log_entry(),
            [](const HTTPAccessLogEntry& entry, const AlsNodeIdentity& n, RequestRecord& r) {
              return ConvertHttpEntry(entry, n, r);
            });
  } else if (message.has_tcp_logs()) {
    convert(message.tcp_logs().log_entry(),
            [](const TCPAccessLogEntry& entry, const AlsNodeIdentity& n, RequestRecord& r) {
              return ConvertTcpEntry(entry, n, r);
            });
  }
  return result;
}

}  // namespace meshtel::collector
