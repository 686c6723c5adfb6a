#include "proxy/identity/peer_metadata.h"

#include "gtest/gtest.h"

namespace meshtel::proxy {
namespace {

TEST(PeerMetadataTest, RoundTripsAWorkloadIdentity) {
  WorkloadConfig workload;
  workload.name = "reviews-v2";
  workload.namespace_name = "bookinfo";
  workload.app = "reviews";
  workload.version = "v2";
  workload.principal = "spiffe://cluster.local/ns/bookinfo/sa/reviews";
  const meshtel::v1::WorkloadIdentity identity = IdentityFromConfig(workload);
  const std::string header = EncodePeerMetadata(identity);
  EXPECT_EQ(
      header.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="),
      std::string::npos);
  meshtel::v1::WorkloadIdentity decoded;
  ASSERT_TRUE(DecodePeerMetadata(header, decoded));
  EXPECT_EQ(decoded.workload(), "reviews-v2");
  EXPECT_EQ(decoded.namespace_(), "bookinfo");
  EXPECT_EQ(decoded.app(), "reviews");
  EXPECT_EQ(decoded.version(), "v2");
  EXPECT_EQ(decoded.cluster(), "Kubernetes");
  EXPECT_EQ(decoded.principal(), "spiffe://cluster.local/ns/bookinfo/sa/reviews");
}

TEST(PeerMetadataTest, GarbageIsRejected) {
  meshtel::v1::WorkloadIdentity decoded;
  EXPECT_FALSE(DecodePeerMetadata("!!not base64!!", decoded));
  EXPECT_FALSE(DecodePeerMetadata("/////w==", decoded));  // valid base64, not a message
}

TEST(PeerMetadataTest, ServiceFromHost) {
  auto service = ServiceFromHost("reviews.bookinfo.svc.cluster.local");
  EXPECT_EQ(service.host(), "reviews.bookinfo.svc.cluster.local");
  EXPECT_EQ(service.name(), "reviews");
  EXPECT_EQ(service.namespace_(), "bookinfo");
  auto bare = ServiceFromHost("localhost");
  EXPECT_EQ(bare.name(), "localhost");
  EXPECT_EQ(bare.namespace_(), "");
}

}  // namespace
}  // namespace meshtel::proxy
