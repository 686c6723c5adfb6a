// Benchmarks RequestMetrics (Istio request metrics aggregation and text rendering) against
// prometheus-cpp doing the same work, in the same binary run. Run by hand; docs/benchmarks.md
// has the commands and the recorded figures.
//
//   BM_MeshtelRecord / BM_PrometheusCppRecord: one RequestRecord per iteration, drawn from a
//     pool of 1000 records over ~200 label sets (20 source workloads x 10 destinations, mostly
//     200s plus a few error codes). Single-threaded figures are per CPU second (records/s/core);
//     the threads:2 variants share one aggregator and report wall-clock total throughput.
//   BM_MeshtelRender / BM_PrometheusCppRender: N distinct label sets (N = 1493, 10000, 100000),
//     each one istio_requests_total sample plus three 19-bound histograms; times one full text
//     render into a reused buffer (prometheus-cpp: TextSerializer().Serialize(registry.Collect())).
//     One label set renders 67 sample lines (1 counter + 3 x (20 buckets + _sum + _count)), so
//     N = 1493 is 100 031 samples: 100k series in Prometheus' sense (one series per sample line).
//   BM_MeshtelScrape: the same fixtures through the /metrics handler (ScrapeHandler::Serve, text
//     format, no gzip): a fresh body per scrape as a real scrape gets, plus the collector's own
//     metrics; BM_MeshtelScrapeGzip the same with Accept-Encoding: gzip.
//   BM_MeshtelMemoryPerSeries: heap bytes (glibc mallinfo2, all arenas) a fresh RequestMetrics
//     holds after N distinct HTTP label sets of the render fixture, divided by N.

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "collector/metrics/istio_labels.h"
#include "collector/metrics/request_metrics.h"
#include "collector/metrics/scrape_handler.h"
#include "meshtel/v1/record.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace {

using meshtel::collector::IstioLabelScratch;
using meshtel::collector::IstioRequestLabelValues;
using meshtel::collector::kIstioHistogramBounds;
using meshtel::collector::kIstioRequestLabelCount;
using meshtel::collector::kIstioRequestLabelNames;
using meshtel::collector::RequestMetrics;
using meshtel::collector::RequestMetricsOptions;
using meshtel::v1::RequestRecord;

constexpr int kPoolSize = 1000;
constexpr int kPoolSources = 20;
constexpr int kPoolDestinations = 10;
// Render fixtures: label set i = (source i / 200, destination (i / 4) % 50, code i % 4).
constexpr int kRenderDestinations = 50;
constexpr uint32_t kRenderCodes[] = {200, 404, 500, 503};
constexpr int kRecordsPerRenderSeries = 3;

const char* const kServiceNames[] = {"productpage", "reviews",        "ratings",  "details",
                                     "cart",        "checkout",       "payment",  "shipping",
                                     "currency",    "catalog",        "frontend", "ads",
                                     "email",       "recommendation", "search"};

std::string ServiceName(int index) {
  constexpr int kNames = static_cast<int>(std::size(kServiceNames));
  std::string name = kServiceNames[index % kNames];
  if (index >= kNames) name += "-" + std::to_string(index / kNames);
  return name;
}

// A workload as Istio's peer metadata describes it (workload, app, version, canonical names,
// namespace, cluster, SPIFFE principal).
void FillWorkload(const std::string& app, const std::string& ns, const std::string& version,
                  meshtel::v1::WorkloadIdentity& identity) {
  identity.set_workload(app + "-" + version);
  identity.set_namespace_(ns);
  identity.set_app(app);
  identity.set_version(version);
  identity.set_canonical_service(app);
  identity.set_canonical_revision(version);
  identity.set_cluster("Kubernetes");
  identity.set_principal("spiffe://cluster.local/ns/" + ns + "/sa/" + app);
}

