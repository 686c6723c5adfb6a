#pragma once
// Record fields: the RequestRecord fields that policy expressions name (metric tag override
// values, access-log filter attributes), by their Istio attribute names ("request.method",
// "source.workload", ...), and their text.
//
// Threading: constant data and pure functions.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "meshtel/v1/record.pb.h"

namespace meshtel::collector {

// Record fields a value expression may name.
enum class RecordField : uint8_t {
  kRequestMethod,                // request.method
  kRequestPath,                  // request.path (with the query string)
  kRequestUrlPath,               // request.url_path (without it)
  kRequestHost,                  // request.host (Host / :authority)
  kRequestScheme,                // request.scheme
  kRequestProtocol,              // request.protocol (HTTP/1.1, HTTP/2)
  kRequestUserAgent,             // request.useragent
  kResponseCode,                 // response.code
  kResponseGrpcStatus,           // response.grpc_status
  kResponseFlags,                // response.flags (Envoy short codes, "-" when none)
  kResponseCodeDetails,          // response.code_details
  kUpstreamHost,                 // upstream.host (ip:port)
  kUpstreamCluster,              // upstream.cluster
  kRouteName,                    // route.name
  kSourceWorkload,               // source.workload
  kSourceNamespace,              // source.namespace
  kSourceApp,                    // source.app
  kSourceVersion,                // source.version
  kSourcePrincipal,              // source.principal
  kSourceCluster,                // source.cluster
  kDestinationWorkload,          // destination.workload
  kDestinationNamespace,         // destination.namespace
  kDestinationApp,               // destination.app
  kDestinationVersion,           // destination.version
  kDestinationPrincipal,         // destination.principal
  kDestinationCluster,           // destination.cluster
  kDestinationServiceHost,       // destination.service.host
  kDestinationServiceName,       // destination.service.name
  kDestinationServiceNamespace,  // destination.service.namespace
};

// The text of `field` in `record` (a view into it), for the fields the record holds as text;
// nullopt for response.code, response.grpc_status and response.flags, which the caller formats.
std::optional<std::string_view> RecordFieldText(RecordField field,
                                                const meshtel::v1::RequestRecord& record);

struct RecordFieldName {
  std::string_view expression;
  RecordField field;
};
// Every field by its attribute name.
extern const std::array<RecordFieldName, 29> kRecordFields;

}  // namespace meshtel::collector
