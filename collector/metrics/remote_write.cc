#include "collector/metrics/remote_write.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/time/clock.h"
#include "collector/metrics/exposition.h"
#include "fmt/format.h"
#include "prometheus/remote.pb.h"
#include "snappy.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {
namespace {

constexpr std::string_view kNameLabel = "__name__";

// Seconds ("120") or an HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT") after `now`.
std::optional<absl::Duration> ParseRetryAfter(const std::string& value, absl::Time now) {
  uint64_t seconds = 0;
  const char* end = value.data() + value.size();
  if (auto [ptr, ec] = std::from_chars(value.data(), end, seconds);
      ec == std::errc() && ptr == end) {
    return absl::Seconds(static_cast<int64_t>(std::min<uint64_t>(seconds, 86400)));
  }
  absl::Time at;
  std::string error;
  if (absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", value, absl::UTCTimeZone(), &at, &error)) {
    return std::max(absl::ZeroDuration(), at - now);
  }
  return std::nullopt;
}

// Serializes and compresses `request` into a batch and clears it.
void Flush(prometheus::WriteRequest& request, uint64_t samples,
           std::vector<RemoteWriteBatch>& batches) {
  if (samples == 0) return;
  const std::string serialized = request.SerializeAsString();
  RemoteWriteBatch batch;
  batch.samples = samples;
  snappy::Compress(serialized.data(), serialized.size(), &batch.body);
  batches.push_back(std::move(batch));
  request.Clear();
}

}  // namespace

void RegistrySampleSource::VisitSamples(
    const std::function<void(const MetricSample&)>& visit) const {
  std::vector<SampleLabel> labels;
  std::vector<std::string> values;  // repaired label values (stable while `labels` points in)
  std::string extra_value;
  std::string name;
  for (const prometheus::MetricFamily& family : registry_.Collect()) {
    for (const prometheus::ClientMetric& metric : family.metric) {
      values.clear();
      for (const prometheus::ClientMetric::Label& label : metric.label) {
        std::string value;
        AppendUtf8Repaired(label.value, value);
        values.push_back(std::move(value));
      }
      const auto emit = [&](const std::string& metric_name, std::string_view extra_name,
                            double value) {
        labels.clear();
        for (size_t i = 0; i < metric.label.size(); ++i) {
          labels.push_back({metric.label[i].name, values[i]});
        }
        if (!extra_name.empty()) labels.push_back({extra_name, extra_value});
        visit({.metric = metric_name, .labels = labels, .value = value});
      };
      switch (family.type) {
        case prometheus::MetricType::Counter:
          emit(family.name, "", metric.counter.value);
          break;
        case prometheus::MetricType::Gauge:
          emit(family.name, "", metric.gauge.value);
          break;
        case prometheus::MetricType::Untyped:
          emit(family.name, "", metric.untyped.value);
          break;
        case prometheus::MetricType::Histogram:
          name = family.name + "_bucket";
          for (const auto& bucket : metric.histogram.bucket) {
            extra_value.clear();
            AppendLeValue(ExpositionFormat::kPrometheusText, bucket.upper_bound, extra_value);
            emit(name, "le", static_cast<double>(bucket.cumulative_count));
          }
          emit(family.name + "_sum", "", metric.histogram.sample_sum);
          emit(family.name + "_count", "", static_cast<double>(metric.histogram.sample_count));
          break;
        case prometheus::MetricType::Summary:
          for (const auto& quantile : metric.summary.quantile) {
            extra_value.clear();
            AppendPrometheusDouble(quantile.quantile, extra_value);
            emit(family.name, "quantile", quantile.value);
          }
          emit(family.name + "_sum", "", metric.summary.sample_sum);
          emit(family.name + "_count", "", static_cast<double>(metric.summary.sample_count));
          break;
      }
    }
  }
}