RequestRecord MakeRecord(int source, int destination, uint32_t code, std::mt19937_64& rng) {
  RequestRecord record;
  const std::string source_ns = source % 2 == 0 ? "shop" : "bookinfo";
  const std::string dest_ns = destination % 3 == 0 ? "backend" : "shop";
  const std::string dest_app = ServiceName(destination);
  FillWorkload("client-" + ServiceName(source), source_ns, "v" + std::to_string(1 + source % 3),
               *record.mutable_source());
  FillWorkload(dest_app, dest_ns, "v1", *record.mutable_destination());
  auto& service = *record.mutable_destination_service();
  service.set_host(dest_app + "." + dest_ns + ".svc.cluster.local");
  service.set_name(dest_app);
  service.set_namespace_(dest_ns);

  record.set_reporter(meshtel::v1::REPORTER_DESTINATION);
  record.set_mutual_tls(true);
  record.set_method("GET");
  record.set_scheme("http");
  record.set_authority(service.host());
  record.set_path("/api/v1/" + dest_app + "/" + std::to_string(rng() % 1000));
  record.set_protocol("HTTP/1.1");
  const bool grpc = destination % 4 == 3;
  record.set_request_protocol(grpc ? meshtel::v1::REQUEST_PROTOCOL_GRPC
                                   : meshtel::v1::REQUEST_PROTOCOL_HTTP);
  record.set_response_code(code);
  if (grpc) record.set_grpc_status(code == 200 ? 0 : 14);
  if (code == 503) {
    record.set_response_flags(uint64_t{1} << meshtel::v1::RESPONSE_FLAG_NO_HEALTHY_UPSTREAM);
  }
  record.set_response_code_details("via_upstream");

  // Durations log-uniform over 0.2 ms .. 5 s; sizes log-uniform too.
  std::uniform_real_distribution<double> unit(0, 1);
  record.set_duration_ns(static_cast<uint64_t>(2e5 * std::pow(25000.0, unit(rng))));
  record.set_request_bytes(static_cast<uint64_t>(200 * std::pow(50.0, unit(rng))));
  record.set_response_bytes(static_cast<uint64_t>(100 * std::pow(10000.0, unit(rng))));
  record.set_upstream_host("10.0." + std::to_string(destination) + ".7:8080");
  record.set_upstream_cluster("inbound|8080||" + service.host());
  return record;
}

// 1000 records over 20 x 10 (source, destination) pairs; 90% 200, 5% 404, 3% 503, 2% 500.
const std::vector<RequestRecord>& RecordPool() {
  static const std::vector<RequestRecord> pool = [] {
    std::mt19937_64 rng(42);
    std::vector<RequestRecord> records;
    records.reserve(kPoolSize);
    for (int i = 0; i < kPoolSize; ++i) {
      const int pair = static_cast<int>(rng() % (kPoolSources * kPoolDestinations));
      const int roll = static_cast<int>(rng() % 100);
      const uint32_t code = roll < 90 ? 200 : roll < 95 ? 404 : roll < 98 ? 503 : 500;
      records.push_back(MakeRecord(pair / kPoolDestinations, pair % kPoolDestinations, code, rng));
    }
    return records;
  }();
  return pool;
}

size_t DistinctLabelSets(const std::vector<RequestRecord>& records) {
  std::set<std::vector<std::string>> sets;
  IstioLabelScratch scratch;
  for (const RequestRecord& record : records) {
    const auto values = IstioRequestLabelValues(record, scratch);
    sets.emplace(values.begin(), values.end());
  }
  return sets.size();
}

// The prometheus-cpp peer: the same four families, labels computed from the record the same
// way, one Labels map per record and Family::Add (lookup or create) per family and record, as
// prometheus-cpp's API asks of a caller whose label values arrive with the data.
class PrometheusCppRequestMetrics {
 public:
  PrometheusCppRequestMetrics()
      : requests_(prometheus::BuildCounter()
                      .Name("istio_requests_total")
                      .Help("Requests handled, by Istio's standard labels.")
                      .Register(registry_)),
        duration_ms_(prometheus::BuildHistogram()
                         .Name("istio_request_duration_milliseconds")
                         .Help("Request duration from the first downstream byte to the end of "
                               "the response, in ms.")
                         .Register(registry_)),
        request_bytes_(prometheus::BuildHistogram()
                           .Name("istio_request_bytes")
                           .Help("Request size as received from the downstream, in bytes.")
                           .Register(registry_)),
        response_bytes_(prometheus::BuildHistogram()
                            .Name("istio_response_bytes")
                            .Help("Response size as sent to the downstream, in bytes.")
                            .Register(registry_)),
        bounds_(kIstioHistogramBounds.begin(), kIstioHistogramBounds.end()) {}

  void Record(const RequestRecord& record) {
    thread_local IstioLabelScratch scratch;
    const auto values = IstioRequestLabelValues(record, scratch);
    prometheus::Labels labels;
    for (size_t i = 0; i < kIstioRequestLabelCount; ++i) {
      labels.emplace(std::string(kIstioRequestLabelNames[i]), std::string(values[i]));
    }
    requests_.Add(labels).Increment();
    duration_ms_.Add(labels, bounds_).Observe(static_cast<double>(record.duration_ns()) / 1e6);
    request_bytes_.Add(labels, bounds_).Observe(static_cast<double>(record.request_bytes()));
    response_bytes_.Add(labels, bounds_).Observe(static_cast<double>(record.response_bytes()));
  }

