#include "collector/logs/access_log_format.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>
#include <optional>

#include "collector/common/response_flag_codes.h"
#include "collector/logs/iso_time.h"
#include "collector/logs/json_escape.h"
#include "fmt/format.h"

namespace meshtel::collector {
namespace {

using Piece = AccessLogFormat::Piece;
using meshtel::v1::RequestRecord;

enum class Op : uint8_t {
  kStartTime,
  kRequestHeader,
  kRequestHeaderWithoutQuery,
  kResponseHeader,
  kProtocol,
  kResponseCode,
  kResponseFlags,
  kResponseCodeDetails,
  kGrpcStatus,  // Piece::header holds the GrpcStatusStyle
  kBytesReceived,
  kBytesSent,
  kDuration,
  kRequestDuration,
  kRequestTxDuration,
  kResponseDuration,
  kResponseTxDuration,
  kUpstreamHost,
  kUpstreamHostWithoutPort,
  kUpstreamHostPort,
  kUpstreamCluster,
  kUpstreamLocalAddress,
  kUpstreamLocalAddressWithoutPort,
  kUpstreamLocalPort,
  kDownstreamLocalAddress,
  kDownstreamLocalAddressWithoutPort,
  kDownstreamLocalPort,
  kDownstreamRemoteAddress,
  kDownstreamRemoteAddressWithoutPort,
  kDownstreamRemotePort,
  kRouteName,
  kTraceId,
  kAlwaysUnset,
};

// Where a %REQ% / %RESP% header comes from.
enum class HeaderSource : uint8_t {
  kNone,  // not carried by the record: always unset
  kMethod,
  kPath,
  kAuthority,
  kScheme,
  kUserAgent,
  kRequestId,
  kForwardedFor,
  kCaptured,             // RequestRecord.captured_headers, by lower-case name
  kUpstreamServiceTime,  // derived from the phase timings
  kStatus,               // response_code
};

enum class GrpcStatusStyle : uint8_t { kCamel, kSnake, kNumber };

struct NamedOperator {
  std::string_view name;
  Op op;
  bool numeric;
};

// Operators without an argument.
constexpr NamedOperator kPlainOperators[] = {
    {"PROTOCOL", Op::kProtocol, false},
    {"RESPONSE_CODE", Op::kResponseCode, true},
    {"RESPONSE_FLAGS", Op::kResponseFlags, false},
    {"RESPONSE_CODE_DETAILS", Op::kResponseCodeDetails, false},
    {"GRPC_STATUS_NUMBER", Op::kGrpcStatus, true},
    {"CONNECTION_TERMINATION_DETAILS", Op::kAlwaysUnset, false},
    {"UPSTREAM_TRANSPORT_FAILURE_REASON", Op::kAlwaysUnset, false},
    {"REQUESTED_SERVER_NAME", Op::kAlwaysUnset, false},
    {"BYTES_RECEIVED", Op::kBytesReceived, true},
    {"BYTES_SENT", Op::kBytesSent, true},
    {"DURATION", Op::kDuration, true},
    {"REQUEST_DURATION", Op::kRequestDuration, true},
    {"REQUEST_TX_DURATION", Op::kRequestTxDuration, true},
    {"RESPONSE_DURATION", Op::kResponseDuration, true},
    {"RESPONSE_TX_DURATION", Op::kResponseTxDuration, true},
    {"UPSTREAM_HOST", Op::kUpstreamHost, false},
    {"UPSTREAM_REMOTE_ADDRESS", Op::kUpstreamHost, false},
    {"UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", Op::kUpstreamHostWithoutPort, false},
    {"UPSTREAM_REMOTE_PORT", Op::kUpstreamHostPort, true},
    {"UPSTREAM_CLUSTER", Op::kUpstreamCluster, false},
    {"UPSTREAM_CLUSTER_RAW", Op::kUpstreamCluster, false},
    {"UPSTREAM_LOCAL_ADDRESS", Op::kUpstreamLocalAddress, false},
    {"UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", Op::kUpstreamLocalAddressWithoutPort, false},
    {"UPSTREAM_LOCAL_PORT", Op::kUpstreamLocalPort, true},
    {"DOWNSTREAM_LOCAL_ADDRESS", Op::kDownstreamLocalAddress, false},
    {"DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", Op::kDownstreamLocalAddressWithoutPort, false},
    {"DOWNSTREAM_LOCAL_PORT", Op::kDownstreamLocalPort, true},
    {"DOWNSTREAM_REMOTE_ADDRESS", Op::kDownstreamRemoteAddress, false},
    {"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", Op::kDownstreamRemoteAddressWithoutPort, false},
    {"DOWNSTREAM_REMOTE_PORT", Op::kDownstreamRemotePort, true},
    {"DOWNSTREAM_DIRECT_REMOTE_ADDRESS", Op::kDownstreamRemoteAddress, false},
    {"DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT", Op::kDownstreamRemoteAddressWithoutPort,
     false},
    {"ROUTE_NAME", Op::kRouteName, false},
    {"TRACE_ID", Op::kTraceId, false},
};

// gRPC status names, indexed by code (0..16).
constexpr std::array<std::string_view, 17> kGrpcCamelNames = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};
constexpr std::array<std::string_view, 17> kGrpcSnakeNames = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

// strftime conversions a custom %START_TIME(...)% may use (besides %s, %f and %1f..%9f).
constexpr std::string_view kStrftimeConversions = "aAbBcCdDeFgGhHIjmMnprRStTuUVwWxXyYzZ";

absl::Status OperatorError(std::string_view name, size_t offset, std::string_view what) {
  return absl::InvalidArgumentError(
      fmt::format("operator %{}% at offset {} {}", name, offset, what));
}

std::string AsciiCase(std::string_view text, bool upper) {
  std::string out(text);
  for (char& c : out) {
    if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// ---- compiling -------------------------------------------------------------------------------

HeaderSource RequestHeaderSource(std::string_view upper_name) {
  if (upper_name == ":METHOD") return HeaderSource::kMethod;
  if (upper_name == ":PATH") return HeaderSource::kPath;
  if (upper_name == ":AUTHORITY" || upper_name == "HOST") return HeaderSource::kAuthority;
  if (upper_name == ":SCHEME") return HeaderSource::kScheme;
  if (upper_name == "USER-AGENT") return HeaderSource::kUserAgent;
  if (upper_name == "X-REQUEST-ID") return HeaderSource::kRequestId;
  if (upper_name == "X-FORWARDED-FOR") return HeaderSource::kForwardedFor;
  return HeaderSource::kCaptured;
}

HeaderSource ResponseHeaderSource(std::string_view upper_name) {
  if (upper_name == "X-ENVOY-UPSTREAM-SERVICE-TIME") return HeaderSource::kUpstreamServiceTime;
  if (upper_name == ":STATUS") return HeaderSource::kStatus;
  return HeaderSource::kNone;
}

// Fills the header fields of `piece` from "H" or "H?ALT".
absl::Status CompileHeaders(std::string_view name, size_t offset, std::string_view arg,
                            bool response, Piece& piece) {
  const size_t question = arg.find('?');
  std::string_view primary = arg.substr(0, question);
  std::string_view alternative =
      question == std::string_view::npos ? std::string_view() : arg.substr(question + 1);
  if (primary.empty() || (question != std::string_view::npos && alternative.empty())) {
    return OperatorError(name, offset, "has an empty header name");
  }
  if (alternative.find('?') != std::string_view::npos) {
    return OperatorError(name, offset, "takes at most one alternative header (H?ALT)");
  }
  for (std::string_view header : {primary, alternative}) {
    for (char c : header) {
      if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7F) {
        return OperatorError(name, offset, fmt::format("has an invalid header name '{}'", header));
      }
    }
  }
  const auto source = [response](std::string_view header) {
    const std::string upper = AsciiCase(header, /*upper=*/true);
    return static_cast<uint8_t>(response ? ResponseHeaderSource(upper)
                                         : RequestHeaderSource(upper));
  };
  piece.header = source(primary);
  piece.text = AsciiCase(primary, /*upper=*/false);
  if (!alternative.empty()) {
    piece.fallback_header = source(alternative);
    piece.fallback_text = AsciiCase(alternative, /*upper=*/false);
  } else {
    piece.fallback_header = static_cast<uint8_t>(HeaderSource::kNone);
  }
  return absl::OkStatus();
}

absl::Status CompileStartTime(std::string_view name, size_t offset, std::string_view arg,
                              Piece& piece) {
  using TimeAtom = Piece::TimeAtom;
  std::vector<TimeAtom>& atoms = piece.time_atoms;
  const auto literal = [&atoms](std::string_view text) {
    if (atoms.empty() || atoms.back().kind != TimeAtom::Kind::kLiteral) {
      atoms.push_back({TimeAtom::Kind::kLiteral, 0, ""});
    }
    atoms.back().text.append(text);
  };
  for (size_t i = 0; i < arg.size(); ++i) {
    if (arg[i] != '%') {
      literal(arg.substr(i, 1));
      continue;
    }
    if (i + 1 == arg.size()) {
      return OperatorError(name, offset, "ends its time format with a lone '%'");
    }
    const char c = arg[i + 1];
    if (c == '%') {
      literal("%");
      ++i;
    } else if (c == 's') {
      atoms.push_back({TimeAtom::Kind::kEpochSeconds, 0, ""});
      ++i;
    } else if (c == 'f') {
      atoms.push_back({TimeAtom::Kind::kFraction, 9, ""});
      ++i;
    } else if (c >= '1' && c <= '9' && i + 2 < arg.size() && arg[i + 2] == 'f') {
      atoms.push_back({TimeAtom::Kind::kFraction, static_cast<uint8_t>(c - '0'), ""});
      i += 2;
    } else if (kStrftimeConversions.find(c) != std::string_view::npos) {
      atoms.push_back({TimeAtom::Kind::kConversion, 0, std::string{'%', c}});
      ++i;
    } else {
      return OperatorError(
          name, offset,
          fmt::format("has an unsupported time conversion %{}", arg.substr(i + 1, 1)));
    }
  }
  return absl::OkStatus();
}

// Builds the operator piece for %NAME(ARG):MAX_LENGTH% found at `offset`.
absl::Status CompileOperator(std::string_view name, std::optional<std::string_view> arg,
                             std::optional<uint32_t> max_length, size_t offset, Piece& piece) {
  piece.kind = Piece::Kind::kOperator;
  const bool is_request = name == "REQ" || name == "REQ_WITHOUT_QUERY";
  const bool is_header = is_request || name == "RESP";
  if (max_length.has_value() && !is_header) {
    return OperatorError(name, offset, "takes no :length (only REQ, RESP and REQ_WITHOUT_QUERY)");
  }
  if (is_header) {
    if (!arg.has_value()) return OperatorError(name, offset, "needs a header name: %REQ(NAME)%");
    piece.op = static_cast<uint8_t>(name == "REQ"    ? Op::kRequestHeader
                                    : name == "RESP" ? Op::kResponseHeader
                                                     : Op::kRequestHeaderWithoutQuery);
    if (max_length.has_value()) piece.max_length = *max_length;
    return CompileHeaders(name, offset, *arg, !is_request, piece);
  }
  if (name == "START_TIME") {
    piece.op = static_cast<uint8_t>(Op::kStartTime);
    return arg.has_value() ? CompileStartTime(name, offset, *arg, piece) : absl::OkStatus();
  }
  if (name == "GRPC_STATUS") {
    piece.op = static_cast<uint8_t>(Op::kGrpcStatus);
    GrpcStatusStyle style = GrpcStatusStyle::kCamel;
    if (arg.has_value() && *arg == "SNAKE_STRING") {
      style = GrpcStatusStyle::kSnake;
    } else if (arg.has_value() && *arg == "NUMBER") {
      style = GrpcStatusStyle::kNumber;
    } else if (arg.has_value() && *arg != "CAMEL_STRING") {
      return OperatorError(
          name, offset,
          fmt::format("has '{}' where CAMEL_STRING, SNAKE_STRING or NUMBER belongs", *arg));
    }
    piece.header = static_cast<uint8_t>(style);
    piece.numeric = style == GrpcStatusStyle::kNumber;
    return absl::OkStatus();
  }
  for (const NamedOperator& known : kPlainOperators) {
    if (known.name != name) continue;
    if (arg.has_value()) return OperatorError(name, offset, "takes no argument");
    piece.op = static_cast<uint8_t>(known.op);
    piece.numeric = known.numeric;
    if (known.op == Op::kGrpcStatus) piece.header = static_cast<uint8_t>(GrpcStatusStyle::kNumber);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      fmt::format("unknown operator %{}% at offset {}", name, offset));
}

bool IsOperatorNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Appends the pieces of `format` to `pieces`; literal text is escaped when `context` is JSON.
absl::Status ParseFormat(std::string_view format, Piece::Context context,
                         std::vector<Piece>& pieces) {
  std::string literal;
  const auto flush_literal = [&] {
    if (literal.empty()) return;
    Piece piece;
    piece.kind = Piece::Kind::kLiteral;
    if (context == Piece::Context::kText) {
      piece.text = std::move(literal);
    } else {
      AppendJsonEscaped(piece.text, literal);
    }
    literal.clear();
    pieces.push_back(std::move(piece));
  };
  size_t i = 0;
  while (i < format.size()) {
    if (format[i] != '%') {
      const size_t next = std::min(format.find('%', i), format.size());
      literal.append(format.substr(i, next - i));
      i = next;
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '%') {
      literal.push_back('%');
      i += 2;
      continue;
    }
    const size_t offset = i;
    size_t j = i + 1;
    while (j < format.size() && IsOperatorNameChar(format[j])) ++j;
    const std::string_view name = format.substr(i + 1, j - i - 1);
    if (name.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("'%' at offset {} does not start an operator (write %% for a literal "
                      "percent sign)",
                      offset));
    }
    std::optional<std::string_view> arg;
    if (j < format.size() && format[j] == '(') {
      const size_t close = format.find(')', j);
      if (close == std::string_view::npos) {
        return OperatorError(name, offset, "has no closing ')'");
      }
      arg = format.substr(j + 1, close - j - 1);
      j = close + 1;
    }
    std::optional<uint32_t> max_length;
    if (j < format.size() && format[j] == ':') {
      size_t k = j + 1;
      while (k < format.size() && format[k] >= '0' && format[k] <= '9') ++k;
      uint32_t parsed = 0;
      const std::from_chars_result result =
          std::from_chars(format.data() + j + 1, format.data() + k, parsed);
      if (k == j + 1 || result.ec != std::errc() || result.ptr != format.data() + k) {
        return OperatorError(name, offset, "has ':' without a length that fits 32 bits");
      }
      max_length = parsed;
      j = k;
    }
    if (j >= format.size() || format[j] != '%') {
      return OperatorError(name, offset, "is not closed by '%'");
    }
    flush_literal();
    Piece piece;
    piece.context = context;
    if (absl::Status status = CompileOperator(name, arg, max_length, offset, piece); !status.ok()) {
      return status;
    }
    pieces.push_back(std::move(piece));
    i = j + 1;
  }
  flush_literal();
  return absl::OkStatus();
}

void AppendLiteral(std::vector<Piece>& pieces, std::string_view text) {
  if (!pieces.empty() && pieces.back().kind == Piece::Kind::kLiteral) {
    pieces.back().text.append(text);
    return;
  }
  Piece piece;
  piece.kind = Piece::Kind::kLiteral;
  piece.text = std::string(text);
  pieces.push_back(std::move(piece));
}

// Merges neighbouring literal pieces.
std::vector<Piece> MergeLiterals(std::vector<Piece> pieces) {
  std::vector<Piece> merged;
  merged.reserve(pieces.size());
  for (Piece& piece : pieces) {
    if (piece.kind == Piece::Kind::kLiteral) {
      AppendLiteral(merged, piece.text);
    } else {
      merged.push_back(std::move(piece));
    }
  }
  return merged;
}

// ---- rendering -------------------------------------------------------------------------------

void AppendNumber(std::string& out, uint64_t value) {
  char buffer[20];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

// Appends `value` zero-padded to `width` digits.
void AppendPadded(std::string& out, uint64_t value, int width) {
  char buffer[20];
  for (int i = width - 1; i >= 0; --i) {
    buffer[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out.append(buffer, width);
}

constexpr uint64_t kNanosPerSecond = 1'000'000'000;
constexpr uint64_t kNanosPerMilli = 1'000'000;

// The civil date of a day count since 1970-01-01 (proleptic Gregorian calendar).
struct CivilDate {
  int64_t year;
  unsigned month;
  unsigned day;
};

CivilDate CivilFromDays(int64_t days) {
  // Count from 0000-03-01 so that the leap day ends each 4/100/400-year cycle.
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto day_of_era = static_cast<unsigned>(days - era * 146097);
  const unsigned year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const unsigned day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const unsigned month_from_march = (5 * day_of_year + 2) / 153;
  const unsigned day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
  const unsigned month = month_from_march < 10 ? month_from_march + 3 : month_from_march - 9;
  const int64_t year = static_cast<int64_t>(year_of_era) + era * 400 + (month <= 2 ? 1 : 0);
  return {year, month, day};
}

// "2026-08-20T10:00:00.123Z"
void AppendIsoTime(std::string& out, uint64_t unix_nanos) {
  const uint64_t seconds = unix_nanos / kNanosPerSecond;
  const uint64_t second_of_day = seconds % 86400;
  const CivilDate date = CivilFromDays(static_cast<int64_t>(seconds / 86400));
  AppendPadded(out, static_cast<uint64_t>(date.year), 4);
  out.push_back('-');
  AppendPadded(out, date.month, 2);
  out.push_back('-');
  AppendPadded(out, date.day, 2);
  out.push_back('T');
  AppendPadded(out, second_of_day / 3600, 2);
  out.push_back(':');
  AppendPadded(out, second_of_day / 60 % 60, 2);
  out.push_back(':');
  AppendPadded(out, second_of_day % 60, 2);
  out.push_back('.');
  AppendPadded(out, unix_nanos % kNanosPerSecond / kNanosPerMilli, 3);
  out.push_back('Z');
}

void AppendCustomTime(std::string& out, uint64_t unix_nanos,
                      const std::vector<Piece::TimeAtom>& atoms) {
  using TimeAtom = Piece::TimeAtom;
  const uint64_t seconds = unix_nanos / kNanosPerSecond;
  std::tm civil{};
  bool civil_ready = false;
  for (const TimeAtom& atom : atoms) {
    switch (atom.kind) {
      case TimeAtom::Kind::kLiteral:
        out.append(atom.text);
        break;
      case TimeAtom::Kind::kEpochSeconds:
        AppendNumber(out, seconds);
        break;
      case TimeAtom::Kind::kFraction:
        AppendPadded(out, unix_nanos % kNanosPerSecond, 9);
        out.resize(out.size() - (9 - atom.fraction_digits));
        break;
      case TimeAtom::Kind::kConversion: {
        if (!civil_ready) {
          const auto time = static_cast<std::time_t>(seconds);
          gmtime_r(&time, &civil);
          civil_ready = true;
        }
        char buffer[128];
        const size_t length = std::strftime(buffer, sizeof(buffer), atom.text.c_str(), &civil);
        out.append(buffer, length);
        break;
      }
    }
  }
}

// The host of "ip:port" or "[v6]:port" (without brackets); the whole text when it has no port.
std::string_view AddressHost(std::string_view address) {
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find(']');
    return close == std::string_view::npos ? address : address.substr(1, close - 1);
  }
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || address.find(':') != colon) return address;
  return address.substr(0, colon);
}

// The port of "ip:port" or "[v6]:port"; empty when there is none or it is not all digits.
std::string_view AddressPort(std::string_view address) {
  size_t colon = std::string_view::npos;
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find(']');
    if (close != std::string_view::npos && close + 1 < address.size() &&
        address[close + 1] == ':') {
      colon = close + 1;
    }
  } else if (const size_t last = address.rfind(':');
             last != std::string_view::npos && address.find(':') == last) {
    colon = last;
  }
  if (colon == std::string_view::npos) return {};
  const std::string_view port = address.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return {};
  }
  return port;
}

