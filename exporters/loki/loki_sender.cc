#include "exporters/loki/loki_sender.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace meshtel::exporters {

namespace {

constexpr size_t kDetailBodyBytes = 200;

std::string Detail(const common::HttpResponse& response) {
  std::string detail = absl::StrCat("HTTP ", response.status);
  if (!response.body.empty()) {
    absl::StrAppend(&detail, ": ", response.body.substr(0, kDetailBodyBytes));
  }
  return detail;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

std::optional<absl::Duration> ParseRetryAfter(std::string_view value, absl::Time now) {
  value = Trim(value);
  if (value.empty()) return std::nullopt;
  if (value.front() >= '0' && value.front() <= '9') {
    uint64_t seconds = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (error != std::errc() || end != value.data() + value.size()) return std::nullopt;
    return absl::Seconds(static_cast<int64_t>(std::min<uint64_t>(seconds, 1ull << 40)));
  }
  // IMF-fixdate, the form HTTP/1.1 senders must use: "Wed, 21 Oct 2015 07:28:00 GMT".
  absl::Time when;
  std::string error;
  if (!absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", std::string(value), absl::UTCTimeZone(), &when,
                       &error)) {
    return std::nullopt;
  }
  return std::max(when - now, absl::ZeroDuration());
}

collector::SendResult LokiVerdict(const common::HttpResponse& response, absl::Time now) {
  collector::SendResult result;
  result.detail = Detail(response);
  const int status = response.status;
  const auto retry_after = [&]() -> std::optional<absl::Duration> {
    const std::optional<std::string> header = response.Header("Retry-After");
    if (!header) return std::nullopt;
    return ParseRetryAfter(*header, now);
  };
  if (status == 260) {
    // Loki's block_ingestion_status_code: the operator blocks ingestion; the data is discarded.
    result.verdict = collector::SendVerdict::kPermanent;
  } else if (status >= 200 && status < 300) {
    result.verdict = collector::SendVerdict::kOk;
  } else if (status == 400) {
    // Loki stores the valid streams and refuses the rest: resending would duplicate them.
    result.verdict = collector::SendVerdict::kPermanent;
    result.partly_stored = true;
  } else if (status == 401 || status == 403) {
    // Credentials or tenant refused: the records are not at fault. Pause the exporter and try
    // again until the operator fixes the settings, instead of setting good records aside.
    result.verdict = collector::SendVerdict::kRetryable;
    result.throttled = true;
    result.detail = "configuration error (credentials or tenant): " + result.detail;
  } else if (status == 429) {
    result.verdict = collector::SendVerdict::kRetryable;
    result.throttled = true;
    result.retry_after = retry_after();
  } else if (status >= 500 && status < 600) {
    result.verdict = collector::SendVerdict::kRetryable;
    result.retry_after = retry_after();
  } else {
    result.verdict = collector::SendVerdict::kPermanent;
  }
  return result;
}

namespace {

common::HttpClientOptions ClientOptions(const LokiConfig& config) {
  common::HttpClientOptions options;
  options.timeout = config.timeout;
  options.tls = common::HttpTlsOptions::From(config.tls);
  return options;
}

}  // namespace

LokiSender::LokiSender(const LokiConfig& config)
    : target_(config.endpoint.target), client_(config.endpoint, ClientOptions(config)) {
  headers_.emplace_back("User-Agent", absl::StrCat("meshtel/", MESHTEL_VERSION));
  if (!config.tenant_id.empty()) headers_.emplace_back("X-Scope-OrgID", config.tenant_id);
  if (!config.basic_auth_username.empty()) {
    headers_.emplace_back(
        "Authorization",
        absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(config.basic_auth_username, ":",
                                                               config.basic_auth_password))));
  } else if (!config.bearer_token.empty()) {
    headers_.emplace_back("Authorization", absl::StrCat("Bearer ", config.bearer_token));
  }
}

collector::SendResult LokiSender::Send(const collector::Payload& payload) {
  common::HttpHeaders headers = headers_;
  headers.emplace_back("Content-Type", payload.content_type);
  if (!payload.content_encoding.empty()) {
    headers.emplace_back("Content-Encoding", payload.content_encoding);
  }
  absl::StatusOr<common::HttpResponse> response = client_.Post(target_, headers, payload.body);
  if (!response.ok()) {
    collector::SendResult result;
    result.verdict = collector::SendVerdict::kRetryable;
    result.detail = std::string(response.status().message());
    spdlog::debug("loki push of {} entries failed: {}", payload.entries, result.detail);
    return result;
  }
  return LokiVerdict(*response, absl::Now());
}

}  // namespace meshtel::exporters
