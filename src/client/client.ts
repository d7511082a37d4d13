// A typed method for every route of /v1. Each takes the body or query the
// route's schema declares and answers the representation it serializes; a
// refusal rejects with ErrnoError or ProblemError (errors.ts); every method
// takes CallOptions (an AbortSignal, If-Match, an Idempotency-Key).
import { attachThroughContainer, attachWithRetry, type AttachWithRetryOptions, type Placement } from "./attach-with-retry.js";
import { followEvents, type FollowOptions } from "./events.js";
import { Transport, type Answer, type CallOptions, type Method, type Request, type TransportOptions } from "./transport.js";
import type * as T from "./types.js";

export type ClientOptions = TransportOptions;

type Query = Request["query"];

export class ArbiterClient {
  readonly transport: Transport;

  constructor(options: ClientOptions | string) {
    this.transport = new Transport(typeof options === "string" ? { baseUrl: options } : options);
  }

  /** The whole answer (status and headers too), for callers that need more than the body. */
  request<R>(method: Method, path: string, options: CallOptions & { query?: Query; body?: unknown } = {}): Promise<Answer<R>> {
    return this.transport.send<R>({ ...options, method, path });
  }

  private async call<R>(method: Method, path: string, options: CallOptions & { query?: Query; body?: unknown } = {}): Promise<R> {
    return (await this.request<R>(method, path, options)).body;
  }

  private async remove(path: string, options: CallOptions & { body?: unknown } = {}): Promise<void> {
    await this.request<null>("DELETE", path, options);
  }

  readonly units = {
    list: (query: T.PageQuery = {}, o?: CallOptions) => this.call<T.UnitPage>("GET", "/v1/units", { ...o, query }),
    get: (id: number, o?: CallOptions) => this.call<T.Unit>("GET", `/v1/units/${id}`, o),
    create: (body: T.CreateUnit, o?: CallOptions) => this.call<T.Unit>("POST", "/v1/units", { ...o, body }),
    patch: (id: number, body: T.PatchUnit, o?: CallOptions) => this.call<T.Unit>("PATCH", `/v1/units/${id}`, { ...o, body }),
    delete: (id: number, o?: CallOptions) => this.remove(`/v1/units/${id}`, o),
  };

  readonly groups = {
    list: (query: T.GroupQuery = {}, o?: CallOptions) => this.call<T.GroupPage>("GET", "/v1/groups", { ...o, query }),
    get: (id: number, o?: CallOptions) => this.call<T.Group>("GET", `/v1/groups/${id}`, o),
    create: (body: T.CreateGroup, o?: CallOptions) => this.call<T.Group>("POST", "/v1/groups", { ...o, body }),
    delete: (id: number, o?: CallOptions) => this.remove(`/v1/groups/${id}`, o),
    /** iommu_attach_group: EBUSY when the group is on a domain of someone's choosing. */
    attach: (id: number, body: T.DomainTarget, o?: CallOptions) => this.call<T.Moved>("POST", `/v1/groups/${id}/attach`, { ...o, body }),
    /** iommu_group_replace_domain. */
    replace: (id: number, body: T.DomainTarget, o?: CallOptions) => this.call<T.Moved>("POST", `/v1/groups/${id}/replace`, { ...o, body }),
    /** Back to the core domain; never fails for a refusal (a `warning` says what was overridden). */
    detach: (id: number, body: T.DomainTarget, o?: CallOptions) => this.call<T.Moved>("POST", `/v1/groups/${id}/detach`, { ...o, body }),
    /** iommu_group_claim_dma_owner. */
    claim: (id: number, body: T.OwnerBody = {}, o?: CallOptions) => this.call<T.Moved>("POST", `/v1/groups/${id}/claim`, { ...o, body }),
    release: (id: number, body: T.OwnerBody = {}, o?: CallOptions) => this.call<T.Moved>("POST", `/v1/groups/${id}/release`, { ...o, body }),
    /** The dry run: each domain's verdict for the group, nothing changed. */
    compatibility: (id: number, query: T.CompatibilityQuery = {}, o?: CallOptions) =>
      this.call<T.Compatibility>("GET", `/v1/groups/${id}/compatibility`, { ...o, query }),
  };

