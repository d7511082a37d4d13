// Injected driver failures: the next `count` attach ops on a unit or device fail.
import { Option, type Command } from "commander";
import type { Fault } from "../client/index.js";
import { contextOf, id } from "./context.js";
import { UsageError } from "./output.js";

const COLUMNS = [
  { header: "ID", value: (f: Fault) => f.id }, { header: "UNIT", value: (f: Fault) => f.unitId },
  { header: "DEVICE", value: (f: Fault) => f.deviceId }, { header: "ERRNO", value: (f: Fault) => f.errno },
  { header: "REMAINING", value: (f: Fault) => f.remaining },
];

export function registerFaults(program: Command): void {
  const faults = program.command("faults").description("inject driver failures (administrators)");

  faults.command("list").description("the faults still active")
    .action(async (_o: unknown, command: Command) => {
      const ctx = contextOf(command);
      const page = await ctx.client.faults.list({ limit: 1000 }, { signal: ctx.signal });
      ctx.out.table(page, page.items, COLUMNS);
    });

  faults.command("inject").description("fail the next attach ops on a unit or a device with an errno")
    .addOption(new Option("--unit <id>", "the unit's attach ops").argParser(id).conflicts("device"))
    .addOption(new Option("--device <id>", "the device's attach ops").argParser(id))
    .requiredOption("--errno <name>", "a Linux errno name (codes outside the attach contract are answered as ENODEV)")
    .option("--count <n>", "how many ops fail", id, 1)
    .action(async (o: { unit?: number; device?: number; errno: string; count: number }, command: Command) => {
      if (o.unit === undefined && o.device === undefined) throw new UsageError("faults inject: name --unit or --device");
      const ctx = contextOf(command);
      const fault = await ctx.client.faults.inject({
        ...(o.unit !== undefined ? { unitId: o.unit } : {}), ...(o.device !== undefined ? { deviceId: o.device } : {}),
        // The server validates the name (400 naming body.errno).
        errno: o.errno as Fault["errno"] as never, count: o.count,
      }, { signal: ctx.signal });
      ctx.out.table(fault, [fault], COLUMNS);
    });

  faults.command("clear").description("clear one fault, or all of them")
    .argument("[id]", "the fault (default: all)", id)
    .action(async (faultId: number | undefined, _o: unknown, command: Command) => {
      const ctx = contextOf(command);
      if (faultId !== undefined) {
        await ctx.client.faults.delete(faultId, { signal: ctx.signal });
        ctx.out.record({ cleared: 1 }, [["cleared", 1]]);
        return;
      }
      const answer = await ctx.client.faults.clear({ signal: ctx.signal });
      ctx.out.record(answer, [["cleared", answer.cleared]]);
    });
}
