// A thin client over app.inject for the HTTP tests: typed views of the
// resources, builders that fail loudly when a setup step is refused, and the
// assertions every problem document must satisfy.
import type { Static } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, expect } from "vitest";
import { makeTestApp, type TestApp } from "./app.js";
import { ERRNO_VALUES, type ErrnoName } from "../../src/core/errno.js";
import type * as Resources from "../../src/http/schemas/resources.js";

// ---- resource views (what the API answers: the representations' types) -----

export type UnitView = Static<typeof Resources.Unit>;
export type GroupView = Static<typeof Resources.Group>;
export type DeviceFlagsView = Static<typeof Resources.DeviceFlags>;
export type DeviceView = Static<typeof Resources.Device>;
export type DomainConfigView = Static<typeof Resources.DomainConfig>;
export type DomainView = Static<typeof Resources.Domain>;
export type ContainerView = Static<typeof Resources.Container>;
export type FaultView = Static<typeof Resources.Fault>;
export type MappingView = Static<typeof Resources.Mapping>;
export type ReservedRegionView = Static<typeof Resources.ReservedRegion>;
export interface UnmappedView { unmapped: number; mappings: MappingView[] }
export interface EventView {
  seq: number; at: string; op: string; owner: string | null; groupId: number | null; deviceId: number | null;
  domainId: number | null; containerId: number | null; errno: string | null; code: number; soft: boolean; reason: string | null; detail: string | null;
  /** A topology change's object (create / update / delete); null on attempts. */
  kind: string | null; objectId: number | null;
}
export interface PageView<T> { items: T[]; next: number | null }
/** A page of the event log: next is null on its last page; last is where to poll from. */
export interface EventPageView { items: EventView[]; next: number | null; last: number }
export interface MovedView { changed: boolean; group: GroupView; domain: DomainView }
export interface AttemptView {
  domainId: number; allocated: boolean; errno: string | null; code: number; soft: boolean; reason: string | null; detail: string | null;
}
export interface SearchView { group: GroupView; domain: DomainView; allocated: boolean; attempts: AttemptView[] }
export interface ContainerDetachView { group: GroupView; domain: DomainView; freedDomainId: number | null }
export interface VerdictView {
  domainId: number; compatible: boolean; current: boolean; errno: string | null; code: number; soft: boolean;
  reason: string | null; detail: string | null;
}
export interface CompatibilityView { groupId: number; attachable: boolean; verdicts: VerdictView[]; next: number | null }
export interface ProblemView {
  type: string; title: string; status: number; detail: string; instance?: string; errno: string; code: number;
  soft: boolean; reason: string; driverErrno?: string; requestId?: string; attempts?: AttemptView[];
  errors?: { field: string; message: string }[];
  unitId?: number; groupId?: number; deviceId?: number; domainId?: number; containerId?: number; faultId?: number;
  mappingId?: number; regionId?: number;
}

export type Method = "GET" | "POST" | "PATCH" | "DELETE";

export interface Res<T = unknown> {
  readonly status: number;
  readonly headers: Record<string, string | string[] | number | undefined>;
  readonly text: string;
  /** Parsed JSON body, or null when the body is empty. */
  readonly body: T;
}

function parse(text: string): unknown {
  return text.length > 0 ? JSON.parse(text) : null;
}

let uniq = 0;
/**
 * A client on one app shared by the whole test file: the app (on its own
 * temporary database) is built before the file's first test and closed after
 * its last.
 */
export function clientForFile(): Client {
  let t: TestApp | undefined;
  beforeAll(async () => {
    t = await makeTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });
  return new Client(() => {
    if (!t) throw new Error("the app is built in beforeAll; use the client inside tests and hooks");
    return t.app;
  });
}

