// Found by the invariant checks (test/helpers/invariants.ts): a group with no
// devices used to attach without any driver check, because the driver's
// finalise (SMMU ASID / context bank, instance binding) and its domain-ID
// accounting run per device. The kernel has no empty groups; the arbiter now
// refuses to move one anywhere but its own core domains (ENODEV group-empty),
// and the invariants hold.
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { openApp, tempDbFile } from "../helpers/app.js";
import { Client } from "../helpers/http.js";
import { checkInvariants, readSnapshot } from "../helpers/invariants.js";

describe("groups without devices", () => {
  const { dir, file } = tempDbFile();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("an empty group cannot be attached (ENODEV group-empty), so no domain lands on two SMMU instances and no VT-d unit goes past its domain IDs", async () => {
    const { app } = await openApp(file);
    const c = new Client(app);
    const smmu0 = await c.unit({ driver: "arm-smmu-v3" });
    const smmu1 = await c.unit({ driver: "arm-smmu-v3" });
    const empty = await c.group(smmu1.id);
    const { group } = await c.groupWith(smmu0.id);
    const unbound = await c.domain({ driver: "arm-smmu-v3" });
    const refused = await c.post(`/v1/groups/${empty.id}/attach`, { domainId: unbound.id });
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ errno: "ENODEV", reason: "group-empty", soft: false, groupId: empty.id });
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: unbound.id });

    const vtd = await c.unit({ driver: "intel-vtd", capabilities: { domainIds: 1 } });
    for (let i = 0; i < 2; i++) {
      const g = await c.group(vtd.id);
      const d = await c.domain({ driver: "intel-vtd" });
      expect((await c.post(`/v1/groups/${g.id}/attach`, { domainId: d.id })).status).toBe(422);
    }
    await app.close();

    expect(checkInvariants(readSnapshot(file))).toEqual([]);
  });
});
