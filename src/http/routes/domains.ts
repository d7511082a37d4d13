import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { lookup } from "../../core/lookup.js";
import { createDomain, deleteDomain } from "../../core/objects.js";
import { ok } from "../../core/result.js";
import { Id, IdCursor, IdParams, Limit, Page, problems, writeProblems } from "../schemas/common.js";
import { CreateDomain, Domain } from "../schemas/resources.js";
import { page, presentDomain, versionTag } from "../present.js";
import { resource } from "../preconditions.js";
import { callerOf, respond, respondRead } from "../respond.js";

export const DomainQuery = Type.Object({
  after: Type.Optional(IdCursor),
  limit: Type.Optional(Limit),
  containerId: Type.Optional(Id),
}, { additionalProperties: false });

export const domainRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // An identity or blocked domain is the driver's static one: 201 when this
  // request made it, 200 when it was there already.
  app.post("/domains", { config: { role: "client" }, schema: { body: CreateDomain, response: { 200: Domain, 201: Domain, ...writeProblems(404, 501, 507) } } },
    (req, reply) => respond(reply, (m) => {
      const last = m.lastIds().domain;
      const r = createDomain(m, req.body, callerOf(req), app.quotas);
      return r.ok ? ok({ domain: r.value, created: r.value.id > last }) : r;
    }, (m, r) => presentDomain(m, r.domain), { status: (r) => (r.created ? 201 : 200), etag: versionTag }));

  app.get("/domains", { config: { role: "reader" }, schema: { querystring: DomainQuery, response: { 200: Page(Domain), ...problems() } } },
    (req, reply) => respondRead(reply, (m) => {
      // Both come in id order: domainsOf is sorted, the table is indexed by id.
      const byContainer = req.query.containerId !== undefined;
      const rows = byContainer ? m.domainsOf(req.query.containerId!) : m.all("domain");
      return ok(page(rows, req.query, (d) => presentDomain(m, d), true));
    }));

  app.get("/domains/:id", { config: { role: "reader" }, schema: { params: IdParams, response: { 200: Domain, ...problems(404) } } },
    (req, reply) => respondRead(reply, (m) => {
      const d = lookup(m, "domain", req.params.id);
      return d.ok ? ok(presentDomain(m, d.value)) : d;
    }, { etag: versionTag }));

  app.delete("/domains/:id", { config: { role: "client" }, schema: { params: IdParams, response: { 204: { type: "null" }, ...writeProblems(404) } } },
    (req, reply) => respond(reply, (m) => deleteDomain(m, req.params.id, callerOf(req)), () => null, { status: 204, target: resource("domain", req.params.id) }));
};
