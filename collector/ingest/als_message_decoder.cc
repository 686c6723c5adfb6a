#include "collector/ingest/als_message_decoder.h"

// Tested by: tests/collector/ingest/als_message_decoder_test.cc

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

#include "collector/common/protobuf_wire.h"
#include "collector/ingest/wire_text_repair.h"
#include "collector/logs/record_text.h"
#include "envoy/service/accesslog/v3/als.pb.h"

namespace meshtel::collector {
namespace {

using common::ForEachField;
using common::ParseNested;
using common::ValidUtf8;
using common::WireReader;
using common::WireType;
using envoy::data::accesslog::v3::HTTPAccessLogEntry;
using envoy::service::accesslog::v3::StreamAccessLogsMessage;

// Field numbers (envoy/service/accesslog/v3/als.proto, envoy/data/accesslog/v3/accesslog.proto,
// envoy/config/core/v3/address.proto, google/protobuf/{any,duration,timestamp,wrappers}.proto).
constexpr uint32_t kMessageIdentifier = 1;
constexpr uint32_t kMessageHttpLogs = 2;
constexpr uint32_t kMessageTcpLogs = 3;
constexpr uint32_t kEntriesLogEntry = 1;

constexpr uint32_t kEntryCommon = 1;
constexpr uint32_t kEntryProtocolVersion = 2;
constexpr uint32_t kEntryRequest = 3;
constexpr uint32_t kEntryResponse = 4;

constexpr uint32_t kCommonSampleRate = 1;
constexpr uint32_t kCommonDownstreamRemoteAddress = 2;
constexpr uint32_t kCommonDownstreamLocalAddress = 3;
constexpr uint32_t kCommonTlsProperties = 4;
constexpr uint32_t kCommonStartTime = 5;
constexpr uint32_t kCommonTimeToLastRxByte = 6;
constexpr uint32_t kCommonTimeToFirstUpstreamTxByte = 7;
constexpr uint32_t kCommonTimeToLastUpstreamTxByte = 8;
constexpr uint32_t kCommonTimeToFirstUpstreamRxByte = 9;
constexpr uint32_t kCommonTimeToLastUpstreamRxByte = 10;
constexpr uint32_t kCommonTimeToFirstDownstreamTxByte = 11;
constexpr uint32_t kCommonTimeToLastDownstreamTxByte = 12;
constexpr uint32_t kCommonUpstreamRemoteAddress = 13;
constexpr uint32_t kCommonUpstreamLocalAddress = 14;
constexpr uint32_t kCommonUpstreamCluster = 15;
constexpr uint32_t kCommonResponseFlags = 16;
// 17, metadata: entries with it take the protobuf path.
constexpr uint32_t kCommonMetadata = 17;
constexpr uint32_t kCommonUpstreamTransportFailureReason = 18;
constexpr uint32_t kCommonRouteName = 19;
constexpr uint32_t kCommonDownstreamDirectRemoteAddress = 20;
constexpr uint32_t kCommonFilterStateObjects = 21;
constexpr uint32_t kCommonCustomTags = 22;
constexpr uint32_t kCommonDuration = 23;
constexpr uint32_t kCommonUpstreamRequestAttemptCount = 24;
constexpr uint32_t kCommonConnectionTerminationDetails = 25;
constexpr uint32_t kCommonStreamId = 26;
constexpr uint32_t kCommonIntermediateLogEntry = 27;
constexpr uint32_t kCommonDownstreamTransportFailureReason = 28;
constexpr uint32_t kCommonDownstreamWireBytesSent = 29;
constexpr uint32_t kCommonDownstreamWireBytesReceived = 30;
constexpr uint32_t kCommonUpstreamWireBytesSent = 31;
constexpr uint32_t kCommonUpstreamWireBytesReceived = 32;
constexpr uint32_t kCommonAccessLogType = 33;

constexpr uint32_t kResponseFlagsUnauthorized = 13;
constexpr uint32_t kResponseFlagsLastField = 28;
constexpr uint32_t kUnauthorizedReason = 1;

constexpr uint32_t kTlsVersion = 1;
constexpr uint32_t kTlsCipherSuite = 2;
constexpr uint32_t kTlsSniHostname = 3;
constexpr uint32_t kTlsLocalCertificate = 4;
constexpr uint32_t kTlsPeerCertificate = 5;
constexpr uint32_t kTlsSessionId = 6;
constexpr uint32_t kTlsJa3Fingerprint = 7;
constexpr uint32_t kCertificateSubjectAltName = 1;
constexpr uint32_t kCertificateSubject = 2;
constexpr uint32_t kCertificateIssuer = 3;
constexpr uint32_t kSanUri = 1;
constexpr uint32_t kSanDns = 2;

constexpr uint32_t kAddressSocket = 1;
constexpr uint32_t kAddressPipe = 2;
constexpr uint32_t kAddressEnvoyInternal = 3;
constexpr uint32_t kSocketProtocol = 1;
constexpr uint32_t kSocketAddress = 2;
constexpr uint32_t kSocketPortValue = 3;
constexpr uint32_t kSocketNamedPort = 4;
constexpr uint32_t kSocketResolverName = 5;
constexpr uint32_t kSocketIpv4Compat = 6;
constexpr uint32_t kSocketNetworkNamespaceFilepath = 7;
constexpr uint32_t kPipePath = 1;
constexpr uint32_t kPipeMode = 2;
constexpr uint32_t kInternalServerListenerName = 1;
constexpr uint32_t kInternalEndpointId = 2;

constexpr uint32_t kRequestMethod = 1;
constexpr uint32_t kRequestScheme = 2;
constexpr uint32_t kRequestAuthority = 3;
constexpr uint32_t kRequestPort = 4;
constexpr uint32_t kRequestPath = 5;
constexpr uint32_t kRequestUserAgent = 6;
constexpr uint32_t kRequestReferer = 7;
constexpr uint32_t kRequestForwardedFor = 8;
constexpr uint32_t kRequestRequestId = 9;
constexpr uint32_t kRequestOriginalPath = 10;
constexpr uint32_t kRequestHeadersBytes = 11;
constexpr uint32_t kRequestBodyBytes = 12;
constexpr uint32_t kRequestHeaders = 13;
constexpr uint32_t kRequestUpstreamHeaderBytesSent = 14;
constexpr uint32_t kRequestDownstreamHeaderBytesReceived = 15;

constexpr uint32_t kResponseCode = 1;
constexpr uint32_t kResponseHeadersBytes = 2;
constexpr uint32_t kResponseBodyBytes = 3;
constexpr uint32_t kResponseHeaders = 4;
constexpr uint32_t kResponseTrailers = 5;
constexpr uint32_t kResponseCodeDetails = 6;
constexpr uint32_t kResponseUpstreamHeaderBytesReceived = 7;
constexpr uint32_t kResponseDownstreamHeaderBytesSent = 8;

// Shared by map entries, Any, Duration, Timestamp (first and second field) and the wrappers.
constexpr uint32_t kFirstField = 1;
constexpr uint32_t kSecondField = 2;

// How deep below the message an entry sits (message → http_logs → entry), for ParseNested.
constexpr int kEntryDepth = 2;
constexpr int kIdentifierDepth = 1;

// Varints as protobuf stores them in fields of each type.
int32_t AsInt32(uint64_t value) { return static_cast<int32_t>(static_cast<uint32_t>(value)); }
uint32_t AsUint32(uint64_t value) { return static_cast<uint32_t>(value); }

// The readers below return false for anything they do not vouch for; the caller then leaves the
// whole entry to protobuf. Scalars and strings given twice keep the last value, as protobuf does;
// a message field given twice (protobuf merges the two) is not vouched for.

// The entries (HTTP and TCP) of a message that have text that is not UTF-8, for a message
// repaired whole (DecodeWithProtobuf).
size_t EntriesWithTextRepaired(std::string_view message) {
  size_t entries = 0;
  ForEachField(message, [&](WireReader& reader) {
    const uint32_t logs_field = reader.field();
    if (logs_field != kMessageHttpLogs && logs_field != kMessageTcpLogs) return reader.Skip();
    std::string_view logs;
    if (!reader.ReadBytes(logs)) return false;
    const google::protobuf::Descriptor& entry_type =
        logs_field == kMessageHttpLogs
            ? *HTTPAccessLogEntry::descriptor()
            : *envoy::data::accesslog::v3::TCPAccessLogEntry::descriptor();
    return ForEachField(logs, [&](WireReader& entry_reader) {
      if (entry_reader.field() != kEntriesLogEntry) return entry_reader.Skip();
      std::string_view entry;
      if (!entry_reader.ReadBytes(entry)) return false;
      std::optional<RepairedWireText> repaired = RepairWireText(entry, entry_type, kEntryDepth);
      if (repaired && repaired->strings > 0) ++entries;
      return true;
    });
  });
  return entries;
}

// Marks `field` seen; false when it was seen before.
bool FirstTime(uint64_t& seen, uint32_t field) {
  const uint64_t bit = uint64_t{1} << (field & 63);
  if ((seen & bit) != 0) return false;
  seen |= bit;
  return true;
}

// Where the walk under way counts the strings that are not UTF-8 (ReadHttpEntryWire's
// invalid_text); null while it refuses them. Set for one walk on the calling thread.
thread_local size_t* invalid_text_count = nullptr;

bool ReadString(WireReader& reader, std::string_view& value) {
  if (!reader.ReadBytes(value)) return false;
  if (ValidUtf8(value)) return true;
  if (invalid_text_count == nullptr) return false;
  ++*invalid_text_count;
  return true;
}

bool SkipString(WireReader& reader) {
  std::string_view ignored;
  return ReadString(reader, ignored);
}

bool SkipVarint(WireReader& reader) {
  uint64_t ignored = 0;
  return reader.ReadVarintValue(ignored);
}

// An embedded message's bytes, read by `read` (a function of the bytes).
template <typename ReadMessage>
[[gnu::always_inline]] inline bool ReadMessageField(WireReader& reader, ReadMessage&& read) {
  std::string_view bytes;
  return reader.ReadBytes(bytes) && read(bytes);
}

// Duration and Timestamp: seconds (1), nanos (2).
bool ReadSecondsAndNanos(std::string_view bytes, int64_t& seconds, int32_t& nanos) {
  return ForEachField(bytes, [&](WireReader& reader) {
    uint64_t value = 0;
    switch (reader.field()) {
      case kFirstField:
        if (!reader.ReadVarintValue(value)) return false;
        seconds = static_cast<int64_t>(value);
        return true;
      case kSecondField:
        if (!reader.ReadVarintValue(value)) return false;
        nanos = AsInt32(value);
        return true;
      default:
        return reader.Skip();
    }
  });
}

bool ReadDuration(WireReader& reader, AlsDurationView& duration) {
  return ReadMessageField(reader, [&](std::string_view bytes) {
    return ReadSecondsAndNanos(bytes, duration.seconds, duration.nanos);
  });
}

// google.protobuf.UInt32Value.
bool ReadUint32Value(std::string_view bytes, uint32_t& out) {
  return ForEachField(bytes, [&](WireReader& reader) {
    uint64_t value = 0;
    if (reader.field() != kFirstField) return reader.Skip();
    if (!reader.ReadVarintValue(value)) return false;
    out = AsUint32(value);
    return true;
  });
}

bool ReadSocketAddress(std::string_view bytes, AlsAddressView& address) {
  return ForEachField(bytes, [&](WireReader& reader) {
    uint64_t value = 0;
    switch (reader.field()) {
      case kSocketAddress:
        return ReadString(reader, address.address);
      case kSocketPortValue:  // oneof with named_port: the last one given counts
        address.has_named_port = false;
        address.named_port = {};
        if (!reader.ReadVarintValue(value)) return false;
        address.port_value = AsUint32(value);
        return true;
      case kSocketNamedPort:
        address.has_named_port = true;
        address.port_value = 0;
        return ReadString(reader, address.named_port);
      case kSocketProtocol:
      case kSocketIpv4Compat:
        return SkipVarint(reader);
      case kSocketResolverName:
      case kSocketNetworkNamespaceFilepath:
        return SkipString(reader);
      default:
        return reader.Skip();
    }
  });
}

bool ReadPipe(std::string_view bytes, AlsAddressView& address) {
  return ForEachField(bytes, [&](WireReader& reader) {
    switch (reader.field()) {
      case kPipePath:
        return ReadString(reader, address.address);
      case kPipeMode:
        return SkipVarint(reader);
      default:
        return reader.Skip();
    }
  });
}

bool ReadEnvoyInternalAddress(std::string_view bytes, AlsAddressView& address) {
  return ForEachField(bytes, [&](WireReader& reader) {
    switch (reader.field()) {
      case kInternalServerListenerName:
        return ReadString(reader, address.address);
      case kInternalEndpointId:
        return ReadString(reader, address.named_port);
      default:
        return reader.Skip();
    }
  });
}

// envoy.config.core.v3.Address: one member of its oneof, given once.
bool ReadAddress(WireReader& parent, AlsAddressView& address) {
  return ReadMessageField(parent, [&](std::string_view bytes) {
    return ForEachField(bytes, [&](WireReader& reader) {
      const auto member = [&](AlsAddressView::Kind kind, auto read) {
        if (address.kind != AlsAddressView::Kind::kNone) return false;
        address.kind = kind;
        return ReadMessageField(
            reader, [&](std::string_view member_bytes) { return read(member_bytes, address); });
      };
      switch (reader.field()) {
        case kAddressSocket:
          return member(AlsAddressView::Kind::kSocket, ReadSocketAddress);
        case kAddressPipe:
          return member(AlsAddressView::Kind::kPipe, ReadPipe);
        case kAddressEnvoyInternal:
          return member(AlsAddressView::Kind::kEnvoyInternal, ReadEnvoyInternalAddress);
        default:
          return reader.Skip();
      }
    });
  });
}

// TLSProperties.CertificateProperties.SubjectAltName: its uri, when its oneof ends on uri.
bool ReadSubjectAltName(std::string_view bytes, std::string_view& uri) {
  bool is_uri = false;
  const bool read = ForEachField(bytes, [&](WireReader& reader) {
    switch (reader.field()) {
      case kSanUri:
        is_uri = true;
        return ReadString(reader, uri);
      case kSanDns:
        is_uri = false;
        return SkipString(reader);
      default:
        return reader.Skip();
    }
  });
  if (!is_uri) uri = {};
  return read;
}

// TLSProperties.CertificateProperties: the first subject_alt_name whose oneof holds a non-empty
// uri.
bool ReadCertificate(std::string_view bytes, std::string_view& first_uri_san) {
  return ForEachField(bytes, [&](WireReader& reader) {
    switch (reader.field()) {
      case kCertificateSubjectAltName: {
        std::string_view uri;
        if (!ReadMessageField(reader,
                              [&](std::string_view san) { return ReadSubjectAltName(san, uri); })) {
          return false;
        }
        if (first_uri_san.empty()) first_uri_san = uri;
        return true;
      }
      case kCertificateSubject:
      case kCertificateIssuer:
        return SkipString(reader);
      default:
        return reader.Skip();
    }
  });
}

bool ReadTlsProperties(std::string_view bytes, AlsCommonView& common) {
  uint64_t seen = 0;
  return ForEachField(bytes, [&](WireReader& reader) {
    const uint32_t field = reader.field();
    uint32_t ignored = 0;
    switch (field) {
      case kTlsVersion:
        return SkipVarint(reader);
      case kTlsCipherSuite:
        return FirstTime(seen, field) && ReadMessageField(reader, [&](std::string_view member) {
                 return ReadUint32Value(member, ignored);
               });
      case kTlsSniHostname:
        return ReadString(reader, common.tls_sni_hostname);
      case kTlsLocalCertificate:
        return FirstTime(seen, field) && ReadMessageField(reader, [&](std::string_view member) {
                 return ReadCertificate(member, common.local_uri_san);
               });
      case kTlsPeerCertificate:
        return FirstTime(seen, field) && ReadMessageField(reader, [&](std::string_view member) {
                 return ReadCertificate(member, common.peer_uri_san);
               });
      case kTlsSessionId:
      case kTlsJa3Fingerprint:
        return SkipString(reader);
      default:
        return reader.Skip();
    }
  });
}

bool ReadResponseFlags(std::string_view bytes, uint64_t& bits) {
  bool unauthorized_seen = false;
  int32_t unauthorized_reason = 0;
  const bool read = ForEachField(bytes, [&](WireReader& reader) {
    const uint32_t field = reader.field();
    uint64_t value = 0;
    if (field == kResponseFlagsUnauthorized) {
      if (unauthorized_seen) return false;
      unauthorized_seen = true;
      return ReadMessageField(reader, [&](std::string_view unauthorized) {
        return ForEachField(unauthorized, [&](WireReader& details) {
          if (details.field() != kUnauthorizedReason) return details.Skip();
          if (!details.ReadVarintValue(value)) return false;
          unauthorized_reason = AsInt32(value);
          return true;
        });
      });
    }
    if (field < 1 || field > kResponseFlagsLastField) return reader.Skip();
    if (!reader.ReadVarintValue(value)) return false;
    const uint64_t bit = uint64_t{1} << ResponseFlagOfField(field);
    bits = value != 0 ? (bits | bit) : (bits & ~bit);
    return true;
  });
  const int unauthorized = ResponseFlagOfUnauthorizedReason(unauthorized_reason);
  if (unauthorized >= 0) bits |= uint64_t{1} << unauthorized;
  return read;
}

// A map<string, string> entry: key (1) and value (2), each possibly absent (empty).
bool ReadStringPair(WireReader& parent, std::string_view& key, std::string_view& value) {
  return ReadMessageField(parent, [&](std::string_view bytes) {
    return ForEachField(bytes, [&](WireReader& reader) {
      switch (reader.field()) {
        case kFirstField:
          return ReadString(reader, key);
        case kSecondField:
          return ReadString(reader, value);
        default:
          return reader.Skip();
      }
    });
  });
}

// A map<string, string> field's entry added to `headers`; a name given again replaces its value,
// as in protobuf's map.
bool ReadHeader(WireReader& parent, AlsHeaderViews& headers) {
  std::string_view name;
  std::string_view value;
  if (!ReadStringPair(parent, name, value)) return false;
  for (auto& header : headers) {
    if (header.first == name) {
      header.second = value;
      return true;
    }
  }
  headers.emplace_back(name, value);
  return true;
}

// google.protobuf.Any: type_url (1), value (2, bytes).
bool ReadAny(std::string_view bytes, AlsAnyView& any) {
  any.present = true;
  return ForEachField(bytes, [&](WireReader& reader) {
    switch (reader.field()) {
      case kFirstField:
        return ReadString(reader, any.type_url);
      case kSecondField:
        return reader.ReadBytes(any.value);
      default:
        return reader.Skip();
    }
  });
}

// A filter_state_objects entry: key (1) and a google.protobuf.Any (2). The peers' entries are
// kept; a key given again replaces its object.
bool ReadFilterStateObject(WireReader& parent, AlsCommonView& common) {
  std::string_view key;
  AlsAnyView any;
  any.present = true;
  bool any_seen = false;
  const bool read = ReadMessageField(parent, [&](std::string_view bytes) {
    return ForEachField(bytes, [&](WireReader& reader) {
      switch (reader.field()) {
        case kFirstField:
          return ReadString(reader, key);
        case kSecondField:
          if (any_seen) return false;
          any_seen = true;
          return ReadMessageField(reader,
                                  [&](std::string_view member) { return ReadAny(member, any); });
        default:
          return reader.Skip();
      }
    });
  });
  if (!read) return false;
  if (key == "downstream_peer") {
    common.downstream_peer = any;
  } else if (key == "upstream_peer") {
    common.upstream_peer = any;
  }
  return true;
}

bool ReadCommonField(WireReader& reader, uint64_t& seen, AlsCommonView& common) {
  const uint32_t field = reader.field();
  uint64_t value = 0;
  AlsAddressView ignored_address;
  AlsDurationView ignored_duration;
  switch (field) {
    case kCommonSampleRate:
      return reader.ReadFixed64(value);
    case kCommonDownstreamRemoteAddress:
      return FirstTime(seen, field) && ReadAddress(reader, common.downstream_remote_address);
    case kCommonDownstreamLocalAddress:
      return FirstTime(seen, field) && ReadAddress(reader, common.downstream_local_address);
    case kCommonTlsProperties:
      common.has_tls_properties = true;
      return FirstTime(seen, field) && ReadMessageField(reader, [&](std::string_view bytes) {
               return ReadTlsProperties(bytes, common);
             });
    case kCommonStartTime:
      common.has_start_time = true;
      return FirstTime(seen, field) && ReadMessageField(reader, [&](std::string_view bytes) {
               return ReadSecondsAndNanos(bytes, common.start_seconds, common.start_nanos);
             });
    case kCommonTimeToLastRxByte:
    case kCommonTimeToFirstDownstreamTxByte:
      return FirstTime(seen, field) && ReadDuration(reader, ignored_duration);
    case kCommonTimeToFirstUpstreamTxByte:
      return FirstTime(seen, field) && ReadDuration(reader, common.time_to_first_upstream_tx_byte);
    case kCommonTimeToLastUpstreamTxByte:
      return FirstTime(seen, field) && ReadDuration(reader, common.time_to_last_upstream_tx_byte);
    case kCommonTimeToFirstUpstreamRxByte:
      return FirstTime(seen, field) && ReadDuration(reader, common.time_to_first_upstream_rx_byte);
    case kCommonTimeToLastUpstreamRxByte:
      return FirstTime(seen, field) && ReadDuration(reader, common.time_to_last_upstream_rx_byte);
    case kCommonTimeToLastDownstreamTxByte:
      return FirstTime(seen, field) && ReadDuration(reader, common.time_to_last_downstream_tx_byte);
    case kCommonDuration:
      return FirstTime(seen, field) && ReadDuration(reader, common.duration);
    case kCommonUpstreamRemoteAddress:
      return FirstTime(seen, field) && ReadAddress(reader, common.upstream_remote_address);
    case kCommonUpstreamLocalAddress:
      return FirstTime(seen, field) && ReadAddress(reader, common.upstream_local_address);
    case kCommonDownstreamDirectRemoteAddress:
      return FirstTime(seen, field) && ReadAddress(reader, ignored_address);
    case kCommonResponseFlags:
      return FirstTime(seen, field) && ReadMessageField(reader, [&](std::string_view bytes) {
               return ReadResponseFlags(bytes, common.response_flag_bits);
             });
    case kCommonMetadata:
      return false;
    case kCommonUpstreamCluster:
      return ReadString(reader, common.upstream_cluster);
    case kCommonRouteName:
      return ReadString(reader, common.route_name);
    case kCommonUpstreamTransportFailureReason:
    case kCommonConnectionTerminationDetails:
    case kCommonStreamId:
    case kCommonDownstreamTransportFailureReason:
      return SkipString(reader);
    case kCommonFilterStateObjects:
      return ReadFilterStateObject(reader, common);
    case kCommonCustomTags: {
      std::string_view key;
      std::string_view tag;
      return ReadStringPair(reader, key, tag);
    }
    case kCommonIntermediateLogEntry:
      if (!reader.ReadVarintValue(value)) return false;
      common.intermediate_log_entry = value != 0;
      return true;
    case kCommonDownstreamWireBytesSent:
      return reader.ReadVarintValue(common.downstream_wire_bytes_sent);
    case kCommonDownstreamWireBytesReceived:
      return reader.ReadVarintValue(common.downstream_wire_bytes_received);
    case kCommonAccessLogType:
      if (!reader.ReadVarintValue(value)) return false;
      common.access_log_type = AsInt32(value);
      return true;
    case kCommonUpstreamRequestAttemptCount:
    case kCommonUpstreamWireBytesSent:
    case kCommonUpstreamWireBytesReceived:
      return SkipVarint(reader);
    default:
      return reader.Skip();
  }
}

bool ReadRequestField(WireReader& reader, bool& port_seen, AlsHttpEntryView& view) {
  uint64_t value = 0;
  uint32_t ignored = 0;
  switch (reader.field()) {
    case kRequestMethod:
      if (!reader.ReadVarintValue(value)) return false;
      view.request_method = AsInt32(value);
      return true;
    case kRequestScheme:
      return ReadString(reader, view.scheme);
    case kRequestAuthority:
      return ReadString(reader, view.authority);
    case kRequestPort:
      if (port_seen) return false;
      port_seen = true;
      return ReadMessageField(
          reader, [&](std::string_view bytes) { return ReadUint32Value(bytes, ignored); });
    case kRequestPath:
      return ReadString(reader, view.path);
    case kRequestUserAgent:
      return ReadString(reader, view.user_agent);
    case kRequestReferer:
      return SkipString(reader);
    case kRequestForwardedFor:
      return ReadString(reader, view.forwarded_for);
    case kRequestRequestId:
      return ReadString(reader, view.request_id);
    case kRequestOriginalPath:
      return ReadString(reader, view.original_path);
    case kRequestHeadersBytes:
      return reader.ReadVarintValue(view.request_headers_bytes);
    case kRequestBodyBytes:
      return reader.ReadVarintValue(view.request_body_bytes);
    case kRequestHeaders:
      return ReadHeader(reader, view.request_headers);
    case kRequestUpstreamHeaderBytesSent:
    case kRequestDownstreamHeaderBytesReceived:
      return SkipVarint(reader);
    default:
      return reader.Skip();
  }
}

bool ReadResponseField(WireReader& reader, AlsHttpEntryView& view) {
  switch (reader.field()) {
    case kResponseCode:
      if (view.has_response_code) return false;
      view.has_response_code = true;
      return ReadMessageField(reader, [&](std::string_view bytes) {
        return ReadUint32Value(bytes, view.response_code);
      });
    case kResponseHeadersBytes:
      return reader.ReadVarintValue(view.response_headers_bytes);
    case kResponseBodyBytes:
      return reader.ReadVarintValue(view.response_body_bytes);
    case kResponseHeaders:
      return ReadHeader(reader, view.response_headers);
    case kResponseTrailers:
      return ReadHeader(reader, view.response_trailers);
    case kResponseCodeDetails:
      return ReadString(reader, view.response_code_details);
    case kResponseUpstreamHeaderBytesReceived:
    case kResponseDownstreamHeaderBytesSent:
      return SkipVarint(reader);
    default:
      return reader.Skip();
  }
}

}  // namespace

bool ReadHttpEntryWire(std::string_view bytes, AlsHttpEntryView& view, size_t* invalid_text) {
  view.Clear();
  if (invalid_text != nullptr) *invalid_text = 0;
  // Strings are checked in ReadString, deep in the walk: it finds the count here.
  struct CountScope {
    explicit CountScope(size_t* count) { invalid_text_count = count; }
    ~CountScope() { invalid_text_count = nullptr; }
  } count_scope(invalid_text);
  uint64_t seen = 0;
  return ForEachField(bytes, [&](WireReader& reader) {
    const uint32_t field = reader.field();
    uint64_t value = 0;
    switch (field) {
      case kEntryCommon:
        return FirstTime(seen, field) && ReadMessageField(reader, [&](std::string_view common) {
                 uint64_t common_seen = 0;
                 return ForEachField(common, [&](WireReader& common_reader) {
                   return ReadCommonField(common_reader, common_seen, view.common);
                 });
               });
      case kEntryProtocolVersion:
        if (!reader.ReadVarintValue(value)) return false;
        view.protocol_version = AsInt32(value);
        return true;
      case kEntryRequest:
        return FirstTime(seen, field) && ReadMessageField(reader, [&](std::string_view request) {
                 bool port_seen = false;
                 return ForEachField(request, [&](WireReader& request_reader) {
                   return ReadRequestField(request_reader, port_seen, view);
                 });
               });
      case kEntryResponse:
        return FirstTime(seen, field) && ReadMessageField(reader, [&](std::string_view response) {
                 return ForEachField(response, [&](WireReader& response_reader) {
                   return ReadResponseField(response_reader, view);
                 });
               });
      default:
        return reader.Skip();
    }
  });
}

AlsStreamDecoder::Outcome AlsStreamDecoder::Decode(
    std::string_view bytes, google::protobuf::Arena& arena,
    google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records,
    AlsConversion& conversion) {
  conversion = AlsConversion();
  if (DecodeFromWire(bytes, arena, records, conversion)) return Outcome::kOk;
  records.Clear();
  conversion = AlsConversion();
  return DecodeWithProtobuf(bytes, arena, records, conversion);
}

bool AlsStreamDecoder::DecodeFromWire(
    std::string_view bytes, google::protobuf::Arena& arena,
    google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records,
    AlsConversion& conversion) {
  std::optional<std::string_view> identifier;
  std::optional<std::string_view> http_logs;
  WireReader reader(bytes);
  while (reader.Next()) {
    std::string_view member;
    switch (reader.field()) {
      case kMessageIdentifier:
        if (identifier || !reader.ReadBytes(member)) return false;
        identifier = member;
        break;
      case kMessageHttpLogs:
        if (http_logs || !reader.ReadBytes(member)) return false;
        http_logs = member;
        break;
      case kMessageTcpLogs:
        return false;
      default:
        if (!reader.Skip()) return false;
    }
  }
  if (!reader.ok()) return false;

  // The stream's identity is taken from this message only once all of it was read.
  std::optional<AlsNodeIdentity> new_node;
  if (identifier) {
    if (!node_ || *identifier != identifier_bytes_) {
      auto& decoded =
          *google::protobuf::Arena::CreateMessage<StreamAccessLogsMessage::Identifier>(&arena);
      if (!ParseNested(*identifier, kIdentifierDepth, decoded)) return false;
      if (!node_) new_node = AlsNodeIdentity::FromIdentifier(decoded);
    }
  } else if (!node_) {
    return false;  // protobuf says whether the message is invalid or only lacks the identifier
  }
  const AlsNodeIdentity& node = node_ ? *node_ : *new_node;
  if (!http_logs) {
    records.Clear();
  } else if (!DecodeEntriesFromWire(*http_logs, node, arena, records, conversion)) {
    return false;
  }
  if (new_node) {
    node_ = std::move(new_node);
    identifier_bytes_.assign(*identifier);
  }
  return true;
}

bool AlsStreamDecoder::DecodeEntriesFromWire(
    std::string_view http_logs, const AlsNodeIdentity& node, google::protobuf::Arena& arena,
    google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records,
    AlsConversion& conversion) {
  // The records already in `records` are reused in order; the ones left over are removed (and
  // kept by `records` for later messages).
  int used = 0;
  WireReader entries(http_logs);
  while (entries.Next()) {
    if (entries.field() != kEntriesLogEntry) {
      if (!entries.Skip()) return false;
      continue;
    }
    std::string_view entry_bytes;
    if (!entries.ReadBytes(entry_bytes)) return false;
    meshtel::v1::RequestRecord& record = used < records.size() ? records[used] : *records.Add();
    if (used < records.size()) ResetRecordForConversion(record);
    ++used;
    bool converted = false;
    size_t invalid_text = 0;
    if (ReadHttpEntryWire(entry_bytes, view_, &invalid_text)) {
      ++paths_.wire_entries;
      converted = ConvertHttpEntryView(view_, node, record);
      // Text that is not UTF-8 (a client's header value, as Envoy logs it) made valid in the
      // record; protobuf would have refused the whole message for it.
      if (converted && invalid_text > 0 && SanitizeRecordText(record) > 0) {
        ++conversion.text_repaired;
      }
    } else {
      auto& entry = *google::protobuf::Arena::CreateMessage<HTTPAccessLogEntry>(&arena);
      // An entry the walk leaves to protobuf (one with metadata, say) whose text is not UTF-8 is
      // parsed with its text repaired, as the walk would take it.
      const std::optional<size_t> repaired = ParseRepairingText(entry_bytes, kEntryDepth, entry);
      if (!repaired) return false;
      ++paths_.protobuf_entries;
      converted = ConvertHttpEntry(entry, node, record);
      if (converted && *repaired > 0) ++conversion.text_repaired;
    }
    if (converted) {
      ++conversion.converted;
    } else {
      --used;  // the record is reused for the next entry
      ++conversion.skipped;
    }
  }
  while (records.size() > used) records.RemoveLast();
  return entries.ok();
}

AlsStreamDecoder::Outcome AlsStreamDecoder::DecodeWithProtobuf(
    std::string_view bytes, google::protobuf::Arena& arena,
    google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records,
    AlsConversion& conversion) {
  ++paths_.protobuf_messages;
  auto& message = *google::protobuf::Arena::CreateMessage<StreamAccessLogsMessage>(&arena);
  // Text that is not UTF-8 anywhere in the message (a TCP entry, the identifier): the message
  // is taken with it repaired rather than refused with every entry in it.
  const std::optional<size_t> repaired = ParseRepairingText(bytes, 0, message);
  if (!repaired) return Outcome::kInvalid;
  const size_t entries_repaired = *repaired > 0 ? EntriesWithTextRepaired(bytes) : 0;
  if (!node_) {
    if (!message.has_identifier()) return Outcome::kNoIdentifier;
    node_ = AlsNodeIdentity::FromIdentifier(message.identifier());
    identifier_bytes_ = message.identifier().SerializeAsString();
  }
  conversion = ConvertAlsMessage(message, *node_, records);
  conversion.text_repaired = std::min(entries_repaired, conversion.converted);
  return Outcome::kOk;
}

}  // namespace meshtel::collector
