// Benchmarks export throughput: the real DeliveryEngine with the real Loki and Fluentd exporters
// (exporters::BuildExporter, default batch settings: 1000 records or 1 MiB per payload) delivering
// a pre-filled RecordStore to the test receivers on loopback, in-process. Run by hand;
// docs/benchmarks.md has the command and the recorded figures.
//
// The store is filled once (--records records of about 300–500 bytes, tests/bench/bench_records.h)
// and every case delivers all of it from the start with an exporter of a new name (so a new
// cursor). A case's time runs from DeliveryEngine::Start to the moment the engine reports every
// record delivered (polled every 2 ms): a Loki push counts once the receiver answered 204, a
// Fluentd payload once the receiver acked its chunk, so the receiver has every line by then.
// Afterwards the receivers' contents are checked (every line there, nothing it could not decode).
//
// Cases (--cases, in this order by default):
//   loki       LokiReceiver (tests/support): decodes every push with the project's schema and
//              counts its lines, keeping no push (LokiReceiver::Options::keep_pushes false); the
//              1st, (N+1)th, (2N+1)th... push is also decoded with the official Loki schema when
//              ../shared has it and compared field by field (--official_check_every=N, default
//              10; 1 checks every push, as the tests do, at about twice the receiver's CPU);
//   loki-bare  the same exporter against a TestHttpServer that answers 204 without decoding: the
//              exporter's rate with the receiver's work taken out;
//   fluentd    FluentdReceiver (tests/support): checks every event ([time, map], each value
//              well-formed msgpack) and counts it, keeping none (FluentdReceiver::Options::
//              keep_events false), acks each chunk;
//   both       loki and fluentd at once (two delivery threads): each one's own rate.
// For each case the CPU time of each thread started for it is read from /proc/self/task, so the
// table says how busy the receiver's thread and the delivery threads were (a thread near 100 % of
// the wall time bounds the case) and how much CPU each needed per line (the steadier figure on a
// loaded machine).
//
//   isolation  (not in the default list; needs no filled store) what a stalled Fluentd costs the
//              others: an in-process Collector (gRPC ingest, store, delivery engine) with a Loki
//              exporter (to an HTTP server answering 204 without decoding) and a Fluentd exporter,
//              fed by --isolation_streams gRPC streams (batches of --batch_records,
//              tests/bench/bench_ingest.h) for --isolation_seconds, as fast as they are acked or,
//              with --isolation_rate, at that many records/s in all (a steady load). Each round
//              runs it twice on a new store: Fluentd healthy (FluentdReceiver acking every chunk)
//              and Fluentd stalled (a FluentdReceiver that accepts the connection and reads but
//              never answers); the order alternates between rounds. Measured over the window:
//              ingest records/s (acked) and Loki lines/s (delivered); reported per round with the
//              ratio stalled / healthy, and the medians over --isolation_rounds rounds.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "collector/collector.h"
#include "collector/common/program.h"
#include "collector/config/collector_config.h"
#include "collector/delivery/delivery_engine.h"
#include "collector/store/record_store.h"
#include "exporters/exporter_registry.h"
#include "fmt/format.h"
#include "meshtel/v1/record.pb.h"
#include "prometheus/registry.h"
#include "tests/bench/bench_flags.h"
#include "tests/bench/bench_ingest.h"
#include "tests/bench/bench_records.h"
#include "tests/support/fluentd_receiver.h"
#include "tests/support/loki_receiver.h"
#include "tests/support/test_http_server.h"
#include "yaml-cpp/yaml.h"

namespace {

namespace collector = meshtel::collector;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string dir;
  uint64_t records = 500'000;
  std::vector<std::string> cases = {"loki", "loki-bare", "fluentd", "both"};
  std::string fluentd_format = "fields";
  // The isolation case.
  double isolation_seconds = 5;
  int isolation_rounds = 3;
  int isolation_streams = 2;
  int batch_records = 500;
  uint64_t official_check_every = 10;
  double isolation_rate = 0;  // records/s over all streams; 0: each batch after the last ack
  std::string isolation_durability = "process";
};

