#include "collector/traces/trace_pipeline.h"

#include <iterator>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "collector/traces/record_summary_fields.h"
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

void TracePipeline::TakeReceivedSpan(const meshtel::v1::Span& received, const SpanMarks& marks,
                                     SerializedSpans& out) {
  meshtel::v1::Span span = received;
  // A parent id that is no span id (empty, all zero, wrong size) makes a root, as in OTLP.
  if (!IsValidSpanId(span.parent_span_id())) span.clear_parent_span_id();
  // The marks are the assembler's to set, never the sender's.
  span.clear_anomalies();
  if (!marks.summaries.empty()) {
    const SpanSummary& marked = marks.summaries.front();
    span.set_anomalies(marked.anomalies);
    span.set_start_time_unix_nano(marked.start_time_unix_nano);
    span.set_end_time_unix_nano(marked.end_time_unix_nano);
  }
  for (const SpanFit& fit : marks.fits) {
    if (fit.span != marks.first_summary) continue;
    meshtel::v1::SpanAttribute* mark = span.add_attributes();
    mark->set_key(std::string(kFittedToParentAttribute));
    mark->set_int_value(static_cast<int64_t>(fit.trimmed_ns));
  }
  out.Add(span);
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
      records_undecodable_(prometheus::BuildCounter()
                               .Name("meshtel_trace_records_undecodable_total")
                               .Help("Stored records the trace pipeline could not decode (left "
                                     "out; the store moves them to dead_letter when a log "
                                     "exporter reads them).")
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
    for (const AssembledTrace& trace : decided) {
      const SamplingVerdict verdict =
          sampler_.Decide(trace, now, [&](size_t span) { return ServiceOf(trace, span); });
      if (verdict.keep) BuildKept(trace);
    }
    if (!decided.empty()) progress_dirty_ = true;
    if (!kept_.empty() || (progress_dirty_ && now - last_progress_write_ >= kProgressInterval)) {
      WriteKept();
    }
    if (!read_full && !Sleep(kPollInterval)) break;
  }
}

std::string TracePipeline::ServiceOf(const AssembledTrace& trace, size_t span) {
  const TraceRecord& held = trace.records[trace.spans[span].record];
  if (view_.Read(held.bytes)) return builder_.ServiceName(view_);
  if (!parsed_.ParseFromString(held.bytes)) return std::string();
  if (parsed_.has_received_span()) return parsed_.received_span().service_name();
  return builder_.ServiceName(parsed_);
}

bool TracePipeline::BuildHeld(const TraceRecord& held, const SpanMarks& marks) {
  // The usual case: the spans encoded from a view of the held bytes, as they are.
  if (view_.Read(held.bytes)) {
    if (held.policy == nullptr) {
      builder_.Encode(view_, SpanOptions{.phase_spans = config_.phase_spans}, marks, kept_);
      return true;
    }
    const CompiledSidePolicy& side = held.policy->side(PolicyEnforcer::SideOf(view_.reporter()));
    if (side.formatter_tags.empty()) {  // formatter tags render from a parsed record
      builder_.Encode(
          view_, SpanOptions{.phase_spans = side.phase_spans, .exporters = side.span_exporters},
          marks, kept_);
      return true;
    }
  }
  if (!parsed_.ParseFromString(held.bytes)) return false;
  if (parsed_.has_received_span()) {
    TakeReceivedSpan(parsed_.received_span(), marks, kept_);
  } else if (held.policy != nullptr) {
    const CompiledSidePolicy& side = held.policy->side(PolicyEnforcer::SideOf(parsed_));
    formatter_tags_.clear();
    for (const FormatterTag& tag : side.formatter_tags) {
      formatter_tags_.emplace_back(tag.name, tag.format.get());
    }
    builder_.Encode(parsed_,
                    SpanOptions{.phase_spans = side.phase_spans,
                                .formatter_tags = formatter_tags_,
                                .exporters = side.span_exporters},
                    marks, kept_);
  } else {
    builder_.Encode(parsed_, SpanOptions{.phase_spans = config_.phase_spans}, marks, kept_);
  }
  return true;
}

