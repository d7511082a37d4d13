// Case 8, live followers: what the Server-Sent Events stream costs the
// writers, and whether every follower gets every event. Writer attach/detach
// latency alone, then the same writers while FOLLOWERS connections hold
// `GET /v1/events` as text/event-stream, on one server in the same run; then
// each follower's count is compared with the events the log holds for that
// phase, and the delivery lag (receipt minus the event's commit time `at`)
// is reported.
import http from "node:http";
import { JsonClient } from "../http.js";
import type { LoadResult } from "../load.js";
import type { Memory } from "../procs.js";
import { percentile } from "../stats.js";
import { withWriterPhases } from "./writer-phases.js";

export { WRITERS } from "./writer-phases.js";
export const FOLLOWERS = 16;

export interface FollowersOptions {
  readonly seconds: number;
  readonly warmupSeconds: number;
}

export interface FollowersRun {
  readonly alone: LoadResult;
  readonly followed: LoadResult;
  /** Events the log holds after the followers connected. */
  readonly committed: number;
  /** Fewest and most events one follower received. */
  readonly receivedMin: number;
  readonly receivedMax: number;
  /** Receipt time minus commit time over every follower's every event, ms. */
  readonly lagP50: number;
  readonly lagP99: number;
  readonly memory: Memory;
}

interface Follower {
  received: number;
  lastSeq: number;
  readonly lags: number[];
  close(): void;
}

/** One SSE connection from the current end of the log; counts events and their lag. */
function follow(url: string): Promise<Follower> {
  return new Promise((resolve, reject) => {
    const f: Follower = { received: 0, lastSeq: 0, lags: [], close: () => req.destroy() };
    const req = http.get(`${url}/v1/events`, { agent: false, headers: { accept: "text/event-stream" } }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`event stream answered ${res.statusCode}`));
        res.resume();
        return;
      }
      let buffered = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        const now = Date.now();
        buffered += chunk;
        let end: number;
        while ((end = buffered.indexOf("\n\n")) >= 0) {
          const message = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = message.split("\n").find((line) => line.startsWith("data:"));
          if (!data) continue;
          const event = JSON.parse(data.slice(5)) as { seq: number; at: string };
          f.received++;
          f.lastSeq = event.seq;
          f.lags.push(now - Date.parse(event.at));
        }
      });
      res.on("error", () => undefined);
      resolve(f);
    });
    req.on("error", (error) => reject(error));
  });
}

/** The seq of the newest event, paging the log from `after` to its end. */
async function lastSeq(client: JsonClient, after: number): Promise<{ seq: number; count: number }> {
  let seq = after;
  let count = 0;
  for (;;) {
    const page = (await client.get<{ items: { seq: number }[]; next: number | null }>(`/v1/events?after=${seq}&limit=1000`)).body;
    if (page.items.length === 0) return { seq, count };
    count += page.items.length;
    seq = page.items[page.items.length - 1]!.seq;
    if (page.next === null) return { seq, count };
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function followersRun(options: FollowersOptions): Promise<FollowersRun> {
  return withWriterPhases("followers", async ({ server, writers }) => {
    await writers("warmup", 0, options.warmupSeconds);
    const alone = await writers("alone", 1, options.seconds);
    const client = new JsonClient(server.url);
    const followers: Follower[] = [];
    try {
      const before = await lastSeq(client, 0);
      for (let i = 0; i < FOLLOWERS; i++) followers.push(await follow(server.url));
      // A stream without a resume point starts at the end of the log: give
      // the last one time to be registered before the phase's first write.
      await sleep(200);
      const followed = await writers("followed", 2, options.seconds);
      const after = await lastSeq(client, before.seq);
      // Delivery follows the commit; wait until every follower has the last event or 10 s passed.
      const deadline = Date.now() + 10_000;
      while (followers.some((f) => f.lastSeq < after.seq) && Date.now() < deadline) await sleep(50);
      const lags = followers.flatMap((f) => f.lags);
      return {
        alone, followed, committed: after.count,
        receivedMin: Math.min(...followers.map((f) => f.received)),
        receivedMax: Math.max(...followers.map((f) => f.received)),
        lagP50: percentile(lags, 50), lagP99: percentile(lags, 99),
        memory: server.memory(),
      };
    } finally {
      for (const f of followers) f.close();
      client.close();
    }
  });
}
