#include "collector/common/http_connection.h"

#include <utility>

#include "spdlog/spdlog.h"

namespace meshtel::common {

void ConnectionEnd::operator()(std::exception_ptr thrown) const {
  if (thrown == nullptr) return;
  try {
    std::rethrow_exception(thrown);
  } catch (const std::exception& error) {
    spdlog::error("{}: a connection ended by an exception: {}", server_, error.what());
  } catch (...) {
    spdlog::error("{}: a connection ended by an exception of unknown type", server_);
  }
}

}  // namespace meshtel::common