std::vector<RemoteWriteBatch> BuildRemoteWriteBatches(
    const std::vector<const SampleSource*>& sources, int64_t timestamp_ms,
    uint64_t max_samples_per_send) {
  std::vector<RemoteWriteBatch> batches;
  prometheus::WriteRequest request;
  uint64_t in_request = 0;
  std::vector<std::pair<std::string_view, std::string_view>> labels;
  for (const SampleSource* source : sources) {
    source->VisitSamples([&](const MetricSample& sample) {
      labels.clear();
      labels.emplace_back(kNameLabel, sample.metric);
      for (const SampleLabel& label : sample.labels) labels.emplace_back(label.name, label.value);
      std::sort(labels.begin(), labels.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      prometheus::TimeSeries* series = request.add_timeseries();
      for (const auto& [name, value] : labels) {
        prometheus::Label* label = series->add_labels();
        label->set_name(name.data(), name.size());
        label->set_value(value.data(), value.size());
      }
      prometheus::Sample* point = series->add_samples();
      point->set_value(sample.value);
      point->set_timestamp(timestamp_ms);
      if (++in_request >= max_samples_per_send) {
        Flush(request, in_request, batches);
        in_request = 0;
      }
    });
  }
  Flush(request, in_request, batches);
  return batches;
}

absl::StatusOr<std::unique_ptr<RemoteWriter>> RemoteWriter::Create(
    RemoteWriteConfig config, std::vector<const SampleSource*> sources,
    prometheus::Registry& registry, const prometheus::Registry* push_registry) {
  if (absl::Status valid = config.Validate("remote_write"); !valid.ok()) return valid;
  absl::StatusOr<common::HttpUrl> url = common::ParseHttpUrl(config.url);
  if (!url.ok()) return url.status();
  std::unique_ptr<RemoteWriter> writer(
      new RemoteWriter(std::move(config), *std::move(url), std::move(sources), registry));
  if (!writer->client_.tls_status().ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("remote_write.tls: ", writer->client_.tls_status().message()));
  }
  if (push_registry != nullptr) {
    writer->registry_source_ = std::make_unique<RegistrySampleSource>(*push_registry);
    writer->sources_.push_back(writer->registry_source_.get());
  }
  return writer;
}

RemoteWriter::RemoteWriter(RemoteWriteConfig config, common::HttpUrl url,
                           std::vector<const SampleSource*> sources, prometheus::Registry& registry)
    : config_(std::move(config)),
      url_(std::move(url)),
      sources_(std::move(sources)),
      client_(url_, {.timeout = config_.timeout, .tls = common::HttpTlsOptions::From(config_.tls)}),
      random_(std::random_device{}()),
      samples_family_(prometheus::BuildCounter()
                          .Name("meshtel_remote_write_samples_total")
                          .Help("Samples of remote write requests, by outcome: sent (2xx), failed "
                                "(still unsent when a newer snapshot replaced them or at "
                                "shutdown), dropped (a 4xx other than 429)")
                          .Register(registry)),
      requests_family_(prometheus::BuildCounter()
                           .Name("meshtel_remote_write_requests_total")
                           .Help("Remote write HTTP requests, by answer status (error: no answer)")
                           .Register(registry)),
      samples_sent_(samples_family_.Add({{"url", config_.url}, {"outcome", "sent"}})),
      samples_failed_(samples_family_.Add({{"url", config_.url}, {"outcome", "failed"}})),
      samples_dropped_(samples_family_.Add({{"url", config_.url}, {"outcome", "dropped"}})),
      retries_(prometheus::BuildCounter()
                   .Name("meshtel_remote_write_retries_total")
                   .Help("Remote write requests sent again after a 5xx, 429 or transport failure")
                   .Register(registry)
                   .Add({{"url", config_.url}})) {
  headers_ = {{"Content-Encoding", "snappy"},
              {"Content-Type", "application/x-protobuf"},
              {"X-Prometheus-Remote-Write-Version", "0.1.0"},
              {"User-Agent", "meshtel-collector/" MESHTEL_VERSION}};
  if (!config_.basic_auth_username.empty()) {
    headers_.emplace_back("Authorization",
                          "Basic " + absl::Base64Escape(config_.basic_auth_username + ":" +
                                                        config_.basic_auth_password));
  } else if (!config_.bearer_token.empty()) {
    headers_.emplace_back("Authorization", "Bearer " + config_.bearer_token);
  }
  for (const auto& header : config_.headers) headers_.push_back(header);
}

RemoteWriter::~RemoteWriter() { Stop(); }

