// Topic name rules (DESIGN.md "Data model"): [A-Za-z0-9._-]{1,249}.
#include "absl/strings/ascii.h"
#include "storage/log_store.h"

namespace evlog::storage {

bool IsValidTopicName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxTopicNameLength) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

}  // namespace evlog::storage
