// Benchmarks the trace pipeline (collector/traces/): stored proxy records → span summaries and the
// records' bytes (SpanBuilder::Summarize) → traces (TraceAssembler) → tail sampling (TailSampler)
// → spans of kept traces encoded (SpanBuilder::Encode) and written to the spans family with their
// trace_index entries (RecordStore::AppendSpans), against issue 6's goal of 500k spans per second
// per core. Run by hand; docs/benchmarks.md has the command and the recorded figures.
//
// Input: --traces requests through two sidecars, three hop records each (tests/bench/
// bench_records.h, MakeMeshTraces: frontend inbound SERVER root, frontend outbound CLIENT child,
// backend inbound SERVER grandchild; records of 300–500 bytes, all head-sampled), in the order
// the proxies finish them.
//
// Pipeline cases, "keep all" (phase spans off and on × durability process and fsync): a fresh store
// gets the records in its logs family (AppendBatch, 500 per batch, then FlushRecords; not timed),
// then the real TracePipeline runs on its own thread from Start() until its spans-written counter
// shows every trace decided and every kept span written (polled every millisecond), and then
// FlushRecords puts every kept span into a table file (timed: the flushes count whatever the
// memtables held when the last span was written). Sampling keeps
// every trace (the proxies' head decision, keep_head_sampled), assembly.idle_timeout is 1 ms and
// max_wait an hour, so every trace is decided by its root and idle time. "1% base rate" (phase
// spans off and on, the first durability mode): the same traces with no record head-sampled,
// keep_head_sampled off, sampling.percentage 1, and in one trace of 200 a 503 on the backend's
// two hops (kept by the error rule): every span assembled and sampled, about 1.5% written.
// Reported: spans per wall second and per CPU second of the whole process (pipeline thread,
// RocksDB's background threads, the polling main thread: "per core"), and of the pipeline thread
// alone. Afterwards the program checks that every trace was decided by root and idle time, none
// evicted, no span an orphan, and that the spans family holds every span.
//
// Stages in isolation, same run, on a separate set of --stage_traces traces (main thread, thread
// CPU time), keeping everything: RecordStore::Read of the logs family per record;
// SpanBuilder::Summarize + the record's SerializeToString per span (the read side); for
// reference, SpanBuilder::Encode of every span; TraceAssembler::Add + TakeDecided per span
// (batches of 2048 records, as the pipeline reads, the clock moved 2 ms per batch);
// TailSampler::Decide per trace; the kept traces' spans encoded from their held records as
// TracePipeline::BuildKept does; AppendSpans per span (written in the pipeline's batch sizes,
// process and fsync); destroying the decided traces after the write. The floor any pipeline
// must at least pay, in the same run: a protobuf parse of each stored record plus a
// SerializeToString of each span built from it.
//
// Memory per in-flight span: a fresh TraceAssembler (no time passes, bounds out of reach) is
// given --memory_spans spans as the pipeline holds them (summaries and each record's serialized
// bytes; trace ids varied on each pass over the records);
// the heap growth (glibc mallinfo2: in-use bytes of all arenas plus mmapped chunks) and the RSS
// growth (/proc/self/statm), divided by the spans held.

#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "collector/common/program.h"
#include "collector/config/collector_config.h"
#include "collector/store/record_store.h"
#include "collector/traces/span_builder.h"
#include "collector/traces/tail_sampler.h"
#include "collector/traces/trace_assembler.h"
#include "collector/traces/trace_pipeline.h"
#include "collector/traces/traces_config.h"
#include "fmt/format.h"
#include "meshtel/v1/record.pb.h"
#include "meshtel/v1/span.pb.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "tests/bench/bench_flags.h"
#include "tests/bench/bench_records.h"

namespace {

using Clock = std::chrono::steady_clock;
using meshtel::collector::AssembledTrace;
using meshtel::collector::RecordFamily;
using meshtel::collector::RecordStore;
using meshtel::collector::SerializedSpans;
using meshtel::collector::SpanBuilder;
using meshtel::collector::SpanMarks;
using meshtel::collector::SpanOptions;
using meshtel::collector::SpanSummary;
using meshtel::collector::StoredRecord;
using meshtel::collector::StoreKey;
using meshtel::collector::TailSampler;
using meshtel::collector::TraceAssembler;
using meshtel::collector::TracePipeline;
using meshtel::collector::TraceRecord;
using meshtel::collector::TracesConfig;
using meshtel::v1::RequestRecord;
using meshtel::v1::Span;

constexpr StoreKey kEnd{~uint64_t{0}, ~uint64_t{0}};
constexpr size_t kPipelineReadBatch = 2048;  // TracePipeline's kReadBatch
constexpr size_t kIngestBatch = 500;

struct Options {
  std::string dir;
  size_t traces = 50000;
  size_t stage_traces = 20000;
  size_t memory_spans = 500000;
  std::vector<std::string> modes = {"process", "fsync"};
  std::vector<std::string> phases = {"off", "on"};
  bool keep_all = true;   // --mixes: keep_all
  bool base_rate = true;  // --mixes: base_rate
  // --policy_enforcer: the pipeline looks each record's workload up in a PolicyEnforcer (the
  // collector always has one; no workload has a policy of its own here), as meshtel-collector does.
  bool policy_enforcer = false;
};

double CpuClock(clockid_t clock) {
  timespec now{};
  clock_gettime(clock, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}
double ProcessCpu() { return CpuClock(CLOCK_PROCESS_CPUTIME_ID); }
double ThreadCpu() { return CpuClock(CLOCK_THREAD_CPUTIME_ID); }
double Seconds(Clock::duration duration) { return std::chrono::duration<double>(duration).count(); }

template <typename T>
void Keep(const T& value) {
  asm volatile("" : : "g"(&value) : "memory");
}

// Per thread of this process: its name (comm) and CPU seconds (user + system), by thread id.
struct ThreadInfo {
  std::string name;
  double cpu = 0;
};
std::map<int, ThreadInfo> Threads() {
  std::map<int, ThreadInfo> threads;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream file(entry.path() / "stat");
    const std::string stat((std::istreambuf_iterator<char>(file)),
                           std::istreambuf_iterator<char>());
    const size_t open = stat.find('(');
    const size_t close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    ThreadInfo info;
    info.name = stat.substr(open + 1, close - open - 1);
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i == 14) utime = std::atof(field.c_str());
      if (i == 15) stime = std::atof(field.c_str());
    }
    info.cpu = (utime + stime) / tick;
    threads[std::atoi(entry.path().filename().c_str())] = info;
  }
  return threads;
}

