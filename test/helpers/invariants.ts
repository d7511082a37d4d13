// What the model promises, checked from the SQLite file alone.
//
// The file is opened read-only (a running server may hold it: WAL lets
// readers in) and read in one transaction, so the checks see one committed
// state. Each check returns the violations it found as sentences, so a
// failing test prints all of them, not the first.
//
// The rules are restated here from the kernel behaviour the core mirrors,
// not imported from src/: a proof that reused the code under test would
// prove nothing.
import Database from "better-sqlite3";
import pg from "pg";
import { STORE_TYPES } from "../../src/store/postgres-sql.js";
import { ERRNO_VALUES } from "../../src/core/errno.js";
import { REASONS } from "../../src/core/reasons.js";

export interface UnitRow {
  id: number; name: string; driver: string; online: boolean;
  capabilities: { domainIds: number } & Record<string, unknown>;
}
export interface ContainerRow { id: number; name: string; kind: string }
export interface DomainRow {
  id: number; name: string | null; type: string; driver: string; unitId: number | null;
  config: Record<string, unknown>; auto: boolean; search: string; containerId: number | null;
}
export interface GroupRow {
  id: number; name: string; unitId: number; domainId: number; defaultDomainId: number;
  blockingDomainId: number | null; owner: string | null;
}
export interface DeviceRow { id: number; name: string; groupId: number; flags: Record<string, boolean>; faulty: boolean }
export interface FaultRow { id: number; unitId: number | null; deviceId: number | null; errno: string; remaining: number }
export interface EventRow {
  seq: number; at: string; op: string; owner: string | null; groupId: number | null; deviceId: number | null;
  domainId: number | null; containerId: number | null; errno: string | null; code: number;
  reason: string | null; detail: string | null;
  /** A topology change's object (create / update / delete); null on attempts. */
  kind: string | null; objectId: number | null;
}

/** One committed state of the database, as rows. */
export interface Snapshot {
  readonly integrity: string[];
  readonly foreignKeyViolations: unknown[];
  readonly units: UnitRow[];
  readonly containers: ContainerRow[];
  readonly domains: DomainRow[];
  readonly groups: GroupRow[];
  readonly devices: DeviceRow[];
  readonly faults: FaultRow[];
  /** Oldest first. */
  readonly events: EventRow[];
  /** The highest event seq ever written (IdWatermark), pruned ones included. */
  readonly lastEventSeq: number;
}

type Raw = Record<string, unknown>;
const bool = (v: unknown): boolean => v === 1 || v === true;
// SQLite holds JSON as text; PostgreSQL (jsonb) hands it back parsed.
const json = <T>(v: unknown): T => (typeof v === "string" ? JSON.parse(v) : v) as T;

/** Reads the whole database file in one read transaction. */
type Query = (sql: string) => Raw[];

/** The rows as the checks read them, whichever database they come from. */
function snapshotOf(all: Query, lastEventSeq: number, integrity: string[], foreignKeyViolations: unknown[]): Snapshot {
  return {
    integrity,
    foreignKeyViolations,
    units: all(`SELECT * FROM "Unit" ORDER BY id`).map((r) => ({
      id: Number(r.id), name: String(r.name), driver: String(r.driver), online: bool(r.online),
      capabilities: json(r.capabilities),
    })),
    containers: all(`SELECT * FROM "Container" ORDER BY id`).map((r) => ({
      id: Number(r.id), name: String(r.name), kind: String(r.kind),
    })),
    domains: all(`SELECT * FROM "Domain" ORDER BY id`).map((r) => ({
      id: Number(r.id), name: r.name === null ? null : String(r.name), type: String(r.type), driver: String(r.driver),
      unitId: r.unitId === null ? null : Number(r.unitId), config: json(r.config), auto: bool(r.auto), search: String(r.search),
      containerId: r.containerId === null ? null : Number(r.containerId),
    })),
    groups: all(`SELECT * FROM "Group" ORDER BY id`).map((r) => ({
      id: Number(r.id), name: String(r.name), unitId: Number(r.unitId), domainId: Number(r.domainId),
      defaultDomainId: Number(r.defaultDomainId),
      blockingDomainId: r.blockingDomainId === null ? null : Number(r.blockingDomainId),
      owner: r.owner === null ? null : String(r.owner),
    })),
    devices: all(`SELECT * FROM "Device" ORDER BY id`).map((r) => ({
      id: Number(r.id), name: String(r.name), groupId: Number(r.groupId), flags: json(r.flags), faulty: bool(r.faulty),
    })),
    faults: all(`SELECT * FROM "Fault" ORDER BY id`).map((r) => ({
      id: Number(r.id), unitId: r.unitId === null ? null : Number(r.unitId),
      deviceId: r.deviceId === null ? null : Number(r.deviceId), errno: String(r.errno), remaining: Number(r.remaining),
    })),
    events: all(`SELECT * FROM "Event" ORDER BY seq`).map((r) => ({ ...r, at: r.at instanceof Date ? r.at.toISOString() : r.at })) as unknown as EventRow[],
    lastEventSeq,
  };
}

