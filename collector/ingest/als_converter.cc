#include "collector/ingest/als_converter.h"

// Tested by: tests/collector/ingest/als_converter_test.cc

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "collector/common/protobuf_wire.h"
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

// The string- and struct-valued fields of a decoded google.protobuf.Struct.
class DecodedStructFields {
 public:
  explicit DecodedStructFields(const Struct& fields) : fields_(fields) {}

  std::string_view String(std::string_view key) const {
    const auto it = fields_.fields().find(std::string(key));
    if (it == fields_.fields().end() || !it->second.has_string_value()) return {};
    return it->second.string_value();
  }
  std::optional<DecodedStructFields> StructAt(std::string_view key) const {
    const auto it = fields_.fields().find(std::string(key));
    if (it == fields_.fields().end() || !it->second.has_struct_value()) return std::nullopt;
    return DecodedStructFields(it->second.struct_value());
  }

 private:
  const Struct& fields_;
};

// The same, read from a serialized google.protobuf.Struct (fields = 1: entries of key = 1 and a
// google.protobuf.Value = 2, whose kind is one of null = 1, number = 2, string = 3, bool = 4,
// struct = 5, list = 6; ListValue: values = 1). Read() checks the whole Struct as protobuf's
// parser would and is false for bytes it does not vouch for (protobuf then decides): malformed
// or invalid UTF-8, a Value given a message member twice (merged by protobuf), nesting deeper
// than kMaxWalkDepth. A key given twice keeps its last value, as protobuf's map does.
class WireStructFields {
 public:
  bool Read(std::string_view bytes) {
    entries_.clear();
    key_lengths_ = 0;
    return ForEachStructEntry(bytes, 1, [&](const Entry& entry) {
      for (Entry& existing : entries_) {
        if (existing.key == entry.key) {
          existing = entry;
          return;
        }
      }
      entries_.push_back(entry);
      key_lengths_ |= LengthBit(entry.key);
    });
  }

  std::string_view String(std::string_view key) const {
    const Entry* entry = Find(key);
    return entry != nullptr && entry->kind == kStringKind ? entry->value : std::string_view();
  }
  // A nested struct's fields; its bytes were checked by Read().
  std::optional<WireStructFields> StructAt(std::string_view key) const {
    const Entry* entry = Find(key);
    if (entry == nullptr || entry->kind != kStructKind) return std::nullopt;
    WireStructFields nested;
    if (!nested.Read(entry->value)) return std::nullopt;
    return nested;
  }

 private:
  static constexpr uint32_t kFieldsField = 1;
  static constexpr uint32_t kEntryKey = 1;
  static constexpr uint32_t kEntryValue = 2;
  static constexpr uint32_t kNullKind = 1;
  static constexpr uint32_t kNumberKind = 2;
  static constexpr uint32_t kStringKind = 3;
  static constexpr uint32_t kBoolKind = 4;
  static constexpr uint32_t kStructKind = 5;
  static constexpr uint32_t kListKind = 6;
  static constexpr uint32_t kListValues = 1;
  // Message levels below the Struct a walk goes (protobuf allows 100; deeper is left to it).
  static constexpr int kMaxWalkDepth = 30;

  struct Entry {
    std::string_view key;
    uint32_t kind = 0;       // the Value's last member; 0 for none
    std::string_view value;  // a string's text, a struct's bytes
  };

  // A bit per key length (modulo 64): most keys looked up are absent, and most of those are
  // told so by their length.
  static uint64_t LengthBit(std::string_view key) { return uint64_t{1} << (key.size() & 63); }

  const Entry* Find(std::string_view key) const {
    if ((key_lengths_ & LengthBit(key)) == 0) return nullptr;
    for (const Entry& entry : entries_) {
      if (entry.key == key) return &entry;
    }
    return nullptr;
  }

  // Calls `take(entry)` for each entry of the Struct in `bytes`, `depth` levels below the
  // walk's start; false when the Struct is not vouched for.
  template <typename TakeEntry>
  static bool ForEachStructEntry(std::string_view bytes, int depth, TakeEntry&& take) {
    if (depth > kMaxWalkDepth) return false;
    return common::ForEachField(bytes, [&](common::WireReader& reader) {
      if (reader.field() != kFieldsField) return reader.Skip();
      std::string_view entry_bytes;
      Entry entry;
      if (!reader.ReadBytes(entry_bytes) || !ReadEntry(entry_bytes, depth + 1, entry)) {
        return false;
      }
      take(entry);
      return true;
    });
  }

  static bool ReadEntry(std::string_view bytes, int depth, Entry& entry) {
    bool value_seen = false;
    return common::ForEachField(bytes, [&](common::WireReader& reader) {
      switch (reader.field()) {
        case kEntryKey:
          return reader.ReadBytes(entry.key) && common::ValidUtf8(entry.key);
        case kEntryValue: {
          std::string_view value;
          if (value_seen || !reader.ReadBytes(value)) return false;
          value_seen = true;
          return ReadValue(value, depth + 1, entry.kind, entry.value);
        }
        default:
          return reader.Skip();
      }
    });
  }

