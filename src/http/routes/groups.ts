import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { groupCompatibility } from "../../core/compat.js";
import { lookup } from "../../core/lookup.js";
import { createGroup, deleteGroup } from "../../core/objects.js";
import { attachGroup, claimOwnership, detachGroup, releaseOwnership, replaceDomain } from "../../core/group-moves.js";
import { ok } from "../../core/result.js";
import { Id, IdCursor, IdParams, Limit, Outcome, Page, problems, writeProblems } from "../schemas/common.js";
import { CreateGroup, DomainTarget, Group, Moved, OwnerBody } from "../schemas/resources.js";
import { page, presentGroup, presentMove, versionTag } from "../present.js";
import { resource } from "../preconditions.js";
import { callerOf, respond, respondRead } from "../respond.js";

const MOVE_ERRORS = writeProblems(403, 404, 501, 507);

export const Verdict = Type.Composite([
  Type.Object({ domainId: Id, compatible: Type.Boolean(), current: Type.Boolean() }),
  Outcome,
]);
export const Compatibility = Type.Object({
  groupId: Id,
  attachable: Type.Boolean({ description: "False while the group is on a domain of someone's choosing: an attach would get EBUSY, a replace would not" }),
  verdicts: Type.Array(Verdict),
  next: Type.Union([Id, Type.Null()]),
});
export const GroupQuery = Type.Object({
  after: Type.Optional(IdCursor),
  limit: Type.Optional(Limit),
  domainId: Type.Optional(Id),
  unitId: Type.Optional(Id),
}, { additionalProperties: false });
export const CompatibilityQuery = Type.Object({
  after: Type.Optional(IdCursor),
  limit: Type.Optional(Limit),
  containerId: Type.Optional(Id),
}, { additionalProperties: false });

export const groupRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post("/groups", { config: { role: "admin" }, schema: { body: CreateGroup, response: { 201: Group, ...writeProblems(404) } } },
    (req, reply) => respond(reply, (m) => createGroup(m, req.body), (m, g) => presentGroup(m, g), { status: 201, etag: versionTag }));

  app.get("/groups", { config: { role: "reader" }, schema: { querystring: GroupQuery, response: { 200: Page(Group), ...problems() } } },
    (req, reply) => respondRead(reply, (m) => {
      const { domainId, unitId } = req.query;
      // Filters go through the model's indexes, not a scan.
      const ids = domainId !== undefined ? m.groupsAttachedTo(domainId) : unitId !== undefined ? m.groupsOnUnit(unitId) : null;
      const rows = ids ? [...ids].map((id) => m.get("group", id)!).filter((g) => unitId === undefined || g.unitId === unitId) : m.all("group");
      return ok(page(rows, req.query, (g) => presentGroup(m, g), ids === null));
    }));

  app.get("/groups/:id", { config: { role: "reader" }, schema: { params: IdParams, response: { 200: Group, ...problems(404) } } },
    (req, reply) => respondRead(reply, (m) => {
      const g = lookup(m, "group", req.params.id);
      return g.ok ? ok(presentGroup(m, g.value)) : g;
    }, { etag: versionTag }));

  app.delete("/groups/:id", { config: { role: "admin" }, schema: { params: IdParams, response: { 204: { type: "null" }, ...writeProblems(404) } } },
    (req, reply) => respond(reply, (m) => deleteGroup(m, req.params.id), () => null, { status: 204, target: resource("group", req.params.id) }));

  const move = { config: { role: "client" }, schema: { params: IdParams, body: DomainTarget, response: { 200: Moved, ...MOVE_ERRORS } } } as const;

  app.post("/groups/:id/attach", move, (req, reply) => respond(reply,
    (m) => attachGroup(m, callerOf(req, req.body.owner), req.params.id, req.body.domainId),
    presentMove, { target: resource("group", req.params.id) }));

  app.post("/groups/:id/replace", move, (req, reply) => respond(reply,
    (m) => replaceDomain(m, callerOf(req, req.body.owner), req.params.id, req.body.domainId),
    presentMove, { target: resource("group", req.params.id) }));

  app.post("/groups/:id/detach", move, (req, reply) => respond(reply,
    (m) => detachGroup(m, callerOf(req, req.body.owner), req.params.id, req.body.domainId),
    presentMove, { target: resource("group", req.params.id), warning: (r) => r.warning }));

  const ownership = { config: { role: "client", ownerRequired: true }, schema: { params: IdParams, body: OwnerBody, response: { 200: Moved, ...MOVE_ERRORS } } } as const;

  app.post("/groups/:id/claim", ownership, (req, reply) => respond(reply,
    (m) => claimOwnership(m, callerOf(req, req.body.owner), req.params.id),
    presentMove, { target: resource("group", req.params.id) }));

  app.post("/groups/:id/release", ownership, (req, reply) => respond(reply,
    (m) => releaseOwnership(m, callerOf(req, req.body.owner), req.params.id),
    presentMove, { target: resource("group", req.params.id), warning: (r) => r.warning }));

  app.get("/groups/:id/compatibility", { config: { role: "reader" }, schema: { params: IdParams, querystring: CompatibilityQuery, response: { 200: Compatibility, ...problems(404) } } },
    (req, reply) => respondRead(reply, (m) => groupCompatibility(m, req.params.id, { ...req.query, limit: req.query.limit ?? 100 })));
};
