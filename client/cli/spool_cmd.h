// The spool commands of `evlog`: `produce --spool-dir=DIR` (through a SpooledProducer, see
// client/spooled_producer.h), `spool status DIR` and `spool drain DIR`, and the byte-size
// syntax of --spool-max-bytes.
//
// Contract (scripts and the incident tests rely on it):
//   evlog produce TOPIC ... --spool-dir=DIR
//     exit 0 once every stdin line is acknowledged by the server or durable in the spool;
//     stderr's last line then is
//       produced N events: A acknowledged                    (all delivered), or
//       produced N events: A acknowledged, S in the spool at DIR (drain with: evlog spool drain
//       DIR)
//     exit 1 on a real error (spool full with --spool-full=fail, events dead-lettered, spool in
//     use, I/O errors), with `evlog: STATUS: sentence` on stderr.
//   evlog spool status DIR [--json]     no server needed; works while a producer uses DIR
//   evlog spool drain DIR               exit 0 once DIR holds no pending event
//
// Thread safety: each function is called once per process, from main.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/cli/args.h"

namespace evlog::cli {

// `evlog produce` with --spool-dir.
int RunProduceSpooled(const Invocation& inv);
// `evlog spool status DIR [--json]`.
int RunSpoolStatus(const Invocation& inv);
// `evlog spool drain DIR`.
int RunSpoolDrain(const Invocation& inv);

}  // namespace evlog::cli
