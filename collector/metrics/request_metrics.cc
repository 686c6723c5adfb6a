#include "collector/metrics/request_metrics.h"

#include <time.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <mutex>
#include <span>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "collector/metrics/istio_labels.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {
namespace {

constexpr std::string_view kRequestsTotal = "istio_requests_total";
constexpr std::string_view kDuration = "istio_request_duration_milliseconds";
constexpr std::string_view kRequestBytes = "istio_request_bytes";
constexpr std::string_view kResponseBytes = "istio_response_bytes";
constexpr std::string_view kRequestMessages = "istio_request_messages_total";
constexpr std::string_view kResponseMessages = "istio_response_messages_total";

constexpr std::array<std::string_view, 4> kRequestTableMetrics = {kRequestsTotal, kDuration,
                                                                  kRequestBytes, kResponseBytes};
constexpr std::array<std::string_view, 2> kMessageTableMetrics = {kRequestMessages,
                                                                  kResponseMessages};

// Series key: each label value prefixed by its length, so distinct tuples never collide. Sized
// once and filled with memcpy: `key` is a reused buffer, so this allocates only when it grows.
void BuildSeriesKey(std::span<const std::string_view> values, std::string& key) {
  size_t total = 0;
  for (std::string_view value : values) total += sizeof(uint32_t) + value.size();
  key.resize(total);
  char* out = key.data();
  for (std::string_view value : values) {
    const uint32_t size = static_cast<uint32_t>(value.size());
    std::memcpy(out, &size, sizeof(size));
    out += sizeof(size);
    std::memcpy(out, value.data(), value.size());
    out += value.size();
  }
}

// True when no byte of `text` has its high bit set, eight bytes at a time. On a series key this
// means every value is ASCII (a length prefix has a high bit only for values of 128+ bytes,
// which then take the slow path).
bool IsAsciiText(std::string_view text) {
  uint64_t seen = 0;
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, sizeof(word));
    seen |= word;
  }
  for (; i < text.size(); ++i) seen |= static_cast<unsigned char>(text[i]);
  return (seen & 0x8080808080808080ull) == 0;
}

// The label values of a key, in order.
void DecodeSeriesKey(std::string_view key, std::span<std::string_view> values) {
  size_t at = 0;
  for (std::string_view& value : values) {
    uint32_t size = 0;
    std::memcpy(&size, key.data() + at, sizeof(size));
    at += sizeof(size);
    value = key.substr(at, size);
    at += size;
  }
}

std::string RenderLabels(std::span<const std::string_view> names,
                         std::span<const std::string_view> values) {
  std::string text;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) text.push_back(',');
    text.append(names[i]);
    text.append("=\"");
    AppendEscapedLabelValue(values[i], text);
    text.push_back('"');
  }
  return text;
}