  readonly devices = {
    list: (query: T.PageQuery = {}, o?: CallOptions) => this.call<T.DevicePage>("GET", "/v1/devices", { ...o, query }),
    get: (id: number, o?: CallOptions) => this.call<T.Device>("GET", `/v1/devices/${id}`, o),
    create: (body: T.CreateDevice, o?: CallOptions) => this.call<T.Device>("POST", "/v1/devices", { ...o, body }),
    patch: (id: number, body: T.PatchDevice, o?: CallOptions) => this.call<T.Device>("PATCH", `/v1/devices/${id}`, { ...o, body }),
    delete: (id: number, o?: CallOptions) => this.remove(`/v1/devices/${id}`, o),
    attach: (id: number, body: T.DomainTarget, o?: CallOptions) => this.call<T.Moved>("POST", `/v1/devices/${id}/attach`, { ...o, body }),
    detach: (id: number, body: T.DomainTarget, o?: CallOptions) => this.call<T.Moved>("POST", `/v1/devices/${id}/detach`, { ...o, body }),
    /** Bind a host (kernel) driver; administrators only. */
    bind: (id: number, body: T.HostDriverBody, o?: CallOptions) => this.call<T.HostDriverChanged>("POST", `/v1/devices/${id}/bind`, { ...o, body }),
    unbind: (id: number, o?: CallOptions) => this.call<T.HostDriverChanged>("POST", `/v1/devices/${id}/unbind`, { ...o, body: {} }),
  };

  /** PASIDs of a device's group (iommu_attach_device_pasid). */
  readonly pasids = {
    list: (deviceId: number, query: T.PageQuery = {}, o?: CallOptions) =>
      this.call<T.PasidPage>("GET", `/v1/devices/${deviceId}/pasids`, { ...o, query }),
    attach: (deviceId: number, body: T.PasidTarget, o?: CallOptions) =>
      this.call<T.PasidAttachment>("POST", `/v1/devices/${deviceId}/pasids`, { ...o, body }),
    detach: (deviceId: number, pasid: number, body: T.OwnerBody = {}, o?: CallOptions) =>
      this.remove(`/v1/devices/${deviceId}/pasids/${pasid}`, { ...o, body }),
  };

  readonly reservedRegions = {
    list: (deviceId: number, query: T.PageQuery = {}, o?: CallOptions) =>
      this.call<T.ReservedRegionPage>("GET", `/v1/devices/${deviceId}/reserved-regions`, { ...o, query }),
    get: (deviceId: number, regionId: number, o?: CallOptions) =>
      this.call<T.ReservedRegion>("GET", `/v1/devices/${deviceId}/reserved-regions/${regionId}`, o),
    create: (deviceId: number, body: T.CreateReservedRegion, o?: CallOptions) =>
      this.call<T.ReservedRegion>("POST", `/v1/devices/${deviceId}/reserved-regions`, { ...o, body }),
    delete: (deviceId: number, regionId: number, o?: CallOptions) => this.remove(`/v1/devices/${deviceId}/reserved-regions/${regionId}`, o),
  };

  /** iommufd device objects (VFIO_DEVICE_BIND_IOMMUFD and the PT attach/detach). */
  readonly iommufd = {
    bind: (deviceId: number, body: T.OwnerBody = {}, o?: CallOptions) => this.call<T.IommufdDevice>("POST", `/v1/devices/${deviceId}/iommufd`, { ...o, body }),
    get: (deviceId: number, o?: CallOptions) => this.call<T.IommufdDevice>("GET", `/v1/devices/${deviceId}/iommufd`, o),
    unbind: (deviceId: number, body: T.OwnerBody = {}, o?: CallOptions) => this.remove(`/v1/devices/${deviceId}/iommufd`, { ...o, body }),
    attach: (deviceId: number, body: T.IommufdTarget, o?: CallOptions) =>
      this.call<T.IommufdMoved>("POST", `/v1/devices/${deviceId}/iommufd/attach`, { ...o, body }),
    replace: (deviceId: number, body: T.IommufdTarget, o?: CallOptions) =>
      this.call<T.IommufdMoved>("POST", `/v1/devices/${deviceId}/iommufd/replace`, { ...o, body }),
    detach: (deviceId: number, body: T.OwnerBody = {}, o?: CallOptions) =>
      this.call<T.IommufdDetached>("POST", `/v1/devices/${deviceId}/iommufd/detach`, { ...o, body }),
  };

  readonly domains = {
    list: (query: T.DomainQuery = {}, o?: CallOptions) => this.call<T.DomainPage>("GET", "/v1/domains", { ...o, query }),
    get: (id: number, o?: CallOptions) => this.call<T.Domain>("GET", `/v1/domains/${id}`, o),
    /** A paging domain, or the driver's static identity or blocked one (`created: false` when it was there already). */
    create: async (body: T.CreateDomain, o?: CallOptions): Promise<T.Domain & { created: boolean }> => {
      const answer = await this.request<T.Domain>("POST", "/v1/domains", { ...o, body });
      return { ...answer.body, created: answer.status === 201 };
    },
    delete: (id: number, o?: CallOptions) => this.remove(`/v1/domains/${id}`, o),
  };

