// Benchmarks durable ingest: gRPC RecordService streams into an in-process Collector (the real
// ingest server, Collector::Consume, RecordStore on RocksDB, request metrics), acked after the
// store's write returned, for store.durability fsync and process. In the same run, the peer is
// the disk itself: one thread appending to a file with write() + fdatasync(), each sync after the
// same number of bytes as the store's average group commit in the fsync run. Run by hand;
// docs/benchmarks.md has the command and the recorded figures.
//
// Clients: --streams streams, each on its own channel and connection (as separate proxies), each
// its own proxy instance id with sequences 1, 2, 3, ... and one batch in flight (the protocol
// answers each batch before the proxy's next one counts). Batches hold --batch_records records of
// about 300–500 bytes (tests/bench/bench_records.h), serialized once before timing; only the
// sequence differs from batch to batch, so the client costs little CPU beside the collector.
//
// Syncs: this program defines fdatasync() and fsync(), which take precedence over libc's for
// RocksDB in this process; they count the calls and the time spent in them, then make the system
// call. So "syncs" and "in sync" are RocksDB's own, and the bytes per group commit are the
// acked record bytes divided by the WAL syncs of the fsync run.

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "collector/collector.h"
#include "collector/common/program.h"
#include "collector/config/collector_config.h"
#include "exporters/exporter_registry.h"
#include "fmt/format.h"
#include "meshtel/v1/record.pb.h"
#include "tests/bench/bench_flags.h"
#include "tests/bench/bench_ingest.h"
#include "tests/bench/bench_records.h"

namespace {

std::atomic<uint64_t> g_syncs{0};
std::atomic<uint64_t> g_sync_ns{0};

int CountedSync(long call, int fd) {
  const auto start = std::chrono::steady_clock::now();
  const int result = static_cast<int>(syscall(call, fd));
  g_sync_ns.fetch_add(static_cast<uint64_t>((std::chrono::steady_clock::now() - start).count()),
                      std::memory_order_relaxed);
  g_syncs.fetch_add(1, std::memory_order_relaxed);
  return result;
}

}  // namespace

extern "C" int fdatasync(int fd) { return CountedSync(SYS_fdatasync, fd); }
extern "C" int fsync(int fd) { return CountedSync(SYS_fsync, fd); }

namespace {

using meshtel::bench::MakeBlocks;
using meshtel::bench::RecordBlock;
using meshtel::bench::RunStream;
using meshtel::bench::StreamResult;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string dir;  // parent of the data directories and the peer's file
  int streams = 8;
  int batch_records = 500;
  double seconds = 10;
  std::vector<std::string> modes = {"fsync", "process"};
  // The trace pipeline (traces.enabled) reads the logs family as records arrive and assembles
  // traces beside ingest; off by default, so the rows measure ingest (as otlp_ingest_bench).
  bool traces = false;
};

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

struct Row {
  std::string what;
  double seconds = 0;
  uint64_t batches = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t syncs = 0;
  double sync_seconds = 0;
  double cpu_seconds = 0;
  uint64_t disk_bytes = 0;  // the data directory after a clean stop (tables, compressed)
  double MiBps() const { return static_cast<double>(bytes) / (1 << 20) / seconds; }
};