  // A Value: its last member's field number (`kind`) and, for a string or struct, its bytes.
  static bool ReadValue(std::string_view bytes, int depth, uint32_t& kind,
                        std::string_view& value) {
    if (depth > kMaxWalkDepth) return false;
    bool message_member_seen = false;
    return common::ForEachField(bytes, [&](common::WireReader& reader) {
      const uint32_t field = reader.field();
      uint64_t ignored = 0;
      bool read = false;
      switch (field) {
        case kNullKind:
        case kBoolKind:
          read = reader.ReadVarintValue(ignored);
          value = {};
          break;
        case kNumberKind:
          read = reader.ReadFixed64(ignored);
          value = {};
          break;
        case kStringKind:
          read = reader.ReadBytes(value) && common::ValidUtf8(value);
          break;
        case kStructKind:
        case kListKind:
          if (message_member_seen || !reader.ReadBytes(value)) return false;
          message_member_seen = true;
          read = field == kStructKind ? ForEachStructEntry(value, depth + 1, [](const Entry&) {})
                                      : ValidList(value, depth + 1);
          break;
        default:
          return reader.Skip();
      }
      kind = field;
      return read;
    });
  }

  static bool ValidList(std::string_view bytes, int depth) {
    if (depth > kMaxWalkDepth) return false;
    return common::ForEachField(bytes, [&](common::WireReader& reader) {
      if (reader.field() != kListValues) return reader.Skip();
      std::string_view value_bytes;
      uint32_t kind = 0;
      std::string_view value;
      return reader.ReadBytes(value_bytes) && ReadValue(value_bytes, depth + 1, kind, value);
    });
  }

  absl::InlinedVector<Entry, 16> entries_;
  uint64_t key_lengths_ = 0;  // LengthBit of every key in entries_
};

void SetIfEmpty(std::string* field, std::string_view value) {
  if (field->empty() && !value.empty()) field->assign(value);
}

// app, version and the canonical labels from a LABELS / labels struct.
template <typename Fields>
void ReadLabels(const Fields& labels, WorkloadIdentity& identity) {
  SetIfEmpty(identity.mutable_app(), labels.String("app"));
  SetIfEmpty(identity.mutable_app(), labels.String("app.kubernetes.io/name"));
  SetIfEmpty(identity.mutable_version(), labels.String("version"));
  SetIfEmpty(identity.mutable_version(), labels.String("app.kubernetes.io/version"));
  SetIfEmpty(identity.mutable_canonical_service(), labels.String(kCanonicalName));
  SetIfEmpty(identity.mutable_canonical_revision(), labels.String(kCanonicalRevision));
}

// Istio node metadata (NAME, NAMESPACE, WORKLOAD_NAME, CLUSTER_ID, LABELS, ...).
template <typename Fields>
void ReadNodeMetadata(const Fields& metadata, WorkloadIdentity& identity) {
  SetIfEmpty(identity.mutable_workload(), metadata.String("WORKLOAD_NAME"));
  SetIfEmpty(identity.mutable_workload(), metadata.String("NAME"));
  SetIfEmpty(identity.mutable_namespace_(), metadata.String("NAMESPACE"));
  SetIfEmpty(identity.mutable_cluster(), metadata.String("CLUSTER_ID"));
  if (const auto labels = metadata.StructAt("LABELS")) ReadLabels(*labels, identity);
}

// Istio's peer-metadata object keys (workload, namespace, cluster, service, revision, app,
// version, identity, labels).
template <typename Fields>
void ReadPeerObject(const Fields& object, WorkloadIdentity& identity) {
  SetIfEmpty(identity.mutable_workload(), object.String("workload"));
  SetIfEmpty(identity.mutable_namespace_(), object.String("namespace"));
  SetIfEmpty(identity.mutable_cluster(), object.String("cluster"));
  SetIfEmpty(identity.mutable_canonical_service(), object.String("service"));
  SetIfEmpty(identity.mutable_canonical_revision(), object.String("revision"));
  SetIfEmpty(identity.mutable_app(), object.String("app"));
  SetIfEmpty(identity.mutable_version(), object.String("version"));
  SetIfEmpty(identity.mutable_principal(), object.String("identity"));
  if (const auto labels = object.StructAt("labels")) ReadLabels(*labels, identity);
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
  ReadPeerObject(DecodedStructFields(object), identity);
}

bool HasTypeSuffix(std::string_view type_url, std::string_view name) {
  return type_url.size() > name.size() && type_url.ends_with(name) &&
         type_url[type_url.size() - name.size() - 1] == '/';
}

