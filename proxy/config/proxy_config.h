#pragma once
// ProxyConfig: everything meshtel-proxy reads from its YAML file.
//
// Each field carries its default in the declaration; docs/configuration.md lists the same
// defaults. LoadProxyConfig() rejects unknown keys and invalid values with an error naming the
// YAML path and the value.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/common/host_port.h"
#include "collector/logs/access_log_config.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::proxy {

// The identity of the workload this proxy sits beside (Istio's peer metadata).
struct WorkloadConfig {
  std::string name;                        // workload name, e.g. "reviews-v1". Default: ""
  std::string namespace_name = "default";  // YAML key `namespace`. Default: default
  std::string app;                         // Default: "" (Istio falls back to the workload)
  std::string version;                     // Default: ""
  std::string canonical_service;           // Default: "" (app, then workload name)
  std::string canonical_revision;          // Default: "" (version, then "latest")
  std::string cluster = "Kubernetes";      // Default: Kubernetes (Istio's default cluster id)
  std::string principal;                   // SPIFFE id. Default: "" (no mTLS yet)
  // The service the workload serves, as a host name: destination_service on inbound records.
  // Default: "<name>.<namespace>.svc.cluster.local"
  std::string service_host;
  // The pod's labels, announced to the collector with the policy subscription (Telemetry
  // selector.matchLabels match them). Default: the JSON object in ISTIO_METAJSON_LABELS when set
  // (as Istio's injector sets it), else {app: <app>, version: <version>} for the non-empty ones
  std::map<std::string, std::string> labels;
};

struct InboundConfig {
  bool enabled = true;                         // Default: true
  common::HostPort listen{"0.0.0.0", 15006};   // Default: 0.0.0.0:15006
  common::HostPort app{"127.0.0.1", 8080};     // the local app. Default: 127.0.0.1:8080
  absl::Duration timeout = absl::Seconds(15);  // upstream response timeout. Default: 15s
  // Connections arrive redirected by iptables (deploy/iptables/): the app is reached at
  // inbound.app's host and the port the client originally dialled (SO_ORIGINAL_DST). Default: false
  bool transparent = false;
};

struct RouteConfig {
  // Destination host, "name.namespace.svc.cluster.local". Requests match it by that name,
  // "name.namespace", "name.namespace.svc", or "name" alone, each with or without a port.
  std::string host;
  std::vector<common::HostPort> addresses;        // required; round robin across them
  absl::Duration timeout = absl::ZeroDuration();  // 0 = outbound.timeout. Default: 0
};

struct OutboundConfig {
  bool enabled = true;                          // Default: true
  common::HostPort listen{"127.0.0.1", 15001};  // Default: 127.0.0.1:15001
  absl::Duration timeout = absl::Seconds(15);   // upstream response timeout. Default: 15s
  std::vector<RouteConfig> routes;              // Default: none (every request → 404 NR)
  // Connections arrive redirected by iptables (deploy/iptables/): a request whose Host matches no
  // route goes to the address the app originally dialled (SO_ORIGINAL_DST), as Istio's
  // PassthroughCluster. Default: false
  bool transparent = false;
};

// The upstream connection pools (one per IO thread, bounds shared): Envoy's circuit breakers.
struct UpstreamConfig {
  // Open connections per upstream address, all IO threads together. Default: 1024
  uint32_t max_connections_per_destination = 1024;
  // Requests waiting for a connection at once; past it, 503 UO at once. Default: 1024
  uint32_t max_pending_requests = 1024;
  // How long a request waits for a connection at the bound before 503 UO. Default: 1s
  absl::Duration queue_timeout = absl::Seconds(1);
  // Idle upstream connections are closed after this. Default: 60s
  absl::Duration idle_timeout = absl::Seconds(60);
};

struct ReporterConfig {
  // The collectors' ingest addresses (YAML `collector: host:port` or `collectors: [...]`). Every
  // record of a sampled trace goes to the same live collector (rendezvous hash of the trace id);
  // other records spread over the live ones. Default: [127.0.0.1:15140]
  std::vector<common::HostPort> collectors{{"127.0.0.1", 15140}};
  uint32_t max_batch_records = 512;  // Default: 512
  // Records waiting for the batcher (the lock-free queue from the IO threads); past it new
  // records are dropped and counted. Default: 8192
  uint32_t max_queued_records = 8192;
  // A collector down this long is skipped and its unacknowledged records go to the others.
  // Default: 5s
  absl::Duration failover_after = absl::Seconds(5);
  absl::Duration flush_interval = absl::Milliseconds(200);  // Default: 200ms
  // Unacknowledged batches kept for resending; past it the oldest are dropped and counted.
  uint64_t max_unacked_bytes = 16 << 20;                               // Default: 16 MiB
  absl::Duration reconnect_initial_backoff = absl::Milliseconds(100);  // Default: 100ms
  absl::Duration reconnect_max_backoff = absl::Seconds(5);             // Default: 5s
};