/** A name unique within the test process. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${++uniq}`;
}

export class Client {
  /** The app, or a way to reach it once it is built (see clientForFile). */
  constructor(private readonly target: FastifyInstance | (() => FastifyInstance)) {}

  get app(): FastifyInstance {
    return typeof this.target === "function" ? this.target() : this.target;
  }

  async send<T = unknown>(method: Method, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res<T>> {
    const res = await this.app.inject({
      method, url, headers,
      ...(body !== undefined ? { payload: body as object } : {}),
    });
    return { status: res.statusCode, headers: res.headers, text: res.body, body: parse(res.body) as T };
  }

  /** A raw payload string (for malformed JSON) with an explicit content type. */
  async raw(method: Method, url: string, payload: string, contentType = "application/json"): Promise<Res<ProblemView>> {
    const res = await this.app.inject({ method, url, payload, headers: { "content-type": contentType } });
    return { status: res.statusCode, headers: res.headers, text: res.body, body: parse(res.body) as ProblemView };
  }

  get<T = unknown>(url: string): Promise<Res<T>> { return this.send<T>("GET", url); }
  post<T = unknown>(url: string, body?: unknown): Promise<Res<T>> { return this.send<T>("POST", url, body ?? {}); }
  patch<T = unknown>(url: string, body: unknown): Promise<Res<T>> { return this.send<T>("PATCH", url, body); }
  del<T = unknown>(url: string): Promise<Res<T>> { return this.send<T>("DELETE", url); }

  /** Expect exactly `status`, else fail with the body in the message. */
  async expect<T>(status: number, method: Method, url: string, body?: unknown): Promise<T> {
    const res = await this.send<T>(method, url, body ?? (method === "POST" ? {} : undefined));
    if (res.status !== status) {
      throw new Error(`${method} ${url} ${JSON.stringify(body)}: expected ${status}, got ${res.status}: ${res.text}`);
    }
    return res.body;
  }
  ok<T>(method: Method, url: string, body?: unknown): Promise<T> { return this.expect<T>(200, method, url, body); }
  read<T>(url: string): Promise<T> { return this.expect<T>(200, "GET", url); }

  // ---- builders -----------------------------------------------------------

  unit(spec: { driver?: string; name?: string; capabilities?: Record<string, unknown>; online?: boolean } = {}): Promise<UnitView> {
    return this.expect<UnitView>(201, "POST", "/v1/units", { driver: "intel-vtd", name: uniqueName("unit"), ...spec });
  }
  group(unitId: number, name = uniqueName("group")): Promise<GroupView> {
    return this.expect<GroupView>(201, "POST", "/v1/groups", { name, unitId });
  }
  device(groupId: number, flags: Partial<DeviceFlagsView> = {}, name = uniqueName("dev")): Promise<DeviceView> {
    return this.expect<DeviceView>(201, "POST", "/v1/devices", { name, groupId, flags });
  }
  domain(spec: Record<string, unknown> = {}): Promise<DomainView> {
    return this.expect<DomainView>(201, "POST", "/v1/domains", { type: "paging", ...spec });
  }
  /** An iommufd IOAS unless `spec.kind` says type1. */
  container(spec: { kind?: "iommufd" | "type1" } = {}, name = uniqueName("ioas")): Promise<ContainerView> {
    return this.expect<ContainerView>(201, "POST", "/v1/containers", { name, ...spec });
  }
  fault(spec: { unitId?: number; deviceId?: number; errno: string; count?: number }): Promise<FaultView> {
    return this.expect<FaultView>(201, "POST", "/v1/faults", spec);
  }
  /** IOMMU_IOAS_MAP: a mapping in the container (at `iova`, or where the service picks). */
  mapping(containerId: number, spec: { iova?: number; length: number }): Promise<MappingView> {
    return this.expect<MappingView>(201, "POST", `/v1/containers/${containerId}/mappings`, spec);
  }
  region(deviceId: number, spec: { start: number; length: number; type: string }): Promise<ReservedRegionView> {
    return this.expect<ReservedRegionView>(201, "POST", `/v1/devices/${deviceId}/reserved-regions`, spec);
  }
  /** A group on `unitId` with one device per entry of `devices`. */
  async groupWith(unitId: number, devices: Partial<DeviceFlagsView>[] = [{}]): Promise<{ group: GroupView; devices: DeviceView[] }> {
    const group = await this.group(unitId);
    const made: DeviceView[] = [];
    for (const flags of devices) made.push(await this.device(group.id, flags));
    return { group: await this.read<GroupView>(`/v1/groups/${group.id}`), devices: made };
  }

  // ---- reads --------------------------------------------------------------

  groupNow(id: number): Promise<GroupView> { return this.read<GroupView>(`/v1/groups/${id}`); }
  async events(after = 0): Promise<EventView[]> {
    const out: EventView[] = [];
    let cursor = after;
    for (;;) {
      const page = await this.read<EventPageView>(`/v1/events?after=${cursor}&limit=1000`);
      out.push(...page.items);
      if (page.next === null) return out;
      cursor = page.next;
    }
  }
  async lastSeq(): Promise<number> {
    const all = await this.events();
    return all.length > 0 ? all[all.length - 1]!.seq : 0;
  }
  /** Ids of the groups attached to a domain now (GET /v1/groups?domainId=). */
  async groupsOn(domainId: number): Promise<number[]> {
    return (await this.read<PageView<GroupView>>(`/v1/groups?domainId=${domainId}&limit=1000`)).items.map((g) => g.id);
  }
  async faults(): Promise<FaultView[]> {
    return (await this.read<PageView<FaultView>>("/v1/faults?limit=1000")).items;
  }
}