size_t HeapInUse() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

size_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "trace_pipeline_bench: %s\n", what.c_str());
  std::exit(1);
}

TracesConfig PipelineConfig(bool phase_spans) {
  TracesConfig config;
  config.phase_spans = phase_spans;
  config.assembly.idle_timeout = absl::Milliseconds(1);
  config.assembly.max_wait = absl::Hours(1);  // never reached: every trace has its root
  config.sampling.keep_head_sampled = true;   // every record is head-sampled: keep everything
  return config;
}

std::unique_ptr<RecordStore> OpenStore(const std::string& data_dir, const std::string& mode,
                                       prometheus::Registry& registry) {
  std::filesystem::remove_all(data_dir);
  meshtel::collector::StoreConfig config;
  config.data_dir = data_dir;
  config.durability = mode;
  if (absl::Status valid = config.Validate(); !valid.ok()) Fail(valid.ToString());
  absl::StatusOr<std::unique_ptr<RecordStore>> store = RecordStore::Open(config, registry);
  if (!store.ok()) Fail(store.status().ToString());
  return *std::move(store);
}

// Spans the builder makes of `records`.
size_t CountSpans(const std::vector<RequestRecord>& records, bool phase_spans) {
  const SpanBuilder builder(PipelineConfig(phase_spans));
  std::vector<Span> spans;
  size_t count = 0;
  for (const RequestRecord& record : records) {
    spans.clear();
    count += builder.Build(record, spans);
  }
  return count;
}

// The realistic mix: proxies that head-sample nothing, tail sampling keeping 1% of the traces
// (sampling.percentage 1, keep_head_sampled off) and the traces with an error; the latency rule
// as configured by default.
TracesConfig BaseRateConfig(bool phase_spans) {
  TracesConfig config = PipelineConfig(phase_spans);
  config.sampling.keep_head_sampled = false;
  config.sampling.percentage = 1;
  return config;
}

// The mesh traces, none head-sampled, every response 200 but in one trace of 200 (by trace id) the
// backend's response, a 503 on its two hops: the errors the error rule keeps.
std::vector<RequestRecord> BaseRateRecords(size_t traces, uint64_t seed) {
  std::vector<RequestRecord> records = meshtel::bench::MakeMeshTraces(traces, seed, false);
  for (RequestRecord& record : records) {
    record.set_response_code(200);
    record.clear_response_flags();
    record.set_response_code_details("via_upstream");
    const bool error_trace = std::hash<std::string>{}(record.trace_id()) % 200 == 0;
    if (error_trace && !record.parent_span_id().empty()) record.set_response_code(503);
  }
  return records;
}

// The spans of every trace, and of the traces `config` keeps (errors, slow roots, the percentage).
std::pair<size_t, size_t> BaseRateSpans(const std::vector<RequestRecord>& records,
                                        const TracesConfig& config) {
  const SpanBuilder builder(config);
  std::map<std::string, std::pair<size_t, bool>> traces;  // spans, error
  std::vector<Span> spans;
  for (const RequestRecord& record : records) {
    spans.clear();
    auto& [count, error] = traces[record.trace_id()];
    count += builder.Build(record, spans);
    error = error || record.response_code() >= 500 ||
            (record.parent_span_id().empty() &&
             absl::Nanoseconds(record.duration_ns()) >= config.sampling.latency_threshold);
  }
  size_t all = 0, kept = 0;
  for (const auto& [trace_id, trace] : traces) {
    all += trace.first;
    if (trace.second || TailSampler::InPercentage(trace_id, config.sampling.percentage)) {
      kept += trace.first;
    }
  }
  return {all, kept};
}

// ---------------------------------------------------------------------------------------------
// Stages in isolation.

struct Stage {
  std::string what;
  std::string unit;  // "span", "record", "trace"
  uint64_t items = 0;
  double cpu = 0;   // thread CPU seconds (process CPU for the store write)
  double wall = 0;  // seconds
  double NsPerItem() const { return cpu / static_cast<double>(items) * 1e9; }
  double WallNsPerItem() const { return wall / static_cast<double>(items) * 1e9; }
};

