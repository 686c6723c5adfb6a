#include "tests/support/otel_js.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fmt/format.h"
#include "fmt/ranges.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "tests/support/process.h"

namespace meshtel::testing {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

std::string ScriptDir() { return std::string(MESHTEL_SOURCE_DIR) + "/tests/e2e/otel-js"; }

std::string ShellQuote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

const Value* Field(const Struct& object, const std::string& name) {
  const auto found = object.fields().find(name);
  return found == object.fields().end() ? nullptr : &found->second;
}
std::string StringField(const Struct& object, const std::string& name) {
  const Value* value = Field(object, name);
  return value == nullptr ? "" : value->string_value();
}
uint64_t NanosField(const Struct& object, const std::string& name) {
  const std::string text = StringField(object, name);
  return text.empty() ? 0 : std::stoull(text);
}
int64_t NumberField(const Struct& object, const std::string& name) {
  const Value* value = Field(object, name);
  return value == nullptr ? 0 : static_cast<int64_t>(value->number_value());
}

// send.mjs's typed value: {"type": ..., "value": ...}.
OtelValue FromTyped(const Value& typed) {
  OtelValue out;
  const Struct& object = typed.struct_value();
  const std::string type = StringField(object, "type");
  const Value* value = Field(object, "value");
  if (value == nullptr) {
    out.string_value = "(no value)";
    return out;
  }
  if (type == "string") {
    out.type = OtelValue::Type::kString;
    out.string_value = value->string_value();
  } else if (type == "int") {
    out.type = OtelValue::Type::kInt;
    out.int_value = std::stoll(value->string_value());
  } else if (type == "double") {
    out.type = OtelValue::Type::kDouble;
    out.double_value = value->number_value();
  } else if (type == "bool") {
    out.type = OtelValue::Type::kBool;
    out.bool_value = value->bool_value();
  } else if (type == "string_array") {
    out.type = OtelValue::Type::kStringArray;
    for (const Value& element : value->list_value().values()) {
      out.strings.push_back(element.string_value());
    }
  } else if (type == "kvlist") {
    out.type = OtelValue::Type::kKvList;
    for (const auto& [key, member] : value->struct_value().fields()) {
      out.kvlist.emplace_back(key, FromTyped(member));
    }
  } else {
    out.string_value = "(unknown type " + type + ")";
  }
  return out;
}

OtelAttributes FromTypedMap(const Value* map) {
  OtelAttributes out;
  if (map == nullptr) return out;
  for (const auto& [key, value] : map->struct_value().fields()) out[key] = FromTyped(value);
  return out;
}

bool MatchesValue(const OtelValue& expected, const Value& json, const std::string& where,
                  std::string* why) {
  auto differ = [&](const std::string& what) {
    std::string text;
    (void)google::protobuf::util::MessageToJsonString(json, &text);
    *why = fmt::format("{}: expected {}, got {} ({})", where.empty() ? "value" : where,
                       ToString(expected), text, what);
    return false;
  };
  switch (expected.type) {
    case OtelValue::Type::kString:
      if (!json.has_string_value() || json.string_value() != expected.string_value) {
        return differ("string");
      }
      return true;
    case OtelValue::Type::kBool:
      if (!json.has_bool_value() || json.bool_value() != expected.bool_value) return differ("bool");
      return true;
    case OtelValue::Type::kInt:
      if (!json.has_number_value() ||
          json.number_value() != static_cast<double>(expected.int_value)) {
        return differ("int");
      }
      return true;
    case OtelValue::Type::kDouble:
      if (!json.has_number_value() || json.number_value() != expected.double_value) {
        return differ("double");
      }
      return true;
    case OtelValue::Type::kStringArray: {
      if (!json.has_list_value() ||
          json.list_value().values_size() != static_cast<int>(expected.strings.size())) {
        return differ("array");
      }
      for (size_t i = 0; i < expected.strings.size(); ++i) {
        const Value& element = json.list_value().values(static_cast<int>(i));
        if (!element.has_string_value() || element.string_value() != expected.strings[i]) {
          return differ(fmt::format("element {}", i));
        }
      }
      return true;
    }
    case OtelValue::Type::kKvList: {
      if (!json.has_struct_value() ||
          json.struct_value().fields_size() != static_cast<int>(expected.kvlist.size())) {
        return differ("object");
      }
      for (const auto& [key, member] : expected.kvlist) {
        const auto found = json.struct_value().fields().find(key);
        if (found == json.struct_value().fields().end()) return differ("no member " + key);
        if (!MatchesValue(member, found->second, where + "." + key, why)) return false;
      }
      return true;
    }
    case OtelValue::Type::kOther:
      return differ("an expectation of an unknown type");
  }
  return false;
}

}  // namespace

