#pragma once
// RecordSink: where the proxy's IO threads hand finished request records.
//
// Submit() never blocks on the network and never fails the request: a sink that cannot keep a
// record drops it and counts the drop. It copies what it keeps, so the caller may reuse the
// record. Called from any IO thread.

#include "meshtel/v1/record.pb.h"

namespace meshtel::proxy {

class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void Submit(const meshtel::v1::RequestRecord& record) = 0;
};

}  // namespace meshtel::proxy
