// The event log: a page, or --follow the live stream (one line per event;
// --json: one JSON object per line), reconnecting with Last-Event-ID.
import type { Command } from "commander";
import type { Event } from "../client/index.js";
import { contextOf, count, id } from "./context.js";
import { cell, type Column } from "./output.js";

const COLUMNS: Column<Event>[] = [
  { header: "SEQ", value: (e) => e.seq }, { header: "AT", value: (e) => e.at }, { header: "OP", value: (e) => e.op },
  { header: "OWNER", value: (e) => e.owner }, { header: "GROUP", value: (e) => e.groupId }, { header: "DEVICE", value: (e) => e.deviceId },
  { header: "DOMAIN", value: (e) => e.domainId }, { header: "ERRNO", value: (e) => e.errno }, { header: "REASON", value: (e) => e.reason },
];

export function registerEvents(program: Command): void {
  program.command("events").description("the event log, oldest first; --follow: the live stream")
    .option("--after <seq>", "start after this seq", count)
    .option("--limit <n>", "events per page (1-1000)", id)
    .option("--group <id>", "only this group's events", id)
    .option("-f, --follow", "print events as they are committed, until interrupted")
    .action(async (o: { after?: number; limit?: number; group?: number; follow?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      if (!o.follow) {
        const page = await ctx.client.events.page({
          ...(o.after !== undefined ? { after: o.after } : {}), ...(o.limit ? { limit: o.limit } : {}), ...(o.group ? { groupId: o.group } : {}),
        }, { signal: ctx.signal });
        ctx.out.table(page, page.items, COLUMNS);
        return;
      }
      const stream = ctx.client.events.follow({
        ...(o.after !== undefined ? { after: o.after } : {}), ...(o.group ? { groupId: o.group } : {}), signal: ctx.signal,
        onReconnect: ({ delayMs }) => process.stderr.write(`iommu-arbiter: event stream interrupted; reconnecting in ${delayMs} ms\n`),
      });
      for await (const event of stream) {
        process.stdout.write(ctx.out.json ? `${JSON.stringify(event)}\n` : `${COLUMNS.map((c) => cell(c.value(event))).join("  ")}\n`);
      }
    });
}
