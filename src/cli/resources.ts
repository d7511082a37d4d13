// list and show: the resources as tables or JSON.
import { Argument, type Command } from "commander";
import type { ArbiterClient } from "../client/index.js";
import type { Container, Device, Domain, Group, Unit } from "../client/index.js";
import { contextOf, count, id, type Context } from "./context.js";
import type { Column } from "./output.js";

const KINDS = ["units", "groups", "devices", "domains", "containers"] as const;
type Kind = (typeof KINDS)[number];

const COLUMNS = {
  units: [
    { header: "ID", value: (u: Unit) => u.id }, { header: "NAME", value: (u: Unit) => u.name },
    { header: "DRIVER", value: (u: Unit) => u.driver }, { header: "ONLINE", value: (u: Unit) => u.online },
    { header: "ADDR-BITS", value: (u: Unit) => u.capabilities.addressWidth }, { header: "SNOOP", value: (u: Unit) => u.capabilities.snoopControl },
  ],
  groups: [
    { header: "ID", value: (g: Group) => g.id }, { header: "NAME", value: (g: Group) => g.name }, { header: "UNIT", value: (g: Group) => g.unitId },
    { header: "DOMAIN", value: (g: Group) => g.domainId }, { header: "DEFAULT", value: (g: Group) => g.defaultDomainId },
    { header: "OWNER", value: (g: Group) => g.owner }, { header: "DEVICES", value: (g: Group) => g.deviceIds },
  ],
  devices: [
    { header: "ID", value: (d: Device) => d.id }, { header: "NAME", value: (d: Device) => d.name }, { header: "GROUP", value: (d: Device) => d.groupId },
    { header: "HOST-DRIVER", value: (d: Device) => d.hostDriver }, { header: "FAULTY", value: (d: Device) => d.faulty },
    { header: "MAX-PASIDS", value: (d: Device) => d.maxPasids },
  ],
  domains: [
    { header: "ID", value: (d: Domain) => d.id }, { header: "NAME", value: (d: Domain) => d.name }, { header: "TYPE", value: (d: Domain) => d.type },
    { header: "DRIVER", value: (d: Domain) => d.driver }, { header: "UNIT", value: (d: Domain) => d.unitId },
    { header: "CONTAINER", value: (d: Domain) => d.containerId }, { header: "GROUPS", value: (d: Domain) => d.attachedGroupCount },
    { header: "ADDR-BITS", value: (d: Domain) => d.config.addressWidth }, { header: "COHERENT", value: (d: Domain) => d.config.enforceCacheCoherency },
  ],
  containers: [
    { header: "ID", value: (c: Container) => c.id }, { header: "NAME", value: (c: Container) => c.name }, { header: "KIND", value: (c: Container) => c.kind },
    { header: "OWNER", value: (c: Container) => c.owner }, { header: "DOMAINS", value: (c: Container) => c.domainIds },
  ],
} satisfies { [K in Kind]: Column<never>[] };

interface ListOptions { after?: number; limit?: number; all?: boolean; domain?: number; unit?: number; container?: number }

/** One page, or every page with --all. */
async function list(client: ArbiterClient, kind: Kind, o: ListOptions, signal: AbortSignal) {
  const pages: { items: unknown[]; next: number | null } = { items: [], next: o.after ?? 0 };
  do {
    const query = { after: pages.next ?? 0, ...(o.limit !== undefined ? { limit: o.limit } : {}) };
    const page = await pageOf(client, kind, query, o, signal);
    pages.items.push(...page.items);
    pages.next = page.next;
  } while (o.all && pages.next !== null);
  return pages;
}

function pageOf(client: ArbiterClient, kind: Kind, query: { after: number; limit?: number }, o: ListOptions, signal: AbortSignal) {
  const opts = { signal };
  switch (kind) {
    case "units": return client.units.list(query, opts);
    case "groups": return client.groups.list({ ...query, ...(o.domain ? { domainId: o.domain } : {}), ...(o.unit ? { unitId: o.unit } : {}) }, opts);
    case "devices": return client.devices.list(query, opts);
    case "domains": return client.domains.list({ ...query, ...(o.container ? { containerId: o.container } : {}) }, opts);
    case "containers": return client.containers.list(query, opts);
  }
}

function get(ctx: Context, kind: Kind, n: number) {
  const opts = { signal: ctx.signal };
  switch (kind) {
    case "units": return ctx.client.units.get(n, opts);
    case "groups": return ctx.client.groups.get(n, opts);
    case "devices": return ctx.client.devices.get(n, opts);
    case "domains": return ctx.client.domains.get(n, opts);
    case "containers": return ctx.client.containers.get(n, opts);
  }
}

export function registerResources(program: Command): void {
  program.command("list").description("list units, groups, devices, domains or containers")
    .addArgument(new Argument("<kind>").choices(KINDS))
    .option("--after <id>", "start after this id", count)
    .option("--limit <n>", "page size (1-1000)", count)
    .option("--all", "follow every page")
    .option("--domain <id>", "groups: only those attached to this domain", id)
    .option("--unit <id>", "groups: only those behind this unit", id)
    .option("--container <id>", "domains: only this container's", id)
    .action(async (kind: Kind, o: ListOptions, command: Command) => {
      const ctx = contextOf(command);
      const page = await list(ctx.client, kind, o, ctx.signal);
      ctx.out.table(page, page.items as never[], COLUMNS[kind] as Column<never>[]);
    });

  program.command("show").description("show one unit, group, device, domain or container")
    .addArgument(new Argument("<kind>").choices(KINDS))
    .argument("<id>", "its id", id)
    .action(async (kind: Kind, n: number, _o: unknown, command: Command) => {
      const ctx = contextOf(command);
      const value = await get(ctx, kind, n);
      ctx.out.record(value, Object.entries(value));
    });
}
