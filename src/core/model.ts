// The in-memory topology the core rules run against. It is plain data with
// secondary indexes kept exact on every change, an undo log for all-or-nothing
// operations (savepoint / rollback, like the kernel putting devices back on
// their old domain), and a set of changed rows the store takes to persist.
//
// Nothing here does I/O. The store decides where the records come from and
// where changes go.
import { clearSlot, ColumnRows, ObjectRows, type Rows } from "./columns.js";
import type { DriverTable, IommuDriver, PasidInUse, UnitUsage } from "./driver.js";
import {
  ENTITIES, Host, HOST_ID, KINDS, type Device, type Domain, type Entities, type EventDraft, type Fault, type Group,
  type IommufdDevice, type Kind, type Mapping, type PasidAttachment, type ReservedRegion,
} from "./entities.js";
import { isStaticDomain, type StaticType } from "./static-domains.js";

export { KINDS, type Entities, type Kind };

/** A row as it was at the first change since the last takeChanges, and as it is now (null: absent). */
export interface RowChange<T> {
  readonly before: T | null;
  readonly after: T | null;
}

/** What one taken set of changes holds. */
export type ChangeSet = {
  readonly rows: { readonly [K in Kind]: ReadonlyMap<number, RowChange<Entities[K]>> };
  readonly events: EventDraft[];
};

type Row = Entities[Kind];
/** `firstChange`: this change made the row dirty, so undoing it makes the row clean again. */
type UndoEntry = { kind: Kind; id: number; before: Row | undefined; firstChange: boolean };

/**
 * key -> set of ids, for one foreign key. Most keys hold one id (a group's
 * default domain, a group's device), so a lone id is stored as a number and a
 * Set is made only for the second.
 *
 * Keys are ids (dense positive integers, never reused), so the entries live in
 * a plain array indexed by key rather than a Map: a Map entry costs ~28-36
 * bytes plus power-of-two growth (old and new tables coexist while it grows),
 * an array slot 8.
 */
class SetIndex {
  private readonly entries: (number | Set<number> | undefined)[] = [];
  add(key: number | null, id: number): void {
    if (key === null) return;
    const entry = this.entries[key];
    if (entry === undefined) this.entries[key] = id;
    else if (typeof entry === "number") { if (entry !== id) this.entries[key] = new Set([entry, id]); }
    else entry.add(id);
  }
  delete(key: number | null, id: number): void {
    if (key === null) return;
    const entry = this.entries[key];
    if (entry === undefined) return;
    if (typeof entry === "number") {
      if (entry === id) clearSlot(this.entries, key);
      return;
    }
    entry.delete(id);
    if (entry.size === 1) this.entries[key] = entry.values().next().value!;
  }
  get(key: number): Iterable<number> {
    const entry = this.entries[key];
    if (entry === undefined) return EMPTY;
    return typeof entry === "number" ? [entry] : entry;
  }
  size(key: number): number {
    const entry = this.entries[key];
    return entry === undefined ? 0 : typeof entry === "number" ? 1 : entry.size;
  }
}
const EMPTY: readonly number[] = [];

/** unitId -> domainId -> a count (devices of that unit attached to it). */
class RefCounts {
  private readonly map = new Map<number, Map<number, number>>();
  add(unitId: number, domainId: number, n: number): void {
    let inner = this.map.get(unitId);
    if (!inner) this.map.set(unitId, (inner = new Map()));
    inner.set(domainId, (inner.get(domainId) ?? 0) + n);
  }
  delete(unitId: number, domainId: number, n: number): void {
    const inner = this.map.get(unitId);
    const had = inner?.get(domainId);
    if (!inner || had === undefined) return;
    if (had <= n) inner.delete(domainId);
    else inner.set(domainId, had - n);
  }
  distinct(unitId: number): number {
    return this.map.get(unitId)?.size ?? 0;
  }
  get(unitId: number, domainId: number): number {
    return this.map.get(unitId)?.get(domainId) ?? 0;
  }
}

// ---- the indexes, declared ------------------------------------------------------

/** Keeps an index exact as rows of one kind come and go. */
interface RowIndex<K extends Kind> {
  readonly kind: K;
  update(row: Entities[K], add: boolean): void;
}