void AppendUint(uint64_t value, std::string& out) {
  char buffer[24];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

// The `le` values of kIstioHistogramBounds plus "+Inf", per format.
const std::vector<std::string>& LeTexts(ExpositionFormat format) {
  static const auto make = [](ExpositionFormat f) {
    std::vector<std::string> texts;
    for (double bound : kIstioHistogramBounds) {
      std::string text;
      AppendLeValue(f, bound, text);
      texts.push_back(text);
    }
    texts.push_back("+Inf");
    return texts;
  };
  static const std::vector<std::string> text = make(ExpositionFormat::kPrometheusText);
  static const std::vector<std::string> open_metrics = make(ExpositionFormat::kOpenMetrics);
  return format == ExpositionFormat::kOpenMetrics ? open_metrics : text;
}

struct RequestValues {
  uint64_t requests = 0;
  HistogramCounts duration_ms;
  HistogramCounts request_bytes;
  HistogramCounts response_bytes;
};

struct MessageValues {
  uint64_t request_messages = 0;
  uint64_t response_messages = 0;
};

// Label text shared by the live series and every snapshot that copied it.
struct SeriesLabels {
  std::string key;   // length-prefixed values (series_key)
  std::string text;  // rendered once: reporter="source",source_workload="...",...
};

template <class Values>
struct SnapshotRow {
  std::shared_ptr<const SeriesLabels> labels;
  Values values;
};

// One set of metrics that share their label sets: sharded series, a limit, one overflow series.
template <class Values, size_t kLabels>
class SeriesTable {
 public:
  SeriesTable(std::string_view table_name, const std::array<std::string_view, kLabels>& names,
              std::span<const std::string_view> metrics, size_t shard_count, uint64_t max_series,
              prometheus::Family<prometheus::Counter>* overflow_family,
              prometheus::Family<prometheus::Gauge>* series_family)
      : table_name_(table_name), names_(names), max_series_(max_series) {
    shards_.reserve(shard_count);
    for (size_t i = 0; i < shard_count; ++i) shards_.push_back(std::make_unique<Shard>());
    for (std::string_view metric : metrics) {
      if (overflow_family != nullptr) {
        overflow_counters_.push_back(&overflow_family->Add({{"metric", std::string(metric)}}));
      }
      if (series_family != nullptr) {
        series_gauges_.push_back(&series_family->Add({{"metric", std::string(metric)}}));
      }
    }
    std::array<std::string_view, kLabels> overflow_values;
    overflow_values.fill(kOverflowLabelValue);
    overflow_labels_ = MakeLabels(overflow_values);
  }

  // Applies `update` to the series of `values` (valid UTF-8; `series_key` is
  // BuildSeriesKey(values)), creating it or falling back to the overflow series.
  template <class Fn>
  void Update(const std::array<std::string_view, kLabels>& values, std::string_view series_key,
              int64_t now_ms, const Fn& update) {
    // absl's own string hash: std::string_view would hash through std::hash (Debian's Abseil
    // keeps its own string_view type), several times slower on 400-byte keys.
    const absl::string_view key(series_key.data(), series_key.size());
    Shard& shard = *shards_[absl::HashOf(key) % shards_.size()];
    {
      std::lock_guard<std::mutex> lock(shard.mutex);
      auto it = shard.series.find(key);
      if (it == shard.series.end() && Reserve()) {
        auto series = std::make_unique<Series>();
        series->labels = MakeLabels(values);
        const std::string& stored = series->labels->key;
        it =
            shard.series.emplace(absl::string_view(stored.data(), stored.size()), std::move(series))
                .first;
      }
      if (it != shard.series.end()) {
        update(it->second->values);
        it->second->last_update_ms = now_ms;
        return;
      }
    }
    // The table is full and this label set is new.
    for (prometheus::Counter* counter : overflow_counters_) counter->Increment();
    if (!overflow_warned_.exchange(true, std::memory_order_relaxed)) {
      spdlog::warn(
          "metrics: {} reached {} label sets; new label sets now update the series labelled "
          "\"{}\" (see meshtel_metrics_series_overflow_total)",
          table_name_, max_series_, kOverflowLabelValue);
    }
    std::lock_guard<std::mutex> lock(overflow_mutex_);
    if (!overflow_) {
      overflow_ = std::make_unique<Series>();
      overflow_->labels = overflow_labels_;
    }
    update(overflow_->values);
    overflow_->last_update_ms = now_ms;
  }

  size_t ExpireIdle(int64_t cutoff_ms) {
    size_t removed = 0;
    for (const auto& shard : shards_) {
      std::lock_guard<std::mutex> lock(shard->mutex);
      removed += absl::erase_if(shard->series, [cutoff_ms](const auto& entry) {
        return entry.second->last_update_ms < cutoff_ms;
      });
    }
    if (removed > 0) {
      series_.fetch_sub(removed, std::memory_order_relaxed);
      for (prometheus::Gauge* gauge : series_gauges_)
        gauge->Decrement(static_cast<double>(removed));
    }
    std::lock_guard<std::mutex> lock(overflow_mutex_);
    if (overflow_ && overflow_->last_update_ms < cutoff_ms) {
      overflow_.reset();
      ++removed;
    }
    return removed;
  }

  // Every series (overflow last), ordered by label text.
  std::vector<SnapshotRow<Values>> Snapshot() const {
    std::vector<SnapshotRow<Values>> rows;
    rows.reserve(size() + 1);  // a guess: series come and go while the shards are read
    for (const auto& shard : shards_) {
      std::lock_guard<std::mutex> lock(shard->mutex);
      for (const auto& [key, series] : shard->series)
        rows.push_back({series->labels, series->values});
    }
    std::sort(rows.begin(), rows.end(),
              [](const SnapshotRow<Values>& a, const SnapshotRow<Values>& b) {
                return a.labels->text < b.labels->text;
              });
    std::lock_guard<std::mutex> lock(overflow_mutex_);
    if (overflow_) rows.push_back({overflow_->labels, overflow_->values});
    return rows;
  }

  size_t size() const { return series_.load(std::memory_order_relaxed); }
  const std::array<std::string_view, kLabels>& names() const { return names_; }

 private:
  struct Series {
    std::shared_ptr<const SeriesLabels> labels;
    Values values;
    int64_t last_update_ms = 0;
  };
  struct Shard {
    mutable std::mutex mutex;
    // Keys view into the series' own SeriesLabels::key, which never moves.
    absl::flat_hash_map<absl::string_view, std::unique_ptr<Series>> series ABSL_GUARDED_BY(mutex);
  };

  std::shared_ptr<const SeriesLabels> MakeLabels(
      const std::array<std::string_view, kLabels>& values) {
    auto labels = std::make_shared<SeriesLabels>();
    BuildSeriesKey(values, labels->key);
    labels->text = RenderLabels(names_, values);
    return labels;
  }

  // Counts one more series if the limit allows it.
  bool Reserve() {
    uint64_t current = series_.load(std::memory_order_relaxed);
    do {
      if (current >= max_series_) return false;
    } while (!series_.compare_exchange_weak(current, current + 1, std::memory_order_relaxed));
    for (prometheus::Gauge* gauge : series_gauges_) gauge->Increment();
    return true;
  }

  const std::string_view table_name_;
  const std::array<std::string_view, kLabels> names_;
  const uint64_t max_series_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<uint64_t> series_{0};
  std::atomic<bool> overflow_warned_{false};
  std::vector<prometheus::Counter*> overflow_counters_;
  std::vector<prometheus::Gauge*> series_gauges_;
  std::shared_ptr<const SeriesLabels> overflow_labels_;
  mutable std::mutex overflow_mutex_;
  std::unique_ptr<Series> overflow_ ABSL_GUARDED_BY(overflow_mutex_);
};

using RequestTable = SeriesTable<RequestValues, kIstioRequestLabelCount>;
using MessageTable = SeriesTable<MessageValues, kIstioMessageLabelCount>;

// One histogram family: _bucket (cumulative, le ascending, +Inf last), _sum, _count.
void RenderHistogram(ExpositionFormat format, std::string_view name, std::string_view help,
                     std::string_view unit, const std::vector<SnapshotRow<RequestValues>>& rows,
                     HistogramCounts RequestValues::*member, std::string& out) {
  const std::vector<std::string>& le_texts = LeTexts(format);
  AppendMetadata(format, name, MetricKind::kHistogram, help, unit, out);
  for (const auto& row : rows) {
    const std::string& labels = row.labels->text;
    const HistogramCounts& histogram = row.values.*member;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < histogram.counts.size(); ++i) {
      cumulative += histogram.counts[i];
      out.append(name).append("_bucket{").append(labels).append(",le=\"").append(le_texts[i]);
      out.append("\"} ");
      AppendUint(cumulative, out);
      out.push_back('\n');
    }
    out.append(name).append("_sum{").append(labels).append("} ");
    AppendPrometheusDouble(histogram.sum, out);
    out.append("\n").append(name).append("_count{").append(labels).append("} ");
    AppendUint(histogram.count, out);
    out.push_back('\n');
  }
}

