// The host's settings: its kernel-version profile (which codes the answers follow).
import { Option, type Command } from "commander";
import type { Host, PatchHost } from "../client/index.js";
import { contextOf } from "./context.js";

export function registerHost(program: Command): void {
  program.command("host").description("show the host's settings; --kernel-profile changes them (administrators)")
    .addOption(new Option("--kernel-profile <profile>", "answer as this kernel does").choices(["6.1", "6.2", "6.5+"]))
    .action(async (o: { kernelProfile?: PatchHost["kernelProfile"] }, command: Command) => {
      const ctx = contextOf(command);
      const host: Host = o.kernelProfile !== undefined
        ? await ctx.client.host.patch({ kernelProfile: o.kernelProfile }, { signal: ctx.signal })
        : await ctx.client.host.get({ signal: ctx.signal });
      ctx.out.record(host, [["kernel profile", host.kernelProfile], ["version", host.version]]);
    });
}
