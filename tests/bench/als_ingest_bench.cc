// Benchmarks the Envoy ALS receiver's work per message: decode (StreamAccessLogsMessage parse),
// convert (als_converter.h) and store (Collector::Store: one RocksDB write of the records, then
// the request metrics) on an in-process Collector with the real store, for store.durability
// process and fsync. In the same run, the peer is the protobuf parse of the same bytes alone (the
// floor of any receiver), and the ratio of the two is printed. gRPC transport is not included
// (store_ingest_bench measures it for the proxies' stream). Run by hand; docs/benchmarks.md has
// the command and the recorded figures.
//
// Payload: --messages distinct messages of --entries entries each (Istio-like inbound and outbound
// HTTP entries of about 500 bytes: peers in filter_state_objects, traceparent and x-request-id
// logged), serialized once before timing. --threads threads each loop over them (as Envoy's
// per-worker streams), for --seconds per row. "entries/s/core" is entries divided by the process'
// CPU seconds (user + system, every thread: RocksDB's included); the trace pipeline is off.

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "collector/collector.h"
#include "collector/ingest/als_converter.h"
#include "collector/ingest/als_message_decoder.h"
#include "envoy/service/accesslog/v3/als.pb.h"
#include "fmt/format.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/struct.pb.h"
#include "tests/bench/bench_flags.h"

namespace {

using envoy::service::accesslog::v3::StreamAccessLogsMessage;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string dir = std::filesystem::temp_directory_path().string();
  int threads = 2;
  int entries = 50;
  int messages = 64;
  double seconds = 5;
  std::string rows = "parse,protobuf,convert,process,fsync";  // which rows to run
};

