// Benchmarks OTLP trace ingest: unary gRPC TraceService/Export calls of 512 spans each into an
// in-process Collector with ingest.otlp enabled (the real OTLP receiver, decode + convert, one
// RecordStore write per request on RocksDB), answered after the write returned — for
// store.durability process and fsync. In the same run, the ceiling: the raw protobuf parse of the
// same payloads (ExportTraceServiceRequest::ParseFromString on one thread), and, between the two,
// the receiver's two ways of decoding alone (no gRPC, no store): decode + convert
// (otlp::DecodeAndConvert, its general path) and transcode (otlp::TranscodeTraceRequest, its fast
// path for protobuf trace requests, which these payloads take). Ratios are of spans per
// CPU-second. Run by hand; docs/benchmarks.md has the command and the figures.
//
// Clients: --streams threads, each on its own channel and connection, each with one call in
// flight, sending pre-serialized requests (raw ByteBuffers) so that the client costs little CPU.
// CPU is the whole process's (clients included), so the ingest figure per core is conservative;
// a second row per mode takes out the client threads' own CPU (thread CPU clocks), which leaves
// the collector's work and the gRPC threads clients and server share.
// The trace pipeline is off (traces.enabled: false): this measures ingest, not assembly.

#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "collector/collector.h"
#include "collector/common/program.h"
#include "collector/config/collector_config.h"
#include "collector/ingest/otlp_convert.h"
#include "collector/ingest/otlp_span_transcoder.h"
#include "fmt/format.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/client_unary_call.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "tests/bench/bench_flags.h"

