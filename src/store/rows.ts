// The mapping between model records and table rows, one place per kind, used
// both to load the model and to write it back.
import type { Container, Device, Domain, EventRecord, Fault, Group, Unit } from "../core/entities.js";
import type { Entities, Kind } from "../core/model.js";

import type { Cell } from "./encode.js";

export interface TableMap<T> {
  readonly table: string;
  readonly columns: readonly string[];
  toRow(entity: T): Cell[];
}

const bool = (b: boolean): number => (b ? 1 : 0);
const json = (v: unknown): string => JSON.stringify(v);

/** Prisma's DateTime text format on SQLite (the adapter's iso8601 default). */
export function sqliteTimestamp(at: Date): string {
  return at.toISOString().replace("Z", "+00:00");
}

export const TABLES: { [K in Kind]: TableMap<Entities[K]> } = {
  unit: {
    table: "Unit",
    columns: ["id", "name", "driver", "capabilities", "online"],
    toRow: (u: Unit) => [u.id, u.name, u.driver, json(u.capabilities), bool(u.online)],
  },
  container: {
    table: "Container",
    columns: ["id", "name", "config", "owner"],
    toRow: (c: Container) => [c.id, c.name, json(c.config), c.owner],
  },
  domain: {
    table: "Domain",
    columns: ["id", "name", "type", "driver", "unitId", "config", "auto", "containerId", "owner"],
    toRow: (d: Domain) => [d.id, d.name, d.type, d.driver, d.unitId, json(d.config), bool(d.auto), d.containerId, d.owner],
  },
  group: {
    table: "Group",
    columns: ["id", "name", "unitId", "domainId", "defaultDomainId", "blockingDomainId", "owner"],
    toRow: (g: Group) => [g.id, g.name, g.unitId, g.domainId, g.defaultDomainId, g.blockingDomainId, g.owner],
  },
  device: {
    table: "Device",
    columns: ["id", "name", "groupId", "flags", "faulty"],
    toRow: (d: Device) => [d.id, d.name, d.groupId, json(d.flags), bool(d.faulty)],
  },
  fault: {
    table: "Fault",
    columns: ["id", "unitId", "deviceId", "errno", "remaining"],
    toRow: (f: Fault) => [f.id, f.unitId, f.deviceId, f.errno, f.remaining],
  },
};

export const EVENTS: TableMap<EventRecord> = {
  table: "Event",
  columns: ["seq", "at", "op", "owner", "groupId", "deviceId", "domainId", "containerId", "errno", "code", "reason", "detail"],
  toRow: (e: EventRecord) => [
    e.seq, sqliteTimestamp(e.at), e.op, e.owner, e.groupId, e.deviceId, e.domainId, e.containerId,
    e.errno, e.code, e.reason, e.detail,
  ],
};
