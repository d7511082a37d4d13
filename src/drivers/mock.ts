// The iommufd selftest mock (drivers/iommu/iommufd/selftest.c): a device
// created "no dirty" cannot join a dirty-tracking domain.
import { fail, type IommuDriver } from "../core/driver.js";
import { OK } from "./rules.js";

export const mock: IommuDriver = {
  name: "mock",
  defaults: {
    addressWidth: 64, pageSizes: [4096], snoopControl: true,
    dirtyTracking: true, nesting: true, domainIds: 1 << 20, cpuPageSize: 4096,
    coherentWalk: true, firstStage: true, bypass: true,
  },
  allocFlags: { dirtyTracking: true, nestParent: true },
  attachDev({ device, domain }) {
    if (domain.config.dirtyTracking && device.flags.noDirty) {
      return fail("dirty-tracking", `domain ${domain.id} tracks dirty pages; ${device.name} was created no-dirty`);
    }
    return OK;
  },
  // mock_ops: the blocking domain is also the default domain
  // (mock_blocking_domain, mock_domain_nop_attach); there is no identity domain.
  blockedDomain: {},
};
