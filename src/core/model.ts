// The in-memory topology the core rules run against. It is plain data with
// secondary indexes kept exact on every change, an undo log for all-or-nothing
// operations (savepoint / rollback, like the kernel putting devices back on
// their old domain), and a set of changed rows the store takes to persist.
//
// Nothing here does I/O. The store decides where the records come from and
// where changes go.
import { clearSlot, ColumnRows, ObjectRows, type Rows } from "./columns.js";
import type { DriverTable, IommuDriver, UnitUsage } from "./driver.js";
import {
  ENTITIES, KINDS, type Device, type Domain, type Entities, type EventDraft, type Fault, type Group, type Kind,
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

/** How many rows of the kinds hold each non-null value of `field`. */
class CountIndex {
  private readonly counts = new Map<string, number>();
  constructor(readonly kinds: readonly Kind[], private readonly field: string) {}
  forKind<K extends Kind>(kind: K): RowIndex<K> {
    return { kind, update: (row, add) => this.update((row as Record<string, unknown>)[this.field] as string | null, add) };
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
 * Paging domains attached per unit, counted (domain IDs in use): a group
 * counts when the domain it is attached to is a paging domain, which is in
 * another table, so this index reads the domain table it is given.
 */
class AttachedPagingDomains implements RowIndex<"group"> {
  readonly kind = "group";
  readonly counts = new RefCounts();
  constructor(private readonly domains: Rows<Domain>) {}
  update(g: Group, add: boolean): void {
    if (this.domains.field(g.domainId, "type") !== "paging") return;
    if (add) this.counts.add(g.unitId, g.domainId);
    else this.counts.delete(g.unitId, g.domainId);
  }
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
  private readonly groupsByDomain = new KeyIndex("group", ["domainId"]);
  /** A group's default and blocking domains: its core domains. */
  private readonly groupsByCoreDomain = new KeyIndex("group", ["defaultDomainId", "blockingDomainId"]);
  private readonly groupsByUnit = new KeyIndex("group", ["unitId"]);
  private readonly domainsByUnit = new KeyIndex("domain", ["unitId"]);
  private readonly pagingDomainsByUnit = new KeyIndex("domain", ["unitId"], (d) => d.type === "paging");
  private readonly domainsByContainer = new KeyIndex("domain", ["containerId"]);
  private readonly faultsByUnit = new KeyIndex("fault", ["unitId"]);
  private readonly faultsByDevice = new KeyIndex("fault", ["deviceId"]);
  private readonly pagingAttached = new AttachedPagingDomains(this.tables.domain);
  private readonly staticDomains = new StaticDomains();
  /** Containers + domains per creating client, for the object quota. */
  private readonly objectsByOwner = new CountIndex(["container", "domain"], "owner");
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
      this.devicesByGroup, this.groupsByDomain, this.groupsByCoreDomain, this.groupsByUnit, this.domainsByUnit,
      this.pagingDomainsByUnit, this.domainsByContainer, this.faultsByUnit, this.faultsByDevice, this.pagingAttached,
      this.staticDomains,
    ]) add(index as RowIndex<Kind>);
    for (const kind of this.objectsByOwner.kinds) add(this.objectsByOwner.forKind(kind));

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

  idByName(kind: NamedKind, name: string): number | undefined {
    return this.unique[kind].get("name")!.get(name);
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
    return this.pagingAttached.counts.distinct(unitId);
  }

  isPagingDomainAttachedOn(unitId: number, domainId: number): boolean {
    return this.pagingAttached.counts.has(unitId, domainId);
  }

  /** The driver's static identity or blocked domain, if one was made. */
  staticDomainId(driver: string, type: StaticType): number | undefined {
    return this.staticDomains.first(driver, type);
  }

  /** The container's domains in allocation order (the search's order). */
  domainsOf(containerId: number): Domain[] {
    return [...this.domainsByContainer.get(containerId)].sort(byNumber).map((id) => this.tables.domain.get(id)!);
  }

  /** Containers and domains the client created (its automatic domains included). */
  ownedObjectCount(owner: string): number {
    return this.objectsByOwner.get(owner);
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
    for (const index of this.indexes[kind]) index.update(row, true);
  }

  private unindex(kind: Kind, row: Row): void {
    for (const index of this.indexes[kind]) index.update(row, false);
  }
}

/** The taken rows of a kind nothing changed: shared, so an operation allocates maps only for what it touched. */
const NO_CHANGES: ReadonlyMap<number, never> = new Map<number, never>();

function byNumber(a: number, b: number): number {
  return a - b;
}
