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
//   loki       LokiReceiver (tests/support): keeps every push and decodes it twice (the project's
//              schema, then the official Loki schema when ../shared has it, compared field by
//              field);
//   loki-bare  the same exporter against a TestHttpServer that answers 204 without decoding: the
//              exporter's rate with the receiver's work taken out;
//   fluentd    FluentdReceiver (tests/support): decodes and keeps every event, acks each chunk;
//   both       loki and fluentd at once (two delivery threads): each one's own rate.
// For each case the CPU time of each thread started for it is read from /proc/self/task, so the
// table says how busy the receiver's thread and the delivery threads were: a thread near 100 % of
// the wall time bounds the case.

#include <unistd.h>

#include <algorithm>
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
#include "collector/common/program.h"
#include "collector/config/collector_config.h"
#include "collector/delivery/delivery_engine.h"
#include "collector/store/record_store.h"
#include "exporters/exporter_registry.h"
#include "fmt/format.h"
#include "meshtel/v1/record.pb.h"
#include "prometheus/registry.h"
#include "tests/bench/bench_flags.h"
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
  return measured;
}

std::string LokiSettings(const std::string& url) { return "{url: \"" + url + "\", timeout: 30s}"; }

std::string FluentdSettings(uint16_t port, const std::string& format) {
  return fmt::format("{{address: \"127.0.0.1:{}\", timeout: 30s, record_format: {}}}", port,
                     format);
}

// Every line reached the Loki receiver, decoded alike by both schemas.
std::string CheckLoki(const meshtel::testing::LokiReceiver& receiver, uint64_t expected) {
  uint64_t lines = 0;
  size_t official = 0;
  for (const meshtel::testing::LokiPush& push : receiver.Pushes()) {
    if (!push.decode_error.empty()) return "decode error: " + push.decode_error;
    if (!push.official_mismatches.empty()) return "official: " + push.official_mismatches[0];
    if (push.official_checked) ++official;
    for (const auto& stream : push.request.streams()) lines += stream.entries_size();
  }
  if (lines != expected)
    return fmt::format("{} lines at the receiver, {} expected", lines, expected);
  return fmt::format("ok ({} lines, {} pushes, {} checked with the official schema)", lines,
                     receiver.Pushes().size(), official);
}

std::string CheckFluentd(const meshtel::testing::FluentdReceiver& receiver, uint64_t expected) {
  if (!receiver.errors().empty()) return "receiver error: " + receiver.errors()[0];
  const size_t events = receiver.events().size();
  if (events != expected)
    return fmt::format("{} events at the receiver, {} expected", events, expected);
  return fmt::format("ok ({} events, {} requests)", events, receiver.requests().size());
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string value;
    const std::string_view arg = argv[i];
    if (meshtel::bench::Flag(arg, "--dir", value)) {
      options.dir = value;
    } else if (meshtel::bench::Flag(arg, "--records", value)) {
      options.records = std::max<uint64_t>(1, std::strtoull(value.c_str(), nullptr, 10));
    } else if (meshtel::bench::Flag(arg, "--fluentd_format", value)) {
      options.fluentd_format = value;
    } else if (meshtel::bench::Flag(arg, "--cases", value)) {
      options.cases = meshtel::bench::CommaList(value);
    } else {
      std::fprintf(stderr,
                   "usage: %s --dir=DIR [--records=500000] [--fluentd_format=fields|line] "
                   "[--cases=loki,loki-bare,fluentd,both]\n",
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
  Fill(options);

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
      meshtel::testing::LokiReceiver loki;
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
      meshtel::testing::FluentdReceiver fluentd;
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
      meshtel::testing::LokiReceiver loki;
      meshtel::testing::FluentdReceiver fluentd;
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
    } else {
      std::fprintf(stderr, "unknown case %s\n", case_name.c_str());
      return 2;
    }
  }
  std::printf("\n| Case | records | s to the last record | lines/s | receiver's check |\n");
  std::printf("|---|---|---|---|---|\n");
  for (const Line& line : lines) {
    std::printf("| %s | %" PRIu64 " | %.2f | %.0f | %s |\n", line.label.c_str(), line.records,
                line.seconds, static_cast<double>(line.records) / line.seconds, line.check.c_str());
  }
  std::filesystem::remove_all(options.dir);
  return 0;
}