template <class Rows, class Value>
void RenderCounter(ExpositionFormat format, std::string_view name, std::string_view help,
                   const Rows& rows, Value member, std::string& out) {
  AppendMetadata(format, name, MetricKind::kCounter, help, "", out);
  for (const auto& row : rows) {
    out.append(name).append("{").append(row.labels->text).append("} ");
    AppendUint(row.values.*member, out);
    out.push_back('\n');
  }
}

// Repairs the values that are not valid UTF-8 into `scratch`, pointing the views there;
// returns whether any changed.
template <size_t N>
bool RepairUtf8(std::array<std::string_view, N>& values, std::array<std::string, N>& scratch) {
  bool changed = false;
  for (size_t i = 0; i < N; ++i) {
    if (IsValidUtf8(values[i])) continue;
    scratch[i].clear();
    AppendUtf8Repaired(values[i], scratch[i]);
    values[i] = scratch[i];
    changed = true;
  }
  return changed;
}

}  // namespace

struct RequestMetrics::Tables {
  Tables(const RequestMetricsOptions& options, prometheus::Family<prometheus::Counter>* overflow,
         prometheus::Family<prometheus::Gauge>* series)
      : requests("the request metrics", kIstioRequestLabelNames, kRequestTableMetrics,
                 options.shard_count, options.max_series_per_metric, overflow, series),
        messages("the gRPC message metrics", kIstioMessageLabelNames, kMessageTableMetrics,
                 options.shard_count, options.max_series_per_metric, overflow, series) {}