// CPU seconds (user + system) of each thread of this process, by thread id.
std::map<int, double> ThreadCpu() {
  std::map<int, double> cpu;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream file(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(paren + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i == 14) utime = std::atof(field.c_str());
      if (i == 15) stime = std::atof(field.c_str());
    }
    cpu[std::atoi(entry.path().filename().c_str())] = (utime + stime) / tick;
  }
  return cpu;
}

std::set<int> Tids() {
  std::set<int> tids;
  for (const auto& [tid, cpu] : ThreadCpu()) tids.insert(tid);
  return tids;
}

// CPU seconds of the threads in `now` that are in `only` (all when null) and not in `before`,
// largest first.
std::vector<double> ThreadsCpu(const std::set<int>& before, const std::set<int>* only,
                               const std::map<int, double>& now) {
  std::vector<double> cpu;
  for (const auto& [tid, seconds] : now) {
    if (!before.count(tid) && (only == nullptr || only->count(tid))) cpu.push_back(seconds);
  }
  std::sort(cpu.rbegin(), cpu.rend());
  return cpu;
}

std::string Percentages(const std::vector<double>& cpu, double wall) {
  std::string text;
  for (double seconds : cpu) {
    if (seconds < 0.01 * wall) continue;
    text += fmt::format("{}{:.0f} %", text.empty() ? "" : ", ", 100 * seconds / wall);
  }
  return text.empty() ? "< 1 %" : text;
}

// CPU µs per line of each thread that was busy at least 1 % of the wall time.
std::string MicrosPerLine(const std::vector<double>& cpu, double wall, uint64_t lines) {
  std::string text;
  for (double seconds : cpu) {
    if (seconds < 0.01 * wall) continue;
    text += fmt::format("{}{:.2f} µs", text.empty() ? "" : ", ",
                        1e6 * seconds / static_cast<double>(lines));
  }
  return text.empty() ? "(idle)" : text;
}

void Fill(const Options& options) {
  std::filesystem::remove_all(options.dir);
  prometheus::Registry registry;
  collector::StoreConfig config;
  config.data_dir = options.dir;
  config.durability = "process";
  auto store = collector::RecordStore::Open(config, registry);
  if (!store.ok()) {
    std::fprintf(stderr, "store: %s\n", store.status().ToString().c_str());
    std::exit(1);
  }
  const std::vector<meshtel::v1::RequestRecord> pool = meshtel::bench::MakeMeshRecords(5000, 11);
  uint64_t bytes = 0;
  uint64_t sequence = 0;
  for (uint64_t stored = 0; stored < options.records;) {
    meshtel::v1::RecordBatch batch;
    batch.set_proxy_instance_id("bench-fill");
    batch.set_sequence(++sequence);
    for (int i = 0; i < 1000 && stored < options.records; ++i, ++stored) {
      const auto& record = pool[stored % pool.size()];
      bytes += record.ByteSizeLong();
      *batch.add_records() = record;
    }
    collector::InstanceProgress progress;
    progress.highest_sequence = sequence;
    if (absl::Status appended = (*store)->AppendBatch(batch, progress); !appended.ok()) {
      std::fprintf(stderr, "append: %s\n", appended.ToString().c_str());
      std::exit(1);
    }
  }
  if (absl::Status closed = (*store)->Close(); !closed.ok()) {
    std::fprintf(stderr, "close: %s\n", closed.ToString().c_str());
    std::exit(1);
  }
  std::printf("store: %" PRIu64 " records, %.1f MiB of record bytes (mean %.0f bytes), in %s\n",
              options.records, static_cast<double>(bytes) / (1 << 20),
              static_cast<double>(bytes) / static_cast<double>(options.records),
              options.dir.c_str());
}

