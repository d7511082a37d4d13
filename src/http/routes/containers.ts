import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { lookup } from "../../core/lookup.js";
import { createContainer, deleteContainer } from "../../core/objects.js";
import { ok } from "../../core/result.js";
import { setContainer, unsetContainer } from "../../core/vfio-group.js";
import { Attempt, Id, IdParams, Page, PageQuery, problems, Warning, writeProblems } from "../schemas/common.js";
import { Container, ContainerAttachBody, CreateContainer, Domain, Group, GroupTarget } from "../schemas/resources.js";
import { page, presentContainer, presentPlacement, presentWarning, versionTag } from "../present.js";
import { resource } from "../preconditions.js";
import { callerOf, respond, respondRead } from "../respond.js";

export const SearchAnswer = Type.Object({
  group: Group,
  domain: Domain,
  allocated: Type.Boolean({ description: "The group is on a domain this search allocated (and kept)" }),
  attempts: Type.Array(Attempt, { description: "Every domain tried, in order, with its outcome" }),
});
export const DetachAnswer = Type.Object({
  group: Group,
  domain: Domain,
  freedDomainId: Type.Union([Id, Type.Null()], { description: "The domain a search allocated, freed because no group was left on it" }),
  warning: Type.Optional(Warning),
});

export const containerRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post("/containers", { config: { role: "client" }, schema: { body: CreateContainer, response: { 201: Container, ...writeProblems() } } },
    (req, reply) => respond(reply, (m) => createContainer(m, req.body, callerOf(req), app.quotas), (m, c) => presentContainer(m, c), { status: 201, etag: versionTag }));

  app.get("/containers", { config: { role: "reader" }, schema: { querystring: PageQuery, response: { 200: Page(Container), ...problems() } } },
    (req, reply) => respondRead(reply, (m) => ok(page(m.all("container"), req.query, (c) => presentContainer(m, c), true))));

  app.get("/containers/:id", { config: { role: "reader" }, schema: { params: IdParams, response: { 200: Container, ...problems(404) } } },
    (req, reply) => respondRead(reply, (m) => {
      const c = lookup(m, "container", req.params.id);
      return c.ok ? ok(presentContainer(m, c.value)) : c;
    }, { etag: versionTag }));

  app.delete("/containers/:id", { config: { role: "client" }, schema: { params: IdParams, response: { 204: { type: "null" }, ...writeProblems(404) } } },
    (req, reply) => respond(reply, (m) => deleteContainer(m, req.params.id, callerOf(req)), () => null, { status: 204, target: resource("container", req.params.id) }));

  // Attach and detach move the group named in the body: If-Match is compared with the group's version.

  app.post("/containers/:id/attach", { config: { role: "client" }, schema: { params: IdParams, body: ContainerAttachBody, response: { 200: SearchAnswer, ...writeProblems(403, 404, 501, 507) } } },
    (req, reply) => respond(reply,
      (m) => setContainer(m, callerOf(req, req.body.owner), req.params.id, req.body.groupId, req.body.policy),
      (m, r) => ({ ...presentPlacement(m, r.groupId), allocated: r.allocated, attempts: r.attempts }),
      { target: resource("group", req.body.groupId) }));

  app.post("/containers/:id/detach", { config: { role: "client" }, schema: { params: IdParams, body: GroupTarget, response: { 200: DetachAnswer, ...writeProblems(403, 404) } } },
    (req, reply) => respond(reply,
      (m) => unsetContainer(m, callerOf(req, req.body.owner), req.params.id, req.body.groupId),
      (m, r) => ({
        ...presentPlacement(m, r.groupId), freedDomainId: r.freedDomainId,
        ...(r.warning ? { warning: presentWarning(r.warning) } : {}),
      }),
      { target: resource("group", req.body.groupId), warning: (r) => r.warning }));
};
