#pragma once
// Test support: the official OpenTelemetry JS SDK as a client. RunOtelJs() runs
// tests/e2e/otel-js/send.mjs with Node.js, which sends a known trace (SERVER root, CLIENT child,
// INTERNAL grandchild) and/or three log records with the SDK's real OTLP exporters and prints
// what it sent; this file reads that printout into OtelJsRun, the expectations of a test.
//
// The SDK is installed by `scripts/install-deps.sh test` (npm ci in tests/e2e/otel-js);
// OtelJsUnavailableReason() says why it cannot run here (no node, no node_modules), for
// GTEST_SKIP().
//
// Values: OtelValue is an OpenTelemetry attribute or log body as the test needs to compare it:
// string, int, double, bool, array of strings, key-value list (anything else is kOther with a
// text form). FromOtlp() reads the project's OTLP subset into it; MatchesJson() compares one with
// its JSON rendering (how meshtel keeps arrays and key-value lists: as JSON strings).
//
// Threading: RunOtelJs() blocks until node exits (it starts a child process, stdout and stderr
// through files in a temporary directory); the rest are pure functions.

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "google/protobuf/repeated_ptr_field.h"
#include "opentelemetry/proto/common/v1/common.pb.h"

namespace meshtel::testing {

struct OtelValue {
  enum class Type { kString, kInt, kDouble, kBool, kStringArray, kKvList, kOther };
  Type type = Type::kOther;
  std::string string_value;  // kString; kOther: a text form of the value
  int64_t int_value = 0;
  double double_value = 0;
  bool bool_value = false;
  std::vector<std::string> strings;                       // kStringArray
  std::vector<std::pair<std::string, OtelValue>> kvlist;  // kKvList, in the order given
};
bool operator==(const OtelValue& a, const OtelValue& b);  // kvlists compare in any order
std::string ToString(const OtelValue& value);
void PrintTo(const OtelValue& value, std::ostream* out);

using OtelAttributes = std::map<std::string, OtelValue>;

OtelValue FromOtlp(const opentelemetry::proto::common::v1::AnyValue& value);
OtelAttributes FromOtlp(
    const google::protobuf::RepeatedPtrField<opentelemetry::proto::common::v1::KeyValue>& values);

// True when `json` is the JSON rendering of `expected` (an array of strings as a JSON array of
// strings, a kvlist as an object with the members in any order, ints and doubles as numbers, or
// a scalar as the JSON scalar); otherwise false with the difference in `why`.
bool MatchesJson(const OtelValue& expected, const std::string& json, std::string* why);

struct OtelJsSpan {
  std::string trace_id;        // 32 lower-case hex digits
  std::string span_id;         // 16 lower-case hex digits
  std::string parent_span_id;  // "" for the root
  std::string name;
  std::string kind;  // "server", "client", "internal"
  uint64_t start_unix_nano = 0;
  uint64_t end_unix_nano = 0;
  uint32_t trace_flags = 0;  // W3C trace flags (1: sampled)
  std::string status;        // "", "OK", "ERROR"
  std::string status_message;
  OtelAttributes attributes;
};

struct OtelJsLog {
  uint64_t time_unix_nano = 0;
  uint64_t observed_time_unix_nano = 0;
  int severity_number = 0;
  std::string severity_text;
  OtelValue body;
  OtelAttributes attributes;
  std::string trace_id;  // "" when the record is outside any trace
  std::string span_id;
  uint32_t trace_flags = 0;
};

struct OtelJsRun {
  int exit_code = -1;
  std::string command;
  std::string stdout_text;
  std::string stderr_text;
  std::string parse_error;  // the printout could not be read ("" when it could)
  OtelAttributes resource;  // service.name, service.namespace, k8s.namespace.name, ...
  std::string scope_name;
  std::string scope_version;
  std::vector<OtelJsSpan> spans;  // root, child, grandchild
  std::vector<OtelJsLog> logs;
  // Exit code, command, parse error and stderr, for failure messages.
  std::string Describe() const;
};

// Why send.mjs cannot run here, or "" when it can.
std::string OtelJsUnavailableReason();

struct OtelJsOptions {
  std::string transport;        // "grpc", "proto" (HTTP protobuf) or "http" (HTTP JSON)
  std::string traces_endpoint;  // grpc: "http://127.0.0.1:4317"; else the URL with /v1/traces
  std::string logs_endpoint;    // likewise; "" to send no logs (likewise traces)
  // send.mjs's spec, a JSON object (service_name, run, start_unix_nano, compression, ...).
  std::string spec_json = "{}";
};

OtelJsRun RunOtelJs(const OtelJsOptions& options);

}  // namespace meshtel::testing
