// What the store tells an observer (the service's metrics) about what it
// wrote: each committed batch, with the events and automatic domains of its
// operations. The store knows nothing of how they are counted; the core
// knows nothing of either: the facts are read off the changes an operation
// hands the store, with the model as it stands right after the operation.
import type { EventRecord } from "../core/entities.js";
import type { ChangeSet, Model } from "../core/model.js";

/** An event as committed, with the driver of what it acted on (null: none could be found). */
export interface CommittedEvent {
  readonly event: EventRecord;
  readonly driver: string | null;
}

/** A domain a container search allocated and kept. */
export interface AllocatedDomain {
  readonly driver: string;
  /** Which search: "kernel" or "qemu". */
  readonly search: string;
}

/** The facts of one operation, gathered when it is stamped and reported once its batch commits. */
export interface CommitFacts {
  readonly events: readonly CommittedEvent[];
  readonly domainsAllocated: readonly AllocatedDomain[];
}

export interface StoreObserver {
  /** A batch of `size` operations was written and is durable, `seconds` after its write began. */
  batchCommitted?(size: number, seconds: number): void;
  /** One operation's changes were committed (not yet necessarily synced). */
  operationCommitted?(facts: CommitFacts): void;
}

/**
 * The driver that decided the attempt: the one of the group's unit (or the
 * device's group's), whose ops the kernel calls to attach; else the
 * domain's. A domain allocated and freed in the same operation is gone from
 * the model but still in the changes.
 */
function driverOf(model: Model, changes: ChangeSet, event: EventRecord): string | null {
  const groupId = event.groupId ?? (event.deviceId !== null ? model.get("device", event.deviceId)?.groupId : undefined);
  const group = groupId != null ? model.get("group", groupId) : undefined;
  const unit = group ? model.get("unit", group.unitId) : undefined;
  if (unit) return unit.driver;
  if (event.domainId === null) return null;
  const domain = model.get("domain", event.domainId) ?? changes.rows.domain.get(event.domainId)?.before;
  return domain?.driver ?? null;
}

export function commitFacts(model: Model, changes: ChangeSet, events: readonly EventRecord[]): CommitFacts {
  const domainsAllocated: AllocatedDomain[] = [];
  for (const { before, after } of changes.rows.domain.values()) {
    // Marked automatic once the search keeps it (container-attach.ts).
    if (after && after.auto && after.search !== "none" && !before?.auto) domainsAllocated.push({ driver: after.driver, search: after.search });
  }
  return { events: events.map((event) => ({ event, driver: driverOf(model, changes, event) })), domainsAllocated };
}