export function readSnapshot(file: string): Snapshot {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    db.pragma("busy_timeout = 5000");
    return db.transaction((): Snapshot => {
      const all = (sql: string) => db.prepare(sql).all() as Raw[];
      const seq = db.prepare(`SELECT "last" AS seq FROM "IdWatermark" WHERE "kind" = 'event'`).get() as { seq: number } | undefined;
      const integrity = (db.pragma("integrity_check") as { integrity_check: string }[]).map((r) => r.integrity_check);
      return snapshotOf(all, seq?.seq ?? 0, integrity, db.pragma("foreign_key_check") as unknown[]);
    }).deferred();
  } finally {
    db.close();
  }
}

/**
 * The same from a PostgreSQL database, in one REPEATABLE READ snapshot.
 * PostgreSQL checks foreign keys at every commit and has no integrity
 * pragma: those two lists are empty by construction.
 */
export async function readPostgresSnapshot(url: string): Promise<Snapshot> {
  // BIGINT (the event seq) as a number, timestamps as ISO text: as the store reads them.
  const client = new pg.Client({ connectionString: url, types: STORE_TYPES });
  await client.connect();
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const tables = new Map<string, Raw[]>();
    for (const table of ["Unit", "Container", "Domain", "Group", "Device", "Fault"]) {
      tables.set(`SELECT * FROM "${table}" ORDER BY id`, (await client.query(`SELECT * FROM "${table}" ORDER BY id`)).rows as Raw[]);
    }
    tables.set(`SELECT * FROM "Event" ORDER BY seq`, (await client.query(`SELECT * FROM "Event" ORDER BY seq`)).rows as Raw[]);
    const seq = (await client.query(`SELECT "last" AS seq FROM "IdWatermark" WHERE "kind" = 'event'`)).rows[0] as { seq: number } | undefined;
    await client.query("COMMIT");
    return snapshotOf((sql) => tables.get(sql)!, Number(seq?.seq ?? 0), ["ok"], []);
  } finally {
    await client.end();
  }
}

/** The snapshot of a test app's database (a SQLite file, or a PostgreSQL URL under TEST_STORE=postgresql). */
export function readTestSnapshot(file: string): Promise<Snapshot> {
  return /^postgres(ql)?:/.test(file) ? readPostgresSnapshot(file) : Promise.resolve(readSnapshot(file));
}

// ---- the rules -------------------------------------------------------------

/**
 * SMMUv3, SMMUv2, DART and virtio-iommu finalise a paging domain on one
 * instance; a device behind another instance is refused (different-instance).
 */
const BINDS_TO_INSTANCE: ReadonlySet<string> = new Set(["arm-smmu-v3", "arm-smmu", "apple-dart", "virtio-iommu"]);

/**
 * Where each driver's ID space lives (restated from the kernel drivers):
 * "unit-attached": VT-d, per unit, one domain ID per distinct paging or
 * default domain with a device of the unit attached (domain_attach_iommu);
 * "unit-finalised": SMMUv2 context banks and virtio-iommu domain IDs, per
 * unit, one per paging domain finalised on it and per default domain of a
 * group with devices; "smmuv3": one ASID space shared by every SMMU
 * (arm_smmu_asid_xa) for stage-1 and default domains, and VMIDs per SMMU
 * for nesting parents; "pool": AMD, one pool for the driver (its smallest
 * unit's size) for the identity domain, every paging domain and every
 * default domain of a group with devices; "none": DART and the mock.
 */
