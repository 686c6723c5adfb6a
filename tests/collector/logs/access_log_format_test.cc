#include "collector/logs/access_log_format.h"

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "collector/logs/iso_time.h"
#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

using meshtel::v1::RequestRecord;

constexpr uint64_t kMs = 1'000'000;

uint64_t UnixNanos(absl::CivilSecond civil, uint64_t extra_nanos) {
  return static_cast<uint64_t>(absl::ToUnixNanos(absl::FromCivil(civil, absl::UTCTimeZone()))) +
         extra_nanos;
}

// A record filled like the example line of wire-facts §8.6.
RequestRecord ExampleRecord() {
  RequestRecord record;
  record.set_start_time_unix_nano(UnixNanos(absl::CivilSecond(2026, 8, 20, 10, 0, 0), 123'456'789));
  record.set_duration_ns(12 * kMs + 700'000);
  record.mutable_phases()->set_downstream_headers_done_ns(100'000);
  record.mutable_phases()->set_upstream_connected_ns(200'000);
  record.mutable_phases()->set_upstream_request_done_ns(400'000);
  record.mutable_phases()->set_upstream_first_byte_ns(11 * kMs + 900'000);
  record.mutable_phases()->set_upstream_last_byte_ns(12 * kMs + 300'000);
  record.mutable_phases()->set_downstream_last_byte_ns(12 * kMs + 600'000);
  record.set_reporter(meshtel::v1::REPORTER_SOURCE);
  record.set_method("GET");
  record.set_scheme("http");
  record.set_authority("cart:8080");
  record.set_path("/cart");
  record.set_protocol("HTTP/1.1");
  record.set_user_agent("curl/8.5.0");
  record.set_request_id("c5b7e3a2-5d0f-4b7e-9a51-3f2d6c1e8b90");
  record.set_response_code(200);
  record.set_response_code_details("via_upstream");
  record.set_request_bytes(0);
  record.set_response_bytes(1432);
  record.set_upstream_host("10.0.1.7:8080");
  record.set_upstream_cluster("outbound|8080||cart.shop.svc.cluster.local");
  record.set_upstream_local_address("10.0.1.5:41234");
  record.set_downstream_local_address("10.96.0.12:8080");
  record.set_downstream_remote_address("10.0.1.5:41220");
  record.set_route_name("default");
  return record;
}

constexpr std::string_view kExampleLine =
    "[2026-08-20T10:00:00.123Z] \"GET /cart HTTP/1.1\" 200 - via_upstream - \"-\" 0 1432 12 11 "
    "\"-\" \"curl/8.5.0\" \"c5b7e3a2-5d0f-4b7e-9a51-3f2d6c1e8b90\" \"cart:8080\" "
    "\"10.0.1.7:8080\" outbound|8080||cart.shop.svc.cluster.local 10.0.1.5:41234 "
    "10.96.0.12:8080 10.0.1.5:41220 - default\n";

AccessLogFormat CompileOrDie(std::string_view format,
                             AccessLogEncoding encoding = AccessLogEncoding::kText) {
  absl::StatusOr<AccessLogFormat> compiled = AccessLogFormat::Compile(format, encoding);
  EXPECT_TRUE(compiled.ok()) << format << ": " << compiled.status();
  if (!compiled.ok()) return *AccessLogFormat::Compile("", AccessLogEncoding::kText);
  return *std::move(compiled);
}

std::string Render(std::string_view format, const RequestRecord& record) {
  std::string out;
  CompileOrDie(format).Render(record, out);
  return out;
}

std::string CompileError(std::string_view format) {
  absl::StatusOr<AccessLogFormat> compiled =
      AccessLogFormat::Compile(format, AccessLogEncoding::kText);
  EXPECT_FALSE(compiled.ok()) << format;
  if (compiled.ok()) return "";
  EXPECT_EQ(compiled.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(compiled.status().message());
}

// ---- a small JSON reader, to check the JSON output -------------------------------------------

struct JsonValue {
  enum class Type { kString, kNumber, kNull, kBool };
  Type type = Type::kNull;
  std::string text;  // the unescaped string, or the number's digits
};

// True when `text` is valid UTF-8 (decoding code points and checking their ranges).
bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    int extra = 0;
    uint32_t code = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if ((lead & 0xE0) == 0xC0) {
      extra = 1, code = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      extra = 2, code = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      extra = 3, code = lead & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    const uint32_t minimum[] = {0, 0x80, 0x800, 0x10000};
    if (code < minimum[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

class JsonObjectReader {
 public:
  explicit JsonObjectReader(std::string_view text) : text_(text) {}

  // Parses one flat object followed by "\n"; nullopt (with the reason in error()) otherwise.
  std::optional<std::vector<std::pair<std::string, JsonValue>>> Read() {
    std::vector<std::pair<std::string, JsonValue>> fields;
    if (!Take('{')) return Fail("no '{'");
    if (!Take('}')) {
      do {
        std::string key;
        if (!ReadString(key)) return Fail("bad key");
        if (!Take(':')) return Fail("no ':'");
        JsonValue value;
        if (!ReadValue(value)) return Fail("bad value for " + key);
        fields.emplace_back(std::move(key), std::move(value));
      } while (Take(','));
      if (!Take('}')) return Fail("no '}'");
    }
    if (!Take('\n') || pos_ != text_.size()) return Fail("no single newline at the end");
    return fields;
  }

  const std::string& error() const { return error_; }

 private:
  std::nullopt_t Fail(std::string what) {
    error_ = what + " at " + std::to_string(pos_) + " in " + std::string(text_);
    return std::nullopt;
  }
  bool Take(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool ReadString(std::string& out) {
    if (!Take('"')) return false;
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == '"') return IsValidUtf8(out);
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= text_.size()) return false;
      const char e = text_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out.push_back(e);
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          if (pos_ + 4 > text_.size()) return false;
          const unsigned code = std::stoul(std::string(text_.substr(pos_, 4)), nullptr, 16);
          pos_ += 4;
          if (code >= 0x80) return false;  // the escaper only writes \u00XX for controls
          out.push_back(static_cast<char>(code));
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }
  bool ReadValue(JsonValue& value) {
    if (pos_ < text_.size() && text_[pos_] == '"') {
      value.type = JsonValue::Type::kString;
      return ReadString(value.text);
    }
    if (text_.substr(pos_, 4) == "null") {
      pos_ += 4;
      value.type = JsonValue::Type::kNull;
      return true;
    }
    value.type = JsonValue::Type::kNumber;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      value.text.push_back(text_[pos_++]);
    }
    return !value.text.empty() && (value.text == "0" || value.text[0] != '0');
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::string error_;
};

std::map<std::string, JsonValue> ReadJsonLine(std::string_view line) {
  JsonObjectReader reader(line);
  auto fields = reader.Read();
  EXPECT_TRUE(fields.has_value()) << reader.error();
  std::map<std::string, JsonValue> map;
  if (!fields.has_value()) return map;
  std::string previous;
  for (auto& [key, value] : *fields) {
    EXPECT_LT(previous, key) << "keys are not sorted and unique: " << line;
    previous = key;
    map[key] = value;
  }
  return map;
}

// ---- TEXT: Istio's default -------------------------------------------------------------------

TEST(AccessLogFormatTest, IstioDefaultRendersTheExampleLineByteForByte) {
  const AccessLogFormat format = CompileOrDie(kIstioDefaultTextFormat);
  std::string out;
  format.Render(ExampleRecord(), out);
  EXPECT_EQ(out, kExampleLine);
}

TEST(AccessLogFormatTest, EmptyTextFormatIsIstioDefault) {
  const AccessLogFormat format = CompileOrDie("");
  EXPECT_EQ(format.encoding(), AccessLogEncoding::kText);
  std::string out;
  format.Render(ExampleRecord(), out);
  EXPECT_EQ(out, kExampleLine);
}

TEST(AccessLogFormatTest, OlderIstioDefaultWithUpstreamClusterRendersTheSame) {
  std::string older(kIstioDefaultTextFormat);
  const size_t raw = older.find("%UPSTREAM_CLUSTER_RAW%");
  ASSERT_NE(raw, std::string::npos);
  older.replace(raw, 22, "%UPSTREAM_CLUSTER%");
  EXPECT_EQ(Render(older, ExampleRecord()), kExampleLine);
}

TEST(AccessLogFormatTest, UnsetValuesRenderDash) {
  EXPECT_EQ(Render("", RequestRecord()),
            "[-] \"- - -\" 0 - - - \"-\" 0 0 0 - \"-\" \"-\" \"-\" \"-\" \"-\" - - - - - -\n");
}

TEST(AccessLogFormatTest, TcpRecordsRenderAsEnvoyTcpLines) {
  RequestRecord record;
  record.set_request_protocol(meshtel::v1::REQUEST_PROTOCOL_TCP);
  record.set_start_time_unix_nano(1'755'684'000'123'000'000);
  record.set_duration_ns(3'000'000'000);
  record.set_request_bytes(1000);
  record.set_response_bytes(2000);
  record.set_response_flags(uint64_t{1} << meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_FAILURE);
  record.set_upstream_host("10.0.9.9:5432");
  record.set_upstream_cluster("outbound|5432||db.data.svc.cluster.local");
  EXPECT_EQ(Render("", record),
            "[2025-08-20T10:00:00.123Z] \"- - -\" 0 UF - - \"-\" 1000 2000 3000 - \"-\" \"-\" "
            "\"-\" \"-\" \"10.0.9.9:5432\" outbound|5432||db.data.svc.cluster.local - - - - -\n");
}

TEST(AccessLogFormatTest, RenderAppendsToTheOutput) {
  const AccessLogFormat format = CompileOrDie("%REQ(:METHOD)% %RESPONSE_CODE%\n");
  std::string out = "kept:";
  format.Render(ExampleRecord(), out);
  format.Render(RequestRecord(), out);
  EXPECT_EQ(out, "kept:GET 200\n- 0\n");
}

TEST(AccessLogFormatTest, PercentPercentIsALiteralPercent) {
  EXPECT_EQ(Render("100%% of %REQ(:METHOD)%%%", ExampleRecord()), "100% of GET%");
  EXPECT_EQ(Render("%%DURATION%%", ExampleRecord()), "%DURATION%");
}

// ---- every operator --------------------------------------------------------------------------

struct OperatorCase {
  std::string format;
  std::string filled;  // rendered from a fully filled record
  std::string empty;   // rendered from an empty record
};

RequestRecord FullRecord() {
  RequestRecord record = ExampleRecord();
  record.set_path("/cart?item=7&q=1");
  record.set_forwarded_for("203.0.113.9, 10.0.0.1");
  record.set_scheme("https");
  record.set_grpc_status(5);
  record.set_response_code(503);
  record.set_response_flags(
      (uint64_t{1} << meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_FAILURE) |
      (uint64_t{1} << meshtel::v1::RESPONSE_FLAG_NO_HEALTHY_UPSTREAM) |
      (uint64_t{1} << meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_REMOTE_RESET));
  record.set_response_code_details("upstream_reset_before_response_started{connection_failure}");
  record.set_request_bytes(345);
  record.set_response_bytes(91);
  record.set_upstream_host("[fd00::7]:9090");
  record.set_downstream_remote_address("10.0.1.5:41220");
  record.set_trace_id(
      std::string("\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36", 16));
  auto* header = record.add_captured_headers();
  header->set_name("x-envoy-original-path");
  header->set_value("/original?from=gw");
  header = record.add_captured_headers();
  header->set_name("x-tenant");
  header->set_value("blue");
  return record;
}

TEST(AccessLogFormatTest, EveryOperatorReadsItsRecordField) {
  const std::vector<OperatorCase> cases = {
      {"%START_TIME%", "2026-08-20T10:00:00.123Z", "-"},
      {"%REQ(:METHOD)%", "GET", "-"},
      {"%REQ(:PATH)%", "/cart?item=7&q=1", "-"},
      {"%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "/original?from=gw", "-"},
      {"%REQ(:AUTHORITY)%", "cart:8080", "-"},
      {"%REQ(HOST)%", "cart:8080", "-"},
      {"%REQ(:SCHEME)%", "https", "-"},
      {"%REQ(USER-AGENT)%", "curl/8.5.0", "-"},
      {"%REQ(user-agent)%", "curl/8.5.0", "-"},
      {"%REQ(X-REQUEST-ID)%", "c5b7e3a2-5d0f-4b7e-9a51-3f2d6c1e8b90", "-"},
      {"%REQ(X-FORWARDED-FOR)%", "203.0.113.9, 10.0.0.1", "-"},
      {"%REQ(X-Tenant)%", "blue", "-"},
      {"%REQ(X-NOT-CAPTURED)%", "-", "-"},
      {"%REQ(X-NOT-CAPTURED?X-TENANT)%", "blue", "-"},
      {"%REQ_WITHOUT_QUERY(:PATH)%", "/cart", "-"},
      {"%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%", "/original", "-"},
      {"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "11", "-"},
      {"%RESP(:STATUS)%", "503", "-"},
      {"%RESP(CONTENT-TYPE)%", "-", "-"},
      {"%RESP(CONTENT-TYPE?:STATUS)%", "503", "-"},
      {"%PROTOCOL%", "HTTP/1.1", "-"},
      {"%RESPONSE_CODE%", "503", "0"},
      {"%RESPONSE_FLAGS%", "UH,UF,DR", "-"},
      {"%RESPONSE_CODE_DETAILS%", "upstream_reset_before_response_started{connection_failure}",
       "-"},
      {"%GRPC_STATUS%", "NotFound", "-"},
      {"%GRPC_STATUS(CAMEL_STRING)%", "NotFound", "-"},
      {"%GRPC_STATUS(SNAKE_STRING)%", "NOT_FOUND", "-"},
      {"%GRPC_STATUS(NUMBER)%", "5", "-"},
      {"%GRPC_STATUS_NUMBER%", "5", "-"},
      {"%CONNECTION_TERMINATION_DETAILS%", "-", "-"},
      {"%UPSTREAM_TRANSPORT_FAILURE_REASON%", "-", "-"},
      {"%REQUESTED_SERVER_NAME%", "-", "-"},
      {"%BYTES_RECEIVED%", "345", "0"},
      {"%BYTES_SENT%", "91", "0"},
      {"%DURATION%", "12", "0"},
      {"%REQUEST_DURATION%", "0", "-"},
      {"%REQUEST_TX_DURATION%", "0", "-"},
      {"%RESPONSE_DURATION%", "11", "-"},
      {"%RESPONSE_TX_DURATION%", "0", "-"},
      {"%UPSTREAM_HOST%", "[fd00::7]:9090", "-"},
      {"%UPSTREAM_REMOTE_ADDRESS%", "[fd00::7]:9090", "-"},
      {"%UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "fd00::7", "-"},
      {"%UPSTREAM_REMOTE_PORT%", "9090", "-"},
      {"%UPSTREAM_CLUSTER%", "outbound|8080||cart.shop.svc.cluster.local", "-"},
      {"%UPSTREAM_CLUSTER_RAW%", "outbound|8080||cart.shop.svc.cluster.local", "-"},
      {"%UPSTREAM_LOCAL_ADDRESS%", "10.0.1.5:41234", "-"},
      {"%UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%", "10.0.1.5", "-"},
      {"%UPSTREAM_LOCAL_PORT%", "41234", "-"},
      {"%DOWNSTREAM_LOCAL_ADDRESS%", "10.96.0.12:8080", "-"},
      {"%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%", "10.96.0.12", "-"},
      {"%DOWNSTREAM_LOCAL_PORT%", "8080", "-"},
      {"%DOWNSTREAM_REMOTE_ADDRESS%", "10.0.1.5:41220", "-"},
      {"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "10.0.1.5", "-"},
      {"%DOWNSTREAM_REMOTE_PORT%", "41220", "-"},
      {"%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%", "10.0.1.5:41220", "-"},
      {"%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%", "10.0.1.5", "-"},
      {"%ROUTE_NAME%", "default", "-"},
      {"%TRACE_ID%", "4bf92f3577b34da6a3ce929d0e0e4736", "-"},
  };
  const RequestRecord full = FullRecord();
  for (const OperatorCase& c : cases) {
    EXPECT_EQ(Render(c.format, full), c.filled) << c.format;
    EXPECT_EQ(Render(c.format, RequestRecord()), c.empty) << c.format;
  }
}

TEST(AccessLogFormatTest, PhaseDurationsAreWholeMillisecondsFromTheirPhases) {
  RequestRecord record;
  record.set_duration_ns(250 * kMs + 999'999);
  record.mutable_phases()->set_upstream_request_done_ns(40 * kMs + 1);
  record.mutable_phases()->set_upstream_first_byte_ns(190 * kMs + 500'000);
  record.mutable_phases()->set_downstream_last_byte_ns(250 * kMs);
  EXPECT_EQ(Render("%DURATION% %REQUEST_DURATION% %REQUEST_TX_DURATION% %RESPONSE_DURATION% "
                   "%RESPONSE_TX_DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
                   record),
            "250 40 40 190 59 150");
}

TEST(AccessLogFormatTest, UpstreamServiceTimeIsZeroWhenTheUpstreamAnsweredFirst) {
  RequestRecord record;
  record.mutable_phases()->set_upstream_request_done_ns(30 * kMs);
  record.mutable_phases()->set_upstream_first_byte_ns(20 * kMs);
  EXPECT_EQ(Render("%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", record), "0");
}

TEST(AccessLogFormatTest, ResponseFlagsAreJoinedWithCommasInBitOrder) {
  RequestRecord record;
  record.set_response_flags(1);
  EXPECT_EQ(Render("%RESPONSE_FLAGS%", record), "LH");
  record.set_response_flags((uint64_t{1} << 14) | (uint64_t{1} << 0) | (uint64_t{1} << 28));
  EXPECT_EQ(Render("%RESPONSE_FLAGS%", record), "LH,DC,DR");
  record.set_response_flags(~uint64_t{0});
  EXPECT_EQ(Render("%RESPONSE_FLAGS%", record),
            "LH,UH,UT,LR,UR,UF,UC,UO,NR,DI,FI,RL,UAEX,RLSE,DC,URX,SI,IH,DPE,UMSDR,RFCF,NFCF,DT,UPE,"
            "NC,OM,DF,DO,DR");
  // Bits without a short code are left out.
  record.set_response_flags(uint64_t{1} << 40);
  EXPECT_EQ(Render("%RESPONSE_FLAGS%", record), "-");
}

TEST(AccessLogFormatTest, AddressesWithoutPortsHaveNoPortPart) {
  RequestRecord record;
  record.set_upstream_host("backend.local");
  record.set_downstream_remote_address("[::1]:5000");
  record.set_downstream_local_address("::1");
  EXPECT_EQ(Render("%UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %UPSTREAM_REMOTE_PORT%", record),
            "backend.local -");
  EXPECT_EQ(Render("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_REMOTE_PORT%", record),
            "::1 5000");
  EXPECT_EQ(Render("%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_PORT%", record),
            "::1 -");
}

// ---- START_TIME ------------------------------------------------------------------------------

TEST(AppendIsoTimeMillisTest, AgreesWithAbslFormatTime) {
  std::mt19937_64 random(7);
  std::vector<uint64_t> times = {0, 1709164800'999000000 /* 2024-02-29 */,
                                 4107542400'000000001 /* 2100-03-01 */, 1787220000'123456789};
  for (int i = 0; i < 1000; ++i) times.push_back(random() % 8'000'000'000'000'000'000u);
  for (uint64_t nanos : times) {
    std::string mine = "x";
    AppendIsoTimeMillis(mine, nanos);
    EXPECT_EQ(mine, "x" + absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ",
                                           absl::FromUnixNanos(static_cast<int64_t>(nanos)),
                                           absl::UTCTimeZone()))
        << nanos;
  }
}

TEST(AccessLogFormatTest, CustomStartTimeFormats) {
  const RequestRecord record = ExampleRecord();  // 2026-08-20T10:00:00.123456789Z
  EXPECT_EQ(Render("%START_TIME(%Y/%m/%dT%H:%M:%S%z %s)%", record),
            "2026/08/20T10:00:00+0000 1787220000");
  EXPECT_EQ(Render("%START_TIME(%s.%3f)%", record), "1787220000.123");
  EXPECT_EQ(Render("%START_TIME(%s.%6f)%", record), "1787220000.123456");
  EXPECT_EQ(Render("%START_TIME(%s.%9f)%", record), "1787220000.123456789");
  EXPECT_EQ(Render("%START_TIME(%s.%f)%", record), "1787220000.123456789");
  EXPECT_EQ(Render("%START_TIME(%1f|%2f|%4f|%5f|%7f|%8f)%", record),
            "1|12|1234|12345|1234567|12345678");
  EXPECT_EQ(Render("%START_TIME(%Y-%m-%dT%H:%M:%S.%3fZ)%", record), "2026-08-20T10:00:00.123Z");
  EXPECT_EQ(Render("%START_TIME(%a %b %e %j %F %T %%)%", record),
            "Thu Aug 20 232 2026-08-20 10:00:00 %");
  EXPECT_EQ(Render("%START_TIME(literal only)%", record), "literal only");
  EXPECT_EQ(Render("%START_TIME()%", record), "2026-08-20T10:00:00.123Z");
  EXPECT_EQ(Render("%START_TIME(%s)%", RequestRecord()), "-");
}

TEST(AccessLogFormatTest, DefaultStartTimeMatchesAbslFormatting) {
  std::mt19937_64 random(20260820);
  // Up to year 2500, plus calendar edges: leap days, year ends, the epoch.
  std::vector<uint64_t> times = {
      1,
      UnixNanos(absl::CivilSecond(2024, 2, 29, 23, 59, 59), 999'999'999),
      UnixNanos(absl::CivilSecond(2000, 2, 29, 0, 0, 0), 0),
      UnixNanos(absl::CivilSecond(2100, 3, 1, 0, 0, 0), 1'000'000),
      UnixNanos(absl::CivilSecond(2026, 12, 31, 23, 59, 59), 999'000'000),
  };
  for (int i = 0; i < 2000; ++i)
    times.push_back(random() % (uint64_t{16'725'225'600} * 1'000'000'000));
  const AccessLogFormat format = CompileOrDie("%START_TIME%");
  for (uint64_t nanos : times) {
    RequestRecord record;
    record.set_start_time_unix_nano(nanos);
    std::string out;
    format.Render(record, out);
    const absl::Time time = absl::FromUnixSeconds(static_cast<int64_t>(nanos / 1'000'000'000)) +
                            absl::Nanoseconds(static_cast<int64_t>(nanos % 1'000'000'000));
    EXPECT_EQ(out, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone())) << nanos;
  }
}

// ---- max length, headers ---------------------------------------------------------------------

TEST(AccessLogFormatTest, MaxLengthCutsHeaderValues) {
  const RequestRecord record = FullRecord();
  EXPECT_EQ(Render("%REQ(USER-AGENT):4%", record), "curl");
  EXPECT_EQ(Render("%REQ(USER-AGENT):10%", record), "curl/8.5.0");
  EXPECT_EQ(Render("%REQ(USER-AGENT):1000%", record), "curl/8.5.0");
  EXPECT_EQ(Render("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH):5%", record), "/orig");
  EXPECT_EQ(Render("%REQ_WITHOUT_QUERY(:PATH):3%", record), "/ca");
  EXPECT_EQ(Render("%RESP(:STATUS):1%", record), "5");
  EXPECT_EQ(Render("%REQ(USER-AGENT):0%", record), "-");
  EXPECT_EQ(Render("[%REQ(:METHOD):2%]", record), "[GE]");
}

TEST(AccessLogFormatTest, OriginalPathFallsBackToPath) {
  EXPECT_EQ(Render("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", ExampleRecord()), "/cart");
}

// ---- errors ----------------------------------------------------------------------------------

TEST(AccessLogFormatTest, UnknownOperatorIsRejectedWithItsNameAndOffset) {
  EXPECT_EQ(CompileError("[%START_TI%FOO%"), "unknown operator %START_TI% at offset 1");
  EXPECT_EQ(CompileError("method=%REQ(:METHOD)% %FOO%"), "unknown operator %FOO% at offset 22");
  EXPECT_EQ(CompileError("0123456789ab%FOO%"), "unknown operator %FOO% at offset 12");
  EXPECT_EQ(CompileError("%FOO(bar)%"), "unknown operator %FOO% at offset 0");
  // Envoy operators a record cannot answer are unknown here.
  EXPECT_EQ(CompileError("%HOSTNAME%"), "unknown operator %HOSTNAME% at offset 0");
  EXPECT_EQ(CompileError("%DYNAMIC_METADATA(istio.mixer:status)%"),
            "unknown operator %DYNAMIC_METADATA% at offset 0");
}

TEST(AccessLogFormatTest, MalformedOperatorsAreRejected) {
  EXPECT_EQ(CompileError("50% done"),
            "'%' at offset 2 does not start an operator (write %% for a literal percent sign)");
  EXPECT_EQ(CompileError("trailing %"),
            "'%' at offset 9 does not start an operator (write %% for a literal percent sign)");
  EXPECT_EQ(CompileError("%DURATION"), "operator %DURATION% at offset 0 is not closed by '%'");
  EXPECT_EQ(CompileError("x %REQ(:PATH%"), "operator %REQ% at offset 2 has no closing ')'");
  EXPECT_EQ(CompileError("%DURATION(x)%"), "operator %DURATION% at offset 0 takes no argument");
  EXPECT_EQ(CompileError("%DURATION:3%"),
            "operator %DURATION% at offset 0 takes no :length (only REQ, RESP and "
            "REQ_WITHOUT_QUERY)");
  EXPECT_EQ(CompileError("%REQ%"), "operator %REQ% at offset 0 needs a header name: %REQ(NAME)%");
  EXPECT_EQ(CompileError("%REQ()%"), "operator %REQ% at offset 0 has an empty header name");
  EXPECT_EQ(CompileError("%REQ(A?)%"), "operator %REQ% at offset 0 has an empty header name");
  EXPECT_EQ(CompileError("%REQ(A?B?C)%"),
            "operator %REQ% at offset 0 takes at most one alternative header (H?ALT)");
  EXPECT_EQ(CompileError("%REQ(A B)%"),
            "operator %REQ% at offset 0 has an invalid header name 'A B'");
  EXPECT_EQ(CompileError("%REQ(A):%"),
            "operator %REQ% at offset 0 has ':' without a length that fits 32 bits");
  EXPECT_EQ(CompileError("%REQ(A):99999999999%"),
            "operator %REQ% at offset 0 has ':' without a length that fits 32 bits");
  EXPECT_EQ(CompileError("%START_TIME(%Q)%"),
            "operator %START_TIME% at offset 0 has an unsupported time conversion %Q");
  EXPECT_EQ(CompileError("%START_TIME(%Ey)%"),
            "operator %START_TIME% at offset 0 has an unsupported time conversion %E");
  EXPECT_EQ(CompileError("%START_TIME(abc%)%"),
            "operator %START_TIME% at offset 0 ends its time format with a lone '%'");
  EXPECT_EQ(CompileError("%GRPC_STATUS(LOUD)%"),
            "operator %GRPC_STATUS% at offset 0 has 'LOUD' where CAMEL_STRING, SNAKE_STRING or "
            "NUMBER belongs");
  EXPECT_EQ(CompileError("%start_time%"),
            "'%' at offset 0 does not start an operator (write %% for a literal percent sign)");
}

// ---- JSON ------------------------------------------------------------------------------------

std::string RenderJson(const std::vector<AccessLogJsonField>& fields, const RequestRecord& record) {
  absl::StatusOr<AccessLogFormat> format = AccessLogFormat::CompileJson(fields);
  EXPECT_TRUE(format.ok()) << format.status();
  if (!format.ok()) return "";
  EXPECT_EQ(format->encoding(), AccessLogEncoding::kJson);
  std::string out;
  format->Render(record, out);
  return out;
}

TEST(AccessLogFormatTest, JsonDefaultHasIstioKeysWithTypedValues) {
  const AccessLogFormat format = CompileOrDie("", AccessLogEncoding::kJson);
  std::string out;
  format.Render(ExampleRecord(), out);
  const std::map<std::string, JsonValue> json = ReadJsonLine(out);
  using Type = JsonValue::Type;
  const std::map<std::string, std::pair<Type, std::string>> expected = {
      {"start_time", {Type::kString, "2026-08-20T10:00:00.123Z"}},
      {"route_name", {Type::kString, "default"}},
      {"method", {Type::kString, "GET"}},
      {"path", {Type::kString, "/cart"}},
      {"protocol", {Type::kString, "HTTP/1.1"}},
      {"response_code", {Type::kNumber, "200"}},
      {"response_flags", {Type::kString, "-"}},
      {"response_code_details", {Type::kString, "via_upstream"}},
      {"connection_termination_details", {Type::kNull, ""}},
      {"bytes_received", {Type::kNumber, "0"}},
      {"bytes_sent", {Type::kNumber, "1432"}},
      {"duration", {Type::kNumber, "12"}},
      {"upstream_service_time", {Type::kString, "11"}},
      {"x_forwarded_for", {Type::kNull, ""}},
      {"user_agent", {Type::kString, "curl/8.5.0"}},
      {"request_id", {Type::kString, "c5b7e3a2-5d0f-4b7e-9a51-3f2d6c1e8b90"}},
      {"authority", {Type::kString, "cart:8080"}},
      {"upstream_host", {Type::kString, "10.0.1.7:8080"}},
      {"upstream_cluster", {Type::kString, "outbound|8080||cart.shop.svc.cluster.local"}},
      {"upstream_local_address", {Type::kString, "10.0.1.5:41234"}},
      {"downstream_local_address", {Type::kString, "10.96.0.12:8080"}},
      {"downstream_remote_address", {Type::kString, "10.0.1.5:41220"}},
      {"requested_server_name", {Type::kNull, ""}},
      {"upstream_transport_failure_reason", {Type::kNull, ""}},
  };
  ASSERT_EQ(json.size(), expected.size()) << out;
  for (const auto& [key, value] : expected) {
    auto it = json.find(key);
    ASSERT_NE(it, json.end()) << key;
    EXPECT_EQ(it->second.type, value.first) << key;
    EXPECT_EQ(it->second.text, value.second) << key;
  }
  EXPECT_EQ(IstioDefaultJsonFields().size(), expected.size());
}

TEST(AccessLogFormatTest, JsonExactLine) {
  const std::vector<AccessLogJsonField> fields = {
      {"status", "%RESPONSE_CODE%"},
      {"agent", "%REQ(USER-AGENT)%"},
      {"line", "%REQ(:METHOD)% %REQ(:PATH)% took %DURATION%ms, sni %REQUESTED_SERVER_NAME%"},
      {"fixed", "meshtel \"v1\""},
      {"empty", ""},
      {"sni", "%REQUESTED_SERVER_NAME%"},
      {"we\"ird\nkey", "%RESPONSE_FLAGS%"},
      {"rtt", "%RESPONSE_DURATION%"},
  };
  EXPECT_EQ(RenderJson(fields, ExampleRecord()),
            "{\"agent\":\"curl/8.5.0\",\"empty\":\"\",\"fixed\":\"meshtel \\\"v1\\\"\","
            "\"line\":\"GET /cart took 12ms, sni -\",\"rtt\":11,\"sni\":null,\"status\":200,"
            "\"we\\\"ird\\nkey\":\"-\"}\n");
  EXPECT_EQ(RenderJson(fields, RequestRecord()),
            "{\"agent\":null,\"empty\":\"\",\"fixed\":\"meshtel \\\"v1\\\"\","
            "\"line\":\"- - took 0ms, sni -\",\"rtt\":null,\"sni\":null,\"status\":0,"
            "\"we\\\"ird\\nkey\":\"-\"}\n");
}

TEST(AccessLogFormatTest, JsonEscapesQuotesNewlinesAndInvalidUtf8) {
  RequestRecord record = ExampleRecord();
  record.set_user_agent("evil\"agent\\\n\r\t\x01 caf\xC3\xA9 \xFF\xC0\xAF end");
  record.set_path("/a\"b");
  const std::vector<AccessLogJsonField> fields = {{"agent", "%REQ(USER-AGENT)%"},
                                                  {"request", "%REQ(:METHOD)% %REQ(:PATH)%"}};
  const std::string out = RenderJson(fields, record);
  EXPECT_EQ(out,
            "{\"agent\":\"evil\\\"agent\\\\\\n\\r\\t\\u0001 caf\xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD"
            "\xEF\xBF\xBD end\",\"request\":\"GET /a\\\"b\"}\n");
  const std::map<std::string, JsonValue> json = ReadJsonLine(out);
  EXPECT_EQ(json.at("agent").text,
            "evil\"agent\\\n\r\t\x01 caf\xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD end");
  EXPECT_EQ(json.at("request").text, "GET /a\"b");
}

TEST(AccessLogFormatTest, JsonMaxLengthCutsBeforeEscaping) {
  RequestRecord record;
  record.set_user_agent("ab\"cd");
  EXPECT_EQ(RenderJson({{"a", "%REQ(USER-AGENT):3%"}}, record), "{\"a\":\"ab\\\"\"}\n");
  // A cut inside a UTF-8 sequence leaves an invalid byte, which is replaced.
  record.set_user_agent("\xC3\xA9\xC3\xA9");
  EXPECT_EQ(RenderJson({{"a", "%REQ(USER-AGENT):3%"}}, record),
            "{\"a\":\"\xC3\xA9\xEF\xBF\xBD\"}\n");
}

TEST(AccessLogFormatTest, JsonErrorsNameTheKey) {
  absl::StatusOr<AccessLogFormat> format =
      AccessLogFormat::CompileJson({{"ok", "%DURATION%"}, {"status", "%FOO%"}});
  ASSERT_FALSE(format.ok());
  EXPECT_EQ(format.status().message(), "status: unknown operator %FOO% at offset 0");

  format = AccessLogFormat::CompileJson({{"a", "x"}, {"a", "y"}});
  ASSERT_FALSE(format.ok());
  EXPECT_EQ(format.status().message(), "a: the key is given more than once");

  format = AccessLogFormat::CompileJson({{"", "x"}});
  ASSERT_FALSE(format.ok());
  EXPECT_EQ(format.status().message(), "a JSON key is empty");

  format = AccessLogFormat::Compile("%DURATION%", AccessLogEncoding::kJson);
  ASSERT_FALSE(format.ok());
  EXPECT_EQ(format.status().message(),
            "a JSON access log takes a map of keys to format strings, not one format string");
}

// ---- properties ------------------------------------------------------------------------------

// Random format strings built from operator fragments and random bytes.
std::string RandomFormat(std::mt19937_64& random) {
  static const std::vector<std::string> kFragments = {"%",
                                                      "%%",
                                                      "(",
                                                      ")",
                                                      ":",
                                                      "?",
                                                      "12",
                                                      "0",
                                                      "START_TIME",
                                                      "REQ",
                                                      "RESP",
                                                      ":PATH",
                                                      "USER-AGENT",
                                                      "DURATION",
                                                      "%Y",
                                                      "%3f",
                                                      "%s",
                                                      "%f",
                                                      "%Q",
                                                      "RESPONSE_FLAGS",
                                                      "REQ_WITHOUT_QUERY",
                                                      "GRPC_STATUS",
                                                      "NUMBER",
                                                      "TRACE_ID",
                                                      "_",
                                                      "a",
                                                      "\"",
                                                      "\\",
                                                      "\n",
                                                      "\xFF",
                                                      "\xC3",
                                                      "\xA9",
                                                      "%REQ(:PATH):3%",
                                                      "%START_TIME(%s.%3f)%",
                                                      "UPSTREAM_HOST",
                                                      "X-ENVOY-ORIGINAL-PATH?"};
  std::string format;
  const int parts = static_cast<int>(random() % 12);
  for (int i = 0; i < parts; ++i) {
    if (random() % 4 == 0) {
      format.push_back(static_cast<char>(random() % 256));
    } else {
      format += kFragments[random() % kFragments.size()];
    }
  }
  return format;
}

RequestRecord RandomRecord(std::mt19937_64& random) {
  const auto text = [&random] {
    std::string value;
    const int length = static_cast<int>(random() % 8);
    for (int i = 0; i < length; ++i) value.push_back(static_cast<char>(random() % 256));
    return value;
  };
  RequestRecord record = random() % 2 == 0 ? FullRecord() : RequestRecord();
  record.set_start_time_unix_nano(random() % (uint64_t{16'725'225'600} * 1'000'000'000));
  record.set_user_agent(text());
  record.set_path(text());
  record.set_upstream_host(text());
  record.set_response_flags(random());
  record.mutable_phases()->set_upstream_first_byte_ns(random() % 1'000'000'000'000);
  return record;
}

TEST(AccessLogFormatTest, RandomFormatsNeverCrashAndJsonStaysValid) {
  std::mt19937_64 random(8062026);
  int compiled_text = 0;
  int compiled_json = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string format = RandomFormat(random);
    const RequestRecord record = RandomRecord(random);
    absl::StatusOr<AccessLogFormat> text =
        AccessLogFormat::Compile(format, AccessLogEncoding::kText);
    if (text.ok()) {
      ++compiled_text;
      std::string out;
      text->Render(record, out);
    } else {
      EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
    }
    absl::StatusOr<AccessLogFormat> json = AccessLogFormat::CompileJson(
        {{format.empty() ? "k" : format, format}, {"d", "%DURATION%"}});
    if (json.ok()) {
      ++compiled_json;
      std::string out;
      json->Render(record, out);
      JsonObjectReader reader(out);
      EXPECT_TRUE(reader.Read().has_value()) << reader.error();
    }
  }
  // The generator reaches both outcomes often enough for the property to mean something.
  EXPECT_GT(compiled_text, 1000);
  EXPECT_LT(compiled_text, 19000);
  EXPECT_GT(compiled_json, 1000);
}

TEST(AccessLogFormatCapturedHeaders, NamesTheHeadersOnlyCapturedHeadersCanAnswer) {
  absl::StatusOr<AccessLogFormat> text = AccessLogFormat::Compile(
      "%REQ(:PATH)% %REQ(X-User?X-Tenant)% %REQ_WITHOUT_QUERY(x-user)% %REQ(USER-AGENT)% "
      "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%\n",
      AccessLogEncoding::kText);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(text->captured_headers(), (std::vector<std::string>{"x-tenant", "x-user"}));

  absl::StatusOr<AccessLogFormat> json =
      AccessLogFormat::CompileJson({{"tier", "%REQ(X-Tier)%"}, {"code", "%RESPONSE_CODE%"}});
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->captured_headers(), (std::vector<std::string>{"x-tier"}));
}

}  // namespace
}  // namespace meshtel::collector
