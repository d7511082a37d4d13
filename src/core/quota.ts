// Bounds on what one caller can make the arbiter hold. Unset limits are
// unlimited, so the core and its tests need no configuration.
import type { Topology } from "./model.js";
import { fail, ok, type Result } from "./result.js";

export interface Limits {
  /** Containers + domains one client may have created (its automatic domains count). */
  readonly objectsPerClient?: number;
  /** Injected faults active at once, across the whole service. */
  readonly activeFaults?: number;
  /** The most attach ops one injected fault may fail (its `remaining`). */
  readonly faultCount?: number;
}

export const NO_LIMITS: Limits = Object.freeze({});

/**
 * What the service allows unless configured otherwise (src/config.ts): far
 * above what one VM manager needs, far below what exhausts the arbiter.
 */
export const DEFAULT_LIMITS = Object.freeze({ objectsPerClient: 1000, activeFaults: 1000, faultCount: 1000 }) satisfies Required<Limits>;

/** Room for one more object of `creator`'s (null: an administrator's, not counted). */
export function checkObjectQuota(model: Topology, creator: string | null, limits: Limits): Result<void> {
  const max = limits.objectsPerClient;
  if (creator === null || max === undefined) return ok(undefined);
  const held = model.ownedObjectCount(creator);
  return held < max
    ? ok(undefined)
    : fail("EDQUOT", "quota-exceeded", `${creator} has created ${held} containers and domains, the most a client may hold (${max}); delete some first`);
}

/** A fault of `count` attach failures fits the fault limits. */
export function checkFaultQuota(model: Topology, count: number, limits: Limits): Result<void> {
  if (limits.faultCount !== undefined && count > limits.faultCount) {
    return fail("EDQUOT", "quota-exceeded", `a fault may fail at most ${limits.faultCount} attach ops, asked for ${count}`);
  }
  const active = model.count("fault");
  if (limits.activeFaults !== undefined && active >= limits.activeFaults) {
    return fail("EDQUOT", "quota-exceeded", `${active} faults are active, the most the service holds (${limits.activeFaults}); delete or clear some first`);
  }
  return ok(undefined);
}