std::string_view RequestHeaderValue(HeaderSource source, std::string_view captured_name,
                                    const RequestRecord& record) {
  switch (source) {
    case HeaderSource::kMethod:
      return record.method();
    case HeaderSource::kPath:
      return record.path();
    case HeaderSource::kAuthority:
      return record.authority();
    case HeaderSource::kScheme:
      return record.scheme();
    case HeaderSource::kUserAgent:
      return record.user_agent();
    case HeaderSource::kRequestId:
      return record.request_id();
    case HeaderSource::kForwardedFor:
      return record.forwarded_for();
    case HeaderSource::kCaptured:
      for (const meshtel::v1::CapturedHeader& header : record.captured_headers()) {
        if (header.name() == captured_name) return header.value();
      }
      return {};
    default:
      return {};
  }
}

// Writes a response header's value into `buffer` (they are all derived numbers) and returns it.
std::string_view ResponseHeaderValue(HeaderSource source, const RequestRecord& record,
                                     char (&buffer)[20]) {
  uint64_t value = 0;
  if (source == HeaderSource::kUpstreamServiceTime) {
    const meshtel::v1::PhaseTimings& phases = record.phases();
    if (phases.upstream_request_done_ns() == 0 || phases.upstream_first_byte_ns() == 0) return {};
    // An upstream that answers before the request ends has taken no time after it.
    const uint64_t first_byte = phases.upstream_first_byte_ns();
    const uint64_t request_done = phases.upstream_request_done_ns();
    value = (first_byte > request_done ? first_byte - request_done : 0) / kNanosPerMilli;
  } else if (source == HeaderSource::kStatus) {
    if (record.response_code() == 0) return {};
    value = record.response_code();
  } else {
    return {};
  }
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string_view(buffer, static_cast<size_t>(result.ptr - buffer));
}

