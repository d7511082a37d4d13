// The in-memory topology the core rules run against. It is plain data with
// secondary indexes kept exact on every change, an undo log for all-or-nothing
// operations (savepoint / rollback, like the kernel putting devices back on
// their old domain), and a set of changed rows the store takes to persist.
//
// Nothing here does I/O. The store decides where the records come from and
// where changes go.
import { clearSlot, DeviceColumns, DomainColumns, GroupColumns, ObjectRows, type Rows } from "./columns.js";
import type { DriverTable, IommuDriver, UnitUsage } from "./driver.js";
import type {
  Container, Device, Domain, EventDraft, Fault, Group, Unit,
} from "./entities.js";

export interface Entities {
  unit: Unit;
  container: Container;
  domain: Domain;
  group: Group;
  device: Device;
  fault: Fault;
}
export type Kind = keyof Entities;

/** Parent-before-child order: inserts go this way, deletes the other way. */
export const KINDS: readonly Kind[] = ["unit", "container", "domain", "group", "device", "fault"];

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
 * Set is made only for the second: at 100,000 groups that is tens of MB less.
 *
 * Keys are ids (dense positive integers, never reused), so the entries live in
 * a plain array indexed by key rather than a Map: a Map entry costs ~28-36
 * bytes plus power-of-two growth (old and new tables coexist while it grows),
 * an array slot 8. With the tables below also indexed by id rather than Maps,
 * loading 50,000 groups + 50,000 devices + 50,004 domains left 8 MB less heap
 * after GC (46.9 -> 38.8 MB), and the model's inserts got no slower.
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

/** unitId -> domainId -> number of groups of that unit attached to it. */
class RefCounts {
  private readonly map = new Map<number, Map<number, number>>();
  add(unitId: number, domainId: number): void {
    let inner = this.map.get(unitId);
    if (!inner) this.map.set(unitId, (inner = new Map()));
    inner.set(domainId, (inner.get(domainId) ?? 0) + 1);
  }
  delete(unitId: number, domainId: number): void {
    const inner = this.map.get(unitId);
    const n = inner?.get(domainId);
    if (!inner || n === undefined) return;
    if (n <= 1) inner.delete(domainId);
    else inner.set(domainId, n - 1);
  }
  distinct(unitId: number): number {
    return this.map.get(unitId)?.size ?? 0;
  }
  has(unitId: number, domainId: number): boolean {
    return this.map.get(unitId)?.has(domainId) ?? false;
  }
}

export class Model {
  /**
   * Rows by id (ids are dense and never reused, see SetIndex for why indexed by
   * id and not a Map). Id order is the storage order, so all() needs no
   * sorting, and a row a rollback puts back lands in its place. Groups,
   * devices and domains are stored column-wise (see columns.ts: 13 MB less
   * heap at 50,000 groups), so reading one of them builds a fresh record.
   */
  private readonly domains = new DomainColumns();
  private readonly tables: { [K in Kind]: Rows<Entities[K]> } = {
    unit: new ObjectRows(), container: new ObjectRows(), domain: this.domains,
    group: new GroupColumns(), device: new DeviceColumns(), fault: new ObjectRows(),
  };
  /** Rows per table (a table's end counts the empty slots too). */
  private readonly counts: Record<Kind, number> = {
    unit: 0, container: 0, domain: 0, group: 0, device: 0, fault: 0,
  };
  private readonly lastId: Record<Kind, number> = {
    unit: 0, container: 0, domain: 0, group: 0, device: 0, fault: 0,
  };
  private readonly names = {
    unit: new Map<string, number>(), container: new Map<string, number>(),
    group: new Map<string, number>(), device: new Map<string, number>(),
  };
  private readonly devicesByGroup = new SetIndex();
  private readonly groupsByDomain = new SetIndex();
  private readonly groupsByCoreDomain = new SetIndex();
  private readonly groupsByUnit = new SetIndex();
  private readonly domainsByUnit = new SetIndex();
  private readonly pagingDomainsByUnit = new SetIndex();
  private readonly domainsByContainer = new SetIndex();
  private readonly faultsByUnit = new SetIndex();
  private readonly faultsByDevice = new SetIndex();
  private readonly pagingAttached = new RefCounts();
  /** Containers + domains per creating client, for the object quota. */
  private readonly objectsByOwner = new Map<string, number>();

  private readonly drivers: ReadonlyMap<string, IommuDriver>;
  /** The read-only view drivers get (see driver.ts): counts, never the model. */
  readonly usage: UnitUsage;

  private undo: UndoEntry[] = [];
  /** Changed rows since the last takeChanges, with their state before the first change. */
  private dirty: { [K in Kind]?: Map<number, Row | null> } = {};
  private events: EventDraft[] = [];