/** The fields of a kind that hold an id (or null). */
type KeyField<K extends Kind> = { [F in keyof Entities[K]]: Entities[K][F] extends number | null ? F : never }[keyof Entities[K]];

/** Rows of `kind` by the id in any of the `keys` fields, for rows `where` accepts. */
class KeyIndex<K extends Kind> extends SetIndex implements RowIndex<K> {
  constructor(
    readonly kind: K,
    private readonly keys: readonly KeyField<K>[],
    private readonly where?: (row: Entities[K]) => boolean,
  ) {
    super();
  }
  update(row: Entities[K], add: boolean): void {
    if (this.where && !this.where(row)) return;
    for (const key of this.keys) {
      const value = row[key] as number | null;
      if (add) this.add(value, row.id);
      else this.delete(value, row.id);
    }
  }
}

/** value -> id, for a field declared unique (names). */
class UniqueIndex<K extends Kind> implements RowIndex<K> {
  private readonly ids = new Map<unknown, number>();
  constructor(readonly kind: K, private readonly field: string) {}
  update(row: Entities[K], add: boolean): void {
    const value = (row as Record<string, unknown>)[this.field];
    if (add) this.ids.set(value, row.id);
    else this.ids.delete(value);
  }
  get(value: unknown): number | undefined {
    return this.ids.get(value);
  }
}

/** How many rows of the kinds (those `where` accepts) hold each non-null value of `field`. */
class CountIndex {
  private readonly counts = new Map<string, number>();
  constructor(
    readonly kinds: readonly Kind[],
    private readonly field: string,
    private readonly where?: (row: Entities[Kind]) => boolean,
  ) {}
  forKind<K extends Kind>(kind: K): RowIndex<K> {
    return {
      kind,
      update: (row, add) => {
        if (this.where && !this.where(row)) return;
        this.update((row as Record<string, unknown>)[this.field] as string | null, add);
      },
    };
  }
  private update(value: string | null, add: boolean): void {
    if (value === null) return;
    const n = (this.counts.get(value) ?? 0) + (add ? 1 : -1);
    if (n > 0) this.counts.set(value, n);
    else this.counts.delete(value);
  }
  get(value: string): number {
    return this.counts.get(value) ?? 0;
  }
}

/**
 * The devices behind the domains that hold an ID, kept exact as groups and
 * devices come and go (a device is attached to its group's domain):
 * - per unit and domain, the devices of the unit attached to it, for paging
 *   and default (dma) domains: VT-d's refcounted domain ID
 *   (domain_attach_iommu / domain_detach_iommu);
 * - per unit, the groups with a device: each has its default domain
 *   allocated (the kernel allocates it with a group's first device).
 * It reads the group and domain tables it is given; every count is a sum
 * over the rows present, so the order rows arrive in does not matter as long
 * as a group's domain is present when the group is (see Model.restore).
 */
class DeviceAttachments {
  readonly refs = new RefCounts();
  private readonly populated: number[] = [];
  private readonly devicesPerGroup: number[] = [];
  constructor(private readonly groups: Rows<Group>, private readonly domains: Rows<Domain>) {}

  populatedGroupsOn(unitId: number): number {
    return this.populated[unitId] ?? 0;
  }

  private holdsId(domainId: number): boolean {
    const type = this.domains.field(domainId, "type");
    return type === "paging" || type === "dma";
  }

  private count(unitId: number, domainId: number, devices: number, add: boolean): void {
    if (!this.holdsId(domainId)) return;
    if (add) this.refs.add(unitId, domainId, devices);
    else this.refs.delete(unitId, domainId, devices);
  }

  readonly byGroup: RowIndex<"group"> = {
    kind: "group",
    update: (g, add) => {
      const devices = this.devicesPerGroup[g.id] ?? 0;
      if (devices === 0) return;
      this.populated[g.unitId] = this.populatedGroupsOn(g.unitId) + (add ? 1 : -1);
      this.count(g.unitId, g.domainId, devices, add);
    },
  };

  readonly byDevice: RowIndex<"device"> = {
    kind: "device",
    update: (d, add) => {
      const before = this.devicesPerGroup[d.groupId] ?? 0;
      this.devicesPerGroup[d.groupId] = before + (add ? 1 : -1);
      const unitId = this.groups.field(d.groupId, "unitId");
      if (unitId === undefined) return; // its group arrives later and counts it
      if (add ? before === 0 : before === 1) this.populated[unitId] = this.populatedGroupsOn(unitId) + (add ? 1 : -1);
      this.count(unitId, this.groups.field(d.groupId, "domainId")!, 1, add);
    },
  };
}

