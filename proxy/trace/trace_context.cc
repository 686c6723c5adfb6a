#include "proxy/trace/trace_context.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace meshtel::proxy {
namespace {

int HexValue(char c, bool allow_upper) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (allow_upper && c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes exactly 2*size hex digits into `out`; false on any other input.
bool DecodeHex(std::string_view text, uint8_t* out, size_t size, bool allow_upper) {
  if (text.size() != size * 2) return false;
  for (size_t i = 0; i < size; ++i) {
    const int high = HexValue(text[2 * i], allow_upper);
    const int low = HexValue(text[2 * i + 1], allow_upper);
    if (high < 0 || low < 0) return false;
    out[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return true;
}

template <size_t N>
bool IsZero(const std::array<uint8_t, N>& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

// A B3 trace id: 32 hex digits, or 16 (64-bit, left-padded with zeros). Case-insensitive.
bool DecodeB3TraceId(std::string_view text, TraceId& out) {
  out.fill(0);
  if (text.size() == 16) return DecodeHex(text, out.data() + 8, 8, true) && !IsZero(out);
  return DecodeHex(text, out.data(), 16, true) && !IsZero(out);
}

bool DecodeSpanId(std::string_view text, SpanId& out, bool allow_upper) {
  return DecodeHex(text, out.data(), 8, allow_upper) && !IsZero(out);
}

// W3C traceparent (§7.1). Fills ids, sampled and kept flags; false when invalid.
bool ParseTraceparent(std::string_view text, IncomingContext& context) {
  if (text.size() < 55) return false;
  uint8_t version = 0;
  if (!DecodeHex(text.substr(0, 2), &version, 1, false) || version == 0xff) return false;
  if (version == 0 && text.size() != 55) return false;
  if (version != 0 && text.size() > 55 && text[55] != '-') return false;
  if (text[2] != '-' || text[35] != '-' || text[52] != '-') return false;
  uint8_t flags = 0;
  if (!DecodeHex(text.substr(3, 32), context.trace_id.data(), 16, false) ||
      !DecodeHex(text.substr(36, 16), context.span_id.data(), 8, false) ||
      !DecodeHex(text.substr(53, 2), &flags, 1, false) || IsZero(context.trace_id) ||
      IsZero(context.span_id)) {
    return false;
  }
  context.sampled = (flags & 0x01) != 0;
  context.w3c_flags = flags & 0x02;  // random-trace-id is kept; other bits are reserved
  return true;
}

// A B3 sampling state: "1"/"0", "d" (debug, sampled); `lenient` also takes "true"/"false".
bool ParseB3Sampling(std::string_view text, bool lenient, std::optional<bool>& sampled) {
  if (text == "1" || text == "d" || (lenient && text == "true")) {
    sampled = true;
  } else if (text == "0" || (lenient && text == "false")) {
    sampled = false;
  } else {
    return false;
  }
  return true;
}

// Single b3 header: {TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]] or a bare decision.
bool ParseB3Single(std::string_view text, IncomingContext& context) {
  if (text.size() == 1) return ParseB3Sampling(text, false, context.sampled);
  std::vector<std::string_view> parts;
  size_t begin = 0;
  while (parts.size() < 5) {
    const size_t dash = text.find('-', begin);
    parts.push_back(text.substr(begin, dash == std::string_view::npos ? dash : dash - begin));
    if (dash == std::string_view::npos) break;
    begin = dash + 1;
  }
  if (parts.size() < 2 || parts.size() > 4) return false;
  if (!DecodeB3TraceId(parts[0], context.trace_id) ||
      !DecodeSpanId(parts[1], context.span_id, true)) {
    return false;
  }
  if (parts.size() >= 3 && !ParseB3Sampling(parts[2], false, context.sampled)) return false;
  SpanId parent{};
  if (parts.size() == 4 && !DecodeSpanId(parts[3], parent, true)) return false;
  return true;
}

bool ParseB3Multi(const TraceHeaders& headers, IncomingContext& context) {
  const bool has_ids = !headers.x_b3_traceid.empty() || !headers.x_b3_spanid.empty();
  if (has_ids && (!DecodeB3TraceId(headers.x_b3_traceid, context.trace_id) ||
                  !DecodeSpanId(headers.x_b3_spanid, context.span_id, true))) {
    return false;
  }
  SpanId parent{};
  if (!headers.x_b3_parentspanid.empty() &&
      !DecodeSpanId(headers.x_b3_parentspanid, parent, true)) {
    return false;
  }
  if (!headers.x_b3_sampled.empty() &&
      !ParseB3Sampling(headers.x_b3_sampled, true, context.sampled)) {
    return false;
  }
  if (headers.x_b3_flags == "1") context.sampled = true;  // debug implies sampled
  return true;
}

std::mt19937_64& Random() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  return generator;
}

template <size_t N>
void FillRandomNonZero(std::array<uint8_t, N>& bytes) {
  do {
    for (size_t i = 0; i < N; i += 8) {
      const uint64_t value = Random()();
      for (size_t j = 0; j < 8 && i + j < N; ++j)
        bytes[i + j] = static_cast<uint8_t>(value >> (8 * j));
    }
  } while (IsZero(bytes));
}

}  // namespace

void WriteHex(const uint8_t* data, size_t size, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = kHex[data[i] >> 4];
    out[2 * i + 1] = kHex[data[i] & 15];
  }
}

std::string ToHex(const uint8_t* data, size_t size) {
  std::string text(size * 2, '0');
  WriteHex(data, size, text.data());
  return text;
}

IncomingContext ExtractTraceContext(const TraceHeaders& headers) {
  IncomingContext context;
  const bool has_b3_multi = !headers.x_b3_traceid.empty() || !headers.x_b3_spanid.empty() ||
                            !headers.x_b3_sampled.empty() || !headers.x_b3_flags.empty() ||
                            !headers.x_b3_parentspanid.empty();
  if (!headers.traceparent.empty()) {
    if (ParseTraceparent(headers.traceparent, context)) {
      context.has_ids = true;
      context.tracestate = std::string(headers.tracestate);
      return context;
    }
    context = IncomingContext{};
    context.invalid = true;
  }
  if (!headers.b3.empty()) {
    IncomingContext parsed;
    if (ParseB3Single(headers.b3, parsed)) {
      parsed.has_ids = !IsZero(parsed.trace_id);
      parsed.invalid = context.invalid;
      return parsed;
    }
    context.invalid = true;
  }
  if (has_b3_multi) {
    IncomingContext parsed;
    if (ParseB3Multi(headers, parsed)) {
      parsed.has_ids = !IsZero(parsed.trace_id);
      parsed.invalid = context.invalid;
      return parsed;
    }
    context.invalid = true;
  }
  return context;
}

SamplingDecision DecideSampling(const IncomingContext& incoming, const TraceHeaders& headers,
                                std::string_view request_id, double percentage) {
  if (incoming.sampled.has_value()) {
    return {*incoming.sampled, SamplingReason::kIncomingDecision};
  }
  if (!headers.x_client_trace_id.empty()) return {true, SamplingReason::kClientForced};
  if (!headers.x_envoy_force_trace.empty()) return {true, SamplingReason::kServiceForced};
  // Like Envoy: the first 8 hex digits of the request id, mod 10000, against percent × 100.
  uint64_t draw = 0;
  uint8_t prefix[4];
  if (request_id.size() >= 8 && DecodeHex(request_id.substr(0, 8), prefix, 4, true)) {
    draw = (uint64_t{prefix[0]} << 24 | uint64_t{prefix[1]} << 16 | uint64_t{prefix[2]} << 8 |
            prefix[3]) %
           10000;
  } else {
    draw = Random()() % 10000;
  }
  const auto threshold =
      static_cast<uint64_t>(std::llround(std::clamp(percentage, 0.0, 100.0) * 100));
  return {draw < threshold, SamplingReason::kRandom};
}

HopContext NewHop(const IncomingContext& incoming, bool sampled) {
  HopContext hop;
  hop.sampled = sampled;
  if (incoming.has_ids) {
    hop.trace_id = incoming.trace_id;
    hop.parent_span_id = incoming.span_id;
    hop.w3c_flags = incoming.w3c_flags;
    hop.tracestate = incoming.tracestate;
  } else {
    FillRandomNonZero(hop.trace_id);
  }
  FillRandomNonZero(hop.span_id);
  return hop;
}

const std::vector<std::string_view>& PropagatedTraceHeaderNames() {
  static const std::vector<std::string_view> kNames = {
      "traceparent", "tracestate",        "b3",           "x-b3-traceid",
      "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags"};
  return kNames;
}

void WriteTraceHeaders(const HopContext& hop, const std::vector<Propagation>& forms,
                       InjectedTraceHeaders& out) {
  out.count_ = 0;
  const bool has_parent = !IsZero(hop.parent_span_id);
  bool written[3] = {false, false, false};
  for (Propagation form : forms) {
    bool& done = written[static_cast<int>(form)];
    if (done) continue;  // the same headers again would change nothing
    done = true;
    switch (form) {
      case Propagation::kW3c: {
        const uint8_t flags = static_cast<uint8_t>((hop.sampled ? 0x01 : 0) | hop.w3c_flags);
        char* p = out.traceparent_;
        *p++ = '0';
        *p++ = '0';
        *p++ = '-';
        WriteHex(hop.trace_id.data(), 16, p);
        p += 32;
        *p++ = '-';
        WriteHex(hop.span_id.data(), 8, p);
        p += 16;
        *p++ = '-';
        WriteHex(&flags, 1, p);
        out.Add("traceparent", {out.traceparent_, sizeof(out.traceparent_)});
        if (!hop.tracestate.empty()) out.Add("tracestate", hop.tracestate);
        break;
      }
      case Propagation::kB3Multi:
        WriteHex(hop.trace_id.data(), 16, out.b3_trace_id_);
        out.Add("x-b3-traceid", {out.b3_trace_id_, sizeof(out.b3_trace_id_)});
        WriteHex(hop.span_id.data(), 8, out.b3_span_id_);
        out.Add("x-b3-spanid", {out.b3_span_id_, sizeof(out.b3_span_id_)});
        if (has_parent) {
          WriteHex(hop.parent_span_id.data(), 8, out.b3_parent_span_id_);
          out.Add("x-b3-parentspanid", {out.b3_parent_span_id_, sizeof(out.b3_parent_span_id_)});
        }
        out.Add("x-b3-sampled", hop.sampled ? "1" : "0");
        break;
      case Propagation::kB3Single: {
        char* p = out.b3_;
        WriteHex(hop.trace_id.data(), 16, p);
        p += 32;
        *p++ = '-';
        WriteHex(hop.span_id.data(), 8, p);
        p += 16;
        *p++ = '-';
        *p++ = hop.sampled ? '1' : '0';
        if (has_parent) {
          *p++ = '-';
          WriteHex(hop.parent_span_id.data(), 8, p);
          p += 16;
        }
        out.Add("b3", {out.b3_, static_cast<size_t>(p - out.b3_)});
        break;
      }
    }
  }
}

std::vector<std::pair<std::string_view, std::string>> TraceHeadersToInject(
    const HopContext& hop, const std::vector<Propagation>& forms) {
  InjectedTraceHeaders written;
  WriteTraceHeaders(hop, forms, written);
  std::vector<std::pair<std::string_view, std::string>> headers;
  for (const auto& header : written) headers.emplace_back(header.name, header.value);
  return headers;
}

}  // namespace meshtel::proxy
