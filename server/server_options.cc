#include "server/server_options.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace evlog::server {

absl::Status ParseListenAddress(const std::string& listen, std::string* host, int* port) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen=\"", listen, "\" is not HOST:PORT (e.g. 127.0.0.1:7070, or port 0 for any)"));
  }
  *host = listen.substr(0, colon);
  if (!absl::SimpleAtoi(listen.substr(colon + 1), port) || *port < 0 || *port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen=\"", listen, "\": the port must be a number in 0..65535"));
  }
  return absl::OkStatus();
}

}  // namespace evlog::server