  RequestTable requests;
  MessageTable messages;
};

void HistogramCounts::Observe(double value) {
  const auto it =
      std::lower_bound(kIstioHistogramBounds.begin(), kIstioHistogramBounds.end(), value);
  ++counts[static_cast<size_t>(it - kIstioHistogramBounds.begin())];
  sum += value;
  ++count;
}

RequestMetrics::RequestMetrics(RequestMetricsOptions options) : options_(std::move(options)) {
  options_.shard_count = std::max<size_t>(options_.shard_count, 1);
  options_.max_series_per_metric = std::max<uint64_t>(options_.max_series_per_metric, 1);
  prometheus::Family<prometheus::Counter>* overflow = nullptr;
  prometheus::Family<prometheus::Gauge>* series = nullptr;
  if (options_.registry != nullptr) {
    overflow = &prometheus::BuildCounter()
                    .Name("meshtel_metrics_series_overflow_total")
                    .Help(
                        "Updates that went to a metric's overflow series because the metric "
                        "held metrics.max_series_per_metric label sets.")
                    .Register(*options_.registry);
    series = &prometheus::BuildGauge()
                  .Name("meshtel_metrics_series")
                  .Help(
                      "Label sets a metric holds, counted against metrics.max_series_per_metric "
                      "(the overflow series not included).")
                  .Register(*options_.registry);
  }
  tables_ = std::make_unique<Tables>(options_, overflow, series);
}

RequestMetrics::~RequestMetrics() = default;

int64_t RequestMetrics::NowMs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1'000'000;
}

void RequestMetrics::Record(const meshtel::v1::RequestRecord& record, int64_t now_ms) {
  thread_local IstioLabelScratch scratch;
  thread_local std::array<std::string, kIstioRequestLabelCount> repaired;
  thread_local std::string key;
  auto values = IstioRequestLabelValues(record, scratch);
  BuildSeriesKey(values, key);
  if (!IsAsciiText(key) && RepairUtf8(values, repaired)) BuildSeriesKey(values, key);

  tables_->requests.Update(values, key, now_ms, [&record](RequestValues& series) {
    ++series.requests;
    series.duration_ms.Observe(static_cast<double>(record.duration_ns()) / 1e6);
    series.request_bytes.Observe(static_cast<double>(record.request_bytes()));
    series.response_bytes.Observe(static_cast<double>(record.response_bytes()));
  });

  if (record.request_protocol() == meshtel::v1::REQUEST_PROTOCOL_GRPC) {
    std::array<std::string_view, kIstioMessageLabelCount> message_values;
    for (size_t i = 0; i < kIstioMessageLabelCount; ++i) {
      message_values[i] = values[kIstioMessageLabelIndexes[i]];
    }
    BuildSeriesKey(message_values, key);
    tables_->messages.Update(message_values, key, now_ms, [&record](MessageValues& series) {
      series.request_messages += record.request_messages();
      series.response_messages += record.response_messages();
    });
  }
}

size_t RequestMetrics::ExpireIdle(int64_t now_ms, int64_t idle_ms) {
  const int64_t cutoff = now_ms - idle_ms;
  return tables_->requests.ExpireIdle(cutoff) + tables_->messages.ExpireIdle(cutoff);
}

size_t RequestMetrics::series_count() const { return tables_->requests.size(); }

size_t RequestMetrics::message_series_count() const { return tables_->messages.size(); }