  std::string RenderText() const {
    return prometheus::TextSerializer().Serialize(registry_.Collect());
  }

 private:
  prometheus::Registry registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& duration_ms_;
  prometheus::Family<prometheus::Histogram>& request_bytes_;
  prometheus::Family<prometheus::Histogram>& response_bytes_;
  const prometheus::Histogram::BucketBoundaries bounds_;
};

// ---- Aggregation ------------------------------------------------------------------------------

template <typename Metrics>
void RunRecordBenchmark(benchmark::State& state, Metrics& metrics) {
  const std::vector<RequestRecord>& pool = RecordPool();
  // Threads start at different points of the pool so they do not move in lock step.
  size_t next = static_cast<size_t>(state.thread_index()) * (pool.size() / 2 + 7) % pool.size();
  for (auto _ : state) {
    metrics.Record(pool[next]);
    if (++next == pool.size()) next = 0;
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    state.counters["label_sets"] = static_cast<double>(DistinctLabelSets(pool));
  }
}

// One aggregator per library, shared by the single- and two-thread runs (a live collector
// keeps its series; the first pass over the pool creates them).
void BM_MeshtelRecord(benchmark::State& state) {
  static RequestMetrics* const metrics = new RequestMetrics();
  RunRecordBenchmark(state, *metrics);
}

void BM_PrometheusCppRecord(benchmark::State& state) {
  static PrometheusCppRequestMetrics* const metrics = new PrometheusCppRequestMetrics();
  RunRecordBenchmark(state, *metrics);
}

// ---- Rendering --------------------------------------------------------------------------------

template <typename Metrics>
void FillRenderSeries(int64_t series, Metrics& metrics) {
  std::mt19937_64 rng(7);
  constexpr int64_t kCodes = static_cast<int64_t>(std::size(kRenderCodes));
  for (int64_t i = 0; i < series; ++i) {
    RequestRecord record = MakeRecord(static_cast<int>(i / (kRenderDestinations * kCodes)),
                                      static_cast<int>((i / kCodes) % kRenderDestinations),
                                      kRenderCodes[i % kCodes], rng);
    for (int r = 0; r < kRecordsPerRenderSeries; ++r) {
      std::uniform_real_distribution<double> unit(0, 1);
      record.set_duration_ns(static_cast<uint64_t>(2e5 * std::pow(25000.0, unit(rng))));
      record.set_response_bytes(static_cast<uint64_t>(100 * std::pow(10000.0, unit(rng))));
      metrics.Record(record);
    }
  }
}

// A fresh aggregator; RequestMetrics without a series limit in reach of the fixtures.
template <typename Metrics>
std::unique_ptr<Metrics> MakeMetrics() {
  return std::make_unique<Metrics>();
}
template <>
std::unique_ptr<RequestMetrics> MakeMetrics<RequestMetrics>() {
  return std::make_unique<RequestMetrics>(
      RequestMetricsOptions{.max_series_per_metric = 10'000'000});
}

// Built once per N (on first use) and kept for the repetitions of that N.
template <typename Metrics>
Metrics& RenderFixture(int64_t series) {
  static std::mutex mutex;
  static std::map<int64_t, std::unique_ptr<Metrics>> fixtures;
  std::lock_guard<std::mutex> lock(mutex);
  auto& fixture = fixtures[series];
  if (!fixture) {
    fixture = MakeMetrics<Metrics>();
    FillRenderSeries(series, *fixture);
  }
  return *fixture;
}

// Sample lines (everything but # HELP / # TYPE) in a rendered text.
int64_t SampleLines(const std::string& text) {
  int64_t lines = 0;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    if (text[begin] != '#') ++lines;
    begin = end + 1;
  }
  return lines;
}

void SetRenderCounters(benchmark::State& state, const std::string& text) {
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
  state.counters["series"] = static_cast<double>(state.range(0));
  state.counters["samples"] = static_cast<double>(SampleLines(text));
  state.counters["text_MB"] = static_cast<double>(text.size()) / 1e6;
}