const ID_ACCOUNTING: Readonly<Record<string, "unit-attached" | "unit-finalised" | "smmuv3" | "pool" | "none">> = {
  "intel-vtd": "unit-attached", "arm-smmu": "unit-finalised", "virtio-iommu": "unit-finalised",
  "arm-smmu-v3": "smmuv3", "amd-iommu": "pool", "apple-dart": "none", mock: "none",
};
const DOMAIN_TYPES: ReadonlySet<string> = new Set(["paging", "identity", "blocked", "dma"]);

export const MOVE_OPS = [
  "attach-device", "detach-device", "attach-group", "replace-group", "detach-group",
  "claim", "release", "container-attach", "container-detach",
] as const;
export type MoveOp = (typeof MOVE_OPS)[number];
/** A successful change of the topology: an object of a kind created, changed or deleted by a client or a topology file. */
const TOPOLOGY_OPS: ReadonlySet<string> = new Set(["create", "update", "delete"]);
/** The kinds of object a client or a topology file creates, changes or deletes as such. */
const TOPOLOGY_KINDS: ReadonlySet<string> = new Set(["unit", "group", "device", "domain", "container", "fault", "host"]);
const EVENT_OPS: ReadonlySet<string> = new Set([...MOVE_OPS, ...TOPOLOGY_OPS]);

function isErrnoName(name: string): name is keyof typeof ERRNO_VALUES {
  return Object.prototype.hasOwnProperty.call(ERRNO_VALUES, name);
}

