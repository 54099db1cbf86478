// jetstream_pub.mjs: the JetStream side of bench/compare.
//
//   node jetstream_pub.mjs --port PORT --events N --size BYTES [--producers C]
//                          [--inflight W] [--seconds S] [--stream NAME]
//
// (Re)creates an R1 file-storage JetStream stream on 127.0.0.1:PORT and publishes N messages of
// BYTES random bytes from C producers, each its own NATS connection, each keeping at most W
// publishes awaiting their PubAck (a sliding window, like nats bench --pub C). Publishes are
// plain PUBs with a reply inbox, acks counted by one inbox subscription per connection (as the
// Go client's PublishAsync): the cheapest path for a Node client. A connection's acks arrive
// in publish order (one stream, one server), so each ack is matched to its publish time for
// per-message ack latency. Stops sending after S seconds if given.
//
// Prints one JSON object: {"events","bytes","seconds","events_per_s","mb_per_s","p50_ms",
// "p99_ms","p999_ms","errors","stored"}; bytes = events x BYTES (payload only, MB = 10^6 B);
// stored = messages in the stream afterwards (must equal events).
// Note: nats-server 2.9 acknowledges once the message is written to its file store, without
// an fsync (it syncs every 2 minutes by default), unlike evlog and Redis appendfsync=always.
import { connect, createInbox, StorageType } from "nats";
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";

const { values: a } = parseArgs({
  options: {
    port: { type: "string", default: "4222" },
    events: { type: "string", default: "200000" },
    size: { type: "string", default: "100" },
    producers: { type: "string", default: "1" },
    inflight: { type: "string", default: "256" },
    seconds: { type: "string", default: "0" },
    stream: { type: "string", default: "BENCH" },
  },
});
const total = Number(a.events), size = Number(a.size), producers = Number(a.producers);
const inflight = Number(a.inflight), maxSeconds = Number(a.seconds);
const server = `127.0.0.1:${a.port}`;

const admin = await connect({ servers: server });
const jsm = await admin.jetstreamManager();
await jsm.streams.delete(a.stream).catch(() => {});
await jsm.streams.add({
  name: a.stream, subjects: [`${a.stream}.>`], storage: StorageType.File, num_replicas: 1,
});

const latencies = []; // ns, one per acked message
let errors = 0;
let firstError = null;
const payload = randomBytes(size);
const subject = `${a.stream}.events`;
const now = () => process.hrtime.bigint();
const t0 = now();
const deadline = maxSeconds > 0 ? t0 + BigInt(Math.round(maxSeconds * 1e9)) : null;

async function producer(share) {
  const nc = await connect({ servers: server });
  const inbox = createInbox();
  const sentAt = new Array(share);
  let sent = 0, acked = 0, wake = null;
  nc.subscribe(inbox, {
    callback: (err, m) => {
      // A PubAck is {"stream":"BENCH","seq":N}; anything else is an error reply.
      if (err || m.data[2] !== 0x73) {
        errors++;
        firstError ??= err ?? new Error(m.string());
      } else {
        latencies.push(Number(now() - sentAt[acked]));
      }
      acked++;
      if (wake && (sent - acked < inflight || acked === sent)) { const w = wake; wake = null; w(); }
    },
  });
  const room = () => new Promise((r) => { wake = r; });
  while (sent < share) {
    if (deadline !== null && (sent & 255) === 0 && now() > deadline) break;
    sentAt[sent] = now();
    nc.publish(subject, payload, { reply: inbox });
    sent++;
    if (sent - acked >= inflight) await room();
  }
  while (acked < sent) await room();
  await nc.drain();
  return sent;
}

const shares = Array.from({ length: producers },
  (_, i) => Math.floor(total / producers) + (i < total % producers ? 1 : 0));
const sentCounts = await Promise.all(shares.map(producer));
const seconds = Number(now() - t0) / 1e9;
const sent = sentCounts.reduce((x, y) => x + y, 0);
const info = await jsm.streams.info(a.stream);
await admin.drain();

latencies.sort((x, y) => x - y);
const pct = (q) => latencies.length === 0 ? null
  : Math.round(latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)] / 1e3) / 1e3;
const events = sent - errors;
console.log(JSON.stringify({
  events, bytes: events * size, seconds: Math.round(seconds * 1000) / 1000,
  events_per_s: Math.round(events / seconds), mb_per_s: Math.round(events * size / seconds / 1e3) / 1e3,
  p50_ms: pct(0.5), p99_ms: pct(0.99), p999_ms: pct(0.999), errors,
  stored: info.state.messages, error: firstError ? String(firstError) : undefined,
}));
if (errors > 0 || info.state.messages !== events) process.exit(1);