collector::ExporterConfig ExporterEntry(const std::string& name, const std::string& type,
                                        const std::string& settings) {
  collector::ExporterConfig config;
  config.name = name;
  config.type = type;
  config.settings = YAML::Load(settings);
  config.settings_path = "exporters[" + name + "]." + type;
  return config;
}

struct Target {
  collector::ExporterConfig config;
  std::string label;
};

struct Measured {
  std::string label;
  double seconds = 0;
  uint64_t delivered = 0;
};

// Delivers the whole store to `targets` at once; returns each one's time to its last record.
std::vector<Measured> Deliver(const Options& options, const std::vector<Target>& targets,
                              const std::set<int>& before_receivers, const std::string& case_name) {
  std::set<int> receiver_threads;  // started by the receivers' constructors
  for (int tid : Tids()) {
    if (!before_receivers.count(tid)) receiver_threads.insert(tid);
  }
  prometheus::Registry registry;
  collector::StoreConfig store_config;
  store_config.data_dir = options.dir;
  store_config.durability = "process";
  auto store = collector::RecordStore::Open(store_config, registry);
  if (!store.ok()) {
    std::fprintf(stderr, "store: %s\n", store.status().ToString().c_str());
    std::exit(1);
  }
  auto line_format = collector::AccessLogConfig{}.Compile();
  if (!line_format.ok()) std::exit(1);
  std::vector<collector::DeliveryTarget> delivery_targets;
  for (const Target& target : targets) {
    auto exporter = meshtel::exporters::BuildExporter(target.config, *line_format, registry);
    if (!exporter.ok()) {
      std::fprintf(stderr, "exporter: %s\n", exporter.status().ToString().c_str());
      std::exit(1);
    }
    delivery_targets.push_back(
        collector::DeliveryTarget{*std::move(exporter), target.config.batch, target.config.retry});
  }
  const std::set<int> before_engine = Tids();
  std::vector<Measured> measured(targets.size());
  collector::DeliveryEngine engine(**store, registry);
  const Clock::time_point start = Clock::now();
  if (absl::Status started = engine.Start(std::move(delivery_targets)); !started.ok()) {
    std::fprintf(stderr, "engine: %s\n", started.ToString().c_str());
    std::exit(1);
  }
  const Clock::time_point give_up = start + std::chrono::minutes(10);
  for (size_t done = 0; done < targets.size();) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const Clock::time_point now = Clock::now();
    if (now > give_up) {
      std::fprintf(stderr, "%s: not delivered after 10 min\n", case_name.c_str());
      std::exit(1);
    }
    done = 0;
    for (const collector::DeliveryStatus& status : engine.statuses()) {
      for (size_t i = 0; i < targets.size(); ++i) {
        if (targets[i].config.name != status.name) continue;
        if (status.rejected != 0) {
          std::fprintf(stderr, "%s: %" PRIu64 " rejected: %s\n", status.name.c_str(),
                       status.rejected, status.last_error.c_str());
          std::exit(1);
        }
        if (measured[i].seconds == 0 && status.delivered >= options.records) {
          measured[i].seconds = std::chrono::duration<double>(now - start).count();
          measured[i].delivered = status.delivered;
        }
        if (measured[i].seconds != 0) ++done;
      }
    }
  }
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  const std::map<int, double> cpu = ThreadCpu();
  const std::vector<double> receiver_cpu = ThreadsCpu({}, &receiver_threads, cpu);
  const std::vector<double> engine_cpu = ThreadsCpu(before_engine, nullptr, cpu);
  engine.Stop();
  for (size_t i = 0; i < targets.size(); ++i) measured[i].label = targets[i].label;
  std::printf("  %s: receiver threads busy %s of the %.2f s; delivery threads %s\n",
              case_name.c_str(), Percentages(receiver_cpu, wall).c_str(), wall,
              Percentages(engine_cpu, wall).c_str());
  std::printf("  %s: CPU per line: receiver threads %s; delivery threads %s\n", case_name.c_str(),
              MicrosPerLine(receiver_cpu, wall, options.records).c_str(),
              MicrosPerLine(engine_cpu, wall, options.records).c_str());
  return measured;
}

