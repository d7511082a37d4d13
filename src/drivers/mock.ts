// The iommufd selftest mock (drivers/iommu/iommufd/selftest.c): a device
// created "no dirty" cannot join a dirty-tracking domain.
import { fail, type IommuDriver } from "../core/driver.js";
import { OK } from "./rules.js";

export const mock: IommuDriver = {
  name: "mock",
  defaults: {
    addressWidth: 64, pageSizes: [4096], snoopControl: true,
    dirtyTracking: true, nesting: true, domainIds: 1 << 20, cpuPageSize: 4096,
    // iommufd_device_bind() never asks about a mock device's MSIs
    // (iommufd_selftest_is_mock_dev()): isolated, as far as it is concerned.
    isolatedMsi: true,
    coherentWalk: true, firstStage: true, bypass: true,
  },
  allocFlags: { dirtyTracking: true, nestParent: true },
  attachDev({ device, domain }) {
    if (domain.config.dirtyTracking && device.flags.noDirty) {
      return fail("dirty-tracking", `domain ${domain.id} tracks dirty pages; ${device.name} was created no-dirty`);
    }
    return OK;
  },
  // mock_domain_set_dev_pasid_nop() on the paging domains and the blocking
  // domain (its fault injection on PASID 1024 exercises replace, not modelled).
  pasid: {
    domainTypes: ["paging", "blocked"],
    setDevPasid: () => OK,
  },
  // mock_domain_capable() (selftest.c): coherent; dirty tracking unless the
  // device was created MOCK_FLAGS_DEVICE_NO_DIRTY. The selftest's IOMMU
  // always tracks dirty pages; here the unit's dirtyTracking capability says
  // so too (allocation checks it, core/domain-alloc.ts).
  capable({ unit, device }, cap) {
    switch (cap) {
      case "cache-coherency": return true;
      case "enforce-cache-coherency": return false;
      case "dirty-tracking": return unit.capabilities.dirtyTracking && !device.flags.noDirty;
    }
  },
  // mock_ops: the blocking domain is also the default domain
  // (mock_blocking_domain, mock_domain_nop_attach); there is no identity domain.
  blockedDomain: {},
};