// The peer identity an Any holds, when it is in a form Istio sends.
void DecodePeer(std::string_view type_url, std::string_view value, WorkloadIdentity& identity) {
  if (HasTypeSuffix(type_url, "google.protobuf.Struct")) {
    Struct object;
    if (!object.ParseFromArray(value.data(), static_cast<int>(value.size()))) return;
    ReadPeerObject(DecodedStructFields(object), identity);
    ReadNodeMetadata(DecodedStructFields(object), identity);
  } else if (HasTypeSuffix(type_url, "google.protobuf.StringValue")) {
    google::protobuf::StringValue text;
    if (text.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      ReadPeerPairs(text.value(), identity);
    }
  } else if (HasTypeSuffix(type_url, "google.protobuf.BytesValue")) {
    google::protobuf::BytesValue bytes;
    if (bytes.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      ReadPeerPairs(bytes.value(), identity);
    }
  }
}

// The peer identity of a filter state object (into an empty `identity`).
// - A Struct (Istio's own peer object) is read from its wire format on every entry: its map's
//   order varies from one serialization to the next, so its bytes repeat too rarely to be a key.
// - The other forms are decoded by protobuf and kept per thread (each stream has its own
//   thread), keyed by type and bytes, up to kPeerCacheSize of them: a sidecar talks to few peers.
constexpr size_t kPeerCacheSize = 256;

}  // namespace

void ReadPeerIdentity(const AlsAnyView& any, WorkloadIdentity& identity) {
  if (!any.present) return;
  if (HasTypeSuffix(any.type_url, "google.protobuf.Struct")) {
    thread_local WireStructFields object;
    if (object.Read(any.value)) {
      ReadPeerObject(object, identity);
      ReadNodeMetadata(object, identity);
      return;
    }
    DecodePeer(any.type_url, any.value, identity);
    return;
  }
  thread_local absl::flat_hash_map<std::string, WorkloadIdentity> cache;
  thread_local std::string cache_key;
  cache_key.assign(any.type_url);
  cache_key.push_back('\0');
  cache_key.append(any.value);
  const auto cached = cache.find(cache_key);
  if (cached != cache.end()) {
    identity = cached->second;
    return;
  }
  DecodePeer(any.type_url, any.value, identity);
  if (cache.size() >= kPeerCacheSize) cache.clear();
  cache.emplace(cache_key, identity);
}

void DecodePeerIdentity(std::string_view type_url, std::string_view value,
                        WorkloadIdentity& identity) {
  DecodePeer(type_url, value, identity);
}

