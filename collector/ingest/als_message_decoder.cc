#include "collector/ingest/als_message_decoder.h"

// Tested by: tests/collector/ingest/als_message_decoder_test.cc

#include <cstdint>
#include <utility>

#include "collector/common/protobuf_wire.h"
#include "envoy/service/accesslog/v3/als.pb.h"

namespace meshtel::collector {
namespace {

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

// Marks `field` seen; false when it was seen before.
bool FirstTime(uint64_t& seen, uint32_t field) {
  const uint64_t bit = uint64_t{1} << (field & 63);
  if ((seen & bit) != 0) return false;
  seen |= bit;
  return true;
}

bool ReadString(WireReader& reader, std::string_view& value) {
  return reader.ReadBytes(value) && ValidUtf8(value);
}

bool SkipString(WireReader& reader) {
  std::string_view ignored;
  return ReadString(reader, ignored);
}

bool SkipVarint(WireReader& reader) {
  uint64_t ignored = 0;
  return reader.ReadVarintValue(ignored);
}

// Fields this walk does not know: any wire type but groups (which WireReader refuses).
bool SkipUnknown(WireReader& reader) { return reader.Skip(); }

// Duration and Timestamp: seconds (1), nanos (2).
bool ReadSecondsAndNanos(std::string_view bytes, int64_t& seconds, int32_t& nanos) {
  WireReader reader(bytes);
  while (reader.Next()) {
    uint64_t value = 0;
    if (reader.field() == kFirstField) {
      if (!reader.ReadVarintValue(value)) return false;
      seconds = static_cast<int64_t>(value);
    } else if (reader.field() == kSecondField) {
      if (!reader.ReadVarintValue(value)) return false;
      nanos = AsInt32(value);
    } else if (!SkipUnknown(reader)) {
      return false;
    }
  }
  return reader.ok();
}

bool ReadDuration(WireReader& reader, AlsDurationView& duration) {
  std::string_view bytes;
  return reader.ReadBytes(bytes) && ReadSecondsAndNanos(bytes, duration.seconds, duration.nanos);
}

// google.protobuf.UInt32Value.
bool ReadUint32Value(std::string_view bytes, uint32_t& out) {
  WireReader reader(bytes);
  while (reader.Next()) {
    uint64_t value = 0;
    if (reader.field() == kFirstField) {
      if (!reader.ReadVarintValue(value)) return false;
      out = AsUint32(value);
    } else if (!SkipUnknown(reader)) {
      return false;
    }
  }
  return reader.ok();
}

bool ReadSocketAddress(std::string_view bytes, AlsAddressView& address) {
  WireReader reader(bytes);
  while (reader.Next()) {
    uint64_t value = 0;
    bool read = false;
    switch (reader.field()) {
      case kSocketAddress:
        read = ReadString(reader, address.address);
        break;
      case kSocketPortValue:  // oneof with named_port: the last one given counts
        read = reader.ReadVarintValue(value);
        address.port_value = AsUint32(value);
        address.has_named_port = false;
        address.named_port = {};
        break;
      case kSocketNamedPort:
        read = ReadString(reader, address.named_port);
        address.has_named_port = true;
        address.port_value = 0;
        break;
      case kSocketProtocol:
      case kSocketIpv4Compat:
        read = SkipVarint(reader);
        break;
      case kSocketResolverName:
      case kSocketNetworkNamespaceFilepath:
        read = SkipString(reader);
        break;
      default:
        read = SkipUnknown(reader);
    }
    if (!read) return false;
  }
  return reader.ok();
}

bool ReadPipe(std::string_view bytes, AlsAddressView& address) {
  WireReader reader(bytes);
  while (reader.Next()) {
    bool read = false;
    if (reader.field() == kPipePath) {
      read = ReadString(reader, address.address);
    } else if (reader.field() == kPipeMode) {
      read = SkipVarint(reader);
    } else {
      read = SkipUnknown(reader);
    }
    if (!read) return false;
  }
  return reader.ok();
}

bool ReadEnvoyInternalAddress(std::string_view bytes, AlsAddressView& address) {
  WireReader reader(bytes);
  while (reader.Next()) {
    bool read = false;
    if (reader.field() == kInternalServerListenerName) {
      read = ReadString(reader, address.address);
    } else if (reader.field() == kInternalEndpointId) {
      read = ReadString(reader, address.named_port);
    } else {
      read = SkipUnknown(reader);
    }
    if (!read) return false;
  }
  return reader.ok();
}

// envoy.config.core.v3.Address: one member of its oneof, given once.
bool ReadAddress(WireReader& parent, AlsAddressView& address) {
  std::string_view bytes;
  if (!parent.ReadBytes(bytes)) return false;
  WireReader reader(bytes);
  while (reader.Next()) {
    std::string_view member;
    const uint32_t field = reader.field();
    if (field == kAddressSocket || field == kAddressPipe || field == kAddressEnvoyInternal) {
      if (address.kind != AlsAddressView::Kind::kNone || !reader.ReadBytes(member)) return false;
    }
    bool read = false;
    switch (field) {
      case kAddressSocket:
        address.kind = AlsAddressView::Kind::kSocket;
        read = ReadSocketAddress(member, address);
        break;
      case kAddressPipe:
        address.kind = AlsAddressView::Kind::kPipe;
        read = ReadPipe(member, address);
        break;
      case kAddressEnvoyInternal:
        address.kind = AlsAddressView::Kind::kEnvoyInternal;
        read = ReadEnvoyInternalAddress(member, address);
        break;
      default:
        read = SkipUnknown(reader);
    }
    if (!read) return false;
  }
  return reader.ok();
}

// TLSProperties.CertificateProperties: the first subject_alt_name whose oneof holds a non-empty
// uri.
bool ReadCertificate(std::string_view bytes, std::string_view& first_uri_san) {
  WireReader reader(bytes);
  while (reader.Next()) {
    bool read = false;
    if (reader.field() == kCertificateSubjectAltName) {
      std::string_view san_bytes;
      if (!reader.ReadBytes(san_bytes)) return false;
      WireReader san(san_bytes);
      std::string_view uri;
      bool is_uri = false;
      while (san.Next()) {
        if (san.field() == kSanUri) {
          if (!ReadString(san, uri)) return false;
          is_uri = true;
        } else if (san.field() == kSanDns) {
          if (!SkipString(san)) return false;
          is_uri = false;
        } else if (!SkipUnknown(san)) {
          return false;
        }
      }
      if (!san.ok()) return false;
      if (is_uri && !uri.empty() && first_uri_san.empty()) first_uri_san = uri;
      read = true;
    } else if (reader.field() == kCertificateSubject || reader.field() == kCertificateIssuer) {
      read = SkipString(reader);
    } else {
      read = SkipUnknown(reader);
    }
    if (!read) return false;
  }
  return reader.ok();
}

bool ReadTlsProperties(std::string_view bytes, AlsCommonView& common) {
  WireReader reader(bytes);
  uint64_t seen = 0;
  while (reader.Next()) {
    bool read = false;
    std::string_view member;
    uint32_t ignored = 0;
    switch (reader.field()) {
      case kTlsVersion:
        read = SkipVarint(reader);
        break;
      case kTlsCipherSuite:
        read = FirstTime(seen, kTlsCipherSuite) && reader.ReadBytes(member) &&
               ReadUint32Value(member, ignored);
        break;
      case kTlsSniHostname:
        read = ReadString(reader, common.tls_sni_hostname);
        break;
      case kTlsLocalCertificate:
        read = FirstTime(seen, kTlsLocalCertificate) && reader.ReadBytes(member) &&
               ReadCertificate(member, common.local_uri_san);
        break;
      case kTlsPeerCertificate:
        read = FirstTime(seen, kTlsPeerCertificate) && reader.ReadBytes(member) &&
               ReadCertificate(member, common.peer_uri_san);
        break;
      case kTlsSessionId:
      case kTlsJa3Fingerprint:
        read = SkipString(reader);
        break;
      default:
        read = SkipUnknown(reader);
    }
    if (!read) return false;
  }
  return reader.ok();
}

bool ReadResponseFlags(std::string_view bytes, uint64_t& bits) {
  WireReader reader(bytes);
  bool unauthorized_seen = false;
  int32_t unauthorized_reason = 0;
  while (reader.Next()) {
    const uint32_t field = reader.field();
    uint64_t value = 0;
    if (field == kResponseFlagsUnauthorized) {
      std::string_view member;
      if (unauthorized_seen || !reader.ReadBytes(member)) return false;
      unauthorized_seen = true;
      WireReader unauthorized(member);
      while (unauthorized.Next()) {
        if (unauthorized.field() == kUnauthorizedReason) {
          if (!unauthorized.ReadVarintValue(value)) return false;
          unauthorized_reason = AsInt32(value);
        } else if (!SkipUnknown(unauthorized)) {
          return false;
        }
      }
      if (!unauthorized.ok()) return false;
    } else if (field >= 1 && field <= kResponseFlagsLastField) {
      if (!reader.ReadVarintValue(value)) return false;
      const uint64_t bit = uint64_t{1} << ResponseFlagOfField(field);
      bits = value != 0 ? (bits | bit) : (bits & ~bit);
    } else if (!SkipUnknown(reader)) {
      return false;
    }
  }
  const int unauthorized = ResponseFlagOfUnauthorizedReason(unauthorized_reason);
  if (unauthorized >= 0) bits |= uint64_t{1} << unauthorized;
  return reader.ok();
}

// A map<string, string> entry: key (1) and value (2), each possibly absent (empty).
bool ReadStringPair(std::string_view bytes, std::string_view& key, std::string_view& value) {
  WireReader reader(bytes);
  while (reader.Next()) {
    bool read = false;
    if (reader.field() == kFirstField) {
      read = ReadString(reader, key);
    } else if (reader.field() == kSecondField) {
      read = ReadString(reader, value);
    } else {
      read = SkipUnknown(reader);
    }
    if (!read) return false;
  }
  return reader.ok();
}

// A map<string, string> field's entry added to `headers`; a name given again replaces its value,
// as in protobuf's map.
bool ReadHeader(WireReader& parent, AlsHeaderViews& headers) {
  std::string_view bytes;
  std::string_view name;
  std::string_view value;
  if (!parent.ReadBytes(bytes) || !ReadStringPair(bytes, name, value)) return false;
  for (auto& header : headers) {
    if (header.first == name) {
      header.second = value;
      return true;
    }
  }
  headers.emplace_back(name, value);
  return true;
}

bool SkipStringMapEntry(WireReader& parent) {
  std::string_view bytes;
  std::string_view key;
  std::string_view value;
  return parent.ReadBytes(bytes) && ReadStringPair(bytes, key, value);
}

// A filter_state_objects entry: key (1) and a google.protobuf.Any (2) of type_url (1) and value
// (2, bytes). The peers' entries are kept; a key given again replaces its object.
bool ReadFilterStateObject(WireReader& parent, AlsCommonView& common) {
  std::string_view bytes;
  if (!parent.ReadBytes(bytes)) return false;
  WireReader reader(bytes);
  std::string_view key;
  AlsAnyView any;
  any.present = true;
  bool any_seen = false;
  while (reader.Next()) {
    bool read = false;
    if (reader.field() == kFirstField) {
      read = ReadString(reader, key);
    } else if (reader.field() == kSecondField) {
      std::string_view any_bytes;
      if (any_seen || !reader.ReadBytes(any_bytes)) return false;
      any_seen = true;
      WireReader any_reader(any_bytes);
      while (any_reader.Next()) {
        bool any_read = false;
        if (any_reader.field() == kFirstField) {
          any_read = ReadString(any_reader, any.type_url);
        } else if (any_reader.field() == kSecondField) {
          any_read = any_reader.ReadBytes(any.value);
        } else {
          any_read = SkipUnknown(any_reader);
        }
        if (!any_read) return false;
      }
      read = any_reader.ok();
    } else {
      read = SkipUnknown(reader);
    }
    if (!read) return false;
  }
  if (!reader.ok()) return false;
  if (key == "downstream_peer") {
    common.downstream_peer = any;
  } else if (key == "upstream_peer") {
    common.upstream_peer = any;
  }
  return true;
}

bool ReadCommon(std::string_view bytes, AlsCommonView& common) {
  WireReader reader(bytes);
  uint64_t seen = 0;
  while (reader.Next()) {
    const uint32_t field = reader.field();
    uint64_t value = 0;
    std::string_view member;
    AlsAddressView ignored_address;
    AlsDurationView ignored_duration;
    bool read = false;
    // Message fields: each at most once.
    switch (field) {
      case kCommonDownstreamRemoteAddress:
      case kCommonDownstreamLocalAddress:
      case kCommonTlsProperties:
      case kCommonStartTime:
      case kCommonTimeToLastRxByte:
      case kCommonTimeToFirstUpstreamTxByte:
      case kCommonTimeToLastUpstreamTxByte:
      case kCommonTimeToFirstUpstreamRxByte:
      case kCommonTimeToLastUpstreamRxByte:
      case kCommonTimeToFirstDownstreamTxByte:
      case kCommonTimeToLastDownstreamTxByte:
      case kCommonUpstreamRemoteAddress:
      case kCommonUpstreamLocalAddress:
      case kCommonResponseFlags:
      case kCommonDownstreamDirectRemoteAddress:
      case kCommonDuration:
        if (!FirstTime(seen, field)) return false;
        break;
      case kCommonMetadata:
        return false;
      default:
        break;
    }
    switch (field) {
      case kCommonSampleRate:
        read = reader.ReadFixed64(value);
        break;
      case kCommonDownstreamRemoteAddress:
        read = ReadAddress(reader, common.downstream_remote_address);
        break;
      case kCommonDownstreamLocalAddress:
        read = ReadAddress(reader, common.downstream_local_address);
        break;
      case kCommonTlsProperties:
        common.has_tls_properties = true;
        read = reader.ReadBytes(member) && ReadTlsProperties(member, common);
        break;
      case kCommonStartTime:
        common.has_start_time = true;
        read = reader.ReadBytes(member) &&
               ReadSecondsAndNanos(member, common.start_seconds, common.start_nanos);
        break;
      case kCommonTimeToLastRxByte:
      case kCommonTimeToFirstDownstreamTxByte:
        read = ReadDuration(reader, ignored_duration);
        break;
      case kCommonTimeToFirstUpstreamTxByte:
        read = ReadDuration(reader, common.time_to_first_upstream_tx_byte);
        break;
      case kCommonTimeToLastUpstreamTxByte:
        read = ReadDuration(reader, common.time_to_last_upstream_tx_byte);
        break;
      case kCommonTimeToFirstUpstreamRxByte:
        read = ReadDuration(reader, common.time_to_first_upstream_rx_byte);
        break;
      case kCommonTimeToLastUpstreamRxByte:
        read = ReadDuration(reader, common.time_to_last_upstream_rx_byte);
        break;
      case kCommonTimeToLastDownstreamTxByte:
        read = ReadDuration(reader, common.time_to_last_downstream_tx_byte);
        break;
      case kCommonDuration:
        read = ReadDuration(reader, common.duration);
        break;
      case kCommonUpstreamRemoteAddress:
        read = ReadAddress(reader, common.upstream_remote_address);
        break;
      case kCommonUpstreamLocalAddress:
        read = ReadAddress(reader, common.upstream_local_address);
        break;
      case kCommonDownstreamDirectRemoteAddress:
        read = ReadAddress(reader, ignored_address);
        break;
      case kCommonUpstreamCluster:
        read = ReadString(reader, common.upstream_cluster);
        break;
      case kCommonRouteName:
        read = ReadString(reader, common.route_name);
        break;
      case kCommonResponseFlags:
        read = reader.ReadBytes(member) && ReadResponseFlags(member, common.response_flag_bits);
        break;
      case kCommonUpstreamTransportFailureReason:
      case kCommonConnectionTerminationDetails:
      case kCommonStreamId:
      case kCommonDownstreamTransportFailureReason:
        read = SkipString(reader);
        break;
      case kCommonFilterStateObjects:
        read = ReadFilterStateObject(reader, common);
        break;
      case kCommonCustomTags:
        read = SkipStringMapEntry(reader);
        break;
      case kCommonIntermediateLogEntry:
        read = reader.ReadVarintValue(value);
        common.intermediate_log_entry = value != 0;
        break;
      case kCommonDownstreamWireBytesSent:
        read = reader.ReadVarintValue(common.downstream_wire_bytes_sent);
        break;
      case kCommonDownstreamWireBytesReceived:
        read = reader.ReadVarintValue(common.downstream_wire_bytes_received);
        break;
      case kCommonAccessLogType:
        read = reader.ReadVarintValue(value);
        common.access_log_type = AsInt32(value);
        break;
      case kCommonUpstreamRequestAttemptCount:
      case kCommonUpstreamWireBytesSent:
      case kCommonUpstreamWireBytesReceived:
        read = SkipVarint(reader);
        break;
      default:
        read = SkipUnknown(reader);
    }
    if (!read) return false;
  }
  return reader.ok();
}

bool ReadRequest(std::string_view bytes, AlsHttpEntryView& view) {
  WireReader reader(bytes);
  bool port_seen = false;
  while (reader.Next()) {
    uint64_t value = 0;
    std::string_view member;
    uint32_t ignored = 0;
    bool read = false;
    switch (reader.field()) {
      case kRequestMethod:
        read = reader.ReadVarintValue(value);
        view.request_method = AsInt32(value);
        break;
      case kRequestScheme:
        read = ReadString(reader, view.scheme);
        break;
      case kRequestAuthority:
        read = ReadString(reader, view.authority);
        break;
      case kRequestPort:
        read = !port_seen && reader.ReadBytes(member) && ReadUint32Value(member, ignored);
        port_seen = true;
        break;
      case kRequestPath:
        read = ReadString(reader, view.path);
        break;
      case kRequestUserAgent:
        read = ReadString(reader, view.user_agent);
        break;
      case kRequestReferer:
        read = SkipString(reader);
        break;
      case kRequestForwardedFor:
        read = ReadString(reader, view.forwarded_for);
        break;
      case kRequestRequestId:
        read = ReadString(reader, view.request_id);
        break;
      case kRequestOriginalPath:
        read = ReadString(reader, view.original_path);
        break;
      case kRequestHeadersBytes:
        read = reader.ReadVarintValue(view.request_headers_bytes);
        break;
      case kRequestBodyBytes:
        read = reader.ReadVarintValue(view.request_body_bytes);
        break;
      case kRequestHeaders:
        read = ReadHeader(reader, view.request_headers);
        break;
      case kRequestUpstreamHeaderBytesSent:
      case kRequestDownstreamHeaderBytesReceived:
        read = SkipVarint(reader);
        break;
      default:
        read = SkipUnknown(reader);
    }
    if (!read) return false;
  }
  return reader.ok();
}

bool ReadResponse(std::string_view bytes, AlsHttpEntryView& view) {
  WireReader reader(bytes);
  while (reader.Next()) {
    std::string_view member;
    bool read = false;
    switch (reader.field()) {
      case kResponseCode:
        read = !view.has_response_code && reader.ReadBytes(member) &&
               ReadUint32Value(member, view.response_code);
        view.has_response_code = true;
        break;
      case kResponseHeadersBytes:
        read = reader.ReadVarintValue(view.response_headers_bytes);
        break;
      case kResponseBodyBytes:
        read = reader.ReadVarintValue(view.response_body_bytes);
        break;
      case kResponseHeaders:
        read = ReadHeader(reader, view.response_headers);
        break;
      case kResponseTrailers:
        read = ReadHeader(reader, view.response_trailers);
        break;
      case kResponseCodeDetails:
        read = ReadString(reader, view.response_code_details);
        break;
      case kResponseUpstreamHeaderBytesReceived:
      case kResponseDownstreamHeaderBytesSent:
        read = SkipVarint(reader);
        break;
      default:
        read = SkipUnknown(reader);
    }
    if (!read) return false;
  }
  return reader.ok();
}

}  // namespace

bool ReadHttpEntryWire(std::string_view bytes, AlsHttpEntryView& view) {
  view.Clear();
  WireReader reader(bytes);
  uint64_t seen = 0;
  while (reader.Next()) {
    const uint32_t field = reader.field();
    std::string_view member;
    uint64_t value = 0;
    bool read = false;
    switch (field) {
      case kEntryCommon:
        read =
            FirstTime(seen, field) && reader.ReadBytes(member) && ReadCommon(member, view.common);
        break;
      case kEntryProtocolVersion:
        read = reader.ReadVarintValue(value);
        view.protocol_version = AsInt32(value);
        break;
      case kEntryRequest:
        read = FirstTime(seen, field) && reader.ReadBytes(member) && ReadRequest(member, view);
        break;
      case kEntryResponse:
        read = FirstTime(seen, field) && reader.ReadBytes(member) && ReadResponse(member, view);
        break;
      default:
        read = SkipUnknown(reader);
    }
    if (!read) return false;
  }
  return reader.ok();
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
        if (!SkipUnknown(reader)) return false;
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
      if (!SkipUnknown(entries)) return false;
      continue;
    }
    std::string_view entry_bytes;
    if (!entries.ReadBytes(entry_bytes)) return false;
    meshtel::v1::RequestRecord& record = used < records.size() ? records[used] : *records.Add();
    if (used < records.size()) ResetRecordForConversion(record);
    ++used;
    bool converted = false;
    if (ReadHttpEntryWire(entry_bytes, view_)) {
      ++paths_.wire_entries;
      converted = ConvertHttpEntryView(view_, node, record);
    } else {
      auto& entry = *google::protobuf::Arena::CreateMessage<HTTPAccessLogEntry>(&arena);
      if (!ParseNested(entry_bytes, kEntryDepth, entry)) return false;
      ++paths_.protobuf_entries;
      converted = ConvertHttpEntry(entry, node, record);
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
  if (!message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Outcome::kInvalid;
  }
  if (!node_) {
    if (!message.has_identifier()) return Outcome::kNoIdentifier;
    node_ = AlsNodeIdentity::FromIdentifier(message.identifier());
    identifier_bytes_ = message.identifier().SerializeAsString();
  }
  conversion = ConvertAlsMessage(message, *node_, records);
  return Outcome::kOk;
}

}  // namespace meshtel::collector