void AppendHeader(const Piece& piece, const RequestRecord& record, std::string& out) {
  const auto op = static_cast<Op>(piece.op);
  char buffer[2][20];
  std::string_view value;
  if (op == Op::kResponseHeader) {
    value = ResponseHeaderValue(static_cast<HeaderSource>(piece.header), record, buffer[0]);
    if (value.empty()) {
      value =
          ResponseHeaderValue(static_cast<HeaderSource>(piece.fallback_header), record, buffer[1]);
    }
  } else {
    value = RequestHeaderValue(static_cast<HeaderSource>(piece.header), piece.text, record);
    if (value.empty()) {
      value = RequestHeaderValue(static_cast<HeaderSource>(piece.fallback_header),
                                 piece.fallback_text, record);
    }
    if (op == Op::kRequestHeaderWithoutQuery) value = value.substr(0, value.find('?'));
  }
  out.append(value.substr(0, piece.max_length));
}

void AppendResponseFlags(std::string& out, uint64_t flags) {
  common::AppendResponseFlagCodes(out, flags);
}

void AppendHex(std::string& out, std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0xF]);
  }
}

void AppendMillis(std::string& out, uint64_t nanos) { AppendNumber(out, nanos / kNanosPerMilli); }

// An offset in phases: whole milliseconds, or nothing when the phase was not reached.
void AppendPhase(std::string& out, uint64_t offset_nanos) {
  if (offset_nanos != 0) AppendMillis(out, offset_nanos);
}