  /** `drivers`: the driver table (src/drivers/index.ts in the service); the core imports none. */
  constructor(drivers: DriverTable) {
    this.drivers = new Map(Object.entries(drivers));
    for (const [name, driver] of this.drivers) {
      if (driver.name !== name) throw new Error(`driver table: key ${name} holds driver ${driver.name}`);
    }
    this.usage = Object.freeze({
      pagingDomainsBoundTo: (unitId: number) => this.pagingDomainsBoundTo(unitId),
      pagingDomainsAttachedOn: (unitId: number) => this.pagingDomainsAttachedOn(unitId),
      isPagingDomainAttachedOn: (unitId: number, domainId: number) => this.isPagingDomainAttachedOn(unitId, domainId),
    });
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

  idByName(kind: keyof Model["names"], name: string): number | undefined {
    return this.names[kind].get(name);
  }

  devicesOf(groupId: number): Device[] {
    return [...this.devicesByGroup.get(groupId)].sort(byNumber).map((id) => this.tables.device.get(id)!);
  }

  groupsAttachedTo(domainId: number): Iterable<number> {
    return this.groupsByDomain.get(domainId);
  }

  attachedGroupCount(domainId: number): number {
    return this.groupsByDomain.size(domainId);
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

  /** Distinct paging domains attached to groups of the unit (domain IDs in use). */
  pagingDomainsAttachedOn(unitId: number): number {
    return this.pagingAttached.distinct(unitId);
  }

  isPagingDomainAttachedOn(unitId: number, domainId: number): boolean {
    return this.pagingAttached.has(unitId, domainId);
  }

  /** The container's domains in allocation order (the search's order). */
  domainsOf(containerId: number): Domain[] {
    return [...this.domainsByContainer.get(containerId)].sort(byNumber).map((id) => this.domains.get(id)!);
  }

  /** Containers and domains the client created (its automatic domains included). */
  ownedObjectCount(owner: string): number {
    return this.objectsByOwner.get(owner) ?? 0;
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
    this.write(kind, id, before, row ?? undefined);
  }

  record(event: EventDraft): void {
    this.events.push(event);
  }

  savepoint(): number {
    return this.undo.length;
  }

  rollbackTo(savepoint: number): void {
    while (this.undo.length > savepoint) {
      const entry = this.undo.pop()!;
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
    for (const kind of [...KINDS].reverse()) {
      for (const [id, change] of changes.rows[kind] as ReadonlyMap<number, RowChange<Row>>) {
        this.write(kind, id, this.tables[kind].get(id), change.before ?? undefined, false);
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
    this.reindex(kind, row, true);
  }

  private unindex(kind: Kind, row: Row): void {
    this.reindex(kind, row, false);
  }

  private countOwned(owner: string | null, add: boolean): void {
    if (owner === null) return;
    const n = (this.objectsByOwner.get(owner) ?? 0) + (add ? 1 : -1);
    if (n > 0) this.objectsByOwner.set(owner, n);
    else this.objectsByOwner.delete(owner);
  }

  private reindex(kind: Kind, row: Row, add: boolean): void {
    const op = add ? "add" : "delete";
    switch (kind) {
      case "unit":
      case "container": {
        const r = row as Unit | Container;
        if (add) this.names[kind].set(r.name, r.id);
        else this.names[kind].delete(r.name);
        if (kind === "container") this.countOwned((r as Container).owner, add);
        break;
      }
      case "group": {
        const g = row as Group;
        if (add) this.names.group.set(g.name, g.id);
        else this.names.group.delete(g.name);
        this.groupsByDomain[op](g.domainId, g.id);
        this.groupsByCoreDomain[op](g.defaultDomainId, g.id);
        this.groupsByCoreDomain[op](g.blockingDomainId, g.id);
        this.groupsByUnit[op](g.unitId, g.id);
        if (this.domains.typeOf(g.domainId) === "paging") this.pagingAttached[op](g.unitId, g.domainId);
        break;
      }
      case "device": {
        const d = row as Device;
        if (add) this.names.device.set(d.name, d.id);
        else this.names.device.delete(d.name);
        this.devicesByGroup[op](d.groupId, d.id);
        break;
      }
      case "domain": {
        const d = row as Domain;
        this.domainsByUnit[op](d.unitId, d.id);
        if (d.type === "paging") this.pagingDomainsByUnit[op](d.unitId, d.id);
        this.domainsByContainer[op](d.containerId, d.id);
        this.countOwned(d.owner, add);
        break;
      }
      case "fault": {
        const f = row as Fault;
        this.faultsByUnit[op](f.unitId, f.id);
        this.faultsByDevice[op](f.deviceId, f.id);
        break;
      }
    }
  }
}

/** The taken rows of a kind nothing changed: shared, so an operation allocates maps only for what it touched. */
const NO_CHANGES: ReadonlyMap<number, never> = new Map<number, never>();

function byNumber(a: number, b: number): number {
  return a - b;
}