Row RunIngest(const Options& options, const std::string& mode,
              const std::vector<std::vector<RecordBlock>>& blocks) {
  const std::string data_dir = options.dir + "/store-" + mode;
  std::filesystem::remove_all(data_dir);
  meshtel::collector::CollectorConfig config;
  config.ingest.listen = meshtel::common::HostPort{"127.0.0.1", 0};
  config.admin.listen = meshtel::common::HostPort{"127.0.0.1", 0};
  config.store.data_dir = data_dir;
  config.store.durability = mode;
  config.traces.enabled = options.traces;
  if (absl::Status valid = config.Validate(); !valid.ok()) {
    std::fprintf(stderr, "config: %s\n", valid.ToString().c_str());
    std::exit(1);
  }
  auto collector = meshtel::collector::Collector::Start(config, &meshtel::exporters::BuildExporter);
  if (!collector.ok()) {
    std::fprintf(stderr, "collector: %s\n", collector.status().ToString().c_str());
    std::exit(1);
  }
  std::vector<StreamResult> results(static_cast<size_t>(options.streams));
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  const auto duration =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.seconds));
  // The deadline is set before the streams connect; connecting takes milliseconds.
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = start + duration;
  for (int i = 0; i < options.streams; ++i) {
    threads.emplace_back(RunStream, (*collector)->ingest_port(), i,
                         std::cref(blocks[static_cast<size_t>(i)]), options.batch_records,
                         std::cref(go), deadline, std::ref(results[static_cast<size_t>(i)]),
                         /*batches_per_second=*/0.0);
  }
  const uint64_t syncs_before = g_syncs.load();
  const uint64_t sync_ns_before = g_sync_ns.load();
  const double cpu_before = CpuSeconds();
  go.store(true);
  for (std::thread& thread : threads) thread.join();
  Row row;
  row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  row.syncs = g_syncs.load() - syncs_before;
  row.sync_seconds = static_cast<double>(g_sync_ns.load() - sync_ns_before) / 1e9;
  row.cpu_seconds = CpuSeconds() - cpu_before;
  row.what = "store, durability: " + mode;
  for (const StreamResult& result : results) {
    if (!result.error.empty()) {
      std::fprintf(stderr, "stream failed: %s\n", result.error.c_str());
      std::exit(1);
    }
    row.batches += result.batches;
    row.records += result.records;
    row.bytes += result.record_bytes;
  }
  if (absl::Status stopped = (*collector)->Shutdown(); !stopped.ok()) {
    std::fprintf(stderr, "shutdown: %s\n", stopped.ToString().c_str());
    std::exit(1);
  }
  collector->reset();
  // After the clean stop every record is in the table files: their size against the record
  // bytes is what the table compression gives.
  std::error_code error;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(data_dir, error)) {
    std::error_code size_error;
    if (entry.is_regular_file(size_error)) row.disk_bytes += entry.file_size(size_error);
  }
  std::filesystem::remove_all(data_dir);
  return row;
}

// The disk's limit at the store's cadence: append `bytes_per_sync` with write(), fdatasync(),
// repeat for `seconds`, to a new file beside the data directories.
Row RunDiskPeer(const Options& options, uint64_t bytes_per_sync) {
  const std::string path = options.dir + "/disk-peer.bin";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    std::perror(path.c_str());
    std::exit(1);
  }
  const std::string chunk(bytes_per_sync, 'x');
  Row row;
  row.what = fmt::format("disk: write + fdatasync per {} KiB", bytes_per_sync / 1024);
  const uint64_t syncs_before = g_syncs.load();
  const uint64_t sync_ns_before = g_sync_ns.load();
  const double cpu_before = CpuSeconds();
  const Clock::time_point start = Clock::now();
  const auto duration = std::chrono::duration<double>(options.seconds);
  while (Clock::now() - start < duration) {
    size_t written = 0;
    while (written < chunk.size()) {
      const ssize_t n = ::write(fd, chunk.data() + written, chunk.size() - written);
      if (n <= 0) {
        std::perror("write");
        std::exit(1);
      }
      written += static_cast<size_t>(n);
    }
    if (fdatasync(fd) != 0) {
      std::perror("fdatasync");
      std::exit(1);
    }
    row.bytes += chunk.size();
  }
  row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  row.syncs = g_syncs.load() - syncs_before;
  row.sync_seconds = static_cast<double>(g_sync_ns.load() - sync_ns_before) / 1e9;
  row.cpu_seconds = CpuSeconds() - cpu_before;
  ::close(fd);
  std::filesystem::remove(path);
  return row;
}