/** The drivers' static identity and blocked domains (static-domains.ts), by driver and type. */
class StaticDomains implements RowIndex<"domain"> {
  readonly kind = "domain";
  private readonly ids = new Map<string, Set<number>>();
  update(d: Domain, add: boolean): void {
    if (!isStaticDomain(d)) return;
    const key = `${d.driver}/${d.type}`;
    let ids = this.ids.get(key);
    if (add) {
      if (!ids) this.ids.set(key, (ids = new Set()));
      ids.add(d.id);
    } else if (ids) {
      ids.delete(d.id);
      if (ids.size === 0) this.ids.delete(key);
    }
  }
  /** The lowest id: one row per driver and type is ever made, but a stored one may have a twin. */
  first(driver: string, type: StaticType): number | undefined {
    const ids = this.ids.get(`${driver}/${type}`);
    return ids ? Math.min(...ids) : undefined;
  }
}

type Tables = { [K in Kind]: Rows<Entities[K]> };

function tables(): Tables {
  const out: Partial<Record<Kind, Rows<Entities[Kind]>>> = {};
  for (const kind of KINDS) {
    const e = ENTITIES[kind];
    out[kind] = e.storage === "columns" ? new ColumnRows<Entities[Kind]>(e.fields) : new ObjectRows<Entities[Kind]>();
  }
  return out as Tables;
}

const perKind = <T>(value: () => T): Record<Kind, T> =>
  Object.fromEntries(KINDS.map((k) => [k, value()])) as Record<Kind, T>;

/** Kinds with a unique `name`, which idByName looks up. */
export type NamedKind = { [K in Kind]: Entities[K] extends { readonly name: string } ? K : never }[Kind];

export class Model {
  /**
   * Rows by id (ids are dense and never reused, see SetIndex for why indexed by
   * id and not a Map). Id order is the storage order, so all() needs no
   * sorting, and a row a rollback puts back lands in its place. Kinds
   * declared with "columns" storage are stored column-wise (columns.ts), so
   * reading one of their rows builds a fresh record.
   */
  private readonly tables = tables();
  /** Rows per table (a table's end counts the empty slots too). */
  private readonly counts = perKind(() => 0);
  private readonly lastId = perKind(() => 0);

  // The secondary indexes: what the core asks "which rows point at X".
  private readonly devicesByGroup = new KeyIndex("device", ["groupId"]);
  /** Devices a partial group attach left on a domain that is not their group's. */
  private readonly devicesByStrandedDomain = new KeyIndex("device", ["strandedOnDomainId"]);
  private readonly groupsByDomain = new KeyIndex("group", ["domainId"]);
  /** A group's default and blocking domains: its core domains. */
  private readonly groupsByCoreDomain = new KeyIndex("group", ["defaultDomainId", "blockingDomainId"]);
  private readonly groupsByUnit = new KeyIndex("group", ["unitId"]);
  private readonly domainsByUnit = new KeyIndex("domain", ["unitId"]);
  private readonly pagingDomainsByUnit = new KeyIndex("domain", ["unitId"], (d) => d.type === "paging");
  private readonly nestParentsByUnit = new KeyIndex("domain", ["unitId"], (d) => d.type === "paging" && d.config.nestParent);
  private readonly domainsByContainer = new KeyIndex("domain", ["containerId"]);
  private readonly faultsByUnit = new KeyIndex("fault", ["unitId"]);
  private readonly faultsByDevice = new KeyIndex("fault", ["deviceId"]);
  private readonly pasidsByDevice = new KeyIndex("pasid", ["deviceId"]);
  private readonly pasidsByDomain = new KeyIndex("pasid", ["domainId"]);
  private readonly iommufdByDevice = new KeyIndex("iommufd", ["deviceId"]);
  private readonly attachments = new DeviceAttachments(this.tables.group, this.tables.domain);
  private readonly mappingsByContainer = new KeyIndex("mapping", ["containerId"]);
  private readonly regionsByDevice = new KeyIndex("region", ["deviceId"]);
  /** Containers + domains + IOVA mappings per creating client, for the object quota. */
  private readonly objectsByOwner = new CountIndex(["container", "domain", "mapping"], "owner");
  private readonly pagingDomainsByDriver = new CountIndex(["domain"], "driver", (d) => (d as Domain).type === "paging");
  private readonly staticDomains = new StaticDomains();
  /** Each field declared unique (names), per kind. */
  private readonly unique = perKind(() => new Map<string, UniqueIndex<Kind>>());
  /** Every index above, by the kind whose rows it follows. */
  private readonly indexes = perKind((): RowIndex<Kind>[] => []);

