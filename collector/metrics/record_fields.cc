#include "collector/metrics/record_fields.h"

namespace meshtel::collector {

const std::array<RecordFieldName, 29> kRecordFields = {{
    {"request.method", RecordField::kRequestMethod},
    {"request.path", RecordField::kRequestPath},
    {"request.url_path", RecordField::kRequestUrlPath},
    {"request.host", RecordField::kRequestHost},
    {"request.scheme", RecordField::kRequestScheme},
    {"request.protocol", RecordField::kRequestProtocol},
    {"request.useragent", RecordField::kRequestUserAgent},
    {"response.code", RecordField::kResponseCode},
    {"response.grpc_status", RecordField::kResponseGrpcStatus},
    {"response.flags", RecordField::kResponseFlags},
    {"response.code_details", RecordField::kResponseCodeDetails},
    {"upstream.host", RecordField::kUpstreamHost},
    {"upstream.cluster", RecordField::kUpstreamCluster},
    {"route.name", RecordField::kRouteName},
    {"source.workload", RecordField::kSourceWorkload},
    {"source.namespace", RecordField::kSourceNamespace},
    {"source.app", RecordField::kSourceApp},
    {"source.version", RecordField::kSourceVersion},
    {"source.principal", RecordField::kSourcePrincipal},
    {"source.cluster", RecordField::kSourceCluster},
    {"destination.workload", RecordField::kDestinationWorkload},
    {"destination.namespace", RecordField::kDestinationNamespace},
    {"destination.app", RecordField::kDestinationApp},
    {"destination.version", RecordField::kDestinationVersion},
    {"destination.principal", RecordField::kDestinationPrincipal},
    {"destination.cluster", RecordField::kDestinationCluster},
    {"destination.service.host", RecordField::kDestinationServiceHost},
    {"destination.service.name", RecordField::kDestinationServiceName},
    {"destination.service.namespace", RecordField::kDestinationServiceNamespace},
}};

std::optional<std::string_view> RecordFieldText(RecordField field,
                                                const meshtel::v1::RequestRecord& record) {
  switch (field) {
    case RecordField::kRequestMethod:
      return record.method();
    case RecordField::kRequestPath:
      return record.path();
    case RecordField::kRequestUrlPath: {
      const std::string_view path = record.path();
      return path.substr(0, path.find('?'));
    }
    case RecordField::kRequestHost:
      return record.authority();
    case RecordField::kRequestScheme:
      return record.scheme();
    case RecordField::kRequestProtocol:
      return record.protocol();
    case RecordField::kRequestUserAgent:
      return record.user_agent();
    case RecordField::kResponseCode:
    case RecordField::kResponseGrpcStatus:
    case RecordField::kResponseFlags:
      return std::nullopt;
    case RecordField::kResponseCodeDetails:
      return record.response_code_details();
    case RecordField::kUpstreamHost:
      return record.upstream_host();
    case RecordField::kUpstreamCluster:
      return record.upstream_cluster();
    case RecordField::kRouteName:
      return record.route_name();
    case RecordField::kSourceWorkload:
      return record.source().workload();
    case RecordField::kSourceNamespace:
      return record.source().namespace_();
    case RecordField::kSourceApp:
      return record.source().app();
    case RecordField::kSourceVersion:
      return record.source().version();
    case RecordField::kSourcePrincipal:
      return record.source().principal();
    case RecordField::kSourceCluster:
      return record.source().cluster();
    case RecordField::kDestinationWorkload:
      return record.destination().workload();
    case RecordField::kDestinationNamespace:
      return record.destination().namespace_();
    case RecordField::kDestinationApp:
      return record.destination().app();
    case RecordField::kDestinationVersion:
      return record.destination().version();
    case RecordField::kDestinationPrincipal:
      return record.destination().principal();
    case RecordField::kDestinationCluster:
      return record.destination().cluster();
    case RecordField::kDestinationServiceHost:
      return record.destination_service().host();
    case RecordField::kDestinationServiceName:
      return record.destination_service().name();
    case RecordField::kDestinationServiceNamespace:
      return record.destination_service().namespace_();
  }
  return std::nullopt;
}

}  // namespace meshtel::collector