void Print(const Row& row, const Row* peer) {
  std::printf(
      "| %s | %.2f | %.1f | %.0f | %.1f | %" PRIu64 " | %.0f | %.1f %% | %.2f | %s | %s |\n",
      row.what.c_str(), row.seconds, row.MiBps(), static_cast<double>(row.records) / row.seconds,
      static_cast<double>(row.batches) / row.seconds, row.syncs,
      row.syncs == 0 ? 0.0 : static_cast<double>(row.bytes) / row.syncs / 1024,
      100 * row.sync_seconds / row.seconds, row.cpu_seconds / row.seconds,
      peer == nullptr ? "-" : fmt::format("{:.2f}", row.MiBps() / peer->MiBps()).c_str(),
      row.disk_bytes == 0
          ? "-"
          : fmt::format("{:.1f} ({:.2f})", static_cast<double>(row.disk_bytes) / (1 << 20),
                        static_cast<double>(row.disk_bytes) / static_cast<double>(row.bytes))
                .c_str());
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
    } else if (meshtel::bench::Flag(arg, "--batch_records", value)) {
      options.batch_records = std::max(1, std::atoi(value.c_str()));
    } else if (meshtel::bench::Flag(arg, "--seconds", value)) {
      options.seconds = std::max(0.1, std::atof(value.c_str()));
    } else if (meshtel::bench::Flag(arg, "--modes", value)) {
      options.modes = meshtel::bench::CommaList(value);
    } else if (meshtel::bench::Flag(arg, "--traces", value)) {
      options.traces = value == "on";
    } else {
      std::fprintf(stderr,
                   "usage: %s --dir=DIR [--streams=8] [--batch_records=500] [--seconds=10] "
                   "[--modes=fsync,process] [--traces=off|on]\n",
                   argv[0]);
      return 2;
    }
  }
  if (options.dir.empty()) {
    std::fprintf(stderr, "--dir is required (a directory on the disk to measure)\n");
    return 2;
  }
  std::filesystem::create_directories(options.dir);
  (void)meshtel::common::SetLogLevel("warn");  // as meshtel-collector does with log_level: warn

  const std::vector<meshtel::v1::RequestRecord> records = meshtel::bench::MakeMeshRecords(4000, 7);
  size_t smallest = SIZE_MAX, largest = 0, total = 0;
  for (const auto& record : records) {
    smallest = std::min(smallest, record.ByteSizeLong());
    largest = std::max(largest, record.ByteSizeLong());
    total += record.ByteSizeLong();
  }
  std::vector<std::vector<RecordBlock>> blocks;
  for (int i = 0; i < options.streams; ++i) {
    blocks.push_back(MakeBlocks(records, options.batch_records, static_cast<size_t>(i) * 997, 4));
  }
  std::printf(
      "records: %zu–%zu bytes, mean %.0f; %d records per batch (%.0f KiB); %d streams; "
      "%.0f s per case; trace pipeline %s; dir %s\n",
      smallest, largest, static_cast<double>(total) / static_cast<double>(records.size()),
      options.batch_records, static_cast<double>(blocks[0][0].serialized.size()) / 1024,
      options.streams, options.seconds, options.traces ? "on" : "off", options.dir.c_str());
  std::printf(
      "\n| Case | s | MiB/s (record bytes) | records/s | batches/s | syncs | KiB per sync "
      "| wall time in sync | CPU s/s | ratio to disk | MiB on disk after stop (per record byte) "
      "|\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);

  std::vector<Row> rows;
  std::unique_ptr<Row> peer;
  for (const std::string& mode : options.modes) {
    rows.push_back(RunIngest(options, mode, blocks));
    if (mode == "fsync" && rows.back().syncs > 0) {
      peer = std::make_unique<Row>(RunDiskPeer(options, rows.back().bytes / rows.back().syncs));
    }
  }
  for (const Row& row : rows) Print(row, peer.get());
  if (peer != nullptr) Print(*peer, nullptr);
  return 0;
}