void RequestMetrics::Render(ExpositionFormat format, std::string& out) const {
  const auto requests = tables_->requests.Snapshot();
  if (!requests.empty()) {
    RenderCounter(format, kRequestsTotal, "Requests handled, by Istio's standard labels.", requests,
                  &RequestValues::requests, out);
    RenderHistogram(
        format, kDuration,
        "Request duration from the first downstream byte to the end of the response, in ms.",
        "milliseconds", requests, &RequestValues::duration_ms, out);
    RenderHistogram(format, kRequestBytes,
                    "Request size as received from the downstream, in bytes.", "bytes", requests,
                    &RequestValues::request_bytes, out);
    RenderHistogram(format, kResponseBytes, "Response size as sent to the downstream, in bytes.",
                    "bytes", requests, &RequestValues::response_bytes, out);
  }
  const auto messages = tables_->messages.Snapshot();
  if (!messages.empty()) {
    RenderCounter(format, kRequestMessages, "gRPC messages sent by the client.", messages,
                  &MessageValues::request_messages, out);
    RenderCounter(format, kResponseMessages, "gRPC messages sent by the server.", messages,
                  &MessageValues::response_messages, out);
  }
  if (!options_.build_tag.empty()) {
    AppendMetadata(format, "istio_build", MetricKind::kGauge,
                   "The build of the meshtel proxies reporting to this collector.", "", out);
    out.append("istio_build{component=\"proxy\",tag=\"");
    std::string tag;
    AppendUtf8Repaired(options_.build_tag, tag);
    AppendEscapedLabelValue(tag, out);
    out.append("\"} 1\n");
  }
}

void RequestMetrics::VisitSamples(const std::function<void(const MetricSample&)>& visit) const {
  const std::vector<std::string>& le_texts = LeTexts(ExpositionFormat::kPrometheusText);
  std::vector<SampleLabel> labels(kIstioRequestLabelCount + 1);
  std::array<std::string_view, kIstioRequestLabelCount> values;

  for (const auto& row : tables_->requests.Snapshot()) {
    DecodeSeriesKey(row.labels->key, values);
    for (size_t i = 0; i < kIstioRequestLabelCount; ++i) {
      labels[i] = {kIstioRequestLabelNames[i], values[i]};
    }
    const std::span<const SampleLabel> base(labels.data(), kIstioRequestLabelCount);
    visit({kRequestsTotal, base, static_cast<double>(row.values.requests)});
    const auto histogram = [&](std::string_view prefix, const HistogramCounts& counts) {
      const std::string bucket = std::string(prefix) + "_bucket";
      uint64_t cumulative = 0;
      for (size_t i = 0; i < counts.counts.size(); ++i) {
        cumulative += counts.counts[i];
        labels[kIstioRequestLabelCount] = {"le", le_texts[i]};
        visit({bucket, std::span<const SampleLabel>(labels.data(), kIstioRequestLabelCount + 1),
               static_cast<double>(cumulative)});
      }
      visit({std::string(prefix) + "_sum", base, counts.sum});
      visit({std::string(prefix) + "_count", base, static_cast<double>(counts.count)});
    };
    histogram(kDuration, row.values.duration_ms);
    histogram(kRequestBytes, row.values.request_bytes);
    histogram(kResponseBytes, row.values.response_bytes);
  }

  std::array<std::string_view, kIstioMessageLabelCount> message_values;
  for (const auto& row : tables_->messages.Snapshot()) {
    DecodeSeriesKey(row.labels->key, message_values);
    for (size_t i = 0; i < kIstioMessageLabelCount; ++i) {
      labels[i] = {kIstioMessageLabelNames[i], message_values[i]};
    }
    const std::span<const SampleLabel> base(labels.data(), kIstioMessageLabelCount);
    visit({kRequestMessages, base, static_cast<double>(row.values.request_messages)});
    visit({kResponseMessages, base, static_cast<double>(row.values.response_messages)});
  }

  if (!options_.build_tag.empty()) {
    std::string tag;
    AppendUtf8Repaired(options_.build_tag, tag);
    const SampleLabel build[] = {{"component", "proxy"}, {"tag", tag}};
    visit({"istio_build", build, 1});
  }
}

}  // namespace meshtel::collector
