// DrainController: the server's "shutting down" state, as seen by evlog calls, and the count
// of evlog calls in progress.
//
// A graceful shutdown calls StartDraining(): from then on new calls are refused with
// UNAVAILABLE, produce streams stop reading, answer what they read and end, read streams end
// at their next step. Calls check draining() or register a Listener to be told at once. The
// shutdown then waits in AwaitNoCalls() for the evlog calls to end, before gRPC's own
// Shutdown() cancels what remains (health Watch and reflection streams never end by
// themselves, so a plain grpc::Server::Shutdown(deadline) would always wait the full deadline).
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace evlog::server {

class DrainController {
 public:
  // Told once when draining starts. OnDrain must not block and must not call back into the
  // DrainController (it runs under the controller's lock).
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void OnDrain() = 0;
  };

  // True once StartDraining() was called.
  bool draining() const;

  // Registers `listener` (not owned; must stay alive until Unregister returns). Returns false,
  // without registering it, if draining has already started.
  bool Register(Listener* listener);

  // Unregisters `listener`; after this returns it is never called again. No-op if absent.
  void Unregister(Listener* listener);

  // Starts draining: calls OnDrain on every registered listener. Idempotent.
  void StartDraining();

  // Count an evlog call in progress; every CallStarted() is matched by one CallEnded().
  void CallStarted();
  void CallEnded();

  // Waits until no evlog call is in progress or `deadline` passes; true if none is.
  bool AwaitNoCalls(absl::Time deadline);

  // Counts one call for the lifetime of the scope (for synchronous handlers).
  class CallScope {
   public:
    explicit CallScope(DrainController* drain) : drain_(drain) { drain_->CallStarted(); }
    ~CallScope() { drain_->CallEnded(); }
    CallScope(const CallScope&) = delete;
    CallScope& operator=(const CallScope&) = delete;

   private:
    DrainController* const drain_;
  };

 private:
  mutable absl::Mutex mu_;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<Listener*> listeners_ ABSL_GUARDED_BY(mu_);
  int64_t calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace evlog::server
