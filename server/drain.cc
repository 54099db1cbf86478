#include "server/drain.h"

namespace evlog::server {

bool DrainController::draining() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

bool DrainController::Register(Listener* listener) {
  absl::MutexLock lock(&mu_);
  if (draining_) return false;
  listeners_.insert(listener);
  return true;
}

void DrainController::Unregister(Listener* listener) {
  absl::MutexLock lock(&mu_);
  listeners_.erase(listener);
}

void DrainController::StartDraining() {
  absl::MutexLock lock(&mu_);
  if (draining_) return;
  draining_ = true;
  for (Listener* listener : listeners_) listener->OnDrain();
}

void DrainController::CallStarted() {
  absl::MutexLock lock(&mu_);
  ++calls_;
}

void DrainController::CallEnded() {
  absl::MutexLock lock(&mu_);
  --calls_;
}

bool DrainController::AwaitNoCalls(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_ == 0; };
  return mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
}

}  // namespace evlog::server