void AppendPort(std::string& out, std::string_view address) { out.append(AddressPort(address)); }

// Appends the raw value of an operator; appends nothing when the value is unset.
void AppendValue(const Piece& piece, const RequestRecord& record, std::string& out) {
  const meshtel::v1::PhaseTimings& phases = record.phases();
  switch (static_cast<Op>(piece.op)) {
    case Op::kStartTime:
      if (record.start_time_unix_nano() == 0) return;
      if (piece.time_atoms.empty()) {
        AppendIsoTime(out, record.start_time_unix_nano());
      } else {
        AppendCustomTime(out, record.start_time_unix_nano(), piece.time_atoms);
      }
      return;
    case Op::kRequestHeader:
    case Op::kRequestHeaderWithoutQuery:
    case Op::kResponseHeader:
      AppendHeader(piece, record, out);
      return;
    case Op::kProtocol:
      out.append(record.protocol());
      return;
    case Op::kResponseCode:
      AppendNumber(out, record.response_code());
      return;
    case Op::kResponseFlags:
      AppendResponseFlags(out, record.response_flags());
      return;
    case Op::kResponseCodeDetails:
      out.append(record.response_code_details());
      return;
    case Op::kGrpcStatus: {
      if (!record.has_grpc_status()) return;
      const uint32_t code = record.grpc_status();
      const auto style = static_cast<GrpcStatusStyle>(piece.header);
      if (style == GrpcStatusStyle::kNumber || code >= kGrpcCamelNames.size()) {
        AppendNumber(out, code);
      } else {
        out.append(style == GrpcStatusStyle::kCamel ? kGrpcCamelNames[code]
                                                    : kGrpcSnakeNames[code]);
      }
      return;
    }
    case Op::kBytesReceived:
      AppendNumber(out, record.request_bytes());
      return;
    case Op::kBytesSent:
      AppendNumber(out, record.response_bytes());
      return;
    case Op::kDuration:
      AppendMillis(out, record.duration_ns());
      return;
    case Op::kRequestDuration:
    case Op::kRequestTxDuration:
      AppendPhase(out, phases.upstream_request_done_ns());
      return;
    case Op::kResponseDuration:
      AppendPhase(out, phases.upstream_first_byte_ns());
      return;
    case Op::kResponseTxDuration:
      if (phases.upstream_first_byte_ns() != 0 &&
          phases.downstream_last_byte_ns() >= phases.upstream_first_byte_ns()) {
        AppendMillis(out, phases.downstream_last_byte_ns() - phases.upstream_first_byte_ns());
      }
      return;
    case Op::kUpstreamHost:
      out.append(record.upstream_host());
      return;
    case Op::kUpstreamHostWithoutPort:
      out.append(AddressHost(record.upstream_host()));
      return;
    case Op::kUpstreamHostPort:
      AppendPort(out, record.upstream_host());
      return;
    case Op::kUpstreamCluster:
      out.append(record.upstream_cluster());
      return;
    case Op::kUpstreamLocalAddress:
      out.append(record.upstream_local_address());
      return;
    case Op::kUpstreamLocalAddressWithoutPort:
      out.append(AddressHost(record.upstream_local_address()));
      return;
    case Op::kUpstreamLocalPort:
      AppendPort(out, record.upstream_local_address());
      return;
    case Op::kDownstreamLocalAddress:
      out.append(record.downstream_local_address());
      return;
    case Op::kDownstreamLocalAddressWithoutPort:
      out.append(AddressHost(record.downstream_local_address()));
      return;
    case Op::kDownstreamLocalPort:
      AppendPort(out, record.downstream_local_address());
      return;
    case Op::kDownstreamRemoteAddress:
      out.append(record.downstream_remote_address());
      return;
    case Op::kDownstreamRemoteAddressWithoutPort:
      out.append(AddressHost(record.downstream_remote_address()));
      return;
    case Op::kDownstreamRemotePort:
      AppendPort(out, record.downstream_remote_address());
      return;
    case Op::kRouteName:
      out.append(record.route_name());
      return;
    case Op::kTraceId:
      AppendHex(out, record.trace_id());
      return;
    case Op::kAlwaysUnset:
      return;
  }
}

