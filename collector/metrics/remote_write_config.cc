#include "collector/metrics/remote_write_config.h"

// Tested by: tests/collector/metrics/remote_write_test.cc

#include <algorithm>
#include <cctype>
#include <string>

#include "absl/strings/str_cat.h"
#include "collector/common/http_client.h"

namespace meshtel::collector {
namespace {

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// Header names (lower case) that the writer sets itself.
constexpr const char* kReservedHeaders[] = {
    "content-encoding", "content-type", "x-prometheus-remote-write-version", "user-agent", "host",
    "content-length",   "connection"};

bool IsHeaderName(const std::string& name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '!' || c == '#' ||
           c == '$' || c == '%' || c == '&' || c == '\'' || c == '*' || c == '+' || c == '^' ||
           c == '`' || c == '|' || c == '~';
  });
}

}  // namespace

absl::Status RemoteWriteConfig::Validate(std::string_view path) const {
  const std::string at(path);
  if (url.empty()) return absl::InvalidArgumentError(absl::StrCat(at, ".url: is required"));
  absl::StatusOr<common::HttpUrl> parsed = common::ParseHttpUrl(url);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(at, ".url: '", url, "': ", parsed.status().message()));
  }
  if (tls.enabled != parsed->https) {
    return absl::InvalidArgumentError(
        absl::StrCat(at, ".tls.enabled: ", tls.enabled ? "is true" : "is false", ", but ", at,
                     ".url is an ", parsed->https ? "https://" : "http://", " URL"));
  }
  if (interval < absl::Milliseconds(100)) {
    return absl::InvalidArgumentError(
        absl::StrCat(at, ".interval: ", absl::FormatDuration(interval), " is below 100ms"));
  }
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(at, ".timeout: ", absl::FormatDuration(timeout), " is not positive"));
  }
  if (max_samples_per_send < 1 || max_samples_per_send > 1'000'000) {
    return absl::InvalidArgumentError(absl::StrCat(
        at, ".max_samples_per_send: ", max_samples_per_send, " is not in [1, 1000000]"));
  }
  if (min_backoff <= absl::ZeroDuration() || max_backoff < min_backoff) {
    return absl::InvalidArgumentError(absl::StrCat(
        at, ".min_backoff: ", absl::FormatDuration(min_backoff),
        " must be positive and not above max_backoff (", absl::FormatDuration(max_backoff), ")"));
  }
  const bool basic_auth = !basic_auth_username.empty() || !basic_auth_password.empty();
  if (basic_auth && basic_auth_username.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(at, ".basic_auth.username: is required"));
  }
  if (basic_auth && !bearer_token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(at, ".bearer_token: cannot be set together with basic_auth"));
  }
  for (const auto& [name, value] : headers) {
    const std::string lower = Lower(name);
    if (!IsHeaderName(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, ".headers.", name, ": is not a valid header name"));
    }
    if (value.find_first_of("\r\n") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, ".headers.", name, ": the value holds a line break"));
    }
    const bool reserved = std::find(std::begin(kReservedHeaders), std::end(kReservedHeaders),
                                    lower) != std::end(kReservedHeaders) ||
                          (lower == "authorization" && (basic_auth || !bearer_token.empty()));
    if (reserved) {
      return absl::InvalidArgumentError(absl::StrCat(
          at, ".headers.", name, ": is set by the remote writer and cannot be changed"));
    }
  }
  return absl::OkStatus();
}

void ReadRemoteWriteConfigs(common::YamlMap& metrics, std::vector<RemoteWriteConfig>& out) {
  for (common::YamlMap& entry : metrics.MapList("remote_write")) {
    RemoteWriteConfig config;
    entry.Read("url", config.url);
    entry.Read("interval", config.interval);
    entry.Read("timeout", config.timeout);
    entry.Read("max_samples_per_send", config.max_samples_per_send);
    entry.Read("min_backoff", config.min_backoff);
    entry.Read("max_backoff", config.max_backoff);
    if (auto basic_auth = entry.Map("basic_auth")) {
      basic_auth->Read("username", config.basic_auth_username);
      basic_auth->Read("password", config.basic_auth_password);
      entry.Fail(basic_auth->Finish());
    }
    entry.Read("bearer_token", config.bearer_token);
    entry.Read("headers", config.headers);
    entry.Node("tls");  // read below, once the url's scheme is known
    const std::string path = entry.PathOf("");
    metrics.Fail(entry.Finish());
    if (absl::StatusOr<common::HttpUrl> url = common::ParseHttpUrl(config.url); url.ok()) {
      absl::StatusOr<common::TlsConfig> tls = common::ReadUrlTlsConfig(entry, "url", url->https);
      if (tls.ok()) {
        config.tls = *std::move(tls);
      } else {
        metrics.Fail(tls.status());
      }
    }
    metrics.Fail(config.Validate(path.substr(0, path.size() - 1)));
    out.push_back(std::move(config));
  }
}

}  // namespace meshtel::collector