bool Wanted(const Options& options, const std::string& row) {
  const std::string list = "," + options.rows + ",";
  return list.find("," + row + ",") != std::string::npos;
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

void SetString(google::protobuf::Struct& s, const std::string& key, const std::string& value) {
  (*s.mutable_fields())[key].set_string_value(value);
}

std::string Message(int index, int entries) {
  StreamAccessLogsMessage message;
  auto& identifier = *message.mutable_identifier();
  identifier.set_log_name("http_envoy_accesslog");
  auto& metadata = *identifier.mutable_node()->mutable_metadata();
  SetString(metadata, "NAME", "reviews-v1-7f9c");
  SetString(metadata, "NAMESPACE", "shop");
  SetString(metadata, "WORKLOAD_NAME", "reviews-v1");
  SetString(metadata, "CLUSTER_ID", "cluster-1");
  auto& labels = *(*metadata.mutable_fields())["LABELS"].mutable_struct_value();
  SetString(labels, "app", "reviews");
  SetString(labels, "version", "v1");
  static const char* kPeers[] = {"productpage-v1", "ratings-v1", "details-v1", "gateway"};
  for (int i = 0; i < entries; ++i) {
    const int n = index * entries + i;
    auto& entry = *message.mutable_http_logs()->add_log_entry();
    entry.set_protocol_version(envoy::data::accesslog::v3::HTTPAccessLogEntry::HTTP11);
    auto& common = *entry.mutable_common_properties();
    common.mutable_start_time()->set_seconds(1'764'600'000 + n / 1000);
    common.mutable_start_time()->set_nanos((n % 1000) * 1'000'000);
    common.mutable_time_to_last_rx_byte()->set_nanos(200'000);
    common.mutable_time_to_first_upstream_tx_byte()->set_nanos(300'000);
    common.mutable_time_to_last_upstream_tx_byte()->set_nanos(350'000);
    common.mutable_time_to_first_upstream_rx_byte()->set_nanos(4'000'000 + n % 997 * 1000);
    common.mutable_time_to_last_upstream_rx_byte()->set_nanos(4'500'000 + n % 997 * 1000);
    common.mutable_time_to_last_downstream_tx_byte()->set_nanos(4'600'000 + n % 997 * 1000);
    common.mutable_duration()->set_nanos(4'700'000 + n % 997 * 1000);
    const bool inbound = n % 2 == 0;
    common.set_upstream_cluster(inbound ? "inbound|9080||"
                                        : "outbound|9080||ratings.shop.svc.cluster.local");
    auto* remote = common.mutable_downstream_remote_address()->mutable_socket_address();
    remote->set_address("10.0.1." + std::to_string(n % 200));
    remote->set_port_value(static_cast<uint32_t>(30000 + n % 30000));
    auto* local = common.mutable_downstream_local_address()->mutable_socket_address();
    local->set_address("10.0.2.7");
    local->set_port_value(9080);
    auto* upstream = common.mutable_upstream_remote_address()->mutable_socket_address();
    upstream->set_address(inbound ? "127.0.0.1" : "10.0.3.9");
    upstream->set_port_value(9080);
    common.set_route_name("default");
    common.set_downstream_wire_bytes_received(400 + static_cast<uint64_t>(n % 100));
    common.set_downstream_wire_bytes_sent(1200 + static_cast<uint64_t>(n % 1000));
    google::protobuf::Struct peer;
    SetString(peer, "workload", kPeers[n % 4]);
    SetString(peer, "namespace", "shop");
    SetString(peer, "app",
              std::string(kPeers[n % 4]).substr(0, std::string(kPeers[n % 4]).find('-')));
    SetString(peer, "version", "v1");
    SetString(peer, "cluster", "cluster-1");
    (*common.mutable_filter_state_objects())[inbound ? "downstream_peer" : "upstream_peer"]
        .PackFrom(peer);
    auto& request = *entry.mutable_request();
    request.set_request_method(envoy::config::core::v3::GET);
    request.set_scheme("http");
    request.set_authority(inbound ? "reviews.shop.svc.cluster.local:9080" : "ratings:9080");
    request.set_path("/reviews/" + std::to_string(n % 5000));
    request.set_user_agent("Mozilla/5.0 (X11; Linux x86_64)");
    request.set_request_id(fmt::format("{:08x}-6d1c-4b2e-9a77-{:012x}", n, n * 7919));
    (*request.mutable_request_headers())["traceparent"] =
        fmt::format("00-{:016x}{:016x}-{:016x}-01", n + 1, n * 31 + 1, n * 17 + 1);
    request.set_request_headers_bytes(380);
    auto& response = *entry.mutable_response();
    response.mutable_response_code()->set_value(n % 50 == 0 ? 503 : 200);
    response.set_response_code_details("via_upstream");
    response.set_response_headers_bytes(150);
    response.set_response_body_bytes(1000);
  }
  return message.SerializeAsString();
}

struct Row {
  std::string what;
  uint64_t entries = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  double cpu_seconds = 0;
  double PerSecond() const { return static_cast<double>(entries) / seconds; }
  double PerCore() const { return static_cast<double>(entries) / cpu_seconds; }
};

// kConvertWithProtobuf: the message decoded by protobuf and converted (ConvertAlsMessage), the
// receiver's path before the wire decoder and its path for irregular messages. kConvert and
// kStore decode with AlsStreamDecoder, as the receiver does.
enum class Stage { kParse, kConvertWithProtobuf, kConvert, kStore };

Row Run(const Options& options, const std::vector<std::string>& payload, Stage stage,
        meshtel::collector::ReceivedRecordSink* sink, const std::string& what) {
  std::atomic<uint64_t> entries{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<bool> failed{false};
  const auto duration =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.seconds));
  const double cpu_before = CpuSeconds();
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < options.threads; ++t) {
    threads.emplace_back([&, t] {
      // As the server: one arena per stream, reset per message, its first block reused.
      std::vector<char> first_block(256 << 10);
      google::protobuf::ArenaOptions arena_options;
      arena_options.initial_block = first_block.data();
      arena_options.initial_block_size = first_block.size();
      google::protobuf::Arena arena(arena_options);
      std::optional<meshtel::collector::AlsNodeIdentity> node;
      meshtel::collector::AlsStreamDecoder decoder;
      google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>
          records;  // reused, as the server
      uint64_t my_entries = 0;
      uint64_t my_bytes = 0;
      for (size_t i = static_cast<size_t>(t); Clock::now() - start < duration; ++i) {
        const std::string& bytes_in = payload[i % payload.size()];
        arena.Reset();
        my_bytes += bytes_in.size();
        meshtel::collector::AlsConversion conversion;
        if (stage == Stage::kParse || stage == Stage::kConvertWithProtobuf) {
          auto& message = *google::protobuf::Arena::CreateMessage<StreamAccessLogsMessage>(&arena);
          if (!message.ParseFromArray(bytes_in.data(), static_cast<int>(bytes_in.size()))) {
            failed = true;
            return;
          }
          if (stage == Stage::kParse) {
            my_entries += static_cast<uint64_t>(message.http_logs().log_entry_size());
            continue;
          }
          if (!node) {
            node = meshtel::collector::AlsNodeIdentity::FromIdentifier(message.identifier());
          }
          records.Clear();
          conversion = meshtel::collector::ConvertAlsMessage(message, *node, records);
        } else if (decoder.Decode(bytes_in, arena, records, conversion) !=
                   meshtel::collector::AlsStreamDecoder::Outcome::kOk) {
          failed = true;
          return;
        }
        if (stage == Stage::kStore && !sink->Store(records).ok()) {
          failed = true;
          return;
        }
        my_entries += conversion.converted;
      }
      if (decoder.paths().protobuf_entries + decoder.paths().protobuf_messages > 0) {
        std::fprintf(stderr, "%s: %lu entries and %lu messages took the protobuf path\n",
                     what.c_str(), static_cast<unsigned long>(decoder.paths().protobuf_entries),
                     static_cast<unsigned long>(decoder.paths().protobuf_messages));
        failed = true;
        return;
      }
      entries += my_entries;
      bytes += my_bytes;
    });
  }
  for (std::thread& thread : threads) thread.join();
  Row row;
  row.what = what;
  row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  row.cpu_seconds = CpuSeconds() - cpu_before;
  row.entries = entries;
  row.bytes = bytes;
  if (failed) {
    std::fprintf(stderr, "%s: a parse or store failed\n", what.c_str());
    std::exit(1);
  }
  return row;
}

Row RunStore(const Options& options, const std::vector<std::string>& payload,
             const std::string& durability) {
  const std::string data_dir = options.dir + "/als-bench-" + durability;
  std::filesystem::remove_all(data_dir);
  meshtel::collector::CollectorConfig config;
  config.ingest.listen = meshtel::common::HostPort{"127.0.0.1", 0};
  config.admin.listen = meshtel::common::HostPort{"127.0.0.1", 0};
  config.store.data_dir = data_dir;
  config.store.durability = durability;
  config.traces.enabled = false;
  auto collector = meshtel::collector::Collector::Start(config);
  if (!collector.ok()) {
    std::fprintf(stderr, "collector: %s\n", collector.status().ToString().c_str());
    std::exit(1);
  }
  Row row = Run(options, payload, Stage::kStore, collector->get(),
                "decode + convert + store, durability " + durability);
  if (absl::Status stopped = (*collector)->Shutdown(); !stopped.ok()) {
    std::fprintf(stderr, "shutdown: %s\n", stopped.ToString().c_str());
    std::exit(1);
  }
  collector->reset();
  std::filesystem::remove_all(data_dir);
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string value;
    if (meshtel::bench::Flag(arg, "--dir", value)) {
      options.dir = value;
    } else if (meshtel::bench::Flag(arg, "--threads", value)) {
      options.threads = std::max(1, std::atoi(value.c_str()));
    } else if (meshtel::bench::Flag(arg, "--entries", value)) {
      options.entries = std::max(1, std::atoi(value.c_str()));
    } else if (meshtel::bench::Flag(arg, "--messages", value)) {
      options.messages = std::max(1, std::atoi(value.c_str()));
    } else if (meshtel::bench::Flag(arg, "--seconds", value)) {
      options.seconds = std::atof(value.c_str());
    } else if (meshtel::bench::Flag(arg, "--rows", value)) {
      options.rows = value;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--dir=DIR] [--threads=N] [--entries=N] [--messages=N] "
                   "[--seconds=S] [--rows=parse,protobuf,convert,process,fsync]\n",
                   argv[0]);
      return 2;
    }
  }
  std::vector<std::string> payload;
  uint64_t payload_bytes = 0;
  for (int i = 0; i < options.messages; ++i) {
    payload.push_back(Message(i, options.entries));
    payload_bytes += payload.back().size();
  }
  std::printf(
      "payload: %d messages x %d entries, %.0f bytes per entry; %d threads, %.1fs per row\n",
      options.messages, options.entries,
      static_cast<double>(payload_bytes) / (options.messages * options.entries), options.threads,
      options.seconds);
  std::vector<Row> rows;
  if (Wanted(options, "parse")) {
    rows.push_back(Run(options, payload, Stage::kParse, nullptr, "protobuf parse only (peer)"));
  }
  if (Wanted(options, "protobuf")) {
    rows.push_back(Run(options, payload, Stage::kConvertWithProtobuf, nullptr,
                       "decode + convert, protobuf path"));
  }
  if (Wanted(options, "convert")) {
    rows.push_back(Run(options, payload, Stage::kConvert, nullptr, "decode + convert"));
  }
  if (Wanted(options, "process")) rows.push_back(RunStore(options, payload, "process"));
  if (Wanted(options, "fsync")) rows.push_back(RunStore(options, payload, "fsync"));
  if (rows.empty()) return 0;
  const double peer = rows.front().PerCore();
  std::printf("%-44s %14s %16s %10s %12s\n", "what", "entries/s", "entries/s/core", "MiB/s",
              "vs parse");
  for (const Row& row : rows) {
    std::printf("%-44s %14.0f %16.0f %10.1f %11.1f%%\n", row.what.c_str(), row.PerSecond(),
                row.PerCore(), static_cast<double>(row.bytes) / (1 << 20) / row.seconds,
                100.0 * row.PerCore() / peer);
  }
  return 0;
}
