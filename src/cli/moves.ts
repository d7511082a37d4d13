// Moving groups: attach (with several candidates: retry-on-EINVAL, the
// client's attachWithRetry), replace, detach, claim, release, a container's
// search, and the dry run that changes nothing.
import { Option, type Command } from "commander";
import type { Attempt, CreateDomain, Moved, Placement } from "../client/index.js";
import { contextOf, id, ids, jsonObject, type Context } from "./context.js";
import type { Column } from "./output.js";

const ATTEMPT_COLUMNS: Column<Attempt>[] = [
  { header: "DOMAIN", value: (a) => a.domainId },
  { header: "ALLOCATED", value: (a) => a.allocated },
  { header: "FREED", value: (a) => a.freed },
  { header: "ERRNO", value: (a) => a.errno },
  { header: "SOFT", value: (a) => (a.errno === null ? null : a.soft) },
  { header: "REASON", value: (a) => a.reason },
];

function printMoved(ctx: Context, moved: Moved): void {
  ctx.out.record(moved, [
    ["group", moved.group.id], ["domain", moved.domain.id], ["changed", moved.changed], ["owner", moved.group.owner],
    ...(moved.warning ? [["warning", `${moved.warning.errno} ${moved.warning.reason}: ${moved.warning.detail}`] as [string, unknown]] : []),
  ]);
}

function printPlacement(ctx: Context, placed: Placement): void {
  if (ctx.out.json) {
    ctx.out.record(placed, []);
    return;
  }
  ctx.out.record(placed, [["group", placed.group.id], ["domain", placed.domain.id], ["allocated", placed.allocated]]);
  ctx.out.line("");
  ctx.out.table(placed, placed.attempts, ATTEMPT_COLUMNS);
}

const owner = () => new Option("--owner <name>", "the group's DMA owner (open development mode; with a token the token names it)").env("IOMMU_ARBITER_OWNER");
const ownerOf = (o: { owner?: string }) => (o.owner !== undefined ? { owner: o.owner } : {});

export function registerMoves(program: Command): void {
  program.command("attach").description("attach a group to a domain; with several, try each in order, moving on after a soft EINVAL")
    .argument("<group>", "group id", id)
    .argument("<domains...>", "candidate domain ids, in order", ids)
    .addOption(owner())
    .option("--allocate <json>", "when none fits: allocate this domain (POST /v1/domains body) and attach it", jsonObject)
    .action(async (group: number, domains: number[], o: { owner?: string; allocate?: Record<string, unknown> }, command: Command) => {
      const ctx = contextOf(command);
      if (domains.length === 1 && o.allocate === undefined) {
        printMoved(ctx, await ctx.client.groups.attach(group, { domainId: domains[0]!, ...ownerOf(o) }, { signal: ctx.signal }));
        return;
      }
      const placed = await ctx.client.attachWithRetry(group, domains, {
        ...ownerOf(o), signal: ctx.signal, ...(o.allocate ? { allocate: o.allocate as CreateDomain } : {}),
      });
      printPlacement(ctx, placed);
    });

  program.command("replace").description("move a group to a domain whatever it is on (iommu_group_replace_domain)")
    .argument("<group>", "group id", id).argument("<domain>", "domain id", id).addOption(owner())
    .action(async (group: number, domain: number, o: { owner?: string }, command: Command) => {
      const ctx = contextOf(command);
      printMoved(ctx, await ctx.client.groups.replace(group, { domainId: domain, ...ownerOf(o) }, { signal: ctx.signal }));
    });

  program.command("detach").description("detach a group from its domain, back to its default (or blocking) domain")
    .argument("<group>", "group id", id).argument("[domain]", "the domain it is on (default: whatever it is on now)", id).addOption(owner())
    .action(async (group: number, domain: number | undefined, o: { owner?: string }, command: Command) => {
      const ctx = contextOf(command);
      const from = domain ?? (await ctx.client.groups.get(group, { signal: ctx.signal })).domainId;
      printMoved(ctx, await ctx.client.groups.detach(group, { domainId: from, ...ownerOf(o) }, { signal: ctx.signal }));
    });

  program.command("claim").description("claim a group's DMA ownership (iommu_group_claim_dma_owner)")
    .argument("<group>", "group id", id).addOption(owner())
    .action(async (group: number, o: { owner?: string }, command: Command) => {
      const ctx = contextOf(command);
      printMoved(ctx, await ctx.client.groups.claim(group, ownerOf(o), { signal: ctx.signal }));
    });

  program.command("release").description("release a group's DMA ownership")
    .argument("<group>", "group id", id).addOption(owner())
    .action(async (group: number, o: { owner?: string }, command: Command) => {
      const ctx = contextOf(command);
      printMoved(ctx, await ctx.client.groups.release(group, ownerOf(o), { signal: ctx.signal }));
    });

  const container = program.command("container").description("attach or detach a group through a container (the server-side search)");
  container.command("attach").description("let the service search the container's domains, allocating one if none fits")
    .argument("<container>", "container id", id).argument("<group>", "group id", id).addOption(owner())
    .addOption(new Option("--policy <policy>", "search policy (iommufd containers)").choices(["kernel", "qemu"]))
    .action(async (containerId: number, group: number, o: { owner?: string; policy?: "kernel" | "qemu" }, command: Command) => {
      const ctx = contextOf(command);
      printPlacement(ctx, await ctx.client.attachThroughContainer(containerId, group, { ...ownerOf(o), ...(o.policy ? { policy: o.policy } : {}), signal: ctx.signal }));
    });
  container.command("detach").description("detach a group attached through the container")
    .argument("<container>", "container id", id).argument("<group>", "group id", id).addOption(owner())
    .action(async (containerId: number, group: number, o: { owner?: string }, command: Command) => {
      const ctx = contextOf(command);
      const answer = await ctx.client.containers.detach(containerId, { groupId: group, ...ownerOf(o) }, { signal: ctx.signal });
      ctx.out.record(answer, [["group", answer.group.id], ["domain", answer.domain.id], ["freed domain", answer.freedDomainId]]);
    });

  program.command("compat").alias("compatibility").description("dry run: which domains the group could attach to, and why not (changes nothing)")
    .argument("<group>", "group id", id)
    .option("--container <id>", "only this container's domains", id)
    .option("--limit <n>", "domains per page", id)
    .action(async (group: number, o: { container?: number; limit?: number }, command: Command) => {
      const ctx = contextOf(command);
      const answer = await ctx.client.groups.compatibility(group, {
        ...(o.container ? { containerId: o.container } : {}), ...(o.limit ? { limit: o.limit } : {}),
      }, { signal: ctx.signal });
      ctx.out.table(answer, answer.verdicts, [
        { header: "DOMAIN", value: (v) => v.domainId }, { header: "COMPATIBLE", value: (v) => v.compatible },
        { header: "CURRENT", value: (v) => v.current }, { header: "ERRNO", value: (v) => v.errno },
        { header: "SOFT", value: (v) => (v.errno === null ? null : v.soft) }, { header: "REASON", value: (v) => v.reason },
      ]);
      if (!answer.attachable) ctx.out.line(`group ${group} is on a domain of someone's choosing: attach would get EBUSY (use replace)`);
    });
}