// ---- assertions -------------------------------------------------------------

export function isProblemContentType(res: Res<unknown>): boolean {
  return String(res.headers["content-type"] ?? "").startsWith("application/problem+json");
}

/**
 * The response is a problem document with this status, errno and reason, and
 * every field the contract promises has the right shape.
 */
export function expectProblem(
  res: Res<unknown>, status: number, errno: ErrnoName, reason: string, extra: Partial<ProblemView> = {},
): ProblemView {
  expect(res.status, res.text).toBe(status);
  expect(String(res.headers["content-type"])).toMatch(/^application\/problem\+json/);
  const body = res.body as ProblemView;
  expect(body).toMatchObject({
    type: `urn:iommu-arbiter:problem:${reason}`,
    status, errno, code: -ERRNO_VALUES[errno], reason,
  });
  expect(typeof body.title).toBe("string");
  expect(body.title.length).toBeGreaterThan(0);
  expect(typeof body.detail).toBe("string");
  expect(body.detail.length).toBeGreaterThan(0);
  expect(typeof body.soft).toBe("boolean");
  expect(body).toMatchObject(extra);
  return body;
}

/** A schema (or body parsing) refusal: 400, EINVAL, invalid-request, not soft. */
export function expectInvalid(res: Res<unknown>, field?: string): ProblemView {
  const body = expectProblem(res, 400, "EINVAL", "invalid-request", { soft: false });
  if (field !== undefined) {
    expect(body.errors, res.text).toBeDefined();
    expect(body.errors!.map((e) => e.field), res.text).toContain(field);
  }
  return body;
}

/** Resolves after `n` turns of the event loop (setImmediate). */
export async function ticks(n = 1): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}

/**
 * Walks `base` two rows at a time through after/limit/next and checks the
 * walk returns exactly the rows one big page returns, in id order, with
 * `next` pointing at the last row of each page and null at the end.
 */
export async function expectPaging(c: Client, base: string, atLeast: number): Promise<number[]> {
  const sep = base.includes("?") ? "&" : "?";
  const all = await c.read<PageView<{ id: number }>>(`${base}${sep}limit=1000`);
  expect(all.next).toBeNull();
  const ids = all.items.map((i) => i.id);
  expect(ids.length).toBeGreaterThanOrEqual(atLeast);
  expect(ids).toEqual([...ids].sort((a, b) => a - b));
  const walked: number[] = [];
  let after = 0;
  let pages = 0;
  for (;;) {
    const page = await c.read<PageView<{ id: number }>>(`${base}${sep}after=${after}&limit=2`);
    pages++;
    expect(page.items.length).toBeLessThanOrEqual(2);
    walked.push(...page.items.map((i) => i.id));
    if (page.next === null) break;
    expect(page.items.length).toBe(2);
    expect(page.next).toBe(page.items[1]!.id);
    after = page.next;
    if (pages > 1000) throw new Error("paging does not end");
  }
  expect(walked).toEqual(ids);
  expect(pages).toBe(Math.max(1, Math.ceil(ids.length / 2)));
  const tail = await c.read<PageView<{ id: number }>>(`${base}${sep}after=${ids[ids.length - 1] ?? 0}`);
  expect(tail).toEqual({ items: [], next: null });
  return ids;
}
