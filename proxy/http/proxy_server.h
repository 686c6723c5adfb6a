#pragma once
// ProxyServer: meshtel-proxy's HTTP/1.1 listeners and the forwarding between them.
//
//   inbound listener  (reporter=destination): downstream → the local app (inbound.app)
//   outbound listener (reporter=source):      the local app → an upstream chosen by Host from the
//                                             route table (also absolute-form "http://host/…")
//
// For every request it adds x-request-id when absent, reads and propagates W3C/B3 trace context
// with a new span per hop and decides sampling (trace_context.h), exchanges workload identity with
// the peer proxy (peer_metadata.h), forwards, and hands one RequestRecord with phase timings to the
// RecordSink. Local replies follow Envoy, with response flags: no route → 404 NR, upstream
// connect failure → 503 UF, pool overflow → 503 UO, upstream timeout → 504 UT, upstream reset → 503
// UC, malformed or oversized (60 KiB) upstream response head → 502 UPE, malformed request → 400,
// request headers over 60 KiB or request trailers over 64 KiB → 431, body over max_body_bytes →
// 413. A connection's read buffer never holds more than 64 KiB (common/http_connection.h).
//
// Threading: `io_threads` threads, each running its own io_context with its own acceptor per
// listener (SO_REUSEPORT: the kernel spreads connections). A connection lives on one thread;
// the route table is immutable; the only shared mutable state is atomics and the RecordSink.
// Bodies stream in both directions in 16 KiB pieces in the framing they arrived in (memory stays
// bounded whatever their size), chunk trailers included. Header fields of a request and of its
// response live in the connection's HeaderArena (header_arena.h), made free again before the
// next request: a field costs no malloc, and between requests a connection keeps at most 16 KiB
// for them, whatever size (up to the 60 KiB limit) its earlier requests' heads had. Upstream
// connections are kept alive in a pool per IO thread and destination (upstream_pool.h): at the
// pool's bound a request waits, then gets 503 UO. An Upgrade request answered 101 turns both
// connections into a raw byte tunnel. Expect: 100-continue is answered by the proxy itself (as
// Envoy does by default).
// Transparent mode (inbound/outbound.transparent) reads the original destination of connections
// redirected by iptables (original_destination.h): outbound requests with no route go there.
// Telemetry policy (proxy/policy/active_policy.h): each request takes the policy in force when it
// starts (one atomic load while it does not change); the outbound listener uses its outbound
// side, the inbound listener its inbound side: the sampling percentage, the custom tags added to
// RequestRecord.custom_tags, the captured headers (config ∪ policy), and report=false (the record
// is counted in the proxy's stats but not sent).

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "proxy/config/proxy_config.h"
#include "proxy/http/proxy_stats.h"
#include "proxy/policy/active_policy.h"
#include "proxy/reporter/record_sink.h"

namespace meshtel::proxy {

class ProxyServer {
 public:
  // Binds the enabled listeners and starts the IO threads. `sink` and `policy` must outlive the
  // server; without `policy` the config's own settings apply (DefaultPolicy).
  static absl::StatusOr<std::unique_ptr<ProxyServer>> Start(const ProxyConfig& config,
                                                            RecordSink& sink,
                                                            const PolicyHolder* policy = nullptr);
  ~ProxyServer();

  // Stops accepting, lets in-flight requests finish until drain_timeout, then closes every
  // connection and joins the threads. Safe to call twice.
  void Shutdown();

  uint16_t inbound_port() const;   // 0 when the inbound listener is disabled
  uint16_t outbound_port() const;  // 0 when the outbound listener is disabled
  // The proxy's own counters (requests, flags, upstream connections, bad trace headers).
  const ProxyStats& stats() const;
  // Upstream connections open now (in use or idle), and idle in the pools.
  int64_t upstream_connections_open() const;
  int64_t upstream_connections_idle() const;
  // True once Shutdown() began: /healthz/ready answers 503.
  bool draining() const;

  struct Impl;

 private:
  explicit ProxyServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace meshtel::proxy
