#include "collector/metrics/istio_labels.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

// The 25 labels of Istio's HTTP/gRPC request metrics, in emission order (wire-facts §8.2).
const std::vector<std::string> kIstioTable = {"reporter",
                                              "source_workload",
                                              "source_canonical_service",
                                              "source_canonical_revision",
                                              "source_workload_namespace",
                                              "source_principal",
                                              "source_app",
                                              "source_version",
                                              "source_cluster",
                                              "destination_workload",
                                              "destination_workload_namespace",
                                              "destination_principal",
                                              "destination_app",
                                              "destination_version",
                                              "destination_service",
                                              "destination_canonical_service",
                                              "destination_canonical_revision",
                                              "destination_service_name",
                                              "destination_service_namespace",
                                              "destination_cluster",
                                              "request_protocol",
                                              "response_code",
                                              "grpc_response_status",
                                              "response_flags",
                                              "connection_security_policy"};

std::string ValueOf(const std::array<std::string_view, kIstioRequestLabelCount>& values,
                    const std::string& name) {
  for (size_t i = 0; i < kIstioRequestLabelCount; ++i) {
    if (kIstioRequestLabelNames[i] == name) return std::string(values[i]);
  }
  ADD_FAILURE() << "no label " << name;
  return "";
}

TEST(IstioLabelsTest, NamesMatchIstioTableInOrder) {
  ASSERT_EQ(kIstioTable.size(), kIstioRequestLabelCount);
  for (size_t i = 0; i < kIstioTable.size(); ++i) {
    EXPECT_EQ(kIstioRequestLabelNames[i], kIstioTable[i]) << i;
  }
}

TEST(IstioLabelsTest, EmptyRecordGetsUnknownAndLatest) {
  meshtel::v1::RequestRecord record;
  record.set_reporter(meshtel::v1::REPORTER_DESTINATION);
  IstioLabelScratch scratch;
  const auto values = IstioRequestLabelValues(record, scratch);
  EXPECT_EQ(ValueOf(values, "reporter"), "destination");
  for (const char* name :
       {"source_workload", "source_canonical_service", "source_workload_namespace",
        "source_principal", "source_app", "source_version", "source_cluster",
        "destination_workload", "destination_workload_namespace", "destination_principal",
        "destination_app", "destination_version", "destination_service",
        "destination_canonical_service", "destination_service_name",
        "destination_service_namespace", "destination_cluster"}) {
    EXPECT_EQ(ValueOf(values, name), "unknown") << name;
  }
  EXPECT_EQ(ValueOf(values, "source_canonical_revision"), "latest");
  EXPECT_EQ(ValueOf(values, "destination_canonical_revision"), "latest");
  EXPECT_EQ(ValueOf(values, "request_protocol"), "http");
  EXPECT_EQ(ValueOf(values, "response_code"), "0");
  EXPECT_EQ(ValueOf(values, "grpc_response_status"), "");
  EXPECT_EQ(ValueOf(values, "response_flags"), "-");
  EXPECT_EQ(ValueOf(values, "connection_security_policy"), "none");
}

TEST(IstioLabelsTest, FullRecordOnTheClientSide) {
  meshtel::v1::RequestRecord record;
  record.set_reporter(meshtel::v1::REPORTER_SOURCE);
  auto* source = record.mutable_source();
  source->set_workload("productpage-v1");
  source->set_namespace_("bookinfo");
  source->set_app("productpage");
  source->set_version("v1");
  source->set_cluster("east");
  source->set_principal("spiffe://cluster.local/ns/bookinfo/sa/productpage");
  auto* destination = record.mutable_destination();
  destination->set_workload("reviews-v2");
  destination->set_namespace_("bookinfo");
  destination->set_app("reviews");
  destination->set_version("v2");
  destination->set_canonical_service("reviews-canonical");
  destination->set_canonical_revision("rev7");
  auto* service = record.mutable_destination_service();
  service->set_host("reviews.bookinfo.svc.cluster.local");
  service->set_name("reviews");
  service->set_namespace_("bookinfo");
  record.set_request_protocol(meshtel::v1::REQUEST_PROTOCOL_GRPC);
  record.set_response_code(200);
  record.set_grpc_status(14);
  record.set_response_flags((1u << meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_FAILURE) |
                            (1u << meshtel::v1::RESPONSE_FLAG_UPSTREAM_RETRY_LIMIT_EXCEEDED));
  IstioLabelScratch scratch;
  const auto values = IstioRequestLabelValues(record, scratch);
  EXPECT_EQ(ValueOf(values, "reporter"), "source");
  EXPECT_EQ(ValueOf(values, "source_workload"), "productpage-v1");
  EXPECT_EQ(ValueOf(values, "source_canonical_service"), "productpage");  // from app
  EXPECT_EQ(ValueOf(values, "source_canonical_revision"), "v1");          // from version
  EXPECT_EQ(ValueOf(values, "source_workload_namespace"), "bookinfo");
  EXPECT_EQ(ValueOf(values, "source_principal"),
            "spiffe://cluster.local/ns/bookinfo/sa/productpage");
  EXPECT_EQ(ValueOf(values, "source_cluster"), "east");
  EXPECT_EQ(ValueOf(values, "destination_workload"), "reviews-v2");
  EXPECT_EQ(ValueOf(values, "destination_canonical_service"), "reviews-canonical");
  EXPECT_EQ(ValueOf(values, "destination_canonical_revision"), "rev7");
  EXPECT_EQ(ValueOf(values, "destination_service"), "reviews.bookinfo.svc.cluster.local");
  EXPECT_EQ(ValueOf(values, "destination_service_name"), "reviews");
  EXPECT_EQ(ValueOf(values, "destination_service_namespace"), "bookinfo");
  EXPECT_EQ(ValueOf(values, "request_protocol"), "grpc");
  EXPECT_EQ(ValueOf(values, "response_code"), "200");
  EXPECT_EQ(ValueOf(values, "grpc_response_status"), "14");
  EXPECT_EQ(ValueOf(values, "response_flags"), "UF,URX");
  EXPECT_EQ(ValueOf(values, "connection_security_policy"), "unknown");
}

