#pragma once
// Envoy gRPC Access Log Service v3 entries → meshtel.v1.RequestRecord, the same records a
// meshtel-proxy reports, so ALS traffic shows up in the Istio metrics, the trace pipeline and the
// access logs exactly like proxy traffic (wire-facts §1, §8).
//
// Identity (Istio's conventions):
// - The reporting workload comes from the stream's Identifier node (AlsNodeIdentity::FromNode):
//   Istio node metadata NAME, NAMESPACE, WORKLOAD_NAME (else NAME), CLUSTER_ID, MESH_ID and
//   LABELS {app, version, service.istio.io/canonical-name, service.istio.io/canonical-revision}
//   (app.kubernetes.io/name and app.kubernetes.io/version as fallbacks for app and version).
// - The reporter follows the direction of upstream_cluster: "inbound|..." and
//   "InboundPassthroughCluster*" are the server side (reporter=destination, the node is the
//   destination); everything else ("outbound|...", PassthroughCluster, BlackHoleCluster, ...) is
//   the client side (reporter=source, the node is the source).
// - The peer comes from filter_state_objects: downstream_peer on the server side, upstream_peer
//   on the client side. Accepted encodings (what Istio's sidecars send): a packed
//   google.protobuf.Struct with the peer-metadata keys (workload, namespace, cluster, service,
//   revision, app, version, identity, labels{...}) or with node-metadata keys (WORKLOAD_NAME,
//   NAME, NAMESPACE, CLUSTER_ID, LABELS{...}); a packed google.protobuf.StringValue or
//   BytesValue in the "key=value,key=value" form of the same peer-metadata keys. Anything else,
//   or no object, leaves the peer empty: its labels read `unknown`, as Istio's do.
// - Principals come from the TLS properties on the server side (peer and local certificate URI
//   SANs; mutual_tls when both are present); a peer object's `identity` fills the peer principal
//   when the certificate does not.
// - destination_service: the host of an "outbound|port|subset|host" cluster; else the
//   :authority without its port; PassthroughCluster / BlackHoleCluster /
//   InboundPassthroughCluster* name themselves (destination_service_name).
//
// Other fields: method enum → name; HTTPVersion → "HTTP/1.0" ... "HTTP/3"; gRPC when the logged
// request content-type is application/grpc* or a grpc-status was logged (trailers or headers),
// grpc_status from it; sizes are the downstream wire bytes (as Istio), else headers + body bytes;
// durations map to duration_ns (common.duration, else time_to_last_downstream_tx_byte) and the
// upstream/downstream phases; ResponseFlags booleans → the ResponseFlag bit set; logged request
// headers become captured_headers (lower-case names, sorted), so metric overrides that read
// request.headers[...] work.
//
// Trace context: from logged request headers traceparent, else b3, else x-b3-traceid/-spanid
// (/-sampled/-flags), when the sender logs them (Istio: additionalRequestHeadersToLog). The
// logged span is taken as the caller's: the record gets the same trace id, that span as its
// parent, and a span id of its own derived from (trace id, parent, reporter, request id,
// start time), so converting the same entry twice gives the same span.
//
// TCP entries become records with request_protocol TCP, request_bytes = received_bytes and
// response_bytes = sent_bytes. Intermediate entries (access_log_type TcpUpstreamConnected,
// TcpPeriodic, TcpConnectionStart, DownstreamStart, DownstreamPeriodic, UpstreamPoolReady,
// UpstreamPeriodic, DownstreamTunnelSuccessfullyEstablished, Udp*, or the deprecated
// intermediate_log_entry) are skipped: a final entry repeats their cumulative numbers.
//
// The conversion reads an entry through a view (AlsHttpEntryView: the fields it uses, as string
// views and numbers), filled either from a decoded message (ReadHttpEntryView) or straight from
// the entry's wire format (als_message_decoder.h), so both give the same records.
//
// Pure functions (a decoded peer object is remembered per thread, up to 256, keyed by its bytes:
// a sidecar talks to few peers); safe from any thread. A view points into the message or bytes
// it was read from, which must outlive its use.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "envoy/service/accesslog/v3/als.pb.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "meshtel/v1/record.pb.h"

namespace meshtel::collector {

// What a stream's Identifier says about the Envoy that writes it.
struct AlsNodeIdentity {
  meshtel::v1::WorkloadIdentity workload;
  std::string node_id;
  std::string log_name;