void TracePipeline::BuildKept(const AssembledTrace& trace) {
  size_t summary = 0;  // the summary of the record's first span
  for (size_t record_index = 0; record_index < trace.records.size(); ++record_index) {
    const TraceRecord& held = trace.records[record_index];
    size_t summaries = 0;  // the record's spans
    while (summary + summaries < trace.spans.size() &&
           trace.spans[summary + summaries].record == record_index) {
      ++summaries;
    }
    const SpanMarks marks{.summaries = std::span(trace.spans).subspan(summary, summaries),
                          .fits = trace.fits,
                          .first_summary = summary};
    summary += summaries;
    const size_t before = kept_.size();
    if (!BuildHeld(held, marks)) {
      spdlog::error("traces: a held record of trace {} no longer parses; its spans are left out",
                    absl::BytesToHexString(trace.trace_id));
      continue;
    }
    if (kept_.size() - before != summaries) {
      // Never expected: Summarize and Encode agree on the spans of a record.
      spdlog::error(
          "traces: the spans built of a record of trace {} differ from its summaries; "
          "they are left out",
          absl::BytesToHexString(trace.trace_id));
      kept_.Truncate(before);
    }
  }
}

bool TracePipeline::ReadOnce(absl::Time now) {
  // Read the stored bytes of each record (what the assembler holds, not serialized again) into
  // the elements of the last read, which keep their memory. A proxy record's summary, and the
  // lookup of its workload's policy, need a few of its fields only (ReadSummaryFields); records
  // the walk does not vouch for, received spans and logs, and records whose policy adds
  // formatter tags (rendered from any field) are parsed whole.
  absl::StatusOr<size_t> read = store_.ReadInto(RecordFamily::kLogs, read_after_, kEndOfStore,
                                                kReadBatch, read_records_, ReadContent::kBytes);
  if (!read.ok()) {
    spdlog::warn("traces: reading records failed: {}", read.status().ToString());
    return false;
  }
  for (size_t i = 0; i < *read; ++i) {
    StoredRecord& stored = read_records_[i];
    const meshtel::v1::RequestRecord* read_record = nullptr;
    std::shared_ptr<const CompiledPolicy> policy;
    if (ReadSummaryFields(stored.bytes, summary_fields_)) {
      read_record = &summary_fields_;
      if (policy_ != nullptr) {
        policy = policy_->For(summary_fields_);
        if (!policy->side(PolicyEnforcer::SideOf(summary_fields_)).formatter_tags.empty()) {
          read_record = nullptr;
        }
      }
    }
    if (read_record == nullptr) {
      if (!stored.record.ParseFromString(stored.bytes)) {
        // The store sets such a record aside when a log exporter reads it; no spans from it.
        records_undecodable_.Increment();
        continue;
      }
      read_record = &stored.record;
    }
    const meshtel::v1::RequestRecord& record = *read_record;
    if (record.has_received_log()) continue;  // a log record: the log exporters' business
    records_read_.Increment();
    summaries_.clear();
    bool head_sampled = false;
    std::string_view trace_id;
    std::string_view span_id;  // the record's own span (the hop span, or the received span)
    if (record.has_received_span()) {
      const meshtel::v1::Span& received = record.received_span();
      if (!IsValidTraceId(received.trace_id()) || !IsValidSpanId(received.span_id())) {
        received_spans_invalid_.Increment();
        continue;
      }
      summaries_.push_back(SummarizeSpan(received));
      trace_id = received.trace_id();
      span_id = received.span_id();
      head_sampled = (received.flags() & kSampledFlag) != 0;
    } else {
      size_t summarized = 0;
      if (policy_ != nullptr) {
        if (policy == nullptr) policy = policy_->For(record);
        const CompiledSidePolicy& side = policy->side(PolicyEnforcer::SideOf(record));
        if (!side.spans_enabled) {
          records_unreported_.Increment();
          continue;
        }
        formatter_tags_.clear();
        for (const FormatterTag& tag : side.formatter_tags) {
          formatter_tags_.emplace_back(tag.name, tag.format.get());
        }
        summarized = builder_.Summarize(record, summaries_,
                                        SpanOptions{.phase_spans = side.phase_spans,
                                                    .formatter_tags = formatter_tags_,
                                                    .exporters = side.span_exporters});
      } else {
        summarized = builder_.Summarize(record, summaries_);
      }
      if (summarized == 0) continue;
      trace_id = record.trace_id();
      span_id = record.span_id();
      head_sampled = record.sampled();
    }
    // The first span is the record's own (the hop span, or the received span): when it is stored,
    // the whole record's spans are (a kept trace is written in one write).
    if (stored.key <= skip_written_up_to_) {
      absl::StatusOr<bool> written = store_.HasSpan(trace_id, span_id);
      if (written.ok() && *written) {
        records_skipped_.Increment();
        continue;
      }
    }
    if (record.has_received_span()) received_spans_.Increment();
    TraceRecord held{
        .key = stored.key, .bytes = std::move(stored.bytes), .policy = std::move(policy)};
    assembler_.Add(trace_id, summaries_, std::move(held), head_sampled, now);
  }
  if (*read > 0) {
    read_after_ = read_records_[*read - 1].key;
    progress_dirty_ = true;
  }
  return *read == kReadBatch;
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
