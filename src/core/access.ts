// Who may act on what: a group's DMA owner, and the client that created a
// domain or container. Administrators may act on anything; in open mode
// nobody is an administrator and ownership works by the names requests give.
import type { Caller } from "./caller.js";
import type { Container, Domain, Group } from "./entities.js";
import { fail, ok, type Result } from "./result.js";

/** While a group has a DMA owner, only that owner (or an administrator) may move it. */
export function checkOwner(group: Group, caller: Caller): Result<void> {
  if (group.owner !== null && caller.owner !== group.owner && !caller.admin) {
    return fail("owned-by-other", `group ${group.name} is owned by ${group.owner}`, { groupId: group.id });
  }
  return ok(undefined);
}

/**
 * A client may use, change and remove the domains and containers it created
 * and the ones nobody owns (an administrator's); another client's are off limits.
 */
export function checkCreator(kind: "domain" | "container", object: Domain | Container, caller: Caller): Result<void> {
  if (object.owner !== null && caller.owner !== object.owner && !caller.admin) {
    const label = kind === "domain" ? `domain ${object.id}` : `container ${(object as Container).name}`;
    return fail("owned-by-other", `${label} belongs to ${object.owner}`, { [`${kind}Id`]: object.id });
  }
  return ok(undefined);
}

/** The creator recorded on a new domain or container: administrators' objects are everyone's. */
export function creatorOf(caller: Caller): string | null {
  return caller.admin ? null : caller.owner;
}