  private readonly drivers: ReadonlyMap<string, IommuDriver>;
  /** The read-only view drivers get (see driver.ts): counts, never the model. */
  readonly usage: UnitUsage;

  private undo: UndoEntry[] = [];
  /** Changes made through putSurvivingRollback since the last takeChanges (undone only when an operation throws). */
  private surviving: UndoEntry[] = [];
  /** Changed rows since the last takeChanges, with their state before the first change. */
  private dirty: { [K in Kind]?: Map<number, Row | null> } = {};
  private events: EventDraft[] = [];

  /** `drivers`: the driver table (src/drivers/index.ts in the service); the core imports none. */
  constructor(drivers: DriverTable) {
    const add = (index: RowIndex<Kind>) => this.indexes[index.kind].push(index);
    for (const kind of KINDS) {
      for (const f of ENTITIES[kind].fields) {
        if (!f.unique) continue;
        const index = new UniqueIndex(kind, f.name);
        this.unique[kind].set(f.name, index);
        add(index);
      }
    }
    for (const index of [
      this.devicesByGroup, this.devicesByStrandedDomain, this.groupsByDomain, this.groupsByCoreDomain, this.groupsByUnit, this.domainsByUnit,
      this.pagingDomainsByUnit, this.nestParentsByUnit, this.domainsByContainer, this.faultsByUnit, this.faultsByDevice,
      this.attachments.byGroup, this.attachments.byDevice,
      this.pasidsByDevice, this.pasidsByDomain, this.iommufdByDevice,
      this.mappingsByContainer, this.regionsByDevice,
      this.staticDomains,
    ]) add(index as RowIndex<Kind>);
    for (const counts of [this.objectsByOwner, this.pagingDomainsByDriver]) {
      for (const kind of counts.kinds) add(counts.forKind(kind));
    }

    this.drivers = new Map(Object.entries(drivers));
    for (const [name, driver] of this.drivers) {
      if (driver.name !== name) throw new Error(`driver table: key ${name} holds driver ${driver.name}`);
    }
    this.usage = Object.freeze({
      unitsOf: (driver: string) => [...this.all("unit")].filter((u) => u.driver === driver),
      pagingDomainsBoundTo: (unitId: number) => this.pagingDomainsBoundTo(unitId),
      nestParentsBoundTo: (unitId: number) => this.nestParentsByUnit.size(unitId),
      pagingDomainsOf: (driver: string) => this.pagingDomainsByDriver.get(driver),
      defaultDomainsOn: (unitId: number) => this.attachments.populatedGroupsOn(unitId),
      domainsAttachedOn: (unitId: number) => this.domainsAttachedOn(unitId),
      devicesAttachedOn: (unitId: number, domainId: number) => this.devicesAttachedOn(unitId, domainId),
      pasidsOn: (deviceId: number) => this.pasidsOn(deviceId),
    } satisfies UnitUsage);
  }

  // ---- reads ------------------------------------------------------------

  /** The registered driver of that name; undefined: none is (see lookupDriver). */
  driver(name: string): IommuDriver | undefined {
    return this.drivers.get(name);
  }

  get<K extends Kind>(kind: K, id: number): Entities[K] | undefined {
    return this.tables[kind].get(id);
  }

  /**
   * The rows in id order. The table is read live, an id at a time, so rows
   * added or removed while a caller iterates do not break the walk (as with a
   * Map's iterator).
   */
  *all<K extends Kind>(kind: K): IterableIterator<Entities[K]> {
    const rows = this.tables[kind];
    for (let id = 0; id < rows.end; id++) {
      const row = rows.get(id);
      if (row !== undefined) yield row;
    }
  }