void RenderOperator(const Piece& piece, const RequestRecord& record, std::string& out) {
  const bool quoted = piece.context == Piece::Context::kJsonValue && !piece.numeric;
  const size_t start = out.size();
  if (quoted) out.push_back('"');
  const size_t value_start = out.size();
  AppendValue(piece, record, out);
  if (out.size() == value_start) {
    out.resize(start);
    out.append(piece.context == Piece::Context::kJsonValue ? "null" : "-");
    return;
  }
  if (piece.context != Piece::Context::kText && !piece.numeric) EscapeJsonTail(out, value_start);
  if (quoted) out.push_back('"');
}

}  // namespace

const std::vector<AccessLogJsonField>& IstioDefaultJsonFields() {
  static const std::vector<AccessLogJsonField> fields = {
      {"start_time", "%START_TIME%"},
      {"route_name", "%ROUTE_NAME%"},
      {"method", "%REQ(:METHOD)%"},
      {"path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"},
      {"protocol", "%PROTOCOL%"},
      {"response_code", "%RESPONSE_CODE%"},
      {"response_flags", "%RESPONSE_FLAGS%"},
      {"response_code_details", "%RESPONSE_CODE_DETAILS%"},
      {"connection_termination_details", "%CONNECTION_TERMINATION_DETAILS%"},
      {"bytes_received", "%BYTES_RECEIVED%"},
      {"bytes_sent", "%BYTES_SENT%"},
      {"duration", "%DURATION%"},
      {"upstream_service_time", "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"},
      {"x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"},
      {"user_agent", "%REQ(USER-AGENT)%"},
      {"request_id", "%REQ(X-REQUEST-ID)%"},
      {"authority", "%REQ(:AUTHORITY)%"},
      {"upstream_host", "%UPSTREAM_HOST%"},
      {"upstream_cluster", "%UPSTREAM_CLUSTER_RAW%"},
      {"upstream_local_address", "%UPSTREAM_LOCAL_ADDRESS%"},
      {"downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%"},
      {"downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"},
      {"requested_server_name", "%REQUESTED_SERVER_NAME%"},
      {"upstream_transport_failure_reason", "%UPSTREAM_TRANSPORT_FAILURE_REASON%"},
  };
  return fields;
}