/** Every rule the state must satisfy at rest. Empty: it does. */
export function checkInvariants(s: Snapshot): string[] {
  const v: string[] = [];
  if (s.integrity.join() !== "ok") v.push(`integrity_check: ${s.integrity.join("; ")}`);
  if (s.foreignKeyViolations.length > 0) v.push(`foreign_key_check: ${JSON.stringify(s.foreignKeyViolations)}`);

  const units = new Map(s.units.map((u) => [u.id, u]));
  const containers = new Map(s.containers.map((c) => [c.id, c]));
  const domains = new Map(s.domains.map((d) => [d.id, d]));
  const groups = new Map(s.groups.map((g) => [g.id, g]));
  for (const d of s.devices) {
    if (!groups.has(d.groupId)) v.push(`device ${d.id} is in group ${d.groupId}, which does not exist`);
  }
  const attachedTo = new Map<number, GroupRow[]>();
  for (const g of s.groups) attachedTo.set(g.domainId, [...(attachedTo.get(g.domainId) ?? []), g]);

  // Domains by themselves.
  for (const d of s.domains) {
    if (!DOMAIN_TYPES.has(d.type)) v.push(`domain ${d.id} has unknown type ${d.type}`);
    if (!(d.driver in ID_ACCOUNTING)) v.push(`domain ${d.id} has unknown driver ${d.driver}`);
    if (d.unitId !== null) {
      const u = units.get(d.unitId);
      if (!u) v.push(`domain ${d.id} is on unit ${d.unitId}, which does not exist`);
      else if (u.driver !== d.driver) v.push(`domain ${d.id} is ${d.driver} but on ${u.driver} unit ${u.id}`);
    }
    if (d.containerId !== null && !containers.has(d.containerId)) v.push(`domain ${d.id} is in container ${d.containerId}, which does not exist`);
    if (d.auto) {
      // iommufd allocates an automatic domain for a device, in an IOAS, and
      // frees it when its last device leaves.
      if (d.type !== "paging") v.push(`automatic domain ${d.id} is ${d.type}, not paging`);
      if (d.containerId === null) v.push(`automatic domain ${d.id} belongs to no container`);
      if (d.unitId === null) v.push(`automatic domain ${d.id} was allocated for no unit`);
      if ((attachedTo.get(d.id) ?? []).length === 0) v.push(`automatic domain ${d.id} has no group attached and was not freed`);
    }
    // A search's domain is automatic, and only a search's (kernel, qemu).
    if (d.auto !== (d.search === "kernel" || d.search === "qemu")) v.push(`domain ${d.id} is auto ${d.auto} but search ${d.search}`);
  }

  // Every group's own core domains: its default (dma) and, once claimed, its blocking domain.
  const coreOf = new Map<number, { groupId: number; role: "default" | "blocking" }>();
  const claimCore = (domainId: number, groupId: number, role: "default" | "blocking") => {
    const other = coreOf.get(domainId);
    if (other) v.push(`domain ${domainId} is the ${role} domain of group ${groupId} and the ${other.role} domain of group ${other.groupId}`);
    else coreOf.set(domainId, { groupId, role });
  };
  for (const g of s.groups) {
    claimCore(g.defaultDomainId, g.id, "default");
    if (g.blockingDomainId !== null) claimCore(g.blockingDomainId, g.id, "blocking");
  }
  for (const g of s.groups) {
    const unit = units.get(g.unitId);
    if (!unit) {
      v.push(`group ${g.id} is on unit ${g.unitId}, which does not exist`);
      continue;
    }
    const core: [number | null, "default" | "blocking", string][] = [
      [g.defaultDomainId, "default", "dma"], [g.blockingDomainId, "blocking", "blocked"],
    ];
    for (const [id, role, type] of core) {
      if (id === null) continue;
      const d = domains.get(id);
      if (!d) {
        v.push(`group ${g.id}'s ${role} domain ${id} does not exist`);
        continue;
      }
      if (d.type !== type || d.driver !== unit.driver || d.unitId !== g.unitId || d.auto || d.containerId !== null) {
        v.push(`group ${g.id}'s ${role} domain ${id} should be a ${type} domain of its ${unit.driver} unit ${g.unitId} outside any container: ${JSON.stringify(d)}`);
      }
    }
    // The blocking domain is allocated by the first claim; ownership needs it.
    if (g.owner !== null && g.blockingDomainId === null) v.push(`group ${g.id} is owned by ${g.owner} but has no blocking domain`);

    const current = domains.get(g.domainId);
    if (!current) {
      v.push(`group ${g.id} is attached to domain ${g.domainId}, which does not exist`);
      continue;
    }
    if (current.driver !== unit.driver) v.push(`group ${g.id} behind ${unit.driver} is attached to ${current.driver} domain ${current.id}`);
    const ownCore = g.domainId === g.defaultDomainId || g.domainId === g.blockingDomainId;
    if (!ownCore && (current.type === "dma" || coreOf.has(current.id))) {
      v.push(`group ${g.id} is attached to domain ${current.id}, another group's default or blocking domain`);
    }
    // A paging domain of these drivers is finalised on one instance before
    // anything is attached to it, and serves only that instance.
    if (current.type === "paging" && BINDS_TO_INSTANCE.has(current.driver) && current.unitId !== g.unitId) {
      v.push(`group ${g.id} on unit ${g.unitId} is attached to ${current.driver} domain ${current.id} finalised on unit ${current.unitId}`);
    }
  }
  for (const d of s.domains) {
    if (d.type === "dma" && coreOf.get(d.id)?.role !== "default") v.push(`dma domain ${d.id} is no group's default domain`);
  }

  // The ID spaces. A default domain holds its ID while its group has devices.
  const populated = new Set(s.devices.map((d) => d.groupId));
  const defaultsOn = (unitId: number) => s.groups.filter((g) => g.unitId === unitId && populated.has(g.id)).length;
  const finalisedOn = (unitId: number, nest?: boolean) =>
    s.domains.filter((d) => d.type === "paging" && d.unitId === unitId && (nest === undefined || Boolean(d.config.nestParent) === nest)).length;
  const unitsOf = (driver: string) => s.units.filter((u) => u.driver === driver);
  for (const u of s.units) {
    const cap = u.capabilities.domainIds;
    const accounting = ID_ACCOUNTING[u.driver];
    if (accounting === "unit-finalised") {
      const used = finalisedOn(u.id) + defaultsOn(u.id);
      if (used > cap) v.push(`unit ${u.id} (${u.driver}) has ${used} domains finalised on it (default domains included), more than its ${cap} IDs`);
    } else if (accounting === "unit-attached") {
      const holding = s.groups.filter((g) => g.unitId === u.id && populated.has(g.id) && ["paging", "dma"].includes(domains.get(g.domainId)?.type ?? ""));
      const used = new Set(holding.map((g) => g.domainId)).size;
      if (used > cap) v.push(`unit ${u.id} (${u.driver}) has ${used} distinct paging and default domains attached, more than its ${cap} domain IDs`);
    } else if (accounting === "smmuv3") {
      const vmids = finalisedOn(u.id, true);
      if (vmids > cap) v.push(`unit ${u.id} (${u.driver}) has ${vmids} nesting parents, more than its ${cap} VMIDs`);
    }
  }
  const smmus = unitsOf("arm-smmu-v3");
  const asids = smmus.reduce((n, u) => n + finalisedOn(u.id, false) + defaultsOn(u.id), 0);
  const widest = Math.max(0, ...smmus.map((u) => u.capabilities.domainIds));
  if (asids > widest) v.push(`${asids} ASIDs are in use across the SMMUv3s, more than the widest one's ${widest}`);
  const amd = unitsOf("amd-iommu");
  if (amd.length > 0) {
    const pool = Math.min(...amd.map((u) => u.capabilities.domainIds));
    const used = 1 + s.domains.filter((d) => d.type === "paging" && d.driver === "amd-iommu").length + amd.reduce((n, u) => n + defaultsOn(u.id), 0);
    if (used > pool) v.push(`the amd-iommu pool has ${used} domain IDs in use, more than its ${pool}`);
  }

  // Injected faults.
  const deviceIds = new Set(s.devices.map((d) => d.id));
  for (const f of s.faults) {
    if ((f.unitId === null) === (f.deviceId === null)) v.push(`fault ${f.id} must name exactly one of unit and device`);
    if (f.unitId !== null && !units.has(f.unitId)) v.push(`fault ${f.id} is on unit ${f.unitId}, which does not exist`);
    if (f.deviceId !== null && !deviceIds.has(f.deviceId)) v.push(`fault ${f.id} is on device ${f.deviceId}, which does not exist`);
    if (!(f.remaining > 0)) v.push(`fault ${f.id} has ${f.remaining} remaining and should have been removed`);
    if (!isErrnoName(f.errno)) v.push(`fault ${f.id} has unknown errno ${f.errno}`);
  }

  v.push(...checkEventLog(s));
  return v;
}

