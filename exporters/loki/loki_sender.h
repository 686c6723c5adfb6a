#pragma once
// LokiSender: POSTs one encoded push to Loki and turns the answer into a SendResult
// (wire-facts §4.7):
//   2xx (204)          kOk (260, Loki's "ingestion blocked" answer, is kPermanent: data discarded)
//   400                kPermanent, partly_stored: Loki stored the valid streams before refusing
//   429                kRetryable, throttled, retry_after from Retry-After
//   5xx                kRetryable, retry_after from Retry-After when present
//   401, 413, 422, any other status
//                      kPermanent
//   transport failure or timeout
//                      kRetryable
// detail = "HTTP <status>: <first 200 bytes of the body>" (or the transport error).
//
// Headers: Content-Type from the payload, X-Scope-OrgID (tenant_id), Authorization (basic or
// bearer), User-Agent meshtel/<version>.
// Transport: HTTP/1.1, over TLS for an https:// url (LokiConfig::tls: CA, client certificate,
// server name; the server certificate is always verified); a TLS failure is a transport failure.
// Threading: one thread at a time. Send() returns within the configured timeout (see
// HttpClient for the one exception: a hanging DNS resolution). Ownership: owns its connection.

#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "collector/common/http_client.h"
#include "collector/delivery/exporter.h"
#include "exporters/loki/loki_exporter.h"

namespace meshtel::exporters {

// A Retry-After value: delay-seconds ("120") or an HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT",
// the wait until then from `now`, at least zero). nullopt when it is neither.
std::optional<absl::Duration> ParseRetryAfter(std::string_view value, absl::Time now);

// The verdict for one HTTP answer from Loki.
collector::SendResult LokiVerdict(const common::HttpResponse& response, absl::Time now);

class LokiSender : public collector::Sender {
 public:
  explicit LokiSender(const LokiConfig& config);

  collector::SendResult Send(const collector::Payload& payload) override;

  // OK, or why OpenSSL refused the TLS settings (HttpClient::tls_status()).
  const absl::Status& tls_status() const { return client_.tls_status(); }

 private:
  std::string target_;
  common::HttpHeaders headers_;  // the same on every push
  common::HttpClient client_;
};

}  // namespace meshtel::exporters
