#include "collector/traces/trace_pipeline.h"

#include <iterator>
#include <utility>
#include <vector>

#include "spdlog/spdlog.h"

namespace meshtel::collector {
namespace {

constexpr StoreKey kEndOfStore{~uint64_t{0}, ~uint64_t{0}};
constexpr size_t kReadBatch = 2048;
constexpr uint32_t kSampledFlag = 0x01;  // W3C trace flags
constexpr absl::Duration kPollInterval = absl::Milliseconds(50);
constexpr absl::Duration kProgressInterval = absl::Seconds(1);
constexpr absl::Duration kRetryInterval = absl::Milliseconds(500);

// The greatest key below `key`: a cursor (exclusive) that `key` comes after.
StoreKey Predecessor(const StoreKey& key) {
  if (key.sequence > 0) return StoreKey{key.time_unix_nano, key.sequence - 1};
  if (key.time_unix_nano > 0) return StoreKey{key.time_unix_nano - 1, ~uint64_t{0}};
  return StoreKey{};
}

}  // namespace

bool TracePipeline::TakeReceivedSpan(const meshtel::v1::Span& received,
                                     std::vector<meshtel::v1::Span>& out) {
  if (!IsValidTraceId(received.trace_id()) || !IsValidSpanId(received.span_id())) return false;
  meshtel::v1::Span& span = out.emplace_back(received);
  // A parent id that is no span id (empty, all zero, wrong size) makes a root, as in OTLP.
  if (!IsValidSpanId(span.parent_span_id())) span.clear_parent_span_id();
  // The marks are the assembler's to set, never the sender's.
  span.clear_anomalies();
  return true;
}

TracePipeline::TracePipeline(const TracesConfig& config, RecordStore& store,
                             prometheus::Registry& registry, const PolicyEnforcer* policy)
    : config_(config),
      store_(store),
      policy_(policy),
      builder_(config),
      assembler_(config.assembly, registry),
      sampler_(config.sampling, registry),
      records_read_(prometheus::BuildCounter()
                        .Name("meshtel_trace_records_read_total")
                        .Help("Stored proxy records and received spans the trace pipeline read.")
                        .Register(registry)
                        .Add({})),
      records_skipped_(prometheus::BuildCounter()
                           .Name("meshtel_trace_records_skipped_total")
                           .Help("Records read again after a restart whose spans were already "
                                 "stored (not written twice).")
                           .Register(registry)
                           .Add({})),
      records_unreported_(prometheus::BuildCounter()
                              .Name("meshtel_trace_records_unreported_total")
                              .Help("Proxy records that gave no span because their workload's "
                                    "telemetry policy disables span reporting.")
                              .Register(registry)
                              .Add({})),
      received_spans_(prometheus::BuildCounter()
                          .Name("meshtel_trace_received_spans_total")
                          .Help("Received spans (OTLP) the trace pipeline read from the store "
                                "and assembled into traces.")
                          .Register(registry)
                          .Add({})),
      received_spans_invalid_(prometheus::BuildCounter()
                                  .Name("meshtel_trace_received_spans_invalid_total")
                                  .Help("Received spans the trace pipeline left out: no valid "
                                        "trace id (16 bytes) or span id (8 bytes, not zero).")
                                  .Register(registry)
                                  .Add({})),
      spans_written_(prometheus::BuildCounter()
                         .Name("meshtel_trace_spans_written_total")
                         .Help("Spans of kept traces written to the store's spans family.")
                         .Register(registry)
                         .Add({})),
      write_errors_(prometheus::BuildCounter()
                        .Name("meshtel_trace_write_errors_total")
                        .Help("Failed writes of kept spans (retried).")
                        .Register(registry)
                        .Add({})) {}

TracePipeline::~TracePipeline() { Stop(); }

absl::Status TracePipeline::Start() {
  absl::StatusOr<StoreKey> cursor = store_.LoadCursor(kReaderName);
  if (!cursor.ok()) return cursor.status();
  absl::StatusOr<StoreKey> read_high = store_.LoadReadHigh(kReaderName);
  if (!read_high.ok()) return read_high.status();
  read_after_ = *cursor;
  skip_written_up_to_ = *read_high;
  if (*read_high > *cursor) {
    spdlog::info("traces: reading records again from {} (read up to {} before the restart)",
                 cursor->ToString(), read_high->ToString());
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void TracePipeline::Stop() {
  {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    stopping_ = true;
  }
  sleep_wakeup_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool TracePipeline::Sleep(absl::Duration duration) {
  std::unique_lock<std::mutex> lock(sleep_mutex_);
  sleep_wakeup_.wait_for(lock, absl::ToChronoNanoseconds(duration),
                         [this] { return stopping_.load(); });
  return !stopping_;
}

void TracePipeline::Run() {
  std::vector<AssembledTrace> decided;
  while (!stopping_) {
    const bool read_full = ReadOnce(absl::Now());
    const absl::Time now = absl::Now();
    decided.clear();
    assembler_.TakeDecided(now, decided);
    for (AssembledTrace& trace : decided) {
      if (!sampler_.Decide(trace, now).keep) continue;
      // Moved, not copied: a decided trace is not used again, and a copy of each span (dozens
      // of attributes, each its own allocations) cost more than building it.
      kept_.insert(kept_.end(), std::make_move_iterator(trace.spans.begin()),
                   std::make_move_iterator(trace.spans.end()));
    }
    if (!decided.empty()) progress_dirty_ = true;
    if (!kept_.empty() || (progress_dirty_ && now - last_progress_write_ >= kProgressInterval)) {
      WriteKept();
    }
    if (!read_full && !Sleep(kPollInterval)) break;
  }
}

bool TracePipeline::ReadOnce(absl::Time now) {
  absl::StatusOr<std::vector<StoredRecord>> records =
      store_.Read(RecordFamily::kLogs, read_after_, kEndOfStore, kReadBatch);
  if (!records.ok()) {
    spdlog::warn("traces: reading records failed: {}", records.status().ToString());
    return false;
  }
  std::vector<meshtel::v1::Span> spans;
  for (const StoredRecord& stored : *records) {
    const meshtel::v1::RequestRecord& record = stored.record;
    if (record.has_received_log()) continue;  // a log record: the log exporters' business
    records_read_.Increment();
    spans.clear();
    bool head_sampled = false;
    if (record.has_received_span()) {
      if (!TakeReceivedSpan(record.received_span(), spans)) {
        received_spans_invalid_.Increment();
        continue;
      }
      head_sampled = (spans.front().flags() & kSampledFlag) != 0;
    } else {
      size_t built = 0;
      if (policy_ != nullptr) {
        const std::shared_ptr<const CompiledPolicy> policy = policy_->For(record);
        const CompiledSidePolicy& side = policy->side(PolicyEnforcer::SideOf(record));
        if (!side.spans_enabled) {
          records_unreported_.Increment();
          continue;
        }
        formatter_tags_.clear();
        for (const FormatterTag& tag : side.formatter_tags) {
          formatter_tags_.emplace_back(tag.name, tag.format.get());
        }
        built = builder_.Build(record, spans,
                               SpanOptions{.phase_spans = side.phase_spans,
                                           .formatter_tags = formatter_tags_,
                                           .exporters = side.span_exporters});
      } else {
        built = builder_.Build(record, spans);
      }
      if (built == 0) continue;
      head_sampled = record.sampled();
    }
    // The first span is the record's own (the hop span, or the received span): when it is stored,
    // the whole record's spans are (a kept trace is written in one write).
    if (stored.key <= skip_written_up_to_) {
      absl::StatusOr<bool> written =
          store_.HasSpan(spans.front().trace_id(), spans.front().span_id());
      if (written.ok() && *written) {
        records_skipped_.Increment();
        continue;
      }
    }
    if (record.has_received_span()) received_spans_.Increment();
    assembler_.Add(stored.key, std::move(spans), head_sampled, now);
  }
  if (!records->empty()) {
    read_after_ = records->back().key;
    progress_dirty_ = true;
  }
  return records->size() == kReadBatch;
}

void TracePipeline::WriteKept() {
  const std::optional<StoreKey> oldest = assembler_.OldestPendingKey();
  const StoreKey cursor = oldest ? Predecessor(*oldest) : read_after_;
  while (true) {
    absl::Status status = store_.AppendSpans(kept_, kReaderName, cursor, read_after_);
    if (status.ok()) break;
    write_errors_.Increment();
    spdlog::warn("traces: writing {} spans failed ({}); retrying", kept_.size(), status.ToString());
    if (!Sleep(kRetryInterval)) return;
  }
  spans_written_.Increment(static_cast<double>(kept_.size()));
  kept_.clear();
  last_progress_write_ = absl::Now();
  progress_dirty_ = false;
}

}  // namespace meshtel::collector
