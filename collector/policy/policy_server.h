#pragma once
// PolicyServer: meshtel.v1.PolicyService/StreamPolicy (proto/meshtel/v1/policy.proto), served on
// the collector's ingest gRPC port beside RecordService (RecordIngestServer::Start takes
// service()). Each proxy keeps one stream open:
//
//   proxy ── PolicyRequest{node, version_info} ──► resolve(node) → ProxyPolicy, version
//         ◄── PolicyResponse{version, nonce, policy} (unless the proxy already has that version)
//         ── PolicyRequest{version_info, response_nonce[, error_detail]} ──► ACK / NACK recorded
//   PolicyChanged() ──► every stream resolved again; pushed where the version differs from the
//                       last one sent on it
//
// - version_info is ProxyPolicyVersion() of the policy: an equal policy is never sent again on a
//   stream, and a proxy reconnecting with the version it holds gets no response (already ACK).
// - nonce: unique per response for the server's lifetime.
// - The first request must carry node.instance_id; otherwise the stream ends with
//   INVALID_ARGUMENT and a message saying so.
// - A request answering the latest response (its nonce) sets the stream's state: ACK (no
//   error_detail: version acked = its version_info) or NACK (error_detail: the reason and time are
//   kept); until then the state is PENDING. Answers to older responses are counted and their
//   version/reason kept, but leave the state to the latest response.
// - Metrics: meshtel_policy_streams (gauge), meshtel_policy_pushes_total,
//   meshtel_policy_acks_total, meshtel_policy_nacks_total.
//
// Design: gRPC's callback API (one ServerBidiReactor per stream, no thread per stream); a push
// from PolicyChanged() starts the write at once when none is in flight, else it replaces the
// response waiting for that write to finish (only the newest policy matters).
//
// Threading: every method may be called from any thread. `resolve` and `on_node` are called from
// gRPC's threads (a new stream) and from PolicyChanged()'s caller, never under a lock the
// PolicyServer's other methods take but the stream registry's: they must not call back into the
// PolicyServer. Lifetime: Shutdown() ends every stream (UNAVAILABLE); it must be called before
// the gRPC server serving service() shuts down, and the PolicyServer outlives that server.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "collector/policy/telemetry_policy.h"
#include "meshtel/v1/policy.grpc.pb.h"
#include "meshtel/v1/policy.pb.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace meshtel::collector {

// One open policy stream, as GET /api/proxies shows it.
struct PolicyStreamStatus {
  enum class State : uint8_t { kPending, kAck, kNack };
  std::string instance_id;
  std::string workload;
  std::string namespace_name;
  std::string peer;           // the proxy's address as gRPC sees it
  std::string proxy_version;  // PolicyNode.version
  int64_t connected_unix_nano = 0;
  std::string version_sent;   // "" before any response
  std::string version_acked;  // the last version the proxy said it holds
  State state = State::kPending;
  std::string nack_version;  // the last NACKed version ("" when none)
  std::string nack_reason;
  int64_t nack_unix_nano = 0;
  std::vector<std::string> applied;  // ProxyPolicy.applied of the last response sent
};

std::string_view PolicyStateName(PolicyStreamStatus::State state);

// The body of GET /api/proxies: {"policy":{"generation":G,"digest":"D"},"proxies":[...]}.
std::string ProxiesJson(const std::vector<PolicyStreamStatus>& streams, uint64_t generation,
                        std::string_view digest);

class PolicyServer {
 public:
  using Resolver = std::function<meshtel::v1::ProxyPolicy(const meshtel::v1::PolicyNode&)>;
  using NodeCallback = std::function<void(const PolicyWorkload&)>;

  // `on_node` may be null.
  PolicyServer(Resolver resolve, NodeCallback on_node, prometheus::Registry& registry);
  ~PolicyServer();
  PolicyServer(const PolicyServer&) = delete;
  PolicyServer& operator=(const PolicyServer&) = delete;

  // The service to register on the gRPC server.
  grpc::Service& service();

  // Resolves every stream again and pushes where the version changed. Returns when every push
  // has been started (not necessarily delivered).
  void PolicyChanged();

  // Every open stream whose first request was valid, oldest first.
  std::vector<PolicyStreamStatus> Streams() const;

  // Ends every stream with UNAVAILABLE and refuses new ones. Safe to call twice.
  void Shutdown();

  class Stream;  // one stream's reactor (in the .cc file)
  class Service;

 private:
  friend class Stream;
  // False when stopping (the stream must end at once).
  bool Register(Stream* stream);
  // Resolves the stream's node and sends the first response; false when stopping.
  bool Announce(Stream* stream, const std::string& held_version);
  void Unregister(Stream* stream);
  std::string NextNonce();

  Resolver resolve_;
  NodeCallback on_node_;
  prometheus::Gauge& streams_gauge_;
  prometheus::Counter& pushes_;
  prometheus::Counter& acks_;
  prometheus::Counter& nacks_;
  std::atomic<uint64_t> next_nonce_{1};
  std::atomic<uint64_t> next_stream_id_{1};

  // Guards streams_ and stopping_. Held while PolicyChanged() resolves and pushes, so a stream
  // cannot end (Unregister) in the middle.
  mutable std::mutex registry_mutex_;
  std::vector<Stream*> streams_;
  bool stopping_ = false;
  std::unique_ptr<Service> service_;
};

}  // namespace meshtel::collector