struct AdminConfig {
  bool enabled = true;  // Default: true
  // /stats/prometheus and /healthz/ready. Default: 127.0.0.1:15000
  common::HostPort listen{"127.0.0.1", 15000};
};

struct TracingConfig {
  // Share of requests sampled when no caller decided (Istio's default is 1%), in [0, 100] with
  // 0.01 steps. Default: 1
  double random_sampling_percentage = 1.0;
  // Trace headers written upstream: "w3c" (traceparent/tracestate), "b3multi" (x-b3-*) and/or
  // "b3" (single header). Empty: none are forwarded. Default: [w3c, b3multi]
  std::vector<std::string> propagation = {"w3c", "b3multi"};
};

// The proxy's own access log, like Envoy's file access log (proxy/access_log/access_log_writer.h):
// one line per request, written off the request path. Off by default.
struct AccessLogConfig {
  // "" = off; "/dev/stdout", "/dev/stderr" or a file path (appended to, created with mode 0644
  // when missing; SIGUSR1 opens it again after a rotation by rename). Default: ""
  std::string path;
  // YAML keys encoding (TEXT|JSON), format and json_format, as the collector's access_log block.
  // Default: TEXT in Istio's default format
  collector::AccessLogConfig render;
  // Lines waiting for the writer thread at most (a slow or full disk); past it new lines are
  // dropped and counted. Default: 4 MiB
  uint64_t max_buffered_bytes = 4 << 20;
};

// The telemetry policy the collector pushes (proxy/policy/policy_subscriber.h).
struct PolicyConfig {
  // Subscribe to the collector's PolicyService (on the reporter's collector address). Default: true
  bool enabled = true;
};

struct ProxyConfig {
  std::string log_level = "info";  // Default: info
  // Identifies this proxy run to the collector. Default: "<hostname>-<pid>-<random>"
  std::string instance_id;
  uint32_t io_threads = 0;  // 0 = one per core. Default: 0
  // Largest request body accepted (413 past it); bodies are streamed, never held whole.
  // 0 = no limit. Default: 0
  uint64_t max_body_bytes = 0;
  absl::Duration idle_timeout = absl::Seconds(60);    // idle keep-alive connections. Default: 60s
  absl::Duration connect_timeout = absl::Seconds(5);  // upstream connect. Default: 5s
  absl::Duration drain_timeout = absl::Seconds(5);    // SIGTERM: in-flight requests. Default: 5s
  // Request headers copied into every record (RequestRecord.captured_headers, lower-case names,
  // the first value when a header repeats, absent headers left out), for the collector's tag
  // overrides (request.headers['x-user-tier']) and access-log %REQ(...)%. Names are lower-cased
  // at load. At most 32. Default: none
  std::vector<std::string> capture_request_headers;
  WorkloadConfig workload;
  InboundConfig inbound;
  OutboundConfig outbound;
  UpstreamConfig upstream;
  ReporterConfig reporter;
  TracingConfig tracing;
  AdminConfig admin;
  AccessLogConfig access_log;
  PolicyConfig policy;

  absl::Status Validate() const;
};

// Reads the YAML tree. Workload fields the file leaves empty are taken from Istio's sidecar
// environment through `getenv` (ApplyIstioEnvironment) before validation.
absl::StatusOr<ProxyConfig> ParseProxyConfig(const YAML::Node& root);

// Fills the workload fields still empty from the environment variables Istio's injector sets:
// ISTIO_META_WORKLOAD_NAME (else POD_NAME), POD_NAMESPACE, ISTIO_META_CLUSTER_ID,
// ISTIO_META_APP (else the pod label app via ISTIO_META_LABELS_APP), ISTIO_META_VERSION,
// ISTIO_META_CANONICAL_SERVICE, ISTIO_META_CANONICAL_REVISION and SERVICE_ACCOUNT (principal
// spiffe://cluster.local/ns/<namespace>/sa/<account>). `getenv` is a parameter for tests.
void ApplyIstioEnvironment(WorkloadConfig& workload, bool namespace_set,
                           const std::function<const char*(const char*)>& getenv);
// Fills workload.labels when the file set none: ISTIO_METAJSON_LABELS (a JSON object of strings)
// when set, else app and version (the non-empty ones). Errors name ISTIO_METAJSON_LABELS.
absl::Status ApplyDefaultLabels(WorkloadConfig& workload, bool labels_set,
                                const std::function<const char*(const char*)>& getenv);
// Loads and validates a YAML file; an empty path yields the defaults.
absl::StatusOr<ProxyConfig> LoadProxyConfig(const std::string& file_path);

}  // namespace meshtel::proxy