absl::StatusOr<AccessLogFormat> AccessLogFormat::Compile(std::string_view format,
                                                         AccessLogEncoding encoding) {
  if (encoding == AccessLogEncoding::kJson) {
    if (!format.empty()) {
      return absl::InvalidArgumentError(
          "a JSON access log takes a map of keys to format strings, not one format string");
    }
    return CompileJson({});
  }
  if (format.empty()) format = kIstioDefaultTextFormat;
  AccessLogFormat compiled;
  compiled.encoding_ = AccessLogEncoding::kText;
  if (absl::Status status = ParseFormat(format, Piece::Context::kText, compiled.pieces_);
      !status.ok()) {
    return status;
  }
  compiled.pieces_ = MergeLiterals(std::move(compiled.pieces_));
  return compiled;
}

absl::StatusOr<AccessLogFormat> AccessLogFormat::CompileJson(
    const std::vector<AccessLogJsonField>& fields) {
  std::vector<AccessLogJsonField> sorted = fields.empty() ? IstioDefaultJsonFields() : fields;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i].first.empty()) return absl::InvalidArgumentError("a JSON key is empty");
    if (i > 0 && sorted[i].first == sorted[i - 1].first) {
      return absl::InvalidArgumentError(
          fmt::format("{}: the key is given more than once", sorted[i].first));
    }
  }
  AccessLogFormat compiled;
  compiled.encoding_ = AccessLogEncoding::kJson;
  std::vector<Piece>& pieces = compiled.pieces_;
  AppendLiteral(pieces, "{");
  for (size_t i = 0; i < sorted.size(); ++i) {
    const auto& [key, format] = sorted[i];
    std::string prefix = i == 0 ? "\"" : ",\"";
    AppendJsonEscaped(prefix, key);
    prefix.append("\":");
    AppendLiteral(pieces, prefix);
    std::vector<Piece> value;
    if (absl::Status status = ParseFormat(format, Piece::Context::kJsonString, value);
        !status.ok()) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: {}", key, std::string_view(status.message().data(), status.message().size())));
    }
    if (value.size() == 1 && value.front().kind == Piece::Kind::kOperator) {
      value.front().context = Piece::Context::kJsonValue;
      pieces.push_back(std::move(value.front()));
      continue;
    }
    AppendLiteral(pieces, "\"");
    for (Piece& piece : value) {
      if (piece.kind == Piece::Kind::kLiteral) {
        AppendLiteral(pieces, piece.text);
      } else {
        pieces.push_back(std::move(piece));
      }
    }
    AppendLiteral(pieces, "\"");
  }
  AppendLiteral(pieces, "}\n");
  return compiled;
}