namespace {

uint64_t DurationNs(const AlsDurationView& duration) {
  if (duration.seconds < 0 || duration.nanos < 0) return 0;
  return static_cast<uint64_t>(duration.seconds) * 1'000'000'000ull +
         static_cast<uint64_t>(duration.nanos);
}

AlsDurationView DurationView(const google::protobuf::Duration& duration) {
  return {duration.seconds(), duration.nanos()};
}

// Writes an address as the records show it ("ip:port", "[v6]:port", a pipe's path,
// "envoy://listener/endpoint"); nothing for no address.
void SetAddressText(const AlsAddressView& address, std::string* out) {
  switch (address.kind) {
    case AlsAddressView::Kind::kSocket: {
      const bool v6 = address.address.find(':') != std::string_view::npos;
      out->clear();
      if (v6) out->push_back('[');
      out->append(address.address);
      out->append(v6 ? "]:" : ":");
      if (address.has_named_port) {
        out->append(address.named_port);
      } else {
        char digits[16];
        const auto end = std::to_chars(digits, digits + sizeof(digits), address.port_value).ptr;
        out->append(digits, end);
      }
      return;
    }
    case AlsAddressView::Kind::kPipe:
      out->assign(address.address);
      return;
    case AlsAddressView::Kind::kEnvoyInternal:
      out->assign("envoy://");
      out->append(address.address);
      out->push_back('/');
      out->append(address.named_port);
      return;
    case AlsAddressView::Kind::kNone:
      return;
  }
}

AlsAddressView AddressView(const envoy::config::core::v3::Address& address) {
  AlsAddressView view;
  if (address.has_socket_address()) {
    const auto& socket = address.socket_address();
    view.kind = AlsAddressView::Kind::kSocket;
    view.address = socket.address();
    view.has_named_port = socket.has_named_port();
    view.named_port = socket.named_port();
    view.port_value = socket.port_value();
  } else if (address.has_pipe()) {
    view.kind = AlsAddressView::Kind::kPipe;
    view.address = address.pipe().path();
  } else if (address.has_envoy_internal_address()) {
    view.kind = AlsAddressView::Kind::kEnvoyInternal;
    view.address = address.envoy_internal_address().server_listener_name();
    view.named_port = address.envoy_internal_address().endpoint_id();
  }
  return view;
}

// ResponseFlags' bool fields in field order (1-28; 13 is unauthorized_details).
constexpr std::array<int, 29> kResponseFlagByField = {
    -1,
    meshtel::v1::RESPONSE_FLAG_FAILED_LOCAL_HEALTHCHECK,
    meshtel::v1::RESPONSE_FLAG_NO_HEALTHY_UPSTREAM,
    meshtel::v1::RESPONSE_FLAG_UPSTREAM_REQUEST_TIMEOUT,
    meshtel::v1::RESPONSE_FLAG_LOCAL_RESET,
    meshtel::v1::RESPONSE_FLAG_UPSTREAM_REMOTE_RESET,
    meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_FAILURE,
    meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_TERMINATION,
    meshtel::v1::RESPONSE_FLAG_UPSTREAM_OVERFLOW,
    meshtel::v1::RESPONSE_FLAG_NO_ROUTE_FOUND,
    meshtel::v1::RESPONSE_FLAG_DELAY_INJECTED,
    meshtel::v1::RESPONSE_FLAG_FAULT_INJECTED,
    meshtel::v1::RESPONSE_FLAG_RATE_LIMITED,
    -1,  // unauthorized_details: ResponseFlagOfUnauthorizedReason
    meshtel::v1::RESPONSE_FLAG_RATE_LIMIT_SERVICE_ERROR,
    meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_CONNECTION_TERMINATION,
    meshtel::v1::RESPONSE_FLAG_UPSTREAM_RETRY_LIMIT_EXCEEDED,
    meshtel::v1::RESPONSE_FLAG_STREAM_IDLE_TIMEOUT,
    meshtel::v1::RESPONSE_FLAG_INVALID_ENVOY_REQUEST_HEADERS,
    meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_PROTOCOL_ERROR,
    meshtel::v1::RESPONSE_FLAG_UPSTREAM_MAX_STREAM_DURATION_REACHED,
    meshtel::v1::RESPONSE_FLAG_RESPONSE_FROM_CACHE_FILTER,
    meshtel::v1::RESPONSE_FLAG_NO_FILTER_CONFIG_FOUND,
    meshtel::v1::RESPONSE_FLAG_DURATION_TIMEOUT,
    meshtel::v1::RESPONSE_FLAG_UPSTREAM_PROTOCOL_ERROR,
    meshtel::v1::RESPONSE_FLAG_NO_CLUSTER_FOUND,
    meshtel::v1::RESPONSE_FLAG_OVERLOAD_MANAGER,
    meshtel::v1::RESPONSE_FLAG_DNS_RESOLUTION_FAILURE,
    meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_REMOTE_RESET,
};

uint64_t ResponseFlagBits(const envoy::data::accesslog::v3::ResponseFlags& flags) {
  // In kResponseFlagByField's order.
  const std::array<bool, 29> on = {
      false,
      flags.failed_local_healthcheck(),
      flags.no_healthy_upstream(),
      flags.upstream_request_timeout(),
      flags.local_reset(),
      flags.upstream_remote_reset(),
      flags.upstream_connection_failure(),
      flags.upstream_connection_termination(),
      flags.upstream_overflow(),
      flags.no_route_found(),
      flags.delay_injected(),
      flags.fault_injected(),
      flags.rate_limited(),
      false,
      flags.rate_limit_service_error(),
      flags.downstream_connection_termination(),
      flags.upstream_retry_limit_exceeded(),
      flags.stream_idle_timeout(),
      flags.invalid_envoy_request_headers(),
      flags.downstream_protocol_error(),
      flags.upstream_max_stream_duration_reached(),
      flags.response_from_cache_filter(),
      flags.no_filter_config_found(),
      flags.duration_timeout(),
      flags.upstream_protocol_error(),
      flags.no_cluster_found(),
      flags.overload_manager(),
      flags.dns_resolution_failure(),
      flags.downstream_remote_reset(),
  };
  uint64_t set = 0;
  for (size_t field = 1; field < on.size(); ++field) {
    if (on[field]) set |= uint64_t{1} << kResponseFlagByField[field];
  }
  const int unauthorized = ResponseFlagOfUnauthorizedReason(flags.unauthorized_details().reason());
  if (unauthorized >= 0) set |= uint64_t{1} << unauthorized;
  return set;
}

bool IsIntermediate(const AlsCommonView& common) {
  switch (common.access_log_type) {
    case envoy::data::accesslog::v3::NotSet:
      // Senders before access_log_type marked intermediate entries with the deprecated flag.
      return common.intermediate_log_entry;
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
    service.mutable_host()->assign(authority.empty() ? cluster : HostOf(authority));
    service.mutable_name()->assign(cluster);
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
  service.mutable_host()->assign(host);
  const size_t dot = host.find('.');
  if (dot == std::string_view::npos) {
    service.mutable_name()->assign(host);
    return;
  }
  service.mutable_name()->assign(host.substr(0, dot));
  const std::string_view after = host.substr(dot + 1);
  service.mutable_namespace_()->assign(after.substr(0, after.find('.')));
}

std::string_view FirstUriSan(
    const envoy::data::accesslog::v3::TLSProperties::CertificateProperties& certificate) {
  for (const auto& san : certificate.subject_alt_name()) {
    if (san.has_uri() && !san.uri().empty()) return san.uri();
  }
  return {};
}

// The AccessLogCommon fields the conversion reads, as views into `common`.
void ReadCommonView(const AccessLogCommon& common, AlsCommonView& view) {
  view.has_start_time = common.has_start_time();
  view.start_seconds = common.start_time().seconds();
  view.start_nanos = common.start_time().nanos();
  view.duration = DurationView(common.duration());
  view.time_to_first_upstream_tx_byte = DurationView(common.time_to_first_upstream_tx_byte());
  view.time_to_last_upstream_tx_byte = DurationView(common.time_to_last_upstream_tx_byte());
  view.time_to_first_upstream_rx_byte = DurationView(common.time_to_first_upstream_rx_byte());
  view.time_to_last_upstream_rx_byte = DurationView(common.time_to_last_upstream_rx_byte());
  view.time_to_last_downstream_tx_byte = DurationView(common.time_to_last_downstream_tx_byte());
  view.upstream_cluster = common.upstream_cluster();
  view.route_name = common.route_name();
  view.downstream_remote_address = AddressView(common.downstream_remote_address());
  view.downstream_local_address = AddressView(common.downstream_local_address());
  view.upstream_remote_address = AddressView(common.upstream_remote_address());
  view.upstream_local_address = AddressView(common.upstream_local_address());
  view.has_tls_properties = common.has_tls_properties();
  view.tls_sni_hostname = common.tls_properties().tls_sni_hostname();
  view.peer_uri_san = FirstUriSan(common.tls_properties().peer_certificate_properties());
  view.local_uri_san = FirstUriSan(common.tls_properties().local_certificate_properties());
  view.response_flag_bits = ResponseFlagBits(common.response_flags());
  const auto peer = [&](const std::string& key, AlsAnyView& any) {
    const auto it = common.filter_state_objects().find(key);
    any.present = it != common.filter_state_objects().end();
    if (!any.present) return;
    any.type_url = it->second.type_url();
    any.value = it->second.value();
  };
  peer("downstream_peer", view.downstream_peer);
  peer("upstream_peer", view.upstream_peer);
  view.downstream_wire_bytes_sent = common.downstream_wire_bytes_sent();
  view.downstream_wire_bytes_received = common.downstream_wire_bytes_received();
  view.access_log_type = common.access_log_type();
  view.intermediate_log_entry = common.intermediate_log_entry();
}

// Fills reporter, the two workloads, principals, addresses and the other fields HTTP and TCP
// entries share.
void FillCommon(const AlsCommonView& common, const AlsNodeIdentity& node, RequestRecord& out) {
  if (common.has_start_time && common.start_seconds > 0 && common.start_nanos >= 0) {
    out.set_start_time_unix_nano(static_cast<uint64_t>(common.start_seconds) * 1'000'000'000ull +
                                 static_cast<uint64_t>(common.start_nanos));
  }
  uint64_t duration = DurationNs(common.duration);
  if (duration == 0) duration = DurationNs(common.time_to_last_downstream_tx_byte);
  out.set_duration_ns(duration);
  meshtel::v1::PhaseTimings& phases = *out.mutable_phases();
  phases.set_upstream_headers_sent_ns(DurationNs(common.time_to_first_upstream_tx_byte));
  phases.set_upstream_request_done_ns(DurationNs(common.time_to_last_upstream_tx_byte));
  phases.set_upstream_first_byte_ns(DurationNs(common.time_to_first_upstream_rx_byte));
  phases.set_upstream_last_byte_ns(DurationNs(common.time_to_last_upstream_rx_byte));
  phases.set_downstream_last_byte_ns(DurationNs(common.time_to_last_downstream_tx_byte));

  const bool server = IsServerSide(common.upstream_cluster);
  out.set_reporter(server ? meshtel::v1::REPORTER_DESTINATION : meshtel::v1::REPORTER_SOURCE);
  WorkloadIdentity& self = server ? *out.mutable_destination() : *out.mutable_source();
  WorkloadIdentity& peer = server ? *out.mutable_source() : *out.mutable_destination();
  self = node.workload;
  ReadPeerIdentity(server ? common.downstream_peer : common.upstream_peer, peer);
  if (server && common.has_tls_properties) {
    if (!common.peer_uri_san.empty()) peer.mutable_principal()->assign(common.peer_uri_san);
    if (!common.local_uri_san.empty()) self.mutable_principal()->assign(common.local_uri_san);
    out.set_mutual_tls(!common.peer_uri_san.empty() && !common.local_uri_san.empty());
  }

  out.set_response_flags(common.response_flag_bits);
  SetAddressText(common.upstream_remote_address, out.mutable_upstream_host());
  out.mutable_upstream_cluster()->assign(common.upstream_cluster);
  SetAddressText(common.downstream_remote_address, out.mutable_downstream_remote_address());
  SetAddressText(common.downstream_local_address, out.mutable_downstream_local_address());
  SetAddressText(common.upstream_local_address, out.mutable_upstream_local_address());
  out.mutable_route_name()->assign(common.route_name);
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

// Header names are ASCII (RFC 9110); other bytes are left as they are.
char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool SameNameIgnoringCase(std::string_view logged, std::string_view lower_name) {
  if (logged.size() != lower_name.size()) return false;
  for (size_t i = 0; i < logged.size(); ++i) {
    if (AsciiLower(logged[i]) != lower_name[i]) {
      return false;
    }
  }
  return true;
}

// A logged header (`name` in lower case). Envoy logs the names as configured: an exact match
// first, else the case-insensitive match whose logged name sorts first (so the answer does not
// depend on the order of the map).
std::optional<std::string_view> Header(const AlsHeaderViews& headers, std::string_view name) {
  const std::pair<std::string_view, std::string_view>* best = nullptr;
  for (const auto& header : headers) {
    if (header.first == name) return header.second;
    if (SameNameIgnoringCase(header.first, name) &&
        (best == nullptr || header.first < best->first)) {
      best = &header;
    }
  }
  if (best == nullptr) return std::nullopt;
  return best->second;
}

void ReadHeaderViews(const google::protobuf::Map<std::string, std::string>& map,
                     AlsHeaderViews& out) {
  out.clear();
  for (const auto& [name, value] : map) out.emplace_back(name, value);
}

// Each byte's value as a hex digit, -1 for a byte that is not one.
constexpr std::array<int8_t, 256> kHexDigits = [] {
  std::array<int8_t, 256> digits{};
  for (int c = 0; c < 256; ++c) {
    digits[static_cast<size_t>(c)] = c >= '0' && c <= '9'   ? static_cast<int8_t>(c - '0')
                                     : c >= 'a' && c <= 'f' ? static_cast<int8_t>(c - 'a' + 10)
                                     : c >= 'A' && c <= 'F' ? static_cast<int8_t>(c - 'A' + 10)
                                                            : int8_t{-1};
  }
  return digits;
}();

int HexValue(char c) { return kHexDigits[static_cast<unsigned char>(c)]; }

// Hex → `size` bytes at `out`, left-padded with zero bytes; false when not hex, too long or zero.
bool HexId(std::string_view hex, size_t size, bool lower_case_only, char* out) {
  if (hex.empty() || hex.size() % 2 != 0 || hex.size() > size * 2) return false;
  const size_t padding = size - hex.size() / 2;
  std::memset(out, 0, padding);
  bool nonzero = false;
  for (size_t i = 0; i < hex.size(); i += 2) {
    if (lower_case_only &&
        ((hex[i] >= 'A' && hex[i] <= 'Z') || (hex[i + 1] >= 'A' && hex[i + 1] <= 'Z'))) {
      return false;
    }
    const int high = HexValue(hex[i]);
    const int low = HexValue(hex[i + 1]);
    if (high < 0 || low < 0) return false;
    const char byte = static_cast<char>(high * 16 + low);
    nonzero |= byte != 0;
    out[padding + i / 2] = byte;
  }
  return nonzero;
}

struct LoggedContext {
  std::array<char, 16> trace_id;
  std::array<char, 8> span_id;  // the caller's span
  bool sampled = false;

  // Reads the two ids; false when either is not a valid id.
  bool ReadIds(std::string_view trace_hex, std::string_view span_hex, bool lower_case_only) {
    return HexId(trace_hex, trace_id.size(), lower_case_only, trace_id.data()) &&
           HexId(span_hex, span_id.size(), lower_case_only, span_id.data());
  }
  std::string_view trace() const { return {trace_id.data(), trace_id.size()}; }
  std::string_view span() const { return {span_id.data(), span_id.size()}; }
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
  LoggedContext context;
  const int flags_high = HexValue(value[53]);
  const int flags_low = HexValue(value[54]);
  if (!context.ReadIds(value.substr(3, 32), value.substr(36, 16), true) || flags_high < 0 ||
      flags_low < 0) {
    return std::nullopt;
  }
  context.sampled = (flags_low & 1) != 0;
  return context;
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
  LoggedContext context;
  if (!context.ReadIds(value.substr(0, first), rest.substr(0, second), true) ||
      (first != 16 && first != 32) || rest.substr(0, second).size() != 16) {
    return std::nullopt;
  }
  if (second != std::string_view::npos) {
    const std::string_view sampled =
        rest.substr(second + 1, rest.find('-', second + 1) - second - 1);
    context.sampled = B3Sampled(sampled).value_or(false);
  }
  return context;
}

std::optional<LoggedContext> FromB3Multi(const AlsHeaderViews& map) {
  const auto trace_hex = Header(map, "x-b3-traceid");
  const auto span_hex = Header(map, "x-b3-spanid");
  if (!trace_hex || !span_hex) return std::nullopt;
  if ((trace_hex->size() != 16 && trace_hex->size() != 32) || span_hex->size() != 16) {
    return std::nullopt;
  }
  LoggedContext context;
  if (!context.ReadIds(*trace_hex, *span_hex, false)) return std::nullopt;
  if (const auto flags = Header(map, "x-b3-flags"); flags && *flags == "1") {
    context.sampled = true;
  } else if (const auto sampled = Header(map, "x-b3-sampled")) {
    context.sampled = B3Sampled(*sampled).value_or(false);
  }
  return context;
}

// FNV-1a over the pieces; 8 bytes big-endian, never zero, into `id`.
void SetDerivedSpanId(std::initializer_list<std::string_view> pieces, std::string* id) {
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
  id->resize(8);
  for (int i = 7; i >= 0; --i) {
    (*id)[static_cast<size_t>(i)] = static_cast<char>(hash & 0xff);
    hash >>= 8;
  }
}

void FillTraceContext(const AlsHeaderViews& headers, RequestRecord& out) {
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
  char start[24];
  const char* start_end =
      std::to_chars(start, start + sizeof(start), out.start_time_unix_nano()).ptr;
  SetDerivedSpanId({context->trace(), context->span(),
                    out.reporter() == meshtel::v1::REPORTER_SOURCE ? "s" : "d", out.request_id(),
                    std::string_view(start, static_cast<size_t>(start_end - start))},
                   out.mutable_span_id());
  out.mutable_trace_id()->assign(context->trace());
  out.mutable_parent_span_id()->assign(context->span());
  out.set_sampled(context->sampled);
}

std::optional<uint32_t> GrpcStatus(const AlsHttpEntryView& entry) {
  auto status = Header(entry.response_trailers, "grpc-status");
  if (!status) status = Header(entry.response_headers, "grpc-status");
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
  ReadNodeMetadata(DecodedStructFields(identifier.node().metadata()), node.workload);
  return node;
}

int ResponseFlagOfField(uint32_t field) {
  return field < kResponseFlagByField.size() ? kResponseFlagByField[field] : -1;
}

int ResponseFlagOfUnauthorizedReason(int32_t reason) {
  return reason == envoy::data::accesslog::v3::ResponseFlags::Unauthorized::EXTERNAL_SERVICE
             ? meshtel::v1::RESPONSE_FLAG_UNAUTHORIZED_EXTERNAL_SERVICE
             : -1;
}

void AlsHttpEntryView::Clear() {
  AlsHeaderViews request = std::move(request_headers);
  AlsHeaderViews response = std::move(response_headers);
  AlsHeaderViews trailers = std::move(response_trailers);
  *this = AlsHttpEntryView();
  request.clear();
  response.clear();
  trailers.clear();
  request_headers = std::move(request);
  response_headers = std::move(response);
  response_trailers = std::move(trailers);
}

void ReadHttpEntryView(const HTTPAccessLogEntry& entry, AlsHttpEntryView& view) {
  ReadCommonView(entry.common_properties(), view.common);
  view.protocol_version = entry.protocol_version();
  const auto& request = entry.request();
  view.request_method = request.request_method();
  view.scheme = request.scheme();
  view.authority = request.authority();
  view.path = request.path();
  view.original_path = request.original_path();
  view.user_agent = request.user_agent();
  view.forwarded_for = request.forwarded_for();
  view.request_id = request.request_id();
  view.request_headers_bytes = request.request_headers_bytes();
  view.request_body_bytes = request.request_body_bytes();
  ReadHeaderViews(request.request_headers(), view.request_headers);
  const auto& response = entry.response();
  view.has_response_code = response.has_response_code();
  view.response_code = response.response_code().value();
  view.response_headers_bytes = response.response_headers_bytes();
  view.response_body_bytes = response.response_body_bytes();
  view.response_code_details = response.response_code_details();
  ReadHeaderViews(response.response_headers(), view.response_headers);
  ReadHeaderViews(response.response_trailers(), view.response_trailers);
}

void ResetRecordForConversion(RequestRecord& record) {
  meshtel::v1::PhaseTimings* phases = record.has_phases() ? record.release_phases() : nullptr;
  WorkloadIdentity* source = record.has_source() ? record.release_source() : nullptr;
  WorkloadIdentity* destination = record.has_destination() ? record.release_destination() : nullptr;
  meshtel::v1::ServiceIdentity* service =
      record.has_destination_service() ? record.release_destination_service() : nullptr;
  record.Clear();
  if (phases != nullptr) {
    phases->Clear();
    record.set_allocated_phases(phases);
  }
  if (source != nullptr) {
    source->Clear();
    record.set_allocated_source(source);
  }
  if (destination != nullptr) {
    destination->Clear();
    record.set_allocated_destination(destination);
  }
  if (service != nullptr) {
    service->Clear();
    record.set_allocated_destination_service(service);
  }
}

bool ConvertHttpEntryView(const AlsHttpEntryView& view, const AlsNodeIdentity& node,
                          RequestRecord& out) {
  const AlsCommonView& common = view.common;
  if (IsIntermediate(common)) return false;
  FillCommon(common, node, out);

  std::string_view method =
      MethodName(static_cast<envoy::config::core::v3::RequestMethod>(view.request_method));
  if (method.empty()) method = Header(view.request_headers, ":method").value_or("");
  out.mutable_method()->assign(method);
  out.mutable_scheme()->assign(view.scheme);
  out.mutable_authority()->assign(view.authority);
  out.mutable_path()->assign(view.original_path.empty() ? view.path : view.original_path);
  out.mutable_protocol()->assign(
      ProtocolName(static_cast<HTTPAccessLogEntry::HTTPVersion>(view.protocol_version)));
  out.mutable_user_agent()->assign(view.user_agent);
  out.mutable_forwarded_for()->assign(view.forwarded_for);
  out.mutable_request_id()->assign(view.request_id);

  out.set_response_code(view.has_response_code ? view.response_code : 0);
  out.mutable_response_code_details()->assign(view.response_code_details);
  const std::optional<uint32_t> grpc_status = GrpcStatus(view);
  const bool grpc =
      Header(view.request_headers, "content-type").value_or("").starts_with("application/grpc") ||
      grpc_status.has_value();
  out.set_request_protocol(grpc ? meshtel::v1::REQUEST_PROTOCOL_GRPC
                                : meshtel::v1::REQUEST_PROTOCOL_HTTP);
  if (grpc && grpc_status) out.set_grpc_status(*grpc_status);

  out.set_request_bytes(common.downstream_wire_bytes_received != 0
                            ? common.downstream_wire_bytes_received
                            : view.request_headers_bytes + view.request_body_bytes);
  out.set_response_bytes(common.downstream_wire_bytes_sent != 0
                             ? common.downstream_wire_bytes_sent
                             : view.response_headers_bytes + view.response_body_bytes);

  FillDestinationService(common.upstream_cluster, view.authority,
                         *out.mutable_destination_service());
  FillTraceContext(view.request_headers, out);

  if (!view.request_headers.empty()) {
    // Lower-case names, sorted (ties, names differing only in case, by the logged name).
    thread_local std::vector<std::pair<std::string, size_t>> headers;
    headers.resize(view.request_headers.size());
    for (size_t i = 0; i < view.request_headers.size(); ++i) {
      std::string& lower = headers[i].first;
      lower.assign(view.request_headers[i].first);
      for (char& c : lower) c = AsciiLower(c);
      headers[i].second = i;
    }
    std::sort(headers.begin(), headers.end(), [&](const auto& a, const auto& b) {
      if (a.first != b.first) return a.first < b.first;
      return view.request_headers[a.second].first < view.request_headers[b.second].first;
    });
    out.mutable_captured_headers()->Reserve(static_cast<int>(headers.size()));
    for (const auto& [name, index] : headers) {
      meshtel::v1::CapturedHeader& header = *out.add_captured_headers();
      header.mutable_name()->assign(name);
      header.mutable_value()->assign(view.request_headers[index].second);
    }
  }
  return true;
}

bool ConvertHttpEntry(const HTTPAccessLogEntry& entry, const AlsNodeIdentity& node,
                      RequestRecord& out) {
  thread_local AlsHttpEntryView view;
  view.Clear();
  ReadHttpEntryView(entry, view);
  out.Clear();
  return ConvertHttpEntryView(view, node, out);
}

bool ConvertTcpEntry(const TCPAccessLogEntry& entry, const AlsNodeIdentity& node,
                     RequestRecord& out) {
  out.Clear();
  AlsCommonView common;
  ReadCommonView(entry.common_properties(), common);
  if (IsIntermediate(common)) return false;
  FillCommon(common, node, out);
  out.set_request_protocol(meshtel::v1::REQUEST_PROTOCOL_TCP);
  out.set_request_bytes(entry.connection_properties().received_bytes());
  out.set_response_bytes(entry.connection_properties().sent_bytes());
  FillDestinationService(common.upstream_cluster,
                         common.has_tls_properties ? common.tls_sni_hostname : std::string_view(),
                         *out.mutable_destination_service());
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