const MUST_SUCCEED: ReadonlySet<string> = new Set(["detach-group", "detach-device", "container-detach", "release"]);

/** The log itself: strictly increasing, gapless seqs; well-formed outcomes. */
function checkEventLog(s: Snapshot): string[] {
  const v: string[] = [];
  let previous: number | null = null;
  for (const e of s.events) {
    if (previous !== null && e.seq !== previous + 1) v.push(`event seq ${e.seq} follows ${previous}: the log has a gap or is out of order`);
    previous = e.seq;
    if (!EVENT_OPS.has(e.op)) v.push(`event ${e.seq} has unknown op ${e.op}`);
    if (TOPOLOGY_OPS.has(e.op)) {
      v.push(...checkTopologyEvent(e));
      continue;
    }
    if (e.kind !== null || e.objectId !== null) v.push(`event ${e.seq} (${e.op}, an attempt) names object ${e.kind} ${e.objectId}`);
    if (e.errno === null) {
      // A must-succeed move (detach, release) keeps the refusal it overrode as its reason.
      const warned = e.reason !== null && MUST_SUCCEED.has(e.op) && e.reason in REASONS;
      if (e.code !== 0 || (e.reason !== null && !warned)) v.push(`event ${e.seq} succeeded but has code ${e.code} and reason ${e.reason}`);
    } else {
      if (!isErrnoName(e.errno) || e.code !== -ERRNO_VALUES[e.errno]) v.push(`event ${e.seq}: errno ${e.errno} with code ${e.code}`);
      if (e.reason === null || !(e.reason in REASONS)) v.push(`event ${e.seq}: failure with unknown reason ${e.reason}`);
    }
  }
  if (previous !== null && previous > s.lastEventSeq) v.push(`event seq ${previous} is past the event watermark ${s.lastEventSeq}`);
  return v;
}