std::vector<std::string> AccessLogFormat::captured_headers() const {
  std::vector<std::string> headers;
  for (const Piece& piece : pieces_) {
    const auto op = static_cast<Op>(piece.op);
    if (piece.kind != Piece::Kind::kOperator ||
        (op != Op::kRequestHeader && op != Op::kRequestHeaderWithoutQuery)) {
      continue;
    }
    if (static_cast<HeaderSource>(piece.header) == HeaderSource::kCaptured) {
      headers.push_back(piece.text);
    }
    if (static_cast<HeaderSource>(piece.fallback_header) == HeaderSource::kCaptured) {
      headers.push_back(piece.fallback_text);
    }
  }
  std::sort(headers.begin(), headers.end());
  headers.erase(std::unique(headers.begin(), headers.end()), headers.end());
  return headers;
}

void AccessLogFormat::Render(const meshtel::v1::RequestRecord& record, std::string& out) const {
  for (const Piece& piece : pieces_) {
    if (piece.kind == Piece::Kind::kLiteral) {
      out.append(piece.text);
    } else {
      RenderOperator(piece, record, out);
    }
  }
}

void AppendIsoTimeMillis(std::string& out, uint64_t unix_nanos) { AppendIsoTime(out, unix_nanos); }

}  // namespace meshtel::collector
