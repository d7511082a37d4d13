// Representations sent to clients, built from the model inside the same
// synchronous step as the operation they describe, so they are consistent.
import type { Container, Device, Domain, EventRecord, Fault, Group, Unit } from "../core/entities.js";
import type { Topology } from "../core/model.js";

export const presentUnit = (u: Unit) => u;
export const presentDevice = (d: Device) => d;
export const presentFault = (f: Fault) => f;

export function presentGroup(model: Topology, g: Group) {
  return { ...g, deviceIds: model.devicesOf(g.id).map((d) => d.id) };
}

export function presentDomain(model: Topology, d: Domain) {
  // A count, not the ids: a domain may serve thousands of groups.
  return { ...d, attachedGroupCount: model.attachedGroupCount(d.id) };
}

export function presentContainer(model: Topology, c: Container) {
  return { ...c, domainIds: model.domainsOf(c.id).map((d) => d.id) };
}

export function presentEvent(e: EventRecord) {
  return { ...e, at: e.at.toISOString() };
}

/** A group with the domain it is on now. */
export function presentPlacement(model: Topology, groupId: number) {
  const group = model.get("group", groupId)!;
  return { group: presentGroup(model, group), domain: presentDomain(model, model.get("domain", group.domainId)!) };
}

/** The answer to attach / replace / detach / claim / release. */
export function presentMove(model: Topology, moved: { groupId: number; changed: boolean }) {
  return { changed: moved.changed, ...presentPlacement(model, moved.groupId) };
}

/**
 * One page of rows in id order, starting after the cursor. When the caller
 * knows the rows come in id order (a whole table, which the model keeps by id), the
 * walk stops as soon as the page is full: a first page of 100 from 100,000
 * rows reads 101 of them. Otherwise it collects and sorts.
 */
export function page<T extends { id: number }, V>(
  rows: Iterable<T>, query: { after?: number; limit?: number }, present: (row: T) => V, inIdOrder = false,
): { items: V[]; next: number | null } {
  const after = query.after ?? 0;
  const limit = query.limit ?? 100;
  const picked: T[] = [];
  for (const row of rows) {
    if (row.id > after) picked.push(row);
    if (inIdOrder && picked.length > limit) break;
  }
  if (!inIdOrder) picked.sort((a, b) => a.id - b.id);
  const slice = picked.slice(0, limit);
  return { items: slice.map(present), next: picked.length > slice.length ? slice[slice.length - 1]!.id : null };
}