namespace {

using Clock = std::chrono::steady_clock;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;

constexpr char kTraceMethod[] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

struct Options {
  std::string dir;
  int streams = 4;
  int batch_spans = 512;
  double seconds = 10;
  std::vector<std::string> modes = {"process", "fsync"};
};

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

double ThreadCpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

void Set(opentelemetry::proto::common::v1::KeyValue* attribute, const std::string& key,
         const std::string& value) {
  attribute->set_key(key);
  attribute->mutable_value()->set_string_value(value);
}

// A request of `spans` spans as an instrumented HTTP service sends them: one resource (service
// name, namespace, pod, SDK), one scope, traces of 8 spans (a root and 7 children) with random
// ids, times and durations, and 8 attributes of the HTTP semantic conventions (7 strings, 1 int)
// whose path ids and status codes vary: about as compressible as real spans, no more.
std::string MakePayload(int spans, int seed) {
  std::mt19937_64 random(static_cast<uint64_t>(seed) * 7919 + 1);
  auto random_bytes = [&](size_t size) {
    std::string bytes(size, '\0');
    for (size_t i = 0; i < size; i += 8) {
      const uint64_t value = random();
      std::memcpy(bytes.data() + i, &value, std::min<size_t>(8, size - i));
    }
    return bytes;
  };
  ExportTraceServiceRequest request;
  auto* resource_spans = request.add_resource_spans();
  auto* resource = resource_spans->mutable_resource();
  Set(resource->add_attributes(), "service.name", "checkout-" + std::to_string(seed % 7));
  Set(resource->add_attributes(), "service.namespace", "shop");
  Set(resource->add_attributes(), "k8s.pod.name", "checkout-7d9f8b6c4-x2x9q");
  Set(resource->add_attributes(), "telemetry.sdk.language", "go");
  auto* scope_spans = resource_spans->add_scope_spans();
  scope_spans->mutable_scope()->set_name("go.opentelemetry.io/contrib/instrumentation/net/http");
  scope_spans->mutable_scope()->set_version("0.49.0");
  std::string trace_id;
  std::string root_id;
  uint64_t trace_start = 1755000000000000000u + static_cast<uint64_t>(seed) * 1000000000u;
  for (int i = 0; i < spans; ++i) {
    auto* span = scope_spans->add_spans();
    const std::string span_id = random_bytes(8);
    if (i % 8 == 0) {
      trace_id = random_bytes(16);
      root_id = span_id;
      trace_start += random() % 5000000;
    } else {
      span->set_parent_span_id(root_id);
    }
    span->set_trace_id(trace_id);
    span->set_span_id(span_id);
    span->set_name(i % 2 == 0 ? "GET /api/cart/{id}" : "POST /api/checkout");
    span->set_kind(i % 2 == 0 ? opentelemetry::proto::trace::v1::Span::SPAN_KIND_SERVER
                              : opentelemetry::proto::trace::v1::Span::SPAN_KIND_CLIENT);
    const uint64_t start = trace_start + random() % 1000000;
    span->set_start_time_unix_nano(start);
    span->set_end_time_unix_nano(start + 20000 + random() % 3000000);
    span->set_flags(0x101);
    const std::string id = std::to_string(100000 + random() % 900000);
    Set(span->add_attributes(), "http.request.method", i % 2 == 0 ? "GET" : "POST");
    Set(span->add_attributes(), "url.path", "/api/cart/" + id);
    Set(span->add_attributes(), "url.scheme", "http");
    Set(span->add_attributes(), "server.address", "checkout.shop.svc.cluster.local");
    Set(span->add_attributes(), "network.protocol.version", "1.1");
    Set(span->add_attributes(), "user_agent.original", "Go-http-client/1.1");
    Set(span->add_attributes(), "http.route", "/api/cart/{id}");
    auto* status = span->add_attributes();
    status->set_key("http.response.status_code");
    status->mutable_value()->set_int_value(random() % 50 == 0 ? 503 : 200);
  }
  return request.SerializeAsString();
}

struct Row {
  std::string what;
  double seconds = 0;
  uint64_t spans = 0;
  uint64_t requests = 0;
  double cpu_seconds = 0;
  // Ingest only: CPU of the client threads themselves (in cpu_seconds too).
  double client_thread_cpu_seconds = 0;
  double SpansPerSecond() const { return static_cast<double>(spans) / seconds; }
  double SpansPerCpuSecond() const { return static_cast<double>(spans) / cpu_seconds; }
};

Row RunIngest(const Options& options, const std::string& mode,
              const std::vector<std::string>& payloads) {
  const std::string data_dir = options.dir + "/otlp-" + mode;
  std::filesystem::remove_all(data_dir);
  meshtel::collector::CollectorConfig config;
  config.ingest.listen = meshtel::common::HostPort{"127.0.0.1", 0};
  config.ingest.otlp.enabled = true;
  config.ingest.otlp.grpc_listen = meshtel::common::HostPort{"127.0.0.1", 0};
  config.ingest.otlp.http_listen = meshtel::common::HostPort{"127.0.0.1", 0};
  config.admin.listen = meshtel::common::HostPort{"127.0.0.1", 0};
  config.store.data_dir = data_dir;
  config.store.durability = mode;
  config.traces.enabled = false;
  if (absl::Status valid = config.Validate(); !valid.ok()) {
    std::fprintf(stderr, "config: %s\n", valid.ToString().c_str());
    std::exit(1);
  }
  auto collector = meshtel::collector::Collector::Start(config);
  if (!collector.ok()) {
    std::fprintf(stderr, "collector: %s\n", collector.status().ToString().c_str());
    std::exit(1);
  }
  const std::string target = "127.0.0.1:" + std::to_string((*collector)->otlp_grpc_port());
  std::atomic<bool> go{false};
  std::atomic<uint64_t> requests{0};
  std::atomic<bool> failed{false};
  const auto duration =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.seconds));
  // The payloads as gRPC slices once: a request takes a reference, not a copy.
  std::vector<grpc::Slice> payload_slices(payloads.begin(), payloads.end());
  std::mutex client_cpu_mutex;
  double client_cpu_seconds = 0;  // guarded by client_cpu_mutex
  std::vector<std::thread> threads;
  for (int s = 0; s < options.streams; ++s) {
    threads.emplace_back([&, s] {
      grpc::ChannelArguments arguments;
      arguments.SetInt("meshtel.bench.channel", s);  // one connection per client
      auto channel =
          grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments);
      const grpc::internal::RpcMethod method(kTraceMethod, grpc::internal::RpcMethod::NORMAL_RPC);
      while (!go.load()) std::this_thread::yield();
      const double thread_cpu_before = ThreadCpuSeconds();
      const Clock::time_point deadline = Clock::now() + duration;
      for (size_t n = static_cast<size_t>(s); Clock::now() < deadline; ++n) {
        grpc::ClientContext context;
        grpc::ByteBuffer request(&payload_slices[n % payload_slices.size()], 1);
        grpc::ByteBuffer response;
        const grpc::Status status =
            grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
                channel.get(), method, &context, request, &response);
        if (!status.ok()) {
          std::fprintf(stderr, "export failed: %s\n", status.error_message().c_str());
          failed.store(true);
          return;
        }
        requests.fetch_add(1, std::memory_order_relaxed);
      }
      std::lock_guard<std::mutex> lock(client_cpu_mutex);
      client_cpu_seconds += ThreadCpuSeconds() - thread_cpu_before;
    });
  }
  const double cpu_before = ProcessCpuSeconds();
  const Clock::time_point start = Clock::now();
  go.store(true);
  for (std::thread& thread : threads) thread.join();
  Row row;
  row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  row.cpu_seconds = ProcessCpuSeconds() - cpu_before;
  row.client_thread_cpu_seconds = client_cpu_seconds;
  row.what = "OTLP gRPC ingest, store.durability: " + mode;
  row.requests = requests.load();
  row.spans = row.requests * static_cast<uint64_t>(options.batch_spans);
  if (failed.load()) std::exit(1);
  if (absl::Status stopped = (*collector)->Shutdown(); !stopped.ok()) {
    std::fprintf(stderr, "shutdown: %s\n", stopped.ToString().c_str());
    std::exit(1);
  }
  collector->reset();
  std::filesystem::remove_all(data_dir);
  return row;
}

