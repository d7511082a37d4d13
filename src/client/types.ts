// What the client sends and receives, typed from the schemas the server
// validates and serializes with (src/http/schemas and the routes' own):
// one declaration, so a field the server adds or renames is a type error here.
// Type-only imports: the client loads none of the server's code at run time.
import type { Static, TObject } from "@sinclair/typebox";
import type { Attempt as AttemptSchema, Outcome as OutcomeSchema, Page, PageQuery as PageQuerySchema, Problem as ProblemSchema } from "../http/schemas/common.js";
import type * as R from "../http/schemas/resources.js";
import type { DetachAnswer, SearchAnswer } from "../http/routes/containers.js";
import type { CompatibilityQuery as CompatibilityQuerySchema, Compatibility as CompatibilitySchema, GroupQuery as GroupQuerySchema } from "../http/routes/groups.js";
import type { DomainQuery as DomainQuerySchema } from "../http/routes/domains.js";
import type { EventPage as EventPageSchema, EventQuery as EventQuerySchema } from "../http/routes/events.js";
import type { Stats as StatsSchema } from "../http/routes/index.js";

/** A list answer: `{ items, next }`, next null on the last page. */
export type PageOf<T extends TObject> = Static<ReturnType<typeof Page<T>>>;

export type Outcome = Static<typeof OutcomeSchema>;
export type Attempt = Static<typeof AttemptSchema>;
export type ProblemDocument = Static<typeof ProblemSchema>;
export type PageQuery = Static<typeof PageQuerySchema>;

export type Unit = Static<typeof R.Unit>;
export type CreateUnit = Static<typeof R.CreateUnit>;
export type PatchUnit = Static<typeof R.PatchUnit>;
export type Group = Static<typeof R.Group>;
export type CreateGroup = Static<typeof R.CreateGroup>;
export type GroupQuery = Static<typeof GroupQuerySchema>;
export type Device = Static<typeof R.Device>;
export type CreateDevice = Static<typeof R.CreateDevice>;
export type PatchDevice = Static<typeof R.PatchDevice>;
export type Domain = Static<typeof R.Domain>;
export type CreateDomain = Static<typeof R.CreateDomain>;
export type DomainQuery = Static<typeof DomainQuerySchema>;
export type Container = Static<typeof R.Container>;
export type CreateContainer = Static<typeof R.CreateContainer>;
export type Fault = Static<typeof R.Fault>;
export type CreateFault = Static<typeof R.CreateFault>;
export type Mapping = Static<typeof R.Mapping>;
export type CreateMapping = Static<typeof R.CreateMapping>;
export type UnmapBody = Static<typeof R.UnmapBody>;
export type Unmapped = Static<typeof R.Unmapped>;
export type ReservedRegion = Static<typeof R.ReservedRegion>;
export type CreateReservedRegion = Static<typeof R.CreateReservedRegion>;
export type PasidAttachment = Static<typeof R.PasidAttachment>;
export type PasidTarget = Static<typeof R.PasidTarget>;
export type IommufdDevice = Static<typeof R.IommufdDevice>;
export type IommufdTarget = Static<typeof R.IommufdTarget>;
export type IommufdMoved = Static<typeof R.IommufdMoved>;
export type IommufdDetached = Static<typeof R.IommufdDetached>;
export type Host = Static<typeof R.Host>;
export type PatchHost = Static<typeof R.PatchHost>;
export type Event = Static<typeof R.Event>;
export type EventQuery = Static<typeof EventQuerySchema>;
export type DomainTarget = Static<typeof R.DomainTarget>;
export type OwnerBody = Static<typeof R.OwnerBody>;
export type GroupTarget = Static<typeof R.GroupTarget>;
export type ContainerAttachBody = Static<typeof R.ContainerAttachBody>;
export type HostDriverBody = Static<typeof R.HostDriverBody>;
export type HostDriverChanged = Static<typeof R.HostDriverChanged>;
/** The answer to attach, replace, detach, claim and release. */
export type Moved = Static<typeof R.Moved>;
/** The answer to a container attach: the server-side search, with every domain it tried. */
export type ContainerAttached = Static<typeof SearchAnswer>;
export type ContainerDetached = Static<typeof DetachAnswer>;
export type Compatibility = Static<typeof CompatibilitySchema>;
export type CompatibilityQuery = Static<typeof CompatibilityQuerySchema>;
export type Stats = Static<typeof StatsSchema>;

/** A page of the event log (GET /v1/events): `next` is null on the last page; `last` is the seq to poll after next time. */
export type EventPage = Static<typeof EventPageSchema>;

/** DELETE /v1/faults. */
export interface FaultsCleared {
  cleared: number;
}

export type UnitPage = PageOf<typeof R.Unit>;
export type GroupPage = PageOf<typeof R.Group>;
export type DevicePage = PageOf<typeof R.Device>;
export type DomainPage = PageOf<typeof R.Domain>;
export type ContainerPage = PageOf<typeof R.Container>;
export type FaultPage = PageOf<typeof R.Fault>;
export type MappingPage = PageOf<typeof R.Mapping>;
export type ReservedRegionPage = PageOf<typeof R.ReservedRegion>;
export type PasidPage = PageOf<typeof R.PasidAttachment>;