  count(kind: Kind): number {
    return this.counts[kind];
  }

  idByName(kind: NamedKind, name: string): number | undefined {
    return this.unique[kind].get("name")!.get(name);
  }

  devicesOf(groupId: number): Device[] {
    return [...this.devicesByGroup.get(groupId)].sort(byNumber).map((id) => this.tables.device.get(id)!);
  }

  /** How many devices the group has (O(1), unlike devicesOf). */
  deviceCountOf(groupId: number): number {
    return this.devicesByGroup.size(groupId);
  }

  groupsAttachedTo(domainId: number): Iterable<number> {
    return this.groupsByDomain.get(domainId);
  }

  attachedGroupCount(domainId: number): number {
    return this.groupsByDomain.size(domainId);
  }

  /** Devices left on this domain by a partial group attach (Device.strandedOnDomainId). */
  strandedDeviceCount(domainId: number): number {
    return this.devicesByStrandedDomain.size(domainId);
  }

  /** The host's settings: the stored row, or the defaults while none is stored. */
  host(): Entities["host"] {
    return this.tables.host.get(HOST_ID) ?? DEFAULT_HOST;
  }

  /** Groups whose default or blocking domain this is. */
  groupsOwningCoreDomain(domainId: number): Iterable<number> {
    return this.groupsByCoreDomain.get(domainId);
  }

  domainsBoundTo(unitId: number): Iterable<number> {
    return this.domainsByUnit.get(unitId);
  }

  /** Is this some group's default or blocking domain? */
  isCoreDomainOfAGroup(domainId: number): boolean {
    return this.groupsByCoreDomain.size(domainId) > 0;
  }

  groupsOnUnit(unitId: number): Iterable<number> {
    return this.groupsByUnit.get(unitId);
  }

  groupCountOnUnit(unitId: number): number {
    return this.groupsByUnit.size(unitId);
  }

  domainCountBoundTo(unitId: number): number {
    return this.domainsByUnit.size(unitId);
  }

  /** Paging domains finalised on the unit (ASIDs / context banks in use). */
  pagingDomainsBoundTo(unitId: number): number {
    return this.pagingDomainsByUnit.size(unitId);
  }

  /** Distinct paging and default domains with a device of the unit attached (VT-d domain IDs in use). */
  domainsAttachedOn(unitId: number): number {
    return this.attachments.refs.distinct(unitId);
  }

  /** Devices of the unit attached to the domain (paging and default domains only). */
  devicesAttachedOn(unitId: number, domainId: number): number {
    return this.attachments.refs.get(unitId, domainId);
  }

  /** The driver's static identity or blocked domain, if one was made. */
  staticDomainId(driver: string, type: StaticType): number | undefined {
    return this.staticDomains.first(driver, type);
  }

  /** The container's domains in allocation order (the search's order). */
  domainsOf(containerId: number): Domain[] {
    return [...this.domainsByContainer.get(containerId)].sort(byNumber).map((id) => this.tables.domain.get(id)!);
  }

  /** The container's IOVA mappings, in id order. */
  mappingsOf(containerId: number): Mapping[] {
    return [...this.mappingsByContainer.get(containerId)].sort(byNumber).map((id) => this.tables.mapping.get(id)!);
  }

  mappingCount(containerId: number): number {
    return this.mappingsByContainer.size(containerId);
  }

  /** The device's reserved regions, in id order. */
  regionsOf(deviceId: number): ReservedRegion[] {
    return [...this.regionsByDevice.get(deviceId)].sort(byNumber).map((id) => this.tables.region.get(id)!);
  }

  /** Containers, domains and IOVA mappings the client created (its automatic domains included). */
  ownedObjectCount(owner: string): number {
    return this.objectsByOwner.get(owner);
  }

  /**
   * The PASID attachments of a group (its pasid_array), in id order: made
   * through any of its devices, they are the whole group's.
   */
  pasidAttachmentsOfGroup(groupId: number): PasidAttachment[] {
    const ids: number[] = [];
    for (const deviceId of this.devicesByGroup.get(groupId)) ids.push(...this.pasidsByDevice.get(deviceId));
    return ids.sort(byNumber).map((id) => this.tables.pasid.get(id)!);
  }

