// If-Match (RFC 9110 §13.1.1) for optimistic concurrency. The condition is
// evaluated inside the store's synchronous step, against the state the
// operation itself sees, so no other write can come between the check and
// the change.
import type { Model } from "../core/model.js";
import { fail, ok, type Result } from "../core/result.js";
import type { Parsed } from "./problem.js";
import { currentVersion, type VersionedKind } from "./present.js";

/** A parsed If-Match: any current representation, or a list of strong tags. */
export type IfMatch = { readonly any: true } | { readonly any: false; readonly tags: readonly string[] };

/**
 * The version If-Match is compared with: the target resource's version, or
 * null when it does not exist. A route without a target (a collection) has
 * no entity tag: only `If-Match: *` passes there.
 */
export type Target = (model: Model) => string | null;

// entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text
const ENTITY_TAG = /[ \t]*(W\/)?"([\x21\x23-\x7E\x80-\xFF]*)"[ \t]*(?:,|$)/y;
const EMPTY_ELEMENT = /[ \t]*,/y;

/** null without the header; refused when it is not `*` or a list of entity tags. */
export function parseIfMatch(header: string | undefined): Parsed<IfMatch | null> {
  if (header === undefined) return { ok: true, value: null };
  if (header.trim() === "*") return { ok: true, value: { any: true } };
  const tags: string[] = [];
  let at = 0;
  let seen = 0;
  while (at < header.length) {
    EMPTY_ELEMENT.lastIndex = at;
    if (EMPTY_ELEMENT.test(header)) { at = EMPTY_ELEMENT.lastIndex; continue; }
    ENTITY_TAG.lastIndex = at;
    const m = ENTITY_TAG.exec(header);
    if (!m) break;
    seen++;
    // Strong comparison (RFC 9110 §8.8.3.2): a weak tag never matches.
    if (!m[1]) tags.push(m[2]!);
    at = ENTITY_TAG.lastIndex;
  }
  if (at < header.length || seen === 0) {
    return {
      ok: false, field: "headers.if-match", reason: "invalid-request",
      message: `must be * or a comma-separated list of quoted entity tags, got ${JSON.stringify(header.slice(0, 100))}`,
    };
  }
  return { ok: true, value: { any: false, tags } };
}

/** The condition, judged against the target's version now (undefined: the route has no target). */
export function checkIfMatch(ifMatch: IfMatch | null, current: string | null | undefined): Result<void> {
  if (ifMatch === null) return ok(undefined);
  if (current === null) return fail("precondition-failed", "If-Match: the resource does not exist");
  if (ifMatch.any) return ok(undefined);
  if (current === undefined) return fail("precondition-failed", "If-Match: this resource has no entity tag; only * matches");
  if (ifMatch.tags.includes(current)) return ok(undefined);
  return fail("precondition-failed", `If-Match does not match the current version "${current}"; read the resource again and decide anew`);
}

/** The target of PATCH/DELETE /<kind>/:id: that resource. */
export function resource(kind: VersionedKind, id: number): Target {
  return (model) => currentVersion(model, kind, id);
}

/** The target of a move through a device: the group it moves. */
export function groupOfDevice(deviceId: number): Target {
  return (model) => {
    const device = model.get("device", deviceId);
    return device ? currentVersion(model, "group", device.groupId) : null;
  };
}
