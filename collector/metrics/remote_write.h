#pragma once
// RemoteWriter: pushes the collector's metric samples to a Prometheus remote write 1.0 receiver
// (wire-facts §5.1) — Prometheus with --web.enable-remote-write-receiver, Mimir, Thanos
// Receive, VictoriaMetrics...
//
// Every `interval` the writer takes one snapshot of its SampleSources (every sample the scrape
// would print, same names and labels: histograms as classic `_bucket{le}`, `_sum`, `_count`
// series), stamps all of it with the snapshot's wall-clock time in milliseconds, and cuts it into
// WriteRequests of at most `max_samples_per_send` samples. Each series carries its full label set,
// `__name__` included, sorted by name. Each request is snappy block compressed and POSTed with
// Content-Encoding: snappy, Content-Type: application/x-protobuf,
// X-Prometheus-Remote-Write-Version: 0.1.0 and User-Agent: meshtel-collector/<version>, plus
// the configured authorization and extra headers. An https:// url is spoken over TLS with the
// entry's `tls:` settings (CA, client certificate, server name; the receiver's certificate is
// always verified); a failed handshake or verification is a transport failure.
//
// Answers: 2xx → sent. 5xx, 429 and transport failures (connect, reset, timeout) → retried with
// exponential backoff (min_backoff doubling up to max_backoff, with jitter); a Retry-After
// header (seconds or an HTTP date) replaces the backoff of that retry. Any other status → not
// retried: the request's samples are dropped and the receiver's answer is logged verbatim.
// Snapshots, not samples, are queued: when the next interval comes while a snapshot still has
// requests unsent, the newest snapshot replaces it and the unsent samples count as failed. Since
// every meshtel metric is cumulative (counters, histogram buckets, sums and counts) or a current
// value (gauges), a newer snapshot carries everything the older one did: skipping an old
// snapshot loses resolution, never counts. Within one series, samples go out in time order
// (snapshots are sent one after the other, each series once per snapshot).
//
// Own metrics, registered in the given registry (label url = the configured URL):
//   meshtel_remote_write_samples_total{url,outcome="sent"|"failed"|"dropped"}
//   meshtel_remote_write_requests_total{url,code}   (code: HTTP status, or "error" for a
//                                                    transport failure)
//   meshtel_remote_write_retries_total{url}
//
// Threading: Start() and Stop() from one thread (the collector's). The writer runs on its own
// thread; the sources' VisitSamples() are called from it. Stop() wakes it, waits for an
// in-flight request (bounded by `timeout`) and joins; unsent samples then count as failed.
// Ownership: the sources and the registry must outlive the writer.
// Errors: Create() returns InvalidArgument for a config that does not validate, or TLS settings
// OpenSSL refuses.

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/common/http_client.h"
#include "collector/metrics/remote_write_config.h"
#include "collector/metrics/sample_source.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"

namespace meshtel::collector {

// A SampleSource over a prometheus-cpp registry (the collector's own `meshtel_*` metrics): every
// sample /metrics prints of its families in the text format (AppendPrometheusCppFamilies), same
// names and labels — histograms as `_bucket{le}`, `_sum`, `_count`; summaries as
// `{quantile}`, `_sum`, `_count`. Threading: as the registry's Collect() (any thread).
// Ownership: the registry must outlive the source.
class RegistrySampleSource : public SampleSource {
 public:
  explicit RegistrySampleSource(const prometheus::Registry& registry) : registry_(registry) {}
  void VisitSamples(const std::function<void(const MetricSample&)>& visit) const override;

 private:
  const prometheus::Registry& registry_;
};

// One snapshot cut into requests, ready to send: each entry is one snappy-compressed
// WriteRequest and the number of samples in it.
struct RemoteWriteBatch {
  std::string body;
  uint64_t samples = 0;
};

// Builds the requests of one snapshot of `sources` at `timestamp_ms` (no network). Exposed for
// tests and benchmarks.
std::vector<RemoteWriteBatch> BuildRemoteWriteBatches(
    const std::vector<const SampleSource*>& sources, int64_t timestamp_ms,
    uint64_t max_samples_per_send);

class RemoteWriter {
 public:
  // Pushes the samples of `sources` and, when `push_registry` is not null, of that
  // prometheus-cpp registry too (it may be `registry`, where the writer's own counters go).
  static absl::StatusOr<std::unique_ptr<RemoteWriter>> Create(
      RemoteWriteConfig config, std::vector<const SampleSource*> sources,
      prometheus::Registry& registry, const prometheus::Registry* push_registry = nullptr);
  ~RemoteWriter();  // Stop()s

  RemoteWriter(const RemoteWriter&) = delete;
  RemoteWriter& operator=(const RemoteWriter&) = delete;

  // Starts the writer's thread; it takes the first snapshot at once, then one every interval.
  void Start();
  // Stops and joins the thread (idempotent).
  void Stop();

 private:
  RemoteWriter(RemoteWriteConfig config, common::HttpUrl url,
               std::vector<const SampleSource*> sources, prometheus::Registry& registry);

  void Run();
  // Sends one request once; returns when to try it again, or nullopt when it is done with
  // (sent or dropped).
  std::optional<absl::Time> SendOnce(const RemoteWriteBatch& batch, int attempt);
  prometheus::Counter& RequestsWithCode(const std::string& code);

  const RemoteWriteConfig config_;
  const common::HttpUrl url_;
  std::unique_ptr<RegistrySampleSource> registry_source_;  // of push_registry, or null
  std::vector<const SampleSource*> sources_;
  common::HttpHeaders headers_;
  common::HttpClient client_;
  std::mt19937_64 random_;

  prometheus::Family<prometheus::Counter>& samples_family_;
  prometheus::Family<prometheus::Counter>& requests_family_;
  prometheus::Counter& samples_sent_;
  prometheus::Counter& samples_failed_;
  prometheus::Counter& samples_dropped_;
  prometheus::Counter& retries_;

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace meshtel::collector