std::string LokiSettings(const std::string& url) { return "{url: \"" + url + "\", timeout: 30s}"; }

std::string FluentdSettings(uint16_t port, const std::string& format) {
  return fmt::format("{{address: \"127.0.0.1:{}\", timeout: 30s, record_format: {}}}", port,
                     format);
}

// Every line reached the Loki receiver, decoded alike by both schemas.
std::string CheckLoki(const meshtel::testing::LokiReceiver& receiver, uint64_t expected) {
  const meshtel::testing::LokiSummary summary = receiver.Summary();
  if (summary.decode_errors != 0) return "decode error: " + summary.first_decode_error;
  if (summary.mismatched != 0) return "official: " + summary.first_mismatch;
  if (summary.lines != expected)
    return fmt::format("{} lines at the receiver, {} expected", summary.lines, expected);
  return fmt::format("ok ({} lines, {} pushes, {} checked with the official schema)", summary.lines,
                     summary.pushes, summary.official_checked);
}

// The test receivers as the benchmark runs them: checking and counting, keeping nothing.
meshtel::testing::LokiReceiver::Options CountingLoki(const Options& bench) {
  meshtel::testing::LokiReceiver::Options options;
  options.keep_pushes = false;
  options.official_check_every = bench.official_check_every;
  return options;
}

meshtel::testing::FluentdReceiver::Options CountingFluentd() {
  meshtel::testing::FluentdReceiver::Options options;
  options.keep_events = false;
  return options;
}

std::string CheckFluentd(const meshtel::testing::FluentdReceiver& receiver, uint64_t expected) {
  if (!receiver.errors().empty()) return "receiver error: " + receiver.errors()[0];
  const size_t events = receiver.event_count();
  if (events != expected)
    return fmt::format("{} events at the receiver, {} expected", events, expected);
  return fmt::format("ok ({} events, {} requests)", events, receiver.requests().size());
}

// One run of the isolation case: what the window measured.
struct IsolationRun {
  double seconds = 0;
  uint64_t ingested = 0;        // records acked to the streams
  uint64_t loki_delivered = 0;  // by the end of the window
  uint64_t fluentd_delivered = 0;
  double IngestRate() const { return static_cast<double>(ingested) / seconds; }
  double LokiRate() const { return static_cast<double>(loki_delivered) / seconds; }
};