struct StageTimer {
  double cpu_start = ThreadCpu();
  Clock::time_point wall_start = Clock::now();
  Stage Done(std::string what, std::string unit, uint64_t items) const {
    Stage stage{std::move(what), std::move(unit), items, ThreadCpu() - cpu_start,
                Seconds(Clock::now() - wall_start)};
    return stage;
  }
};

struct StageSet {
  bool phase_spans = false;
  size_t records = 0;
  size_t spans = 0;
  size_t traces = 0;
  uint64_t span_bytes = 0;  // serialized
  std::vector<Stage> stages;
  double floor_ns_per_span = 0;     // parse + serialize, per span
  double pipeline_ns_per_span = 0;  // sum of the pipeline's stages, per span (CPU)
};

// Appends the spans to a fresh store in chunks of `chunk` spans, as the pipeline writes them.
Stage AppendStage(const Options& options, const std::string& mode, const SerializedSpans& spans,
                  size_t chunk, bool phase_spans) {
  // The pipeline's writes, made beforehand (not timed).
  std::vector<SerializedSpans> writes;
  for (size_t at = 0; at < spans.size(); at += chunk) {
    SerializedSpans& write = writes.emplace_back();
    for (size_t i = at; i < std::min(spans.size(), at + chunk); ++i) {
      write.Begin(spans.trace_id(i), spans.span_id(i)).append(spans.bytes(i));
    }
  }
  prometheus::Registry registry;
  const std::string data_dir =
      options.dir + "/stage-append-" + (phase_spans ? "phases-" : "hops-") + mode;
  std::unique_ptr<RecordStore> store = OpenStore(data_dir, mode, registry);
  const double cpu_start = ProcessCpu();
  const Clock::time_point wall_start = Clock::now();
  uint64_t batches = 0;
  for (const SerializedSpans& write : writes) {
    const StoreKey high{1, ++batches};
    absl::Status status = store->AppendSpans(write, TracePipeline::kReaderName, high, high);
    if (!status.ok()) Fail(status.ToString());
  }
  Stage stage{fmt::format("RecordStore::AppendSpans, durability {} ({} spans per write; "
                          "process CPU)",
                          mode, chunk),
              "span", spans.size(), ProcessCpu() - cpu_start, Seconds(Clock::now() - wall_start)};
  if (absl::Status closed = store->Close(); !closed.ok()) Fail(closed.ToString());
  store.reset();
  std::filesystem::remove_all(data_dir);
  return stage;
}

