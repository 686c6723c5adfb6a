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
// Pure functions (a decoded peer object is remembered per thread, up to 256, keyed by its bytes:
// a sidecar talks to few peers); safe from any thread.

#include <cstddef>
#include <string>

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

// Converts one entry into `out` (cleared first). False when the entry is intermediate and was
// skipped (`out` is then unspecified).
bool ConvertHttpEntry(const envoy::data::accesslog::v3::HTTPAccessLogEntry& entry,
                      const AlsNodeIdentity& node, meshtel::v1::RequestRecord& out);
bool ConvertTcpEntry(const envoy::data::accesslog::v3::TCPAccessLogEntry& entry,
                     const AlsNodeIdentity& node, meshtel::v1::RequestRecord& out);

struct AlsConversion {
  size_t converted = 0;  // records appended
  size_t skipped = 0;    // intermediate entries left out
};

// Appends the records of every entry of `message` (HTTP or TCP) to `out`.
AlsConversion ConvertAlsMessage(
    const envoy::service::accesslog::v3::StreamAccessLogsMessage& message,
    const AlsNodeIdentity& node,
    google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& out);

}  // namespace meshtel::collector