void RemoteWriter::Start() {
  spdlog::info("remote write to {} every {}", config_.url, absl::FormatDuration(config_.interval));
  thread_ = std::thread([this] { Run(); });
}

void RemoteWriter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

prometheus::Counter& RemoteWriter::RequestsWithCode(const std::string& code) {
  return requests_family_.Add({{"url", config_.url}, {"code", code}});
}

std::optional<absl::Time> RemoteWriter::SendOnce(const RemoteWriteBatch& batch, int attempt) {
  absl::StatusOr<common::HttpResponse> response = client_.Post(url_.target, headers_, batch.body);
  const absl::Time now = absl::Now();
  // The wait before the next try: min_backoff * 2^attempt up to max_backoff, the upper half
  // jittered so that several collectors do not retry in step.
  absl::Duration backoff = config_.min_backoff;
  for (int i = 0; i < attempt && backoff < config_.max_backoff; ++i) backoff *= 2;
  backoff = std::min(backoff, config_.max_backoff);
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  backoff = backoff * jitter(random_);
  if (!response.ok()) {
    RequestsWithCode("error").Increment();
    spdlog::warn("remote write to {}: {}; retrying in {}", config_.url,
                 response.status().ToString(), absl::FormatDuration(backoff));
    retries_.Increment();
    return now + backoff;
  }
  RequestsWithCode(std::to_string(response->status)).Increment();
  if (response->status >= 200 && response->status < 300) {
    samples_sent_.Increment(static_cast<double>(batch.samples));
    return std::nullopt;
  }
  if (response->status >= 500 || response->status == 429) {
    if (std::optional<std::string> retry_after = response->Header("Retry-After")) {
      if (std::optional<absl::Duration> wait = ParseRetryAfter(*retry_after, now)) backoff = *wait;
    }
    spdlog::warn("remote write to {}: HTTP {} {}; retrying in {}", config_.url, response->status,
                 response->body.substr(0, 512), absl::FormatDuration(backoff));
    retries_.Increment();
    return now + backoff;
  }
  samples_dropped_.Increment(static_cast<double>(batch.samples));
  spdlog::error("remote write to {}: HTTP {}, {} samples dropped (not retried): {}", config_.url,
                response->status, batch.samples, response->body.substr(0, 4096));
  return std::nullopt;
}

void RemoteWriter::Run() {
  std::vector<RemoteWriteBatch> pending;
  size_t next = 0;  // the first unsent batch of `pending`
  int attempt = 0;
  absl::Time retry_at = absl::InfinitePast();
  absl::Time next_snapshot = absl::Now();
  const auto unsent = [&] {
    uint64_t samples = 0;
    for (size_t i = next; i < pending.size(); ++i) samples += pending[i].samples;
    return samples;
  };
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    const absl::Time now = absl::Now();
    if (now >= next_snapshot) {
      lock.unlock();
      if (const uint64_t skipped = unsent(); skipped > 0) {
        samples_failed_.Increment(static_cast<double>(skipped));
        spdlog::warn("remote write to {}: {} samples still unsent, replaced by a newer snapshot",
                     config_.url, skipped);
      }
      pending =
          BuildRemoteWriteBatches(sources_, absl::ToUnixMillis(now), config_.max_samples_per_send);
      next = 0;
      attempt = 0;
      retry_at = absl::InfinitePast();
      next_snapshot += config_.interval;
      if (next_snapshot <= now) next_snapshot = now + config_.interval;
      lock.lock();
      continue;
    }
    if (next < pending.size() && now >= retry_at) {
      lock.unlock();
      std::optional<absl::Time> again = SendOnce(pending[next], attempt);
      if (again) {
        retry_at = *again;
        ++attempt;
      } else {
        ++next;
        attempt = 0;
        retry_at = absl::InfinitePast();
      }
      lock.lock();
      continue;
    }
    const absl::Time until =
        next < pending.size() ? std::min(retry_at, next_snapshot) : next_snapshot;
    wake_.wait_for(lock, absl::ToChronoNanoseconds(until - now));
  }
  lock.unlock();
  if (const uint64_t left = unsent(); left > 0) {
    samples_failed_.Increment(static_cast<double>(left));
    spdlog::warn("remote write to {}: stopped with {} samples unsent", config_.url, left);
  }
}

}  // namespace meshtel::collector