StageSet RunStages(const Options& options, const std::vector<RequestRecord>& records,
                   bool phase_spans) {
  StageSet set;
  set.phase_spans = phase_spans;
  set.records = records.size();
  const TracesConfig config = PipelineConfig(phase_spans);

  // Floor, part 1: parse each stored record into a new message (as RecordStore::Read does).
  std::vector<std::string> serialized;
  serialized.reserve(records.size());
  for (const RequestRecord& record : records) serialized.push_back(record.SerializeAsString());
  {
    const StageTimer timer;
    for (const std::string& bytes : serialized) {
      RequestRecord record;
      if (!record.ParseFromString(bytes)) Fail("parse failed");
      Keep(record);
    }
    set.stages.push_back(
        timer.Done("floor: RequestRecord::ParseFromString", "record", records.size()));
  }

  // The read side, as TracePipeline::ReadOnce: each record's span summaries
  // (SpanBuilder::Summarize) and its bytes to hold (a SerializeToString of the parsed record).
  const SpanBuilder builder(config);
  std::vector<std::vector<SpanSummary>> summaries(records.size());
  std::vector<std::string> held_bytes(records.size());
  {
    const StageTimer timer;
    for (size_t i = 0; i < records.size(); ++i) {
      set.spans += builder.Summarize(records[i], summaries[i]);
      records[i].SerializeToString(&held_bytes[i]);
    }
    set.stages.push_back(
        timer.Done("SpanBuilder::Summarize + RequestRecord::SerializeToString (the bytes held)",
                   "span", set.spans));
  }

  // For reference (not summed): SpanBuilder::Encode of every record's spans (into one reused
  // buffer), what building every span would cost.
  {
    SerializedSpans spans;
    size_t built = 0;
    const SpanOptions span_options{.phase_spans = phase_spans};
    const StageTimer timer;
    for (const RequestRecord& record : records) {
      spans.clear();
      built += builder.Encode(record, span_options, SpanMarks{}, spans);
    }
    set.stages.push_back(
        timer.Done("reference: SpanBuilder::Encode of every span (buffer reused)", "span", built));
  }

  // TraceAssembler::Add per record, TakeDecided per read batch, as the pipeline calls them.
  prometheus::Registry registry;
  std::vector<AssembledTrace> decided;
  decided.reserve(records.size());
  {
    TraceAssembler assembler(config.assembly, registry);
    absl::Time now = absl::FromUnixSeconds(1'700'000'000);
    const StageTimer timer;
    for (size_t begin = 0; begin < records.size(); begin += kPipelineReadBatch) {
      const size_t end = std::min(records.size(), begin + kPipelineReadBatch);
      for (size_t i = begin; i < end; ++i) {
        assembler.Add(records[i].trace_id(), summaries[i],
                      TraceRecord{.key = StoreKey{1, i + 1}, .bytes = std::move(held_bytes[i])},
                      records[i].sampled(), now);
      }
      assembler.TakeDecided(now + absl::Milliseconds(1), decided);
      now += absl::Milliseconds(2);
    }
    assembler.TakeDecided(now + absl::Milliseconds(1), decided);
    set.stages.push_back(timer.Done("TraceAssembler::Add + TakeDecided", "span", set.spans));
    if (assembler.traces_in_flight() != 0) Fail("assembler stage: traces left in flight");
  }
  set.traces = decided.size();
  summaries.clear();
  held_bytes.clear();

  // TailSampler::Decide per trace.
  {
    TailSampler sampler(config.sampling, registry);
    const absl::Time now = absl::FromUnixSeconds(1'700'000'000);
    size_t kept = 0;
    RequestRecord parsed;
    const StageTimer timer;
    for (const AssembledTrace& trace : decided) {
      kept += sampler.Decide(trace, now,
                             [&](size_t span) {
                               (void)parsed.ParseFromString(
                                   trace.records[trace.spans[span].record].bytes);
                               return builder.ServiceName(parsed);
                             })
                      .keep
                  ? 1
                  : 0;
    }
    set.stages.push_back(timer.Done("TailSampler::Decide", "trace", decided.size()));
    if (kept != decided.size()) Fail("sampler stage: not every trace kept");
  }

  // The kept traces' spans encoded for the write, as TracePipeline::BuildKept does: each held
  // record read in place (a reused RecordView) and its spans encoded with their marks. The
  // pipeline clears its buffer after each write, keeping the memory; here it grows once.
  SerializedSpans kept;
  {
    meshtel::collector::RecordView view;
    const SpanOptions span_options{.phase_spans = phase_spans};
    const StageTimer timer;
    for (const AssembledTrace& trace : decided) {
      const size_t first = kept.size();
      size_t summary = 0;
      for (size_t r = 0; r < trace.records.size(); ++r) {
        if (!view.Read(trace.records[r].bytes)) Fail("held record is not read in place");
        size_t count = 0;
        while (summary + count < trace.spans.size() && trace.spans[summary + count].record == r) {
          ++count;
        }
        builder.Encode(view, span_options,
                       SpanMarks{.summaries = std::span(trace.spans).subspan(summary, count),
                                 .fits = trace.fits,
                                 .first_summary = summary},
                       kept);
        summary += count;
      }
      if (kept.size() - first != trace.spans.size()) Fail("encoded spans differ from summaries");
    }
    set.stages.push_back(timer.Done(
        "kept traces' spans encoded (RecordView of the held record + SpanBuilder::Encode)", "span",
        kept.size()));
  }

  // Floor, part 2: serialize each span (into a reused string), as messages (made beforehand).
  std::vector<Span> kept_messages(kept.size());
  for (size_t i = 0; i < kept.size(); ++i) {
    if (!kept_messages[i].ParseFromString(std::string(kept.bytes(i)))) Fail("span does not parse");
  }
  {
    std::string out;
    const StageTimer timer;
    for (const Span& span : kept_messages) {
      out.clear();
      span.SerializeToString(&out);
      set.span_bytes += out.size();
    }
    set.stages.push_back(timer.Done("floor: Span::SerializeToString", "span", set.spans));
  }

  // The store write, with the pipeline's batch sizes (the spans of 2048 records per write).
  const size_t chunk = std::max<size_t>(
      1, static_cast<size_t>(static_cast<double>(set.spans) / static_cast<double>(set.records) *
                             kPipelineReadBatch));
  for (const std::string& mode : options.modes) {
    set.stages.push_back(AppendStage(options, mode, kept, chunk, phase_spans));
  }

  // Destruction of the decided traces (their summaries and held records) after the write.
  {
    const StageTimer timer;
    decided = std::vector<AssembledTrace>();
    set.stages.push_back(timer.Done("decided traces destroyed after the write", "span", set.spans));
  }

  const double spans = static_cast<double>(set.spans);
  for (const Stage& stage : set.stages) {
    const double total_ns = stage.cpu * 1e9;
    if (stage.what.starts_with("reference:")) continue;
    if (stage.what.starts_with("floor:")) {
      set.floor_ns_per_span += total_ns / spans;
    } else if (stage.what.starts_with("RecordStore::AppendSpans")) {
      if (stage.what.find("durability process") != std::string::npos) {
        set.pipeline_ns_per_span += total_ns / spans;
      }
    } else {
      set.pipeline_ns_per_span += total_ns / spans;
    }
  }
  return set;
}

// ---------------------------------------------------------------------------------------------
// The pipeline, end to end.

struct PipelineRow {
  bool phase_spans = false;
  std::string mode;
  std::string mix;  // "keep all" or "1% base rate"
  size_t traces = 0;
  size_t spans = 0;       // assembled and sampled (every span of every trace)
  size_t kept_spans = 0;  // written
  double wall = 0;
  double process_cpu = 0;
  double pipeline_thread_cpu = 0;
  double rocksdb_cpu = 0;
  double main_cpu = 0;
  double read_ns_per_record = 0;     // RecordStore::Read afterwards, main thread CPU
  double stored_bytes_per_span = 0;  // the spans family's table files after the run, per span
  double SpansPerSecond() const { return static_cast<double>(spans) / wall; }
  double SpansPerCpuSecond() const { return static_cast<double>(spans) / process_cpu; }
  double SpansPerPipelineCpuSecond() const {
    return static_cast<double>(spans) / pipeline_thread_cpu;
  }
};

prometheus::Counter& CounterIn(prometheus::Registry& registry, const std::string& name,
                               const prometheus::Labels& labels) {
  // The registry merges a family registered again under the same name: this is the pipeline's.
  return prometheus::BuildCounter().Name(name).Help("").Register(registry).Add(labels);
}

// `config`: the mix's sampling; `expected_spans`: the spans of every trace; `expected_kept`: the
// spans of the traces the sampling keeps.
PipelineRow RunPipeline(const Options& options, const std::vector<RequestRecord>& records,
                        const TracesConfig& config, const std::string& mix, const std::string& mode,
                        size_t expected_spans, size_t expected_kept, bool measure_read) {
  const bool phase_spans = config.phase_spans;
  PipelineRow row;
  row.phase_spans = phase_spans;
  row.mode = mode;
  row.mix = mix;
  row.traces = records.size() / 3;
  row.spans = expected_spans;
  row.kept_spans = expected_kept;
  const std::string data_dir =
      options.dir + "/pipeline-" + (phase_spans ? "phases-" : "hops-") + mode;
  prometheus::Registry store_registry;
  std::unique_ptr<RecordStore> store = OpenStore(data_dir, mode, store_registry);

  // Not timed: the records stored as the ingest server stores them, then flushed to tables.
  uint64_t sequence = 0;
  for (size_t at = 0; at < records.size(); at += kIngestBatch) {
    meshtel::v1::RecordBatch batch;
    batch.set_proxy_instance_id("bench-proxy");
    batch.set_sequence(++sequence);
    for (size_t i = at; i < std::min(records.size(), at + kIngestBatch); ++i) {
      *batch.add_records() = records[i];
    }
    absl::Status status = store->AppendBatch(batch, {sequence, 0});
    if (!status.ok()) Fail(status.ToString());
  }
  if (absl::Status flushed = store->FlushRecords(); !flushed.ok()) Fail(flushed.ToString());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let the flush's jobs settle

  prometheus::Registry registry;
  std::unique_ptr<meshtel::collector::PolicyEnforcer> enforcer;
  if (options.policy_enforcer) {
    auto created = meshtel::collector::PolicyEnforcer::Create(
        meshtel::collector::PolicyDefaults{.phase_spans = config.phase_spans},
        [](const meshtel::collector::PolicyWorkload&) {
          return meshtel::collector::WorkloadPolicy{};
        });
    if (!created.ok()) Fail(created.status().ToString());
    enforcer = *std::move(created);
  }
  auto pipeline = std::make_unique<TracePipeline>(config, *store, registry, enforcer.get());
  prometheus::Counter& written = CounterIn(registry, "meshtel_trace_spans_written_total", {});
  prometheus::Counter& decided_by_root =
      CounterIn(registry, "meshtel_traces_assembled_total", {{"decided_by", "root_idle"}});

  const std::map<int, ThreadInfo> threads_before = Threads();
  const double cpu_start = ProcessCpu();
  const Clock::time_point start = Clock::now();
  if (absl::Status started = pipeline->Start(); !started.ok()) Fail(started.ToString());
  const Clock::time_point give_up = start + std::chrono::minutes(20);
  // Done when every trace is decided and every kept span written.
  while (written.Value() < static_cast<double>(expected_kept) ||
         decided_by_root.Value() < static_cast<double>(row.traces)) {
    if (Clock::now() > give_up) {
      Fail(fmt::format("pipeline: {} of {} spans written after 20 minutes", written.Value(),
                       expected_kept));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // Every kept span in a table file, timed: the flushes the spans cost are counted whether or not
  // a memtable filled up during the run.
  if (absl::Status flushed = store->FlushRecords(); !flushed.ok()) Fail(flushed.ToString());
  row.wall = Seconds(Clock::now() - start);
  row.process_cpu = ProcessCpu() - cpu_start;
  const std::map<int, ThreadInfo> threads_after = Threads();
  row.stored_bytes_per_span =
      row.kept_spans == 0 ? 0
                          : static_cast<double>(store->ApproximateBytesBefore(
                                RecordFamily::kSpans, std::numeric_limits<uint64_t>::max())) /
                                static_cast<double>(row.kept_spans);
  pipeline->Stop();

  for (const auto& [tid, info] : threads_after) {
    auto before = threads_before.find(tid);
    const double used = info.cpu - (before == threads_before.end() ? 0.0 : before->second.cpu);
    if (tid == getpid()) {
      row.main_cpu += used;
    } else if (info.name.starts_with("rocksdb")) {
      row.rocksdb_cpu += used;
    } else if (before == threads_before.end()) {
      row.pipeline_thread_cpu += used;  // the one thread Start() started
    }
  }

  // Checks: every trace decided by its root and idle time, none evicted, no orphan, all stored.
  const double root_idle =
      CounterIn(registry, "meshtel_traces_assembled_total", {{"decided_by", "root_idle"}}).Value();
  const double max_wait =
      CounterIn(registry, "meshtel_traces_assembled_total", {{"decided_by", "max_wait"}}).Value();
  const double evicted =
      CounterIn(registry, "meshtel_traces_assembled_total", {{"decided_by", "evicted"}}).Value();
  const double orphans =
      CounterIn(registry, "meshtel_trace_span_anomalies_total", {{"anomaly", "orphan"}}).Value();
  if (root_idle != static_cast<double>(row.traces) || max_wait != 0 || evicted != 0 ||
      orphans != 0 || written.Value() != static_cast<double>(expected_kept)) {
    Fail(fmt::format(
        "pipeline checks: {} traces decided by root+idle of {}, {} by max wait, {} "
        "evicted, {} orphan spans, {} spans written of {}",
        root_idle, row.traces, max_wait, evicted, orphans, written.Value(), expected_kept));
  }
  absl::StatusOr<uint64_t> stored =
      store->Count(RecordFamily::kSpans, StoreKey{}, kEnd, expected_kept + 1);
  if (!stored.ok() || *stored != expected_kept) {
    Fail(fmt::format("pipeline: the spans family holds {} spans, not {}", stored.ok() ? *stored : 0,
                     expected_kept));
  }

  if (measure_read) {
    // RecordStore::Read of the same logs family, in the pipeline's batches.
    StoreKey after;
    size_t read = 0;
    const double cpu = ThreadCpu();
    while (true) {
      absl::StatusOr<std::vector<StoredRecord>> batch =
          store->Read(RecordFamily::kLogs, after, kEnd, kPipelineReadBatch);
      if (!batch.ok()) Fail(batch.status().ToString());
      if (batch->empty()) break;
      read += batch->size();
      after = batch->back().key;
    }
    if (read != records.size()) Fail("read stage: not every record read");
    row.read_ns_per_record = (ThreadCpu() - cpu) / static_cast<double>(read) * 1e9;
  }

  pipeline.reset();
  if (absl::Status closed = store->Close(); !closed.ok()) Fail(closed.ToString());
  store.reset();
  std::filesystem::remove_all(data_dir);
  return row;
}

// ---------------------------------------------------------------------------------------------
// Memory per in-flight span.

struct MemoryRow {
  bool phase_spans = false;
  size_t spans = 0;
  size_t hop_spans = 0;
  size_t traces = 0;
  int64_t heap = 0;
  int64_t rss = 0;
  uint64_t serialized = 0;  // bytes of the spans of the first pass, serialized
  size_t spans_first_pass = 0;
  uint64_t held_bytes = 0;  // the held records' serialized bytes
  double SerializedPerSpan() const {
    return static_cast<double>(serialized) / static_cast<double>(spans_first_pass);
  }
  double HeapPerSpan() const { return static_cast<double>(heap) / static_cast<double>(spans); }
  double RssPerSpan() const { return static_cast<double>(rss) / static_cast<double>(spans); }
};

MemoryRow MeasureMemory(const std::vector<RequestRecord>& records, bool phase_spans,
                        size_t target_spans) {
  MemoryRow row;
  row.phase_spans = phase_spans;
  TracesConfig config = PipelineConfig(phase_spans);
  config.assembly.idle_timeout = absl::Hours(24);
  config.assembly.max_wait = absl::Hours(24);
  config.assembly.max_traces = ~uint64_t{0};
  config.assembly.max_spans = ~uint64_t{0};
  const SpanBuilder builder(config);
  prometheus::Registry registry;
  auto assembler = std::make_unique<TraceAssembler>(config.assembly, registry);
  const absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  malloc_trim(0);
  const size_t heap_before = HeapInUse();
  const size_t rss_before = RssBytes();
  uint64_t key = 0;
  std::vector<SpanSummary> summaries;
  std::vector<Span> spans;
  for (uint32_t pass = 0; row.spans < target_spans; ++pass) {
    for (const RequestRecord& record : records) {
      if (row.spans >= target_spans) break;
      // As TracePipeline::ReadOnce holds a record: its spans' summaries and its bytes.
      summaries.clear();
      const size_t count = builder.Summarize(record, summaries);
      std::string trace_id = record.trace_id();
      if (pass > 0) {  // another trace id on each pass over the records
        for (int b = 0; b < 4; ++b)
          trace_id[static_cast<size_t>(b)] ^= static_cast<char>(pass >> (8 * b));
      }
      row.spans += count;
      if (pass == 0) {  // the spans they stand for, serialized (once per record; not held)
        spans.clear();
        builder.Build(record, spans);
        for (const Span& span : spans) {
          row.serialized += span.ByteSizeLong();
        }
        row.spans_first_pass += count;
      }
      row.hop_spans += 1;
      TraceRecord held{.key = StoreKey{1, ++key}};
      record.SerializeToString(&held.bytes);
      row.held_bytes += held.bytes.size();
      assembler->Add(trace_id, summaries, std::move(held), record.sampled(), now);
    }
  }
  spans = std::vector<Span>();
  row.heap = static_cast<int64_t>(HeapInUse()) - static_cast<int64_t>(heap_before);
  row.rss = static_cast<int64_t>(RssBytes()) - static_cast<int64_t>(rss_before);
  row.traces = assembler->traces_in_flight();
  if (assembler->spans_in_flight() != row.spans) Fail("memory: spans not all in flight");
  assembler.reset();
  malloc_trim(0);
  return row;
}

// ---------------------------------------------------------------------------------------------

const char* PhaseName(bool phase_spans) { return phase_spans ? "on" : "off"; }

void PrintStages(const StageSet& set) {
  std::printf(
      "\nStages, phase spans %s: %zu traces, %zu records, %zu spans (%.1f per trace), "
      "mean serialized span %.0f B\n\n",
      PhaseName(set.phase_spans), set.traces, set.records, set.spans,
      static_cast<double>(set.spans) / static_cast<double>(set.traces),
      static_cast<double>(set.span_bytes) / static_cast<double>(set.spans));
  std::printf("| Stage | per | CPU ns per item | CPU ns per span | wall ns per span |\n");
  std::printf("|---|---|---|---|---|\n");
  for (const Stage& stage : set.stages) {
    const double per_span = stage.cpu * 1e9 / static_cast<double>(set.spans);
    std::printf("| %s | %s | %.0f | %.0f | %.0f |\n", stage.what.c_str(), stage.unit.c_str(),
                stage.NsPerItem(), per_span, stage.wall * 1e9 / static_cast<double>(set.spans));
  }
  std::printf(
      "| sum of the pipeline's stages above (AppendSpans with process; without Read) | "
      "span | | %.0f | |\n",
      set.pipeline_ns_per_span);
  std::printf("| floor: parse + serialize | span | | %.0f | |\n", set.floor_ns_per_span);
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string value;
    const std::string_view arg = argv[i];
    if (meshtel::bench::Flag(arg, "--dir", value)) {
      options.dir = value;
    } else if (meshtel::bench::Flag(arg, "--traces", value)) {
      options.traces = std::max<size_t>(1, std::strtoull(value.c_str(), nullptr, 10));
    } else if (meshtel::bench::Flag(arg, "--stage_traces", value)) {
      options.stage_traces = std::max<size_t>(1, std::strtoull(value.c_str(), nullptr, 10));
    } else if (meshtel::bench::Flag(arg, "--memory_spans", value)) {
      options.memory_spans = std::strtoull(value.c_str(), nullptr, 10);
    } else if (meshtel::bench::Flag(arg, "--modes", value)) {
      options.modes = meshtel::bench::CommaList(value);
    } else if (meshtel::bench::Flag(arg, "--phase_spans", value)) {
      options.phases = meshtel::bench::CommaList(value);
    } else if (meshtel::bench::Flag(arg, "--mixes", value)) {
      const std::vector<std::string> mixes = meshtel::bench::CommaList(value);
      options.keep_all = std::find(mixes.begin(), mixes.end(), "keep_all") != mixes.end();
      options.base_rate = std::find(mixes.begin(), mixes.end(), "base_rate") != mixes.end();
    } else if (meshtel::bench::Flag(arg, "--policy_enforcer", value)) {
      options.policy_enforcer = value == "on";
    } else {
      std::fprintf(stderr,
                   "usage: %s --dir=DIR [--traces=50000] [--stage_traces=20000] "
                   "[--memory_spans=500000] [--modes=process,fsync] [--phase_spans=off,on] "
                   "[--mixes=keep_all,base_rate] [--policy_enforcer=off|on]\n",
                   argv[0]);
      return 2;
    }
  }
  if (options.dir.empty()) {
    std::fprintf(stderr, "--dir is required (a directory on the disk to measure)\n");
    return 2;
  }
  for (const std::string& mode : options.modes) {
    if (mode != "process" && mode != "fsync") Fail("--modes: process, fsync");
  }
  for (const std::string& phase : options.phases) {
    if (phase != "off" && phase != "on") Fail("--phase_spans: off, on");
  }
  std::filesystem::create_directories(options.dir);
  (void)meshtel::common::SetLogLevel("warn");  // as meshtel-collector does with log_level: warn

  const std::vector<RequestRecord> records =
      meshtel::bench::MakeMeshTraces(options.traces, 7, /*sampled=*/true);
  const std::vector<RequestRecord> base_rate_records =
      options.base_rate ? BaseRateRecords(options.traces, 7) : std::vector<RequestRecord>();
  const std::vector<RequestRecord> stage_records =
      meshtel::bench::MakeMeshTraces(options.stage_traces, 11, /*sampled=*/true);
  size_t smallest = SIZE_MAX, largest = 0, total = 0;
  for (const RequestRecord& record : records) {
    smallest = std::min(smallest, record.ByteSizeLong());
    largest = std::max(largest, record.ByteSizeLong());
    total += record.ByteSizeLong();
  }
  std::printf(
      "records: %zu traces × 3 hops, %zu–%zu bytes, mean %.0f; stages on %zu other "
      "traces; memory with %zu spans; dir %s\n",
      options.traces, smallest, largest,
      static_cast<double>(total) / static_cast<double>(records.size()), options.stage_traces,
      options.memory_spans, options.dir.c_str());
  std::fflush(stdout);

  std::vector<StageSet> stage_sets;
  for (const std::string& phase : options.phases) {
    stage_sets.push_back(RunStages(options, stage_records, phase == "on"));
    PrintStages(stage_sets.back());
    std::fflush(stdout);
  }

  std::vector<MemoryRow> memory;
  if (options.memory_spans > 0) {
    for (const std::string& phase : options.phases) {
      memory.push_back(MeasureMemory(records, phase == "on", options.memory_spans));
    }
    std::printf(
        "\nMemory per in-flight span (TraceAssembler holding their summaries and their records' "
        "bytes, as the pipeline does)\n\n");
    std::printf(
        "| Phase spans | spans held | of which hop spans | traces | heap growth MiB "
        "| heap B per span | RSS growth MiB | RSS B per span | serialized B per span "
        "| held record bytes per span |\n|---|---|---|---|---|---|---|---|---|---|\n");
    const MemoryRow* hops_only = nullptr;
    for (const MemoryRow& row : memory) {
      if (!row.phase_spans) hops_only = &row;
      std::printf("| %s | %zu | %zu | %zu | %.1f | %.0f | %.1f | %.0f | %.0f | %.0f |\n",
                  PhaseName(row.phase_spans), row.spans, row.hop_spans, row.traces,
                  static_cast<double>(row.heap) / (1 << 20), row.HeapPerSpan(),
                  static_cast<double>(row.rss) / (1 << 20), row.RssPerSpan(),
                  row.SerializedPerSpan(),
                  static_cast<double>(row.held_bytes) / static_cast<double>(row.spans));
    }
    for (const MemoryRow& row : memory) {
      if (!row.phase_spans || hops_only == nullptr || row.spans == row.hop_spans) continue;
      const double phase_heap = static_cast<double>(row.heap) -
                                hops_only->HeapPerSpan() * static_cast<double>(row.hop_spans);
      std::printf(
          "\nphase spans alone (heap with phases less its hop spans at the hop-only "
          "rate): %.0f B per phase span\n",
          phase_heap / static_cast<double>(row.spans - row.hop_spans));
    }
    std::fflush(stdout);
  }

  std::printf(
      "\nPipeline, end to end (TracePipeline thread from Start() until every span "
      "written)\n\n");
  std::printf(
      "| Sampling | Phase spans | durability | traces | spans assembled and sampled | spans "
      "kept (written) | wall s | spans/s | process CPU s | spans per CPU-s | pipeline thread "
      "CPU s | spans per pipeline-thread CPU-s | RocksDB threads CPU s | main thread CPU s "
      "| ratio to floor | stored B per kept span |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  std::vector<PipelineRow> rows;
  bool read_measured = false;
  const auto print_row = [&](const PipelineRow& row) {
    double floor_ns = 0;
    for (const StageSet& set : stage_sets) {
      if (set.phase_spans == row.phase_spans) floor_ns = set.floor_ns_per_span;
    }
    const double cpu_ns_per_span = row.process_cpu / static_cast<double>(row.spans) * 1e9;
    std::printf(
        "| %s | %s | %s | %zu | %zu | %zu | %.2f | %.0f | %.2f | %.0f | %.2f | %.0f | %.2f | %.2f "
        "| %s | %.0f |\n",
        row.mix.c_str(), PhaseName(row.phase_spans), row.mode.c_str(), row.traces, row.spans,
        row.kept_spans, row.wall, row.SpansPerSecond(), row.process_cpu, row.SpansPerCpuSecond(),
        row.pipeline_thread_cpu, row.SpansPerPipelineCpuSecond(), row.rocksdb_cpu, row.main_cpu,
        floor_ns == 0 || row.kept_spans != row.spans
            ? "-"
            : fmt::format("{:.1f}×", cpu_ns_per_span / floor_ns).c_str(),
        row.stored_bytes_per_span);
    std::fflush(stdout);
  };
  for (const std::string& phase : options.phases) {
    const bool phase_spans = phase == "on";
    if (options.keep_all) {
      const size_t expected = CountSpans(records, phase_spans);
      for (const std::string& mode : options.modes) {
        rows.push_back(RunPipeline(options, records, PipelineConfig(phase_spans), "keep all", mode,
                                   expected, expected, !read_measured));
        read_measured = true;
        print_row(rows.back());
      }
    }
    if (options.base_rate) {
      const TracesConfig config = BaseRateConfig(phase_spans);
      const auto [expected, kept] = BaseRateSpans(base_rate_records, config);
      rows.push_back(RunPipeline(options, base_rate_records, config, "1% base rate",
                                 options.modes.front(), expected, kept, false));
      print_row(rows.back());
    }
  }
  for (const PipelineRow& row : rows) {
    if (row.read_ns_per_record > 0) {
      std::printf(
          "\nRecordStore::Read of the logs family afterwards (batches of %zu, main thread "
          "CPU): %.0f ns per record\n",
          kPipelineReadBatch, row.read_ns_per_record);
    }
  }
  for (const StageSet& set : stage_sets) {
    for (const PipelineRow& row : rows) {
      if (row.read_ns_per_record <= 0) continue;
      std::printf("sum of the stages with Read, phase spans %s: %.0f ns per span\n",
                  PhaseName(set.phase_spans),
                  set.pipeline_ns_per_span + row.read_ns_per_record *
                                                 static_cast<double>(set.records) /
                                                 static_cast<double>(set.spans));
    }
  }
  std::printf(
      "\nratio to floor: the pipeline's process CPU per span over the floor's (parse of "
      "the records + SerializeToString of the spans, per span) from the stages above\n");
  return 0;
}
