// The drivers' static domains: struct iommu_ops.identity_domain and
// .blocked_domain are one domain per driver, shared by every unit and group,
// never allocated or freed (__iommu_domain_alloc hands back the same one for
// every IOMMU_DOMAIN_IDENTITY or IOMMU_DOMAIN_BLOCKED request). Here each is
// one domain row, named after its driver and made the first time a client
// asks for it; asking again answers the same row. A driver without one
// (IommuDriver.identityDomain / blockedDomain absent) answers EOPNOTSUPP, as
// __iommu_domain_alloc does when no op can make the type.
//
// A group's own blocking domain (claim) stays a row of the group: the
// kernel's group->blocking_domain is the driver's static blocked domain
// where there is one, and a blocked domain holds nothing, so one row per
// group answers the same.
import type { IommuDriver } from "./driver.js";
import { shapedConfig } from "./domain-config.js";
import { Domain, type DomainConfig } from "./entities.js";
import type { Model } from "./model.js";
import { fail, ok, type Result } from "./result.js";

export type StaticType = "identity" | "blocked";

export function staticDomainName(driver: string, type: StaticType): string {
  return `${driver}-${type}`;
}

/** Is this row a driver's static domain (not a group's blocking domain, not one stored before static domains existed)? */
export function isStaticDomain(d: Pick<Domain, "type" | "driver" | "unitId" | "name">): boolean {
  return (d.type === "identity" || d.type === "blocked") && d.unitId === null && d.name === staticDomainName(d.driver, d.type);
}

/** What a request for a static domain may say: a name, if any, must be the domain's; it has no configuration and no container. */
export interface StaticRequest {
  readonly name?: string | null;
  readonly containerId?: number;
  readonly config?: Partial<DomainConfig>;
}

/** The driver's static domain of `type`, made now if nobody asked for it before. */
export function staticDomain(model: Model, driver: IommuDriver, type: StaticType, request: StaticRequest = {}): Result<Domain> {
  const ops = type === "identity" ? driver.identityDomain : driver.blockedDomain;
  if (!ops) return fail("unsupported", `${driver.name} has no static ${type} domain`);
  const name = staticDomainName(driver.name, type);
  if (request.name != null && request.name !== name) {
    return fail("invalid-argument", `the static ${type} domain of ${driver.name} is named ${name}`);
  }
  if (request.containerId !== undefined) {
    return fail("invalid-argument", `the static ${type} domain of ${driver.name} belongs to no container`);
  }
  if (request.config !== undefined && Object.keys(request.config).length > 0) {
    return fail("invalid-argument", `the static ${type} domain of ${driver.name} has no configuration`);
  }
  const id = model.staticDomainId(driver.name, type);
  if (id !== undefined) return ok(model.get("domain", id)!);
  const domain = Domain.make({
    id: model.allocateId("domain"), name, type, driver: driver.name,
    // No page table: the shape is the driver's, for the representation only.
    config: shapedConfig(driver.defaults),
  });
  model.put("domain", domain);
  return ok(domain);
}