bool operator==(const OtelValue& a, const OtelValue& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case OtelValue::Type::kString:
    case OtelValue::Type::kOther:
      return a.string_value == b.string_value;
    case OtelValue::Type::kInt:
      return a.int_value == b.int_value;
    case OtelValue::Type::kDouble:
      return a.double_value == b.double_value;
    case OtelValue::Type::kBool:
      return a.bool_value == b.bool_value;
    case OtelValue::Type::kStringArray:
      return a.strings == b.strings;
    case OtelValue::Type::kKvList: {
      if (a.kvlist.size() != b.kvlist.size()) return false;
      for (const auto& [key, value] : a.kvlist) {
        const auto found = std::find_if(b.kvlist.begin(), b.kvlist.end(),
                                        [&](const auto& member) { return member.first == key; });
        if (found == b.kvlist.end() || !(found->second == value)) return false;
      }
      return true;
    }
  }
  return false;
}

std::string ToString(const OtelValue& value) {
  switch (value.type) {
    case OtelValue::Type::kString:
      return fmt::format("string \"{}\"", value.string_value);
    case OtelValue::Type::kInt:
      return fmt::format("int {}", value.int_value);
    case OtelValue::Type::kDouble:
      return fmt::format("double {}", value.double_value);
    case OtelValue::Type::kBool:
      return value.bool_value ? "bool true" : "bool false";
    case OtelValue::Type::kStringArray:
      return fmt::format("[\"{}\"]", fmt::join(value.strings, "\", \""));
    case OtelValue::Type::kKvList: {
      std::vector<std::string> members;
      for (const auto& [key, member] : value.kvlist) {
        members.push_back(key + ": " + ToString(member));
      }
      return fmt::format("{{{}}}", fmt::join(members, ", "));
    }
    case OtelValue::Type::kOther:
      return "other " + value.string_value;
  }
  return "?";
}

void PrintTo(const OtelValue& value, std::ostream* out) { *out << ToString(value); }

OtelValue FromOtlp(const opentelemetry::proto::common::v1::AnyValue& value) {
  using opentelemetry::proto::common::v1::AnyValue;
  OtelValue out;
  switch (value.value_case()) {
    case AnyValue::kStringValue:
      out.type = OtelValue::Type::kString;
      out.string_value = value.string_value();
      break;
    case AnyValue::kIntValue:
      out.type = OtelValue::Type::kInt;
      out.int_value = value.int_value();
      break;
    case AnyValue::kDoubleValue:
      out.type = OtelValue::Type::kDouble;
      out.double_value = value.double_value();
      break;
    case AnyValue::kBoolValue:
      out.type = OtelValue::Type::kBool;
      out.bool_value = value.bool_value();
      break;
    case AnyValue::kArrayValue: {
      out.type = OtelValue::Type::kStringArray;
      for (const AnyValue& element : value.array_value().values()) {
        if (element.value_case() != AnyValue::kStringValue) {
          out = OtelValue{};
          out.string_value = value.ShortDebugString();
          break;
        }
        out.strings.push_back(element.string_value());
      }
      break;
    }
    case AnyValue::kKvlistValue:
      out.type = OtelValue::Type::kKvList;
      for (const auto& member : value.kvlist_value().values()) {
        out.kvlist.emplace_back(member.key(), FromOtlp(member.value()));
      }
      break;
    default:
      out.string_value = value.ShortDebugString();
      break;
  }
  return out;
}

OtelAttributes FromOtlp(
    const google::protobuf::RepeatedPtrField<opentelemetry::proto::common::v1::KeyValue>& values) {
  OtelAttributes out;
  for (const auto& kv : values) out[kv.key()] = FromOtlp(kv.value());
  return out;
}

bool MatchesJson(const OtelValue& expected, const std::string& json, std::string* why) {
  Value parsed;
  if (!google::protobuf::util::JsonStringToMessage(json, &parsed).ok()) {
    *why = "not JSON: " + json;
    return false;
  }
  return MatchesValue(expected, parsed, "", why);
}