IsolationRun RunIsolation(const Options& options, bool fluentd_stalled,
                          const std::vector<std::vector<meshtel::bench::RecordBlock>>& blocks) {
  const std::string data_dir = options.dir + "/isolation";
  std::filesystem::remove_all(data_dir);
  meshtel::testing::TestHttpServer loki(
      [](const meshtel::testing::TestHttpRequest&) { return meshtel::testing::TestHttpReply{}; });
  meshtel::testing::FluentdReceiver fluentd;
  if (fluentd_stalled) fluentd.set_ack_mode(meshtel::testing::FluentdReceiver::AckMode::kNoAck);
  collector::CollectorConfig config;
  config.log_level = "warn";
  config.ingest.listen = meshtel::common::HostPort{"127.0.0.1", 0};
  config.admin.listen = meshtel::common::HostPort{"127.0.0.1", 0};
  config.admin.token = "bench";  // (no warning about an open admin API)
  config.store.data_dir = data_dir;
  config.store.durability = options.isolation_durability;
  config.exporters.push_back(ExporterEntry(
      "loki", "loki",
      LokiSettings(fmt::format("http://127.0.0.1:{}/loki/api/v1/push", loki.port()))));
  config.exporters.push_back(
      ExporterEntry("fluentd", "fluentd",
                    fmt::format("{{address: \"127.0.0.1:{}\", timeout: 2s, record_format: {}}}",
                                fluentd.port(), options.fluentd_format)));
  if (absl::Status valid = config.Validate(); !valid.ok()) {
    std::fprintf(stderr, "config: %s\n", valid.ToString().c_str());
    std::exit(1);
  }
  auto collector = collector::Collector::Start(config, &meshtel::exporters::BuildExporter);
  if (!collector.ok()) {
    std::fprintf(stderr, "collector: %s\n", collector.status().ToString().c_str());
    std::exit(1);
  }
  std::vector<meshtel::bench::StreamResult> results(static_cast<size_t>(options.isolation_streams));
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline =
      start + std::chrono::duration_cast<Clock::duration>(
                  std::chrono::duration<double>(options.isolation_seconds));
  for (int i = 0; i < options.isolation_streams; ++i) {
    threads.emplace_back(
        meshtel::bench::RunStream, (*collector)->ingest_port(), i,
        std::cref(blocks[static_cast<size_t>(i)]), options.batch_records, std::cref(go), deadline,
        std::ref(results[static_cast<size_t>(i)]),
        options.isolation_rate / options.batch_records / options.isolation_streams);
  }
  go.store(true);
  for (std::thread& thread : threads) thread.join();
  IsolationRun run;
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (const collector::DeliveryStatus& status : (*collector)->exporter_statuses()) {
    if (status.name == "loki") run.loki_delivered = status.delivered;
    if (status.name == "fluentd") run.fluentd_delivered = status.delivered;
  }
  for (const meshtel::bench::StreamResult& result : results) {
    if (!result.error.empty()) {
      std::fprintf(stderr, "ingest stream failed: %s\n", result.error.c_str());
      std::exit(1);
    }
    run.ingested += result.records;
  }
  if (absl::Status stopped = (*collector)->Shutdown(); !stopped.ok()) {
    std::fprintf(stderr, "shutdown: %s\n", stopped.ToString().c_str());
    std::exit(1);
  }
  collector->reset();
  std::filesystem::remove_all(data_dir);
  return run;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

void Isolation(const Options& options) {
  const std::vector<meshtel::v1::RequestRecord> records = meshtel::bench::MakeMeshRecords(4000, 7);
  std::vector<std::vector<meshtel::bench::RecordBlock>> blocks;
  for (int i = 0; i < options.isolation_streams; ++i) {
    blocks.push_back(meshtel::bench::MakeBlocks(records, options.batch_records,
                                                static_cast<size_t>(i) * 997, 4));
  }
  std::printf(
      "\nisolation: %d gRPC streams, %d records per batch, %s, %.0f s per run, durability %s, "
      "%d rounds\n\n",
      options.isolation_streams, options.batch_records,
      options.isolation_rate > 0 ? fmt::format("{:.0f} records/s", options.isolation_rate).c_str()
                                 : "each batch after the last ack",
      options.isolation_seconds, options.isolation_durability.c_str(), options.isolation_rounds);
  std::printf(
      "| Round | Fluentd | ingest records/s | Loki lines/s | Loki behind (ingested − delivered) "
      "| Fluentd delivered | Fluentd behind |\n|---|---|---|---|---|---|---|\n");
  std::vector<double> ingest_ratios, loki_ratios, healthy_ingest, stalled_ingest, healthy_loki,
      stalled_loki;
  for (int round = 1; round <= options.isolation_rounds; ++round) {
    IsolationRun healthy, stalled;
    for (bool stall :
         round % 2 == 1 ? std::vector<bool>{false, true} : std::vector<bool>{true, false}) {
      const IsolationRun run = RunIsolation(options, stall, blocks);
      std::printf("| %d | %s | %.0f | %.0f | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " |\n", round,
                  stall ? "stalled (accepts, never answers)" : "healthy (acks)", run.IngestRate(),
                  run.LokiRate(), run.ingested - std::min(run.ingested, run.loki_delivered),
                  run.fluentd_delivered, run.ingested - run.fluentd_delivered);
      std::fflush(stdout);
      (stall ? stalled : healthy) = run;
    }
    healthy_ingest.push_back(healthy.IngestRate());
    stalled_ingest.push_back(stalled.IngestRate());
    healthy_loki.push_back(healthy.LokiRate());
    stalled_loki.push_back(stalled.LokiRate());
    ingest_ratios.push_back(stalled.IngestRate() / healthy.IngestRate());
    loki_ratios.push_back(stalled.LokiRate() / healthy.LokiRate());
  }
  std::printf("\n| Round | ingest stalled / healthy | Loki stalled / healthy |\n|---|---|---|\n");
  for (size_t i = 0; i < ingest_ratios.size(); ++i) {
    std::printf("| %zu | %.3f | %.3f |\n", i + 1, ingest_ratios[i], loki_ratios[i]);
  }
  std::printf("| **median** | **%.3f** | **%.3f** |\n", Median(ingest_ratios), Median(loki_ratios));
  std::printf(
      "\nmedians: ingest %.0f records/s healthy, %.0f stalled; Loki %.0f lines/s healthy, %.0f "
      "stalled\n",
      Median(healthy_ingest), Median(stalled_ingest), Median(healthy_loki), Median(stalled_loki));
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string value;
    const std::string_view arg = argv[i];
    if (meshtel::bench::Flag(arg, "--dir", value)) {
      options.dir = value;
    } else if (meshtel::bench::Flag(arg, "--official_check_every", value)) {
      options.official_check_every =
          std::max<uint64_t>(1, std::strtoull(value.c_str(), nullptr, 10));
    } else if (meshtel::bench::Flag(arg, "--records", value)) {
      options.records = std::max<uint64_t>(1, std::strtoull(value.c_str(), nullptr, 10));
    } else if (meshtel::bench::Flag(arg, "--fluentd_format", value)) {
      options.fluentd_format = value;
    } else if (meshtel::bench::Flag(arg, "--cases", value)) {
      options.cases = meshtel::bench::CommaList(value);
    } else if (meshtel::bench::Flag(arg, "--isolation_seconds", value)) {
      options.isolation_seconds = std::max(0.5, std::atof(value.c_str()));
    } else if (meshtel::bench::Flag(arg, "--isolation_rounds", value)) {
      options.isolation_rounds = std::max(1, std::atoi(value.c_str()));
    } else if (meshtel::bench::Flag(arg, "--isolation_streams", value)) {
      options.isolation_streams = std::max(1, std::atoi(value.c_str()));
    } else if (meshtel::bench::Flag(arg, "--batch_records", value)) {
      options.batch_records = std::max(1, std::atoi(value.c_str()));
    } else if (meshtel::bench::Flag(arg, "--isolation_rate", value)) {
      options.isolation_rate = std::max(0.0, std::atof(value.c_str()));
    } else if (meshtel::bench::Flag(arg, "--isolation_durability", value)) {
      options.isolation_durability = value;
    } else {
      std::fprintf(stderr,
                   "usage: %s --dir=DIR [--records=500000] [--fluentd_format=fields|line] "
                   "[--official_check_every=10] "
                   "[--cases=loki,loki-bare,fluentd,both,isolation] [--isolation_seconds=5] "
                   "[--isolation_rounds=3] [--isolation_streams=2] [--batch_records=500] "
                   "[--isolation_rate=0 (records/s; 0: as fast as acked)] "
                   "[--isolation_durability=process|fsync]\n",
                   argv[0]);
      return 2;
    }
  }
  if (options.dir.empty()) {
    std::fprintf(stderr, "--dir is required (the store's data directory; it is deleted)\n");
    return 2;
  }
  (void)meshtel::common::SetLogLevel("warn");  // as meshtel-collector does with log_level: warn
  const std::string official = meshtel::testing::OfficialLokiSchemaUnavailableReason();
  std::printf("official Loki schema in the receiver: %s\n",
              official.empty() ? "used" : ("not used: " + official).c_str());
  const bool delivery_cases =
      std::any_of(options.cases.begin(), options.cases.end(),
                  [](const std::string& name) { return name != "isolation"; });
  if (delivery_cases) Fill(options);

  struct Line {
    std::string label;
    double seconds;
    uint64_t records;
    std::string check;
  };
  std::vector<Line> lines;
  int run = 0;
  for (const std::string& case_name : options.cases) {
    ++run;
    const std::set<int> before_receivers = Tids();
    const std::string suffix = std::to_string(run);
    if (case_name == "loki") {
      meshtel::testing::LokiReceiver loki(CountingLoki(options));
      const auto measured = Deliver(
          options, {{ExporterEntry("loki-" + suffix, "loki", LokiSettings(loki.url())), "loki"}},
          before_receivers, case_name);
      lines.push_back({"Loki → LokiReceiver", measured[0].seconds, measured[0].delivered,
                       CheckLoki(loki, options.records)});
    } else if (case_name == "loki-bare") {
      meshtel::testing::TestHttpServer bare([](const meshtel::testing::TestHttpRequest&) {
        return meshtel::testing::TestHttpReply{};
      });
      const std::string url = fmt::format("http://127.0.0.1:{}/loki/api/v1/push", bare.port());
      const auto measured =
          Deliver(options, {{ExporterEntry("loki-" + suffix, "loki", LokiSettings(url)), "loki"}},
                  before_receivers, case_name);
      lines.push_back({"Loki → HTTP server answering 204, no decoding", measured[0].seconds,
                       measured[0].delivered, "not checked (nothing decoded)"});
    } else if (case_name == "fluentd") {
      meshtel::testing::FluentdReceiver fluentd(CountingFluentd());
      const auto measured =
          Deliver(options,
                  {{ExporterEntry("fluentd-" + suffix, "fluentd",
                                  FluentdSettings(fluentd.port(), options.fluentd_format)),
                    "fluentd"}},
                  before_receivers, case_name);
      lines.push_back({"Fluentd (record_format " + options.fluentd_format + ") → FluentdReceiver",
                       measured[0].seconds, measured[0].delivered,
                       CheckFluentd(fluentd, options.records)});
    } else if (case_name == "both") {
      meshtel::testing::LokiReceiver loki(CountingLoki(options));
      meshtel::testing::FluentdReceiver fluentd(CountingFluentd());
      const auto measured =
          Deliver(options,
                  {{ExporterEntry("loki-" + suffix, "loki", LokiSettings(loki.url())), "loki"},
                   {ExporterEntry("fluentd-" + suffix, "fluentd",
                                  FluentdSettings(fluentd.port(), options.fluentd_format)),
                    "fluentd"}},
                  before_receivers, case_name);
      lines.push_back({"both at once: Loki → LokiReceiver", measured[0].seconds,
                       measured[0].delivered, CheckLoki(loki, options.records)});
      lines.push_back({"both at once: Fluentd → FluentdReceiver", measured[1].seconds,
                       measured[1].delivered, CheckFluentd(fluentd, options.records)});
    } else if (case_name == "isolation") {
      continue;  // after the table of the delivery cases
    } else {
      std::fprintf(stderr, "unknown case %s\n", case_name.c_str());
      return 2;
    }
  }
  if (!delivery_cases) {
    Isolation(options);
    std::filesystem::remove_all(options.dir);
    return 0;
  }
  std::printf("\n| Case | records | s to the last record | lines/s | receiver's check |\n");
  std::printf("|---|---|---|---|---|\n");
  for (const Line& line : lines) {
    std::printf("| %s | %" PRIu64 " | %.2f | %.0f | %s |\n", line.label.c_str(), line.records,
                line.seconds, static_cast<double>(line.records) / line.seconds, line.check.c_str());
  }
  if (std::find(options.cases.begin(), options.cases.end(), "isolation") != options.cases.end()) {
    Isolation(options);
  }
  std::filesystem::remove_all(options.dir);
  return 0;
}
