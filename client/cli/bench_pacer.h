// The send schedule of one producer in a rate-limited `evlog bench` run (--rate).
//
// Why it exists: the first version slept before every event until that event was due. At the
// rates of the latency runs (bench/compare: ~27,000 events/s per producer, one every 37 us)
// that is a nanosleep and two context switches per event, and each sleep overslept by the
// kernel's timer slack, so events left in bursts anyway, with all producers in phase. On our
// 2-core VM (where a context switch is expensive) the load generator took the CPU from the
// server it measured: at --rate=200k, 16 producers, it reached only 147-174k events/s with a
// p50 of 1.5-2.4 s (queued in the producers' buffers), the server getting 0.3 CPU/s; with this
// schedule, same machine and load, 199k events/s, p50 15-24 ms, the server getting 0.5 CPU/s.
//
// The schedule: event i of a producer is due at first_due + i / rate (an open loop: the
// schedule does not slow down when the server does, so a stall is followed by the events that
// fell due meanwhile, and the average rate is the one asked for). The producer sleeps only
// when the next event is not yet due, and then until the later of its due time and one `tick`
// after its previous wake-up; on waking it sends every event that is due. So a producer wakes
// at most once per tick (1 ms in the bench) and sends the events that fell due in that tick
// together: at 27,000 events/s, 27 events every millisecond rather than one every 37 us.
// Producers' schedules are staggered (FirstDue) so that together they wake evenly across the
// tick instead of all at once.
//
// Latency in the bench is measured from the actual Send call, so pacing adds nothing to it;
// how late each Send was against its due time is recorded separately (the schedule lag), and
// shows when the load generator could not keep the rate (Send blocked on a full buffer, or no
// CPU to run on).
//
// Thread safety: a SendPacer belongs to one producer thread.
#pragma once

#include <cstdint>

namespace evlog::cli {

class SendPacer {
 public:
  // A schedule of `rate_per_s` events per second (> 0) whose first event is due at
  // `first_due_ns` (ns since the epoch), waking at most once every `tick_ns` (>= 0).
  SendPacer(int64_t first_due_ns, double rate_per_s, int64_t tick_ns);

  // When producer `index` of `producers` (0 <= index < producers) should send its first
  // event, for a run starting at `start_ns`: staggered by index / producers of the larger of
  // the period and the tick, so that the producers' wake-ups interleave.
  static int64_t FirstDue(int64_t start_ns, int32_t index, int32_t producers, double rate_per_s,
                          int64_t tick_ns);

  // When event `i` (0-based) is due, in ns since the epoch.
  int64_t Due(int64_t i) const;

  // How long to sleep before event `i` may be sent, given the time `now_ns`: 0 if it is due
  // (send it, and go on with the next), else until max(Due(i), last wake-up + tick) - now.
  // Call Woke after such a sleep.
  int64_t SleepBefore(int64_t i, int64_t now_ns) const;

  // Records that the producer woke up (from the sleep SleepBefore asked for) at `now_ns`.
  void Woke(int64_t now_ns) { last_wake_ns_ = now_ns; }

 private:
  const int64_t first_due_ns_;
  const double period_ns_;
  const int64_t tick_ns_;
  int64_t last_wake_ns_;
};

}  // namespace evlog::cli