  /** Does any device of the group have a PASID attached (is its pasid_array not empty)? */
  groupHasPasids(groupId: number): boolean {
    for (const deviceId of this.devicesByGroup.get(groupId)) if (this.pasidsByDevice.size(deviceId) > 0) return true;
    return false;
  }

  /** PASID attachments made through the device. */
  pasidCountOfDevice(deviceId: number): number {
    return this.pasidsByDevice.size(deviceId);
  }

  /** PASID attachments to the domain. */
  pasidCountOfDomain(domainId: number): number {
    return this.pasidsByDomain.size(domainId);
  }

  /** The device's iommufd device object, if it is bound to iommufd. */
  iommufdDeviceOf(deviceId: number): IommufdDevice | undefined {
    for (const id of this.iommufdByDevice.get(deviceId)) return this.tables.iommufd.get(id);
    return undefined;
  }

  /** The iommufd device objects of the group's bound devices, in device order. */
  iommufdDevicesOfGroup(groupId: number): IommufdDevice[] {
    const out: IommufdDevice[] = [];
    for (const device of this.devicesOf(groupId)) {
      const bound = this.iommufdDeviceOf(device.id);
      if (bound) out.push(bound);
    }
    return out;
  }

  /** See UnitUsage.pasidsOn. */
  private pasidsOn(deviceId: number): PasidInUse[] {
    const device = this.tables.device.get(deviceId);
    if (!device || device.maxPasids === 0) return [];
    return this.pasidAttachmentsOfGroup(device.groupId).map((a) => ({
      pasid: a.pasid, domainType: this.tables.domain.field(a.domainId, "type")!,
    }));
  }

  faultsOn(scope: { unitId: number } | { deviceId: number }): Fault[] {
    const ids = "unitId" in scope ? this.faultsByUnit.get(scope.unitId) : this.faultsByDevice.get(scope.deviceId);
    return [...ids].sort(byNumber).map((id) => this.tables.fault.get(id)!);
  }

  // ---- writes -----------------------------------------------------------

  /** The next id of a kind; ids are the service's, never reused. */
  allocateId(kind: Kind): number {
    return ++this.lastId[kind];
  }

  put<K extends Kind>(kind: K, row: Entities[K]): void {
    const before = this.tables[kind].get(row.id);
    this.undo.push({ kind, id: row.id, before, firstChange: !this.isDirty(kind, row.id) });
    this.write(kind, row.id, before, row);
  }

  remove(kind: Kind, id: number): void {
    const before = this.tables[kind].get(id);
    if (!before) return;
    this.undo.push({ kind, id, before, firstChange: !this.isDirty(kind, id) });
    this.write(kind, id, before, undefined);
  }

  /** A change that survives rollback (a consumed injected fault stays consumed). */
  putSurvivingRollback<K extends Kind>(kind: K, row: Entities[K] | null, id: number): void {
    const before = this.tables[kind].get(id);
    this.surviving.push({ kind, id, before, firstChange: !this.isDirty(kind, id) });
    this.write(kind, id, before, row ?? undefined);
  }

  /** A mark for undoSurvivingAfter. */
  survivingMark(): number {
    return this.surviving.length;
  }

  /**
   * Undoes the changes made to survive a rollback since the mark: an
   * operation that threw decided nothing, not even that a fault was consumed.
   */
  undoSurvivingAfter(mark: number): void {
    this.undoEntries(this.surviving, mark);
  }

  record(event: EventDraft): void {
    this.events.push(event);
  }

  savepoint(): number {
    return this.undo.length;
  }

  rollbackTo(savepoint: number): void {
    this.undoEntries(this.undo, savepoint);
  }

  private undoEntries(log: UndoEntry[], mark: number): void {
    while (log.length > mark) {
      const entry = log.pop()!;
      const current = this.tables[entry.kind].get(entry.id);
      this.write(entry.kind, entry.id, current, entry.before, !entry.firstChange);
      if (entry.firstChange) this.forgetDirty(entry.kind, entry.id);
    }
  }

  private isDirty(kind: Kind, id: number): boolean {
    return this.dirty[kind]?.has(id) ?? false;
  }

  private forgetDirty(kind: Kind, id: number): void {
    const dirty = this.dirty[kind];
    if (dirty === undefined) return;
    dirty.delete(id);
    if (dirty.size === 0) delete this.dirty[kind];
  }