  readonly containers = {
    list: (query: T.PageQuery = {}, o?: CallOptions) => this.call<T.ContainerPage>("GET", "/v1/containers", { ...o, query }),
    get: (id: number, o?: CallOptions) => this.call<T.Container>("GET", `/v1/containers/${id}`, o),
    create: (body: T.CreateContainer, o?: CallOptions) => this.call<T.Container>("POST", "/v1/containers", { ...o, body }),
    delete: (id: number, o?: CallOptions) => this.remove(`/v1/containers/${id}`, o),
    /** The server-side search: the container's domains in order, then one allocated (see attempts). */
    attach: (id: number, body: T.ContainerAttachBody, o?: CallOptions) =>
      this.call<T.ContainerAttached>("POST", `/v1/containers/${id}/attach`, { ...o, body }),
    detach: (id: number, body: T.GroupTarget, o?: CallOptions) =>
      this.call<T.ContainerDetached>("POST", `/v1/containers/${id}/detach`, { ...o, body }),
  };

  /** A container's IOVA mappings (IOMMU_IOAS_MAP / _UNMAP). */
  readonly mappings = {
    list: (containerId: number, query: T.PageQuery = {}, o?: CallOptions) =>
      this.call<T.MappingPage>("GET", `/v1/containers/${containerId}/mappings`, { ...o, query }),
    get: (containerId: number, mappingId: number, o?: CallOptions) =>
      this.call<T.Mapping>("GET", `/v1/containers/${containerId}/mappings/${mappingId}`, o),
    map: (containerId: number, body: T.CreateMapping, o?: CallOptions) =>
      this.call<T.Mapping>("POST", `/v1/containers/${containerId}/mappings`, { ...o, body }),
    delete: (containerId: number, mappingId: number, o?: CallOptions) => this.remove(`/v1/containers/${containerId}/mappings/${mappingId}`, o),
    /** Every mapping inside the range; `{}`: all. */
    unmap: (containerId: number, body: T.UnmapBody = {}, o?: CallOptions) =>
      this.call<T.Unmapped>("POST", `/v1/containers/${containerId}/unmap`, { ...o, body }),
  };

  readonly faults = {
    list: (query: T.PageQuery = {}, o?: CallOptions) => this.call<T.FaultPage>("GET", "/v1/faults", { ...o, query }),
    /** The next `count` attach ops on the unit or device fail with `errno`. */
    inject: (body: T.CreateFault, o?: CallOptions) => this.call<T.Fault>("POST", "/v1/faults", { ...o, body }),
    clear: (o?: CallOptions) => this.call<T.FaultsCleared>("DELETE", "/v1/faults", o),
    delete: (id: number, o?: CallOptions) => this.remove(`/v1/faults/${id}`, o),
  };

  readonly events = {
    /** One page of the log, oldest first. */
    page: (query: T.EventQuery = {}, o?: CallOptions) => this.call<T.EventPage>("GET", "/v1/events", { ...o, query }),
    /** The live stream (Server-Sent Events), reconnecting with Last-Event-ID until the signal aborts. */
    follow: (options: FollowOptions = {}) => followEvents(this.transport, options),
  };

  readonly host = {
    get: (o?: CallOptions) => this.call<T.Host>("GET", "/v1/host", o),
    patch: (body: T.PatchHost, o?: CallOptions) => this.call<T.Host>("PATCH", "/v1/host", { ...o, body }),
  };

  stats(o?: CallOptions): Promise<T.Stats> {
    return this.call<T.Stats>("GET", "/v1/stats", o);
  }

  /** Retry-on-EINVAL by the client: the candidates in order, then an allocated domain (attach-with-retry.ts). */
  attachWithRetry(groupId: number, candidateDomainIds: readonly number[], options?: AttachWithRetryOptions): Promise<Placement> {
    return attachWithRetry(this, groupId, candidateDomainIds, options);
  }

  /** The server-side search, answered in attachWithRetry's shape. */
  attachThroughContainer(containerId: number, groupId: number, options?: { policy?: "kernel" | "qemu"; owner?: string; signal?: AbortSignal }): Promise<Placement> {
    return attachThroughContainer(this, containerId, groupId, options);
  }
}
