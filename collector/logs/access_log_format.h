#pragma once
// AccessLogFormat: an Envoy access-log format, compiled once, that renders RequestRecords into
// access-log lines (Envoy's TEXT format strings, or JSON objects as Envoy's `json_format`).
//
// Compile() parses the format into literal pieces and operators when the configuration loads;
// Render() is then one loop over the compiled pieces, appending to the caller's string (no
// parsing, and no allocation besides the growth of that string).
//
// Errors: Compile() and CompileJson() return InvalidArgument naming the operator and its byte
// offset in the format, e.g. "unknown operator %FOO% at offset 12"; CompileJson() puts the key
// first ("status: unknown operator %FOO% at offset 0"). Callers add the YAML path in front.
// Threading: a compiled AccessLogFormat is immutable; Render() may run on any number of
// threads at once. Ownership: Render() reads the record only while it runs.
//
// TCP records (request_protocol TCP, from Envoy ALS tcp_logs) carry no method, path, protocol or
// response: those operators render unset and %RESPONSE_CODE% 0, as Envoy renders its own TCP
// access logs ("- - -" 0); %BYTES_RECEIVED% / %BYTES_SENT% are the connection's bytes.
// Operators and the RequestRecord field (proto/meshtel/v1/record.proto) each reads. "Unset"
// renders `-` in TEXT and inside JSON strings, and `null` as a whole typed JSON value. An
// empty string field counts as unset. Numbers are typed (bare) in JSON when the value is the
// operator alone; typed operators are marked [n].
//
//   %START_TIME%                     start_time_unix_nano; ISO-8601 UTC with milliseconds,
//                                    "2026-08-20T10:00:00.123Z" (0 = unset).
//   %START_TIME(fmt)%                the same instant through strftime conversions (UTC), plus
//                                    %s (seconds since the epoch), %f (9 fraction digits) and
//                                    %1f..%9f (that many fraction digits). Conversions accepted:
//                                    aAbBcCdDeFgGhHIjmMnprRsStTuUVwWxXyYzZ% and the f forms;
//                                    names (%a, %b, %c, %p, ...) follow the process locale,
//                                    "C" unless the program changes it.
//   %REQ(H?ALT):N%                   request header H, else ALT; at most N bytes (optional).
//                                    :METHOD method, :PATH path, :AUTHORITY and HOST authority,
//                                    :SCHEME scheme, USER-AGENT user_agent, X-REQUEST-ID
//                                    request_id, X-FORWARDED-FOR forwarded_for; any other name
//                                    is looked up in captured_headers (lower-case names), so
//                                    X-ENVOY-ORIGINAL-PATH, which the proxy does not rewrite,
//                                    normally falls back to :PATH. Names are case-insensitive.
//   %REQ_WITHOUT_QUERY(H?ALT):N%     as %REQ%, cut at the first '?'.
//   %RESP(H):N%                      response headers: the record carries none, so only these
//                                    answer: X-ENVOY-UPSTREAM-SERVICE-TIME, derived as whole ms
//                                    from phases.upstream_request_done_ns to
//                                    phases.upstream_first_byte_ns (unset unless both are set);
//                                    :STATUS response_code (0 = unset). Others render unset.
//   %PROTOCOL%                       protocol ("HTTP/1.1", "HTTP/2").
//   %RESPONSE_CODE% [n]              response_code (0 when no response was sent, as Envoy).
//   %RESPONSE_FLAGS%                 response_flags bits as short codes (common/
//                                    response_flag_codes.h) joined with ',', in bit order; none
//                                    is the value "-" (a JSON string "-", as Envoy). Bits
//                                    without a short code are left out.
//   %RESPONSE_CODE_DETAILS%          response_code_details.
//   %GRPC_STATUS(F)%                 grpc_status (unset when absent); F = CAMEL_STRING (default,
//                                    "OK", "NotFound"), SNAKE_STRING ("NOT_FOUND") or NUMBER [n].
//   %GRPC_STATUS_NUMBER% [n]         grpc_status as a number.
//   %BYTES_RECEIVED% [n]             request_bytes. Note: the record counts wire bytes, headers
//                                    included (as Istio's request_bytes), where Envoy counts the
//                                    body only.
//   %BYTES_SENT% [n]                 response_bytes (same note).
//   %DURATION% [n]                   duration_ns in whole milliseconds (truncated).
//   %REQUEST_DURATION% [n]           phases.upstream_request_done_ns in whole ms: bodies are
//                                    streamed, so the last request byte forwarded upstream
//                                    stands for the last one received (unset on local replies).
//   %REQUEST_TX_DURATION% [n]        phases.upstream_request_done_ns in whole ms.
//   %RESPONSE_DURATION% [n]          phases.upstream_first_byte_ns in whole ms.
//   %RESPONSE_TX_DURATION% [n]       phases.downstream_last_byte_ns - upstream_first_byte_ns, ms.
//   %UPSTREAM_HOST%                  upstream_host ("ip:port"); also %UPSTREAM_REMOTE_ADDRESS%.
//   %UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%, %UPSTREAM_REMOTE_PORT% [n]   parts of upstream_host.
//   %UPSTREAM_CLUSTER%               upstream_cluster. meshtel has no alt_stat_name, so this and
//   %UPSTREAM_CLUSTER_RAW%           the _RAW form render the same field.
//   %UPSTREAM_LOCAL_ADDRESS%         upstream_local_address; also its _WITHOUT_PORT form and
//                                    %UPSTREAM_LOCAL_PORT% [n].
//   %DOWNSTREAM_LOCAL_ADDRESS%       downstream_local_address; also its _WITHOUT_PORT form and
//                                    %DOWNSTREAM_LOCAL_PORT% [n].
//   %DOWNSTREAM_REMOTE_ADDRESS%      downstream_remote_address; also its _WITHOUT_PORT form and
//                                    %DOWNSTREAM_REMOTE_PORT% [n].
//                                    %DOWNSTREAM_DIRECT_REMOTE_ADDRESS% (and its _WITHOUT_PORT) is
//                                    the same field: the proxy reads no PROXY protocol, so the peer
//                                    is the direct peer.
//   %ROUTE_NAME%                     route_name.
//   %TRACE_ID%                       trace_id as lower-case hex (32 digits for 16 bytes).
//   %CONNECTION_TERMINATION_DETAILS%, %UPSTREAM_TRANSPORT_FAILURE_REASON%,
//   %REQUESTED_SERVER_NAME%          always unset: the record does not carry them (the proxy
//                                    does no TLS). Accepted because Istio's default uses them.
//   %%                               a literal '%'.
// Envoy operators the record cannot answer are rejected as unknown: %HOSTNAME% (the record does
// not name the proxy's host), metadata, filter state, TLS peer details, ...
//
// Output: TEXT renders exactly the format (Envoy adds no newline; Istio's default ends in
// "\n"). Values are written as they are in TEXT. JSON renders one object per record, keys in
// sorted order (as Envoy prints them), followed by "\n"; strings are escaped (quote,
// backslash, control characters) and invalid UTF-8 is replaced by U+FFFD.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "meshtel/v1/record.pb.h"