/** A topology change: recorded only when it succeeded; it names its object, not the subjects of an attempt. */
function checkTopologyEvent(e: EventRow): string[] {
  const v: string[] = [];
  const where = `event ${e.seq} (${e.op} of ${e.kind} ${e.objectId})`;
  if (e.kind === null || !TOPOLOGY_KINDS.has(e.kind)) v.push(`${where}: a topology change of unknown kind`);
  if (e.objectId === null || !Number.isInteger(e.objectId) || e.objectId < 1) v.push(`${where}: a topology change without an object id`);
  if (e.groupId !== null || e.deviceId !== null || e.domainId !== null || e.containerId !== null) {
    v.push(`${where}: names group ${e.groupId}, device ${e.deviceId}, domain ${e.domainId}, container ${e.containerId}; a topology change names its object only`);
  }
  if (e.errno !== null || e.code !== 0 || e.reason !== null || e.detail !== null) {
    v.push(`${where}: recorded with errno ${e.errno}, code ${e.code}, reason ${e.reason}; only successful topology changes are recorded`);
  }
  return v;
}

// ---- replay ----------------------------------------------------------------

interface Placement {
  domainId: number;
  owner: string | null;
}

/**
 * Replays the event log onto every group from its birth (on its default
 * domain, unowned) and checks that it arrives at the group's current domain
 * and owner; on the way, every recorded outcome must agree with the state the
 * replay has reached (the ownership and EBUSY rules).
 *
 * What each successful event records in `domainId`:
 *   attach-group / attach-device / replace-group: the domain it moved to;
 *   detach-group / detach-device: the domain named in the request (the group
 *     went back to its core domain if it was there, else nothing changed);
 *   claim: the blocking domain (or, already owned by the caller, the current one);
 *   release / container-detach: the core domain it went back to;
 *   container-attach: the domain the search chose or allocated (from a core
 *     domain, or, between two iommufd containers, from the other's domain: a replace).
 * Failures change nothing (injected faults they consumed aside, which the log
 * does not count), so the replay is exact for placement and ownership.
 *
 * Topology changes (create / update / delete) move no group; a group's
 * creation, when the log holds it, comes before every attempt on it.
 *
 * Not replayable: groups deleted since (their default domain is gone, so the
 * replay skips their events), and a log whose oldest events were pruned by
 * the retention (reported as a violation: the replay would start from a
 * state it cannot know).
 */