void BM_MeshtelRender(benchmark::State& state) {
  const RequestMetrics& metrics = RenderFixture<RequestMetrics>(state.range(0));
  if (metrics.series_count() != static_cast<size_t>(state.range(0))) {
    state.SkipWithError("fixture has the wrong series count");
    return;
  }
  std::string out;
  metrics.RenderText(out);  // untimed: sizes the reused buffer
  for (auto _ : state) {
    out.clear();
    metrics.RenderText(out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  SetRenderCounters(state, out);
}

void BM_PrometheusCppRender(benchmark::State& state) {
  const PrometheusCppRequestMetrics& metrics =
      RenderFixture<PrometheusCppRequestMetrics>(state.range(0));
  std::string text;
  for (auto _ : state) {
    std::string().swap(text);  // frees the previous text (as a scrape handler would)
    text = metrics.RenderText();
    benchmark::DoNotOptimize(text.data());
    benchmark::ClobberMemory();
  }
  SetRenderCounters(state, text);
}

void RunScrape(benchmark::State& state, const std::string& accept_encoding) {
  const RequestMetrics& metrics = RenderFixture<RequestMetrics>(state.range(0));
  prometheus::Registry registry;
  const meshtel::collector::ScrapeHandler handler(metrics, registry);
  meshtel::common::AdminRequest request;
  request.method = "GET";
  request.path = "/metrics";
  request.accept_encoding = accept_encoding;
  size_t bytes = 0;
  for (auto _ : state) {
    const meshtel::common::AdminResponse response = handler.Serve(request);
    bytes = response.body.size();
    benchmark::DoNotOptimize(response.body.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
  state.counters["series"] = static_cast<double>(state.range(0));
  state.counters["body_MB"] = static_cast<double>(bytes) / 1e6;
}

void BM_MeshtelScrape(benchmark::State& state) { RunScrape(state, ""); }
void BM_MeshtelScrapeGzip(benchmark::State& state) { RunScrape(state, "gzip"); }

size_t HeapInUse() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

void BM_MeshtelMemoryPerSeries(benchmark::State& state) {
  const int64_t series = state.range(0);
  constexpr int64_t kCodes = static_cast<int64_t>(std::size(kRenderCodes));
  double bytes_per_series = 0;
  for (auto _ : state) {
    std::mt19937_64 rng(7);
    // Records first, so only the aggregator's own growth is measured.
    std::vector<RequestRecord> records;
    records.reserve(static_cast<size_t>(series));
    for (int64_t i = 0; i < series; ++i) {
      records.push_back(MakeRecord(static_cast<int>(i / (kRenderDestinations * kCodes)),
                                   static_cast<int>((i / kCodes) % kRenderDestinations),
                                   kRenderCodes[i % kCodes], rng));
      records.back().set_request_protocol(meshtel::v1::REQUEST_PROTOCOL_HTTP);
      records.back().clear_grpc_status();
    }
    auto metrics = MakeMetrics<RequestMetrics>();
    metrics->Record(records.front());  // thread-local buffers, outside the measurement
    const size_t before = HeapInUse();
    for (const RequestRecord& record : records) metrics->Record(record);
    const size_t after = HeapInUse();
    if (metrics->series_count() != static_cast<size_t>(series)) {
      state.SkipWithError("fixture has the wrong series count");
      return;
    }
    bytes_per_series = static_cast<double>(after - before) / static_cast<double>(series - 1);
  }
  state.counters["series"] = static_cast<double>(series);
  state.counters["bytes_per_series"] = bytes_per_series;
}

BENCHMARK(BM_MeshtelRecord);
BENCHMARK(BM_MeshtelRecord)->Threads(2)->UseRealTime();
BENCHMARK(BM_PrometheusCppRecord);
BENCHMARK(BM_PrometheusCppRecord)->Threads(2)->UseRealTime();
BENCHMARK(BM_MeshtelMemoryPerSeries)->Arg(100000)->Unit(benchmark::kMillisecond)->Iterations(1);
// 1493 label sets = 100 031 sample lines (100k series); 10000 and 100000 label sets.
BENCHMARK(BM_MeshtelRender)
    ->Arg(1493)
    ->Arg(10000)
    ->Arg(100000)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);
BENCHMARK(BM_MeshtelScrape)->Arg(1493)->Arg(10000)->Unit(benchmark::kMillisecond)->Iterations(3);
// A 100k-label-set scrape allocates a 6 GB body: one per run.
BENCHMARK(BM_MeshtelScrape)
    ->Arg(100000)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->Repetitions(1);
BENCHMARK(BM_MeshtelScrapeGzip)
    ->Arg(1493)
    ->Arg(10000)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);
BENCHMARK(BM_PrometheusCppRender)
    ->Arg(1493)
    ->Arg(10000)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);
// One render of 100k label sets takes over a minute (and ~15 GB) with prometheus-cpp: one
// repetition per binary run keeps a run under ~3 minutes; take the median across runs.
BENCHMARK(BM_PrometheusCppRender)
    ->Arg(100000)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->Repetitions(1);

}  // namespace
