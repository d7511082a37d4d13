// Retry-on-EINVAL by the client (attachWithRetry) against a real server:
// soft refusals are skipped, a hard one stops the search with the trace so
// far, an allocated domain that fails to take the group is freed again; and
// the client's policy reaches the same domain as the server's own search.
import { afterEach, describe, expect, it } from "vitest";
import { ArbiterClient, ErrnoError, type Attempt, type CreateDomain, type Placement } from "../../src/client/index.js";
import { listeningArbiter, type Listening } from "../helpers/listening.js";

const servers: Listening[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function arbiter(): Promise<ArbiterClient> {
  const s = await listeningArbiter();
  servers.push(s);
  return new ArbiterClient({ baseUrl: s.base, retry: { maxAttempts: 1 } });
}

async function refusal(p: Promise<unknown>): Promise<ErrnoError> {
  const error = await p.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(ErrnoError);
  return error as ErrnoError;
}

/** The parts of an attempt both searches decide (the detail's wording is the server's). */
const decided = (a: Attempt) => ({ domainId: a.domainId, allocated: a.allocated, freed: a.freed, errno: a.errno, soft: a.soft, reason: a.reason });

describe("attachWithRetry", () => {
  it("skips the soft EINVALs and attaches the first domain that fits", async () => {
    const client = await arbiter();
    // Group 9 is behind dmar1: domain 11 enforces coherency (no snoop control there), 12 has 1 GiB pages.
    const placed = await client.attachWithRetry(9, [11, 12, 13]);
    expect(placed.domain.id).toBe(13);
    expect(placed.group).toMatchObject({ id: 9, domainId: 13 });
    expect(placed.allocated).toBe(false);
    expect(placed.attempts.map(decided)).toEqual([
      { domainId: 11, allocated: false, freed: false, errno: "EINVAL", soft: true, reason: "snoop-control" },
      { domainId: 12, allocated: false, freed: false, errno: "EINVAL", soft: true, reason: "page-size" },
      { domainId: 13, allocated: false, freed: false, errno: null, soft: false, reason: null },
    ]);
    expect(placed.attempts[2]).toMatchObject({ code: 0, detail: null });
  });

  it("stops at a hard refusal and throws it with the trace so far; later candidates are not tried", async () => {
    const client = await arbiter();
    await client.groups.attach(9, { domainId: 13 });
    // Now on a domain of someone's choosing: any attach is EBUSY (checked before compatibility), and 12 is not tried.
    const busy = await refusal(client.attachWithRetry(9, [11, 12]));
    expect(busy).toMatchObject({ errno: "EBUSY", soft: false, reason: "group-attached" });
    expect(busy.attempts!.map(decided)).toEqual([
      { domainId: 11, allocated: false, freed: false, errno: "EBUSY", soft: false, reason: "group-attached" },
    ]);
    await client.groups.detach(9, { domainId: 13 });

    const missing = await refusal(client.attachWithRetry(9, [11, 9999, 13]));
    expect(missing).toMatchObject({ errno: "ENOENT", reason: "no-such-domain" });
    expect(missing.attempts!.map(decided)).toEqual([
      { domainId: 11, allocated: false, freed: false, errno: "EINVAL", soft: true, reason: "snoop-control" },
      { domainId: 9999, allocated: false, freed: false, errno: "ENOENT", soft: false, reason: "no-such-domain" },
    ]);
    // 13 was never tried: the group is still on its default domain, and the log has no attempt on 13.
    expect((await client.groups.get(9)).domainId).toBe(9);
    const log = await client.events.page({ groupId: 9, limit: 1000 });
    expect(log.items.filter((e) => e.domainId === 13).map((e) => e.op)).toEqual(["attach-group", "detach-group"]);
  });

  it("with nothing to allocate, the last soft refusal is the answer", async () => {
    const client = await arbiter();
    const e = await refusal(client.attachWithRetry(9, [11, 12]));
    expect(e).toMatchObject({ errno: "EINVAL", soft: true, reason: "page-size" });
    expect(e.attempts!.map((a) => a.domainId)).toEqual([11, 12]);
  });

  it("allocates a domain when no candidate fits", async () => {
    const client = await arbiter();
    const placed = await client.attachWithRetry(9, [11], { allocate: { type: "paging", unitId: 2 } });
    expect(placed.allocated).toBe(true);
    expect(placed.domain).toMatchObject({ type: "paging", unitId: 2, attachedGroupCount: 1 });
    expect(placed.attempts.map(decided)).toEqual([
      { domainId: 11, allocated: false, freed: false, errno: "EINVAL", soft: true, reason: "snoop-control" },
      { domainId: placed.domain.id, allocated: true, freed: false, errno: null, soft: false, reason: null },
    ]);
  });

  it("frees the domain it allocated when that attach fails", async () => {
    const client = await arbiter();
    const before = (await client.stats()).objects.domain;
    let allocatedFor: readonly Attempt[] = [];
    const e = await refusal(client.attachWithRetry(9, [11], {
      // The allocated domain's attach fails: the device's next attach op gets ENOMEM (injected now,
      // after the candidates were tried, so that it is this attach that meets it).
      allocate: async (groupId, attempts) => {
        allocatedFor = [...attempts];
        const group = await client.groups.get(groupId);
        await client.faults.inject({ deviceId: group.deviceIds[0]!, errno: "ENOMEM", count: 1 });
        return { type: "paging", unitId: group.unitId };
      },
    }));
    expect(allocatedFor.map((a) => a.domainId)).toEqual([11]);
    expect(e).toMatchObject({ errno: "ENOMEM", soft: false, reason: "injected-fault" });
    const last = e.attempts!.at(-1)!;
    expect(decided(last)).toEqual({ domainId: last.domainId, allocated: true, freed: true, errno: "ENOMEM", soft: false, reason: "injected-fault" });
    // Freed: the id names nothing now, and no domain was left behind.
    expect(await refusal(client.domains.get(last.domainId))).toMatchObject({ errno: "ENOENT" });
    expect((await client.stats()).objects.domain).toBe(before);
    expect((await client.groups.get(9)).domainId).toBe(9);
  });

  it("a failed allocation adds nothing to the trace", async () => {
    const client = await arbiter();
    const e = await refusal(client.attachWithRetry(9, [11], { allocate: { type: "paging", unitId: 9999 } }));
    expect(e).toMatchObject({ errno: "ENOENT", reason: "no-such-unit" });
    expect(e.attempts!.map((a) => a.domainId)).toEqual([11]);
  });
});

describe("the client's policy and the server's search", () => {
  /**
   * iommufd's automatic-domain search done by the client: the domains this
   * policy allocated in the container, in allocation order, then a new
   * paging domain for the group's unit in the container, enforcing cache
   * coherency where the unit can (as iommufd does).
   */
  async function clientPolicy(client: ArbiterClient, pool: number[], containerId: number, groupId: number): Promise<Placement> {
    const allocate = async (id: number): Promise<CreateDomain> => {
      const group = await client.groups.get(id);
      const unit = await client.units.get(group.unitId);
      return { type: "paging", unitId: unit.id, containerId, config: { enforceCacheCoherency: unit.capabilities.snoopControl } };
    };
    const placed = await client.attachWithRetry(groupId, pool, { allocate });
    if (placed.allocated) pool.push(placed.domain.id);
    return placed;
  }

  it("reach the same domains for the same groups from the same starting state", async () => {
    const [a, b] = [await arbiter(), await arbiter()];
    const pool: number[] = [];
    // dmar0's group 2, then dmar1's group 9 (refused by the first domain: no snoop control), then dmar0's group 5.
    for (const groupId of [2, 9, 5]) {
      const server = await a.attachThroughContainer(1, groupId);
      const client = await clientPolicy(b, pool, 1, groupId);
      expect(client.domain.id).toBe(server.domain.id);
      expect(client.allocated).toBe(server.allocated);
      expect(client.attempts.map(decided)).toEqual(server.attempts.map(decided));
      const shape = (p: Placement) => {
        const { addressWidth, pageSizes, enforceCacheCoherency, dirtyTracking } = p.domain.config;
        return { addressWidth, pageSizes, enforceCacheCoherency, dirtyTracking, driver: p.domain.driver };
      };
      expect(shape(client)).toEqual(shape(server));
    }
    // Group 9 needed a second domain, found after one soft refusal; group 5 joined the first.
    const nine = await b.groups.get(9);
    const five = await b.groups.get(5);
    expect(nine.domainId).not.toBe(five.domainId);
    expect(pool).toHaveLength(2);
  });
});