export function checkReplay(s: Snapshot): string[] {
  const v: string[] = [];
  if (s.events.length > 0 && s.events[0]!.seq !== 1) return [`the log starts at seq ${s.events[0]!.seq}: events were pruned, no replay`];
  const groups = new Map(s.groups.map((g) => [g.id, g]));
  const domains = new Map(s.domains.map((d) => [d.id, d]));
  const state = new Map<number, Placement>(s.groups.map((g) => [g.id, { domainId: g.defaultDomainId, owner: null }]));
  const coreOf = (g: GroupRow, p: Placement) => (p.owner !== null && g.blockingDomainId !== null ? g.blockingDomainId : g.defaultDomainId);
  const onCore = (g: GroupRow, p: Placement) => p.domainId === g.defaultDomainId || p.domainId === g.blockingDomainId;
  // The container each domain a container attach placed a group on belongs to (the domain may be gone since).
  const containerOf = new Map<number, number>();
  const kindOf = new Map(s.containers.map((c) => [c.id, c.kind]));
  /** A container attach from another container's domain is a replace between two iommufd containers (a deleted one: unknown, allowed). */
  const mayReplace = (p: Placement, containerId: number) => {
    const from = containerOf.get(p.domainId) ?? domains.get(p.domainId)?.containerId ?? null;
    return from !== null && from !== containerId && kindOf.get(from) !== "type1" && kindOf.get(containerId) !== "type1";
  };

  // Where each group was created, when the log holds it (a log written before
  // topology changes were recorded does not): nothing happens to a group before.
  const bornAt = new Map<number, number>();
  for (const e of s.events) if (e.op === "create" && e.kind === "group" && e.objectId !== null) bornAt.set(e.objectId, e.seq);

  for (const e of s.events) {
    if (TOPOLOGY_OPS.has(e.op)) continue; // checked by checkTopologyEvent; moves nothing
    if (e.groupId === null) continue; // a lookup that failed before naming a group
    const born = bornAt.get(e.groupId);
    if (born !== undefined && e.seq < born) v.push(`event ${e.seq} (${e.op} of group ${e.groupId}) comes before the group's creation (event ${born})`);
    const g = groups.get(e.groupId);
    const p = state.get(e.groupId);
    if (!g || !p) continue;
    const where = `event ${e.seq} (${e.op} of group ${g.id} by ${e.owner ?? "nobody"}, ${e.errno ?? "ok"}${e.reason ? ` ${e.reason}` : ""})`;
    const at = `the replay has it on domain ${p.domainId} owned by ${p.owner ?? "nobody"}`;
    const mayMove = p.owner === null || p.owner === e.owner;

    if (e.errno !== null) {
      // A refusal must be the one the rules give in the replayed state.
      if (e.reason === "owned-by-other" && mayMove) v.push(`${where}: refused as owned by another, but ${at}`);
      if (e.reason === "not-owned" && p.owner !== null) v.push(`${where}: refused as not owned, but ${at}`);
      if ((e.reason === "group-attached" || e.reason === "in-other-container") && onCore(g, p)) v.push(`${where}: refused as attached elsewhere, but ${at} (a core domain)`);
      if (e.reason === "group-not-default" && e.op === "claim" && (p.domainId === g.defaultDomainId || p.owner !== null)) {
        v.push(`${where}: refused as off its default domain, but ${at}`);
      }
      continue;
    }
    if (e.op !== "claim" && e.op !== "release" && !mayMove) v.push(`${where}: moved a group it does not own; ${at}`);
    switch (e.op as MoveOp) {
      case "attach-group":
      case "attach-device":
        if (p.domainId !== e.domainId && !onCore(g, p)) v.push(`${where}: attach succeeded off a core domain; ${at}`);
        p.domainId = e.domainId!;
        break;
      case "replace-group":
        p.domainId = e.domainId!;
        break;
      case "detach-group":
      case "detach-device":
        if (p.domainId === e.domainId) p.domainId = coreOf(g, p);
        break;
      case "claim":
        if (p.owner === e.owner) {
          if (e.domainId !== p.domainId) v.push(`${where}: a repeated claim should leave it where it is; ${at}, the event says ${e.domainId}`);
        } else {
          if (p.owner !== null || p.domainId !== g.defaultDomainId) v.push(`${where}: claim succeeded, but ${at}`);
          if (e.domainId !== g.blockingDomainId) v.push(`${where}: claimed onto ${e.domainId}, not the blocking domain ${g.blockingDomainId}`);
          p.owner = e.owner;
          p.domainId = e.domainId!;
        }
        break;
      case "release":
        if (p.owner === null || p.owner !== e.owner) v.push(`${where}: release succeeded, but ${at}`);
        p.owner = null;
        if (e.domainId !== g.defaultDomainId) v.push(`${where}: released onto ${e.domainId}, not the default domain ${g.defaultDomainId}`);
        p.domainId = e.domainId!;
        break;
      case "container-attach": {
        const d = domains.get(e.domainId!);
        // The domain may have been freed since; if it exists it never changed container.
        if (d && d.containerId !== e.containerId) v.push(`${where}: placed on domain ${d.id} of container ${d.containerId}`);
        if (p.domainId !== e.domainId && !onCore(g, p) && !mayReplace(p, e.containerId!)) v.push(`${where}: container attach succeeded off a core domain; ${at}`);
        containerOf.set(e.domainId!, e.containerId!);
        p.domainId = e.domainId!;
        break;
      }
      case "container-detach":
        if (e.domainId !== coreOf(g, p)) v.push(`${where}: went back to ${e.domainId}, the core domain is ${coreOf(g, p)}`);
        p.domainId = e.domainId!;
        break;
      default:
        v.push(`${where}: unknown op`);
    }
  }
  for (const g of s.groups) {
    const p = state.get(g.id)!;
    if (p.domainId !== g.domainId || p.owner !== g.owner) {
      v.push(`group ${g.id}: the log replays to domain ${p.domainId} owned by ${p.owner ?? "nobody"}, the table has domain ${g.domainId} owned by ${g.owner ?? "nobody"}`);
    }
  }
  return v;
}