std::string OtelJsRun::Describe() const {
  return fmt::format("send.mjs exit {} ({})\n{}stderr:\n{}\nstdout:\n{}", exit_code, command,
                     parse_error.empty() ? "" : "parse error: " + parse_error + "\n", stderr_text,
                     stdout_text);
}

std::string OtelJsUnavailableReason() {
  if (!HaveProgram("node")) {
    return "node is not installed (scripts/install-deps.sh test installs it)";
  }
  const std::string modules = ScriptDir() + "/node_modules/@opentelemetry/sdk-trace-base";
  if (!std::filesystem::exists(modules)) {
    return "the OpenTelemetry JS SDK is not installed in tests/e2e/otel-js/node_modules "
           "(scripts/install-deps.sh test runs npm ci there)";
  }
  return "";
}

OtelJsRun RunOtelJs(const OtelJsOptions& options) {
  OtelJsRun run;
  const std::string dir = MakeTempDir("meshtel-otel-js");
  run.command = "node " + ScriptDir() + "/send.mjs --transport " + options.transport;
  if (!options.traces_endpoint.empty()) {
    run.command += " --traces-endpoint " + ShellQuote(options.traces_endpoint);
  }
  if (!options.logs_endpoint.empty()) {
    run.command += " --logs-endpoint " + ShellQuote(options.logs_endpoint);
  }
  run.command += " --spec " + ShellQuote(options.spec_json);
  // A hung exporter must not hang the test: the SDK's own timeouts are 10 s per export.
  // (In a group: RunCommand sends the group's stderr to its pipe, unused here.)
  const std::string shell =
      fmt::format("{{ timeout 120 {} >{}/stdout 2>{}/stderr; }}", run.command, dir, dir);
  run.exit_code = RunCommand(shell, nullptr);
  run.stdout_text = ReadAll(dir + "/stdout");
  run.stderr_text = ReadAll(dir + "/stderr");
  std::filesystem::remove_all(dir);

  Struct printout;
  if (const auto status = google::protobuf::util::JsonStringToMessage(run.stdout_text, &printout);
      !status.ok()) {
    run.parse_error = status.ToString();
    return run;
  }
  run.resource = FromTypedMap(Field(printout, "resource"));
  if (const Value* scope = Field(printout, "scope"); scope != nullptr) {
    run.scope_name = StringField(scope->struct_value(), "name");
    run.scope_version = StringField(scope->struct_value(), "version");
  }
  if (const Value* spans = Field(printout, "spans"); spans != nullptr) {
    for (const Value& element : spans->list_value().values()) {
      const Struct& object = element.struct_value();
      OtelJsSpan span;
      span.trace_id = StringField(object, "trace_id");
      span.span_id = StringField(object, "span_id");
      span.parent_span_id = StringField(object, "parent_span_id");
      span.name = StringField(object, "name");
      span.kind = StringField(object, "kind");
      span.start_unix_nano = NanosField(object, "start_unix_nano");
      span.end_unix_nano = NanosField(object, "end_unix_nano");
      span.trace_flags = static_cast<uint32_t>(NumberField(object, "trace_flags"));
      span.status = StringField(object, "status");
      span.status_message = StringField(object, "status_message");
      span.attributes = FromTypedMap(Field(object, "attributes"));
      run.spans.push_back(std::move(span));
    }
  }
  if (const Value* logs = Field(printout, "logs"); logs != nullptr) {
    for (const Value& element : logs->list_value().values()) {
      const Struct& object = element.struct_value();
      OtelJsLog log;
      log.time_unix_nano = NanosField(object, "time_unix_nano");
      log.observed_time_unix_nano = NanosField(object, "observed_time_unix_nano");
      log.severity_number = static_cast<int>(NumberField(object, "severity_number"));
      log.severity_text = StringField(object, "severity_text");
      if (const Value* body = Field(object, "body"); body != nullptr) log.body = FromTyped(*body);
      log.attributes = FromTypedMap(Field(object, "attributes"));
      log.trace_id = StringField(object, "trace_id");
      log.span_id = StringField(object, "span_id");
      log.trace_flags = static_cast<uint32_t>(NumberField(object, "trace_flags"));
      run.logs.push_back(std::move(log));
    }
  }
  if (run.spans.size() != 3 || run.logs.size() != 3) {
    run.parse_error = fmt::format("expected 3 spans and 3 logs, read {} and {}", run.spans.size(),
                                  run.logs.size());
  }
  return run;
}

}  // namespace meshtel::testing