namespace meshtel::collector {

enum class AccessLogEncoding { kText, kJson };

// Istio's default TEXT format (MeshConfig accessLogFormat empty), as current Istio writes it:
// with %UPSTREAM_CLUSTER_RAW% (Istio releases before that change used %UPSTREAM_CLUSTER%, which
// renders the same field here). Ends with a newline.
inline constexpr std::string_view kIstioDefaultTextFormat =
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    "\"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
    "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" "
    "\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER_RAW% "
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

// One JSON key and the format string of its value.
using AccessLogJsonField = std::pair<std::string, std::string>;

// Istio's default JSON keys (accessLogEncoding JSON, empty format), each with the operator of
// the same meaning as in kIstioDefaultTextFormat (upstream_cluster: %UPSTREAM_CLUSTER_RAW%).
const std::vector<AccessLogJsonField>& IstioDefaultJsonFields();

class AccessLogFormat {
 public:
  // TEXT: `format` is an Envoy format string; empty means kIstioDefaultTextFormat.
  // JSON: `format` must be empty and means IstioDefaultJsonFields() (a custom JSON format is a
  // key → format map: CompileJson()).
  static absl::StatusOr<AccessLogFormat> Compile(std::string_view format,
                                                 AccessLogEncoding encoding);
  // JSON with the given keys (as Envoy's json_format); empty means IstioDefaultJsonFields().
  // Keys must be unique and non-empty. A value that is exactly one operator keeps its type
  // (number, string, or null when unset); any other value is a string.
  static absl::StatusOr<AccessLogFormat> CompileJson(const std::vector<AccessLogJsonField>& fields);

  // Appends the line for `record` to `out`.
  void Render(const meshtel::v1::RequestRecord& record, std::string& out) const;

  AccessLogEncoding encoding() const { return encoding_; }
  // The lower-case names of the request headers it reads from RequestRecord.captured_headers
  // (%REQ(H)% of a header the record has no field for), sorted and unique: the proxies must
  // capture them for the format to show them.
  std::vector<std::string> captured_headers() const;

  // What a compiled piece is; public only so that the .cc file can build them.
  struct Piece;

 private:
  AccessLogFormat() = default;

  AccessLogEncoding encoding_ = AccessLogEncoding::kText;
  std::vector<Piece> pieces_;
};

struct AccessLogFormat::Piece {
  // Where a rendered value goes: as it is (TEXT), inside a JSON string, or as a whole JSON value.
  enum class Context : uint8_t { kText, kJsonString, kJsonValue };
  // One part of a custom %START_TIME(...)%.
  struct TimeAtom {
    enum class Kind : uint8_t { kLiteral, kConversion, kEpochSeconds, kFraction };
    Kind kind = Kind::kLiteral;
    uint8_t fraction_digits = 0;  // kFraction: 1..9
    std::string text;             // kLiteral: the text; kConversion: one "%Y", "%H", ...
  };

  enum class Kind : uint8_t { kLiteral, kOperator };
  Kind kind = Kind::kLiteral;
  // kLiteral: the text, already escaped for JSON where needed. kOperator: the lower-case header
  // name for a captured-header lookup.
  std::string text;
  // kOperator: which operator (an enum private to the .cc file) and how it renders.
  uint8_t op = 0;
  Context context = Context::kText;
  bool numeric = false;         // renders digits: bare as a whole JSON value
  uint8_t header = 0;           // the header source, for REQ/RESP
  uint8_t fallback_header = 0;  // the ALT header source, for REQ(H?ALT)
  std::string fallback_text;    // ALT's captured-header name
  uint32_t max_length = UINT32_MAX;
  std::vector<TimeAtom> time_atoms;  // custom START_TIME; empty = the ISO-8601 default
};

}  // namespace meshtel::collector
