// Representations sent to clients, built from the model inside the same
// synchronous step as the operation they describe, so they are consistent.
// Each carries its `version` (src/http/version.ts): a digest of the rest of
// the representation, sent as the ETag and compared with If-Match.
import {
  HOST_ID, type Container, type Device, type Domain, type EventRecord, type Fault, type Group, type Host, type IommufdDevice,
  type Mapping, type PasidAttachment, type ReservedRegion, type Unit,
} from "../core/entities.js";
import { errnoCode } from "../core/errno.js";
import type { Model } from "../core/model.js";
import type { ErrnoError } from "../core/result.js";
import { versionerOf } from "./version.js";

// One versioner per kind: each sees records of one shape.
const unitVersion = versionerOf();
const deviceVersion = versionerOf();
const faultVersion = versionerOf();
const groupVersion = versionerOf();
const domainVersion = versionerOf();
const containerVersion = versionerOf();
const pasidVersion = versionerOf();
const mappingVersion = versionerOf();
const regionVersion = versionerOf();
const iommufdVersion = versionerOf();
const hostVersion = versionerOf();

export const presentUnit = (u: Unit) => unitVersion(u);
export const presentDevice = (d: Device) => deviceVersion(d);
export const presentFault = (f: Fault) => faultVersion(f);
export const presentPasid = (p: PasidAttachment) => pasidVersion(p);
export const presentMapping = (m: Mapping) => mappingVersion(m);
export const presentRegion = (r: ReservedRegion) => regionVersion(r);
export const presentIommufd = (i: IommufdDevice) => iommufdVersion(i);
export const presentHost = (h: Host) => hostVersion(h);

export function presentGroup(model: Model, g: Group) {
  return groupVersion({ ...g, deviceIds: model.devicesOf(g.id).map((d) => d.id) });
}

export function presentDomain(model: Model, d: Domain) {
  // A count, not the ids: a domain may serve thousands of groups.
  return domainVersion({ ...d, attachedGroupCount: model.attachedGroupCount(d.id) });
}

export function presentContainer(model: Model, c: Container) {
  return containerVersion({ ...c, domainIds: model.domainsOf(c.id).map((d) => d.id) });
}

export type VersionedKind = "unit" | "device" | "group" | "domain" | "container" | "fault" | "pasid" | "iommufd" | "mapping" | "region" | "host";

/** The version a resource has now, as its representation would show it; null if it does not exist. */
export function currentVersion(model: Model, kind: VersionedKind, id: number): string | null {
  switch (kind) {
    case "unit": { const r = model.get(kind, id); return r ? presentUnit(r).version : null; }
    case "device": { const r = model.get(kind, id); return r ? presentDevice(r).version : null; }
    case "fault": { const r = model.get(kind, id); return r ? presentFault(r).version : null; }
    case "pasid": { const r = model.get(kind, id); return r ? presentPasid(r).version : null; }
    case "iommufd": { const r = model.get(kind, id); return r ? presentIommufd(r).version : null; }
    case "group": { const r = model.get(kind, id); return r ? presentGroup(model, r).version : null; }
    case "domain": { const r = model.get(kind, id); return r ? presentDomain(model, r).version : null; }
    case "container": { const r = model.get(kind, id); return r ? presentContainer(model, r).version : null; }
    case "mapping": { const r = model.get(kind, id); return r ? presentMapping(r).version : null; }
    case "region": { const r = model.get(kind, id); return r ? presentRegion(r).version : null; }
    // One row, read as the defaults while none is stored: it always exists.
    case "host": return id === HOST_ID ? presentHost(model.host()).version : null;
  }
}

/** The ETag option of an answer that is one resource. */
export const versionTag = (value: { version: string }) => value.version;

export function presentEvent(e: EventRecord) {
  return { ...e, at: e.at.toISOString() };
}

/** A group with the domain it is on now. */
export function presentPlacement(model: Model, groupId: number) {
  const group = model.get("group", groupId)!;
  return { group: presentGroup(model, group), domain: presentDomain(model, model.get("domain", group.domainId)!) };
}

/** A refusal a must-succeed move overrode (see schemas/common.ts Warning). */
export function presentWarning(warning: ErrnoError) {
  const deviceId = warning.ids?.deviceId;
  const shown = { errno: warning.errno, code: errnoCode(warning.errno), reason: warning.reason, detail: warning.detail };
  return deviceId === undefined ? shown : { ...shown, deviceId };
}

/** The answer to attach / replace / detach / claim / release. */
export function presentMove(model: Model, moved: { groupId: number; changed: boolean; warning?: ErrnoError }) {
  const placed = { changed: moved.changed, ...presentPlacement(model, moved.groupId) };
  return moved.warning ? { ...placed, warning: presentWarning(moved.warning) } : placed;
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