  static AlsNodeIdentity FromIdentifier(
      const envoy::service::accesslog::v3::StreamAccessLogsMessage::Identifier& identifier);
};

// envoy.config.core.v3.Address, as far as the records use it.
struct AlsAddressView {
  enum class Kind : uint8_t { kNone, kSocket, kPipe, kEnvoyInternal };
  Kind kind = Kind::kNone;
  std::string_view address;     // socket address, or pipe path, or server_listener_name
  std::string_view named_port;  // or endpoint_id
  bool has_named_port = false;
  uint32_t port_value = 0;
};

struct AlsDurationView {
  int64_t seconds = 0;
  int32_t nanos = 0;
};

// A google.protobuf.Any in filter_state_objects.
struct AlsAnyView {
  bool present = false;
  std::string_view type_url;
  std::string_view value;
};

// A logged header map (request headers, response headers, trailers): names as logged, at most
// one entry per name.
using AlsHeaderViews = std::vector<std::pair<std::string_view, std::string_view>>;

// The AccessLogCommon fields the conversion reads.
struct AlsCommonView {
  bool has_start_time = false;
  int64_t start_seconds = 0;
  int32_t start_nanos = 0;
  AlsDurationView duration;
  AlsDurationView time_to_first_upstream_tx_byte;
  AlsDurationView time_to_last_upstream_tx_byte;
  AlsDurationView time_to_first_upstream_rx_byte;
  AlsDurationView time_to_last_upstream_rx_byte;
  AlsDurationView time_to_last_downstream_tx_byte;
  std::string_view upstream_cluster;
  std::string_view route_name;
  AlsAddressView downstream_remote_address;
  AlsAddressView downstream_local_address;
  AlsAddressView upstream_remote_address;
  AlsAddressView upstream_local_address;
  bool has_tls_properties = false;
  std::string_view tls_sni_hostname;
  std::string_view peer_uri_san;    // the first non-empty URI SAN of the peer certificate
  std::string_view local_uri_san;   // and of the local one
  uint64_t response_flag_bits = 0;  // ResponseFlag bit set
  AlsAnyView downstream_peer;       // filter_state_objects["downstream_peer"]
  AlsAnyView upstream_peer;         // filter_state_objects["upstream_peer"]
  uint64_t downstream_wire_bytes_sent = 0;
  uint64_t downstream_wire_bytes_received = 0;
  int32_t access_log_type = 0;
  bool intermediate_log_entry = false;
};

// The HTTPAccessLogEntry fields the conversion reads. Reused from entry to entry: Clear() keeps
// the header vectors' capacity.
struct AlsHttpEntryView {
  AlsCommonView common;
  int32_t protocol_version = 0;
  int32_t request_method = 0;
  std::string_view scheme;
  std::string_view authority;
  std::string_view path;
  std::string_view original_path;
  std::string_view user_agent;
  std::string_view forwarded_for;
  std::string_view request_id;
  uint64_t request_headers_bytes = 0;
  uint64_t request_body_bytes = 0;
  AlsHeaderViews request_headers;
  bool has_response_code = false;
  uint32_t response_code = 0;
  uint64_t response_headers_bytes = 0;
  uint64_t response_body_bytes = 0;
  std::string_view response_code_details;
  AlsHeaderViews response_headers;
  AlsHeaderViews response_trailers;

  void Clear();
};

// The ResponseFlag of ResponseFlags' bool field `field` (1-28 but 13, unauthorized_details);
// -1 for any other field.
int ResponseFlagOfField(uint32_t field);
// The ResponseFlag that ResponseFlags.unauthorized_details with `reason` sets; -1 for none.
int ResponseFlagOfUnauthorizedReason(int32_t reason);

// The peer identity a filter state object holds, as the conversion reads it, into an empty
// `identity`: a packed Struct from its wire format (protobuf decodes what that walk does not vouch
// for), the other forms through protobuf and a per-thread cache.
void ReadPeerIdentity(const AlsAnyView& any, meshtel::v1::WorkloadIdentity& identity);
// The same, always decoded by protobuf, without a cache: what ReadPeerIdentity must agree with.
void DecodePeerIdentity(std::string_view type_url, std::string_view value,
                        meshtel::v1::WorkloadIdentity& identity);

// Fills `view` from a decoded entry (views into `entry`).
void ReadHttpEntryView(const envoy::data::accesslog::v3::HTTPAccessLogEntry& entry,
                       AlsHttpEntryView& view);

// Empties `record` for ConvertHttpEntryView but keeps its submessages that every conversion sets
// (phases, source, destination, destination_service), cleared: RequestRecord::Clear() would free
// them and their strings, which the next conversion would allocate again.
void ResetRecordForConversion(meshtel::v1::RequestRecord& record);

// Converts one entry read into `view` into `out`, which must be empty: new, cleared (a
// RepeatedPtrField's Add() gives such a record) or reset by ResetRecordForConversion. False when
// the entry is intermediate and was skipped (`out` is then unspecified).
bool ConvertHttpEntryView(const AlsHttpEntryView& view, const AlsNodeIdentity& node,
                          meshtel::v1::RequestRecord& out);

// Converts one entry into `out` (cleared first). False when the entry is intermediate and was
// skipped (`out` is then unspecified).
bool ConvertHttpEntry(const envoy::data::accesslog::v3::HTTPAccessLogEntry& entry,
                      const AlsNodeIdentity& node, meshtel::v1::RequestRecord& out);
bool ConvertTcpEntry(const envoy::data::accesslog::v3::TCPAccessLogEntry& entry,
                     const AlsNodeIdentity& node, meshtel::v1::RequestRecord& out);

struct AlsConversion {
  size_t converted = 0;      // records appended
  size_t skipped = 0;        // intermediate entries left out
  size_t text_repaired = 0;  // of the converted, records whose text was not UTF-8 (made valid)
};

// Appends the records of every entry of `message` (HTTP or TCP) to `out`.
AlsConversion ConvertAlsMessage(
    const envoy::service::accesslog::v3::StreamAccessLogsMessage& message,
    const AlsNodeIdentity& node,
    google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& out);

}  // namespace meshtel::collector