  /**
   * Hands the changes since the last takeChanges to the store and forgets the undo
   * log: what is taken is committed as far as the model is concerned.
   */
  takeChanges(): ChangeSet {
    const rows = {} as Record<Kind, ReadonlyMap<number, RowChange<Row>>>;
    for (const kind of KINDS) {
      const dirty = this.dirty[kind];
      if (dirty === undefined) {
        rows[kind] = NO_CHANGES;
        continue;
      }
      const out = new Map<number, RowChange<Row>>();
      for (const [id, before] of dirty) out.set(id, { before, after: this.tables[kind].get(id) ?? null });
      rows[kind] = out;
    }
    const events = this.events;
    this.undo = [];
    this.surviving = [];
    this.dirty = {};
    this.events = [];
    return { rows: rows as ChangeSet["rows"], events };
  }

  /**
   * Puts back the state a taken change set started from, without marking
   * anything dirty: used when the store could not take the changes at all,
   * right after takeChanges, before anything else ran.
   */
  restore(changes: ChangeSet): void {
    // Every changed row out first, children first, then the rows as they
    // were, parents first: an index that reads another table (a group's
    // domain, a device's group) always finds the row it reads.
    for (const kind of [...KINDS].reverse()) {
      for (const id of changes.rows[kind].keys()) this.write(kind, id, this.tables[kind].get(id), undefined, false);
    }
    for (const kind of KINDS) {
      for (const [id, change] of changes.rows[kind] as ReadonlyMap<number, RowChange<Row>>) {
        if (change.before) this.write(kind, id, undefined, change.before, false);
      }
    }
  }

  /** How many events are recorded and not yet taken (a mark for forgetEventsAfter). */
  eventCount(): number {
    return this.events.length;
  }

  /** Drops the events recorded after a mark: an operation that threw decided nothing. */
  forgetEventsAfter(mark: number): void {
    this.events.length = Math.min(this.events.length, mark);
  }

  /** Drops the topology changes recorded after a mark: a refused operation created, changed and deleted nothing. */
  forgetTopologyEventsAfter(mark: number): void {
    const kept = this.events.slice(mark).filter((e) => e.kind == null);
    this.events.length = mark;
    this.events.push(...kept);
  }

  hasChanges(): boolean {
    return this.events.length > 0 || KINDS.some((k) => this.dirty[k] !== undefined);
  }

  /** Loading from storage: no undo, not dirty. */
  load<K extends Kind>(kind: K, row: Entities[K]): void {
    this.write(kind, row.id, this.tables[kind].get(row.id), row, false);
  }

  /** The highest id handed out per kind, including ones rolled back. */
  lastIds(): Readonly<Record<Kind, number>> {
    return { ...this.lastId };
  }

  /** Ids must not go back below what storage has seen (deleted rows included). */
  reserveIds(kind: Kind, lastId: number): void {
    this.lastId[kind] = Math.max(this.lastId[kind], lastId);
  }

  // ---- index maintenance ------------------------------------------------

  private write(kind: Kind, id: number, before: Row | undefined, after: Row | undefined, markDirty = true): void {
    const rows = this.tables[kind] as Rows<Row>;
    if (before) this.unindex(kind, before);
    if (after) {
      if (!rows.has(id)) this.counts[kind]++;
      rows.set(id, after);
      this.index(kind, after);
      if (id > this.lastId[kind]) this.lastId[kind] = id;
    } else if (rows.has(id)) {
      this.counts[kind]--;
      rows.delete(id);
    }
    if (markDirty) {
      const dirty = (this.dirty[kind] ??= new Map());
      if (!dirty.has(id)) dirty.set(id, before ?? null);
    }
  }

  private index(kind: Kind, row: Row): void {
    for (const index of this.indexes[kind]) index.update(row, true);
  }

  private unindex(kind: Kind, row: Row): void {
    for (const index of this.indexes[kind]) index.update(row, false);
  }
}

const DEFAULT_HOST = Object.freeze(Host.make({ id: HOST_ID }));

/** The taken rows of a kind nothing changed: shared, so an operation allocates maps only for what it touched. */
const NO_CHANGES: ReadonlyMap<number, never> = new Map<number, never>();

function byNumber(a: number, b: number): number {
  return a - b;
}