// One thread running `work` on the payloads in turn for `seconds`.
template <typename Work>
Row RunOneThread(const Options& options, const std::string& what,
                 const std::vector<std::string>& payloads, const Work& work) {
  Row row;
  row.what = what;
  const double cpu_before = ThreadCpuSeconds();
  const Clock::time_point start = Clock::now();
  const auto duration = std::chrono::duration<double>(options.seconds);
  for (size_t n = 0; Clock::now() - start < duration; ++n) {
    row.spans += work(payloads[n % payloads.size()]);
    ++row.requests;
  }
  row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  row.cpu_seconds = ThreadCpuSeconds() - cpu_before;
  return row;
}

void Print(const Row& row, const Row& ceiling) {
  std::printf("| %s | %.2f | %.0f | %.0f | %.2f | %.0f | %.3f |\n", row.what.c_str(), row.seconds,
              static_cast<double>(row.requests) / row.seconds, row.SpansPerSecond(),
              row.cpu_seconds / row.seconds, row.SpansPerCpuSecond(),
              row.SpansPerCpuSecond() / ceiling.SpansPerCpuSecond());
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string value;
    const std::string_view arg = argv[i];
    if (meshtel::bench::Flag(arg, "--dir", value)) {
      options.dir = value;
    } else if (meshtel::bench::Flag(arg, "--streams", value)) {
      options.streams = std::max(1, std::atoi(value.c_str()));
    } else if (meshtel::bench::Flag(arg, "--batch_spans", value)) {
      options.batch_spans = std::max(1, std::atoi(value.c_str()));
    } else if (meshtel::bench::Flag(arg, "--seconds", value)) {
      options.seconds = std::max(0.1, std::atof(value.c_str()));
    } else if (meshtel::bench::Flag(arg, "--modes", value)) {
      options.modes = meshtel::bench::CommaList(value);
    } else {
      std::fprintf(stderr,
                   "usage: %s --dir=DIR [--streams=4] [--batch_spans=512] [--seconds=10] "
                   "[--modes=process,fsync]\n",
                   argv[0]);
      return 2;
    }
  }
  if (options.dir.empty()) {
    std::fprintf(stderr, "--dir is required (a directory on the disk to measure)\n");
    return 2;
  }
  std::filesystem::create_directories(options.dir);
  (void)meshtel::common::SetLogLevel("warn");

  std::vector<std::string> payloads;
  for (int i = 0; i < 16; ++i) payloads.push_back(MakePayload(options.batch_spans, i));
  std::printf(
      "payload: %d spans, %zu bytes (%.0f bytes/span); %d gRPC clients; %.0f s per case; "
      "%u cores\n\n",
      options.batch_spans, payloads[0].size(),
      static_cast<double>(payloads[0].size()) / options.batch_spans, options.streams,
      options.seconds, std::thread::hardware_concurrency());

  const Row parse = RunOneThread(
      options, "ceiling: ExportTraceServiceRequest::ParseFromString", payloads,
      [](const std::string& payload) -> uint64_t {
        ExportTraceServiceRequest request;
        if (!request.ParseFromString(payload)) std::abort();
        return static_cast<uint64_t>(request.resource_spans(0).scope_spans(0).spans_size());
      });
  const Row convert =
      RunOneThread(options, "decode + convert (otlp::DecodeAndConvert), no gRPC, no store",
                   payloads, [](const std::string& payload) -> uint64_t {
                     meshtel::collector::otlp::Converted converted;
                     if (!meshtel::collector::otlp::DecodeAndConvert(
                              meshtel::collector::otlp::Signal::kTraces,
                              meshtel::collector::otlp::Encoding::kProtobuf, payload, 1, converted)
                              .ok()) {
                       std::abort();
                     }
                     return static_cast<uint64_t>(converted.records.size());
                   });
  const Row transcode =
      RunOneThread(options,
                   "transcode (otlp::TranscodeTraceRequest, the receiver's fast path), "
                   "no gRPC, no store",
                   payloads, [](const std::string& payload) -> uint64_t {
                     thread_local meshtel::collector::otlp::EncodedRecords encoded;
                     if (!meshtel::collector::otlp::TranscodeTraceRequest(payload, encoded)) {
                       std::abort();
                     }
                     return static_cast<uint64_t>(encoded.size());
                   });
  std::printf(
      "| case | seconds | requests/s | spans/s | CPU cores busy | spans per CPU-second "
      "(per core) | ratio to the parse ceiling |\n|---|---|---|---|---|---|---|\n");
  Print(parse, parse);
  Print(convert, parse);
  Print(transcode, parse);
  for (const std::string& mode : options.modes) {
    const Row ingest = RunIngest(options, mode, payloads);
    Print(ingest, parse);
    // The collector's share: the process less the client threads' own CPU (the gRPC threads the
    // clients share with the server stay counted, so this is still an upper bound).
    Row collector_share = ingest;
    collector_share.what += ", collector's CPU only (less the client threads)";
    collector_share.cpu_seconds -= ingest.client_thread_cpu_seconds;
    Print(collector_share, parse);
  }
  return 0;
}
