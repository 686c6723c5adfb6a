#include "collector/traces/trace_pipeline.h"

#include <iterator>
#include <utility>
#include <vector>

#include "spdlog/spdlog.h"

namespace meshtel::collector {
namespace {

constexpr StoreKey kEndOfStore{~uint64_t{0}, ~uint64_t{0}};
constexpr size_t kReadBatch = 2048;
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

TracePipeline::TracePipeline(const TracesConfig& config, RecordStore& store,
                             prometheus::Registry& registry)
    : config_(config),
      store_(store),
      builder_(config),
      assembler_(config.assembly, registry),
      sampler_(config.sampling, registry),
      records_read_(prometheus::BuildCounter()
                        .Name("meshtel_trace_records_read_total")
                        .Help("Stored proxy records the trace pipeline read to build spans.")
                        .Register(registry)
                        .Add({})),
      records_skipped_(prometheus::BuildCounter()
                           .Name("meshtel_trace_records_skipped_total")
                           .Help("Records read again after a restart whose spans were already "
                                 "stored (not written twice).")
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
    records_read_.Increment();
    spans.clear();
    if (builder_.Build(stored.record, spans) == 0) continue;
    if (stored.key <= skip_written_up_to_) {
      absl::StatusOr<bool> written =
          store_.HasSpan(stored.record.trace_id(), stored.record.span_id());
      if (written.ok() && *written) {
        records_skipped_.Increment();
        continue;
      }
    }
    assembler_.Add(stored.key, std::move(spans), stored.record.sampled(), now);
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
