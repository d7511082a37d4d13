import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { createUnit, deleteUnit, updateUnit } from "../../core/objects.js";
import { lookup } from "../../core/lookup.js";
import { ok } from "../../core/result.js";
import { IdParams, Page, PageQuery, problems, writeProblems } from "../schemas/common.js";
import { CreateUnit, PatchUnit, Unit } from "../schemas/resources.js";
import { page, presentUnit, versionTag } from "../present.js";
import { resource } from "../preconditions.js";
import { respond, respondRead } from "../respond.js";

export const unitRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post("/units", { config: { role: "admin" }, schema: { body: CreateUnit, response: { 201: Unit, ...writeProblems() } } },
    (req, reply) => respond(reply, (m) => createUnit(m, req.body), (_m, u) => presentUnit(u), { status: 201, etag: versionTag }));

  app.get("/units", { config: { role: "reader" }, schema: { querystring: PageQuery, response: { 200: Page(Unit), ...problems() } } },
    (req, reply) => respondRead(reply, (m) => ok(page(m.all("unit"), req.query, presentUnit, true))));

  app.get("/units/:id", { config: { role: "reader" }, schema: { params: IdParams, response: { 200: Unit, ...problems(404) } } },
    (req, reply) => respondRead(reply, (m) => {
      const u = lookup(m, "unit", req.params.id);
      return u.ok ? ok(presentUnit(u.value)) : u;
    }, { etag: versionTag }));

  app.patch("/units/:id", { config: { role: "admin" }, schema: { params: IdParams, body: PatchUnit, response: { 200: Unit, ...writeProblems(404) } } },
    (req, reply) => respond(reply, (m) => updateUnit(m, req.params.id, req.body), (_m, u) => presentUnit(u),
      { etag: versionTag, target: resource("unit", req.params.id) }));

  app.delete("/units/:id", { config: { role: "admin" }, schema: { params: IdParams, response: { 204: { type: "null" }, ...writeProblems(404) } } },
    (req, reply) => respond(reply, (m) => deleteUnit(m, req.params.id), () => null, { status: 204, target: resource("unit", req.params.id) }));
};