TEST(IstioLabelsTest, MutualTlsOnTheServerSide) {
  meshtel::v1::RequestRecord record;
  record.set_reporter(meshtel::v1::REPORTER_DESTINATION);
  record.set_mutual_tls(true);
  IstioLabelScratch scratch;
  EXPECT_EQ(ValueOf(IstioRequestLabelValues(record, scratch), "connection_security_policy"),
            "mutual_tls");
}

TEST(IstioLabelsTest, DestinationServiceFallsBackToAuthority) {
  meshtel::v1::RequestRecord record;
  record.set_authority("example.com:8080");
  IstioLabelScratch scratch;
  const auto values = IstioRequestLabelValues(record, scratch);
  EXPECT_EQ(ValueOf(values, "destination_service"), "example.com:8080");
  EXPECT_EQ(ValueOf(values, "destination_service_name"), "example.com:8080");
}

TEST(IstioLabelsTest, EveryResponseFlagHasEnvoysCode) {
  const std::vector<std::pair<meshtel::v1::ResponseFlag, std::string>> codes = {
      {meshtel::v1::RESPONSE_FLAG_FAILED_LOCAL_HEALTHCHECK, "LH"},
      {meshtel::v1::RESPONSE_FLAG_NO_HEALTHY_UPSTREAM, "UH"},
      {meshtel::v1::RESPONSE_FLAG_UPSTREAM_REQUEST_TIMEOUT, "UT"},
      {meshtel::v1::RESPONSE_FLAG_LOCAL_RESET, "LR"},
      {meshtel::v1::RESPONSE_FLAG_UPSTREAM_REMOTE_RESET, "UR"},
      {meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_FAILURE, "UF"},
      {meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_TERMINATION, "UC"},
      {meshtel::v1::RESPONSE_FLAG_UPSTREAM_OVERFLOW, "UO"},
      {meshtel::v1::RESPONSE_FLAG_NO_ROUTE_FOUND, "NR"},
      {meshtel::v1::RESPONSE_FLAG_DELAY_INJECTED, "DI"},
      {meshtel::v1::RESPONSE_FLAG_FAULT_INJECTED, "FI"},
      {meshtel::v1::RESPONSE_FLAG_RATE_LIMITED, "RL"},
      {meshtel::v1::RESPONSE_FLAG_UNAUTHORIZED_EXTERNAL_SERVICE, "UAEX"},
      {meshtel::v1::RESPONSE_FLAG_RATE_LIMIT_SERVICE_ERROR, "RLSE"},
      {meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_CONNECTION_TERMINATION, "DC"},
      {meshtel::v1::RESPONSE_FLAG_UPSTREAM_RETRY_LIMIT_EXCEEDED, "URX"},
      {meshtel::v1::RESPONSE_FLAG_STREAM_IDLE_TIMEOUT, "SI"},
      {meshtel::v1::RESPONSE_FLAG_INVALID_ENVOY_REQUEST_HEADERS, "IH"},
      {meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_PROTOCOL_ERROR, "DPE"},
      {meshtel::v1::RESPONSE_FLAG_UPSTREAM_MAX_STREAM_DURATION_REACHED, "UMSDR"},
      {meshtel::v1::RESPONSE_FLAG_RESPONSE_FROM_CACHE_FILTER, "RFCF"},
      {meshtel::v1::RESPONSE_FLAG_NO_FILTER_CONFIG_FOUND, "NFCF"},
      {meshtel::v1::RESPONSE_FLAG_DURATION_TIMEOUT, "DT"},
      {meshtel::v1::RESPONSE_FLAG_UPSTREAM_PROTOCOL_ERROR, "UPE"},
      {meshtel::v1::RESPONSE_FLAG_NO_CLUSTER_FOUND, "NC"},
      {meshtel::v1::RESPONSE_FLAG_OVERLOAD_MANAGER, "OM"},
      {meshtel::v1::RESPONSE_FLAG_DNS_RESOLUTION_FAILURE, "DF"},
      {meshtel::v1::RESPONSE_FLAG_DROP_OVERLOAD, "DO"},
      {meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_REMOTE_RESET, "DR"}};
  ASSERT_EQ(static_cast<int>(codes.size()), meshtel::v1::ResponseFlag_ARRAYSIZE);
  for (const auto& [flag, code] : codes) {
    std::string text;
    AppendResponseFlags(uint64_t{1} << flag, text);
    EXPECT_EQ(text, code) << meshtel::v1::ResponseFlag_Name(flag);
  }
}

}  // namespace
}  // namespace meshtel::collector
