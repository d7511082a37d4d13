import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { createUnit, deleteUnit, updateUnit } from "../../core/objects.js";
import { lookup } from "../../core/lookup.js";
import { ok } from "../../core/result.js";
import { IdParams, Page, PageQuery, problems } from "../schemas/common.js";
import { CreateUnit, PatchUnit, Unit } from "../schemas/resources.js";
import { page, presentUnit } from "../present.js";
import { respond, respondRead } from "../respond.js";

export const unitRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post("/units", { config: { role: "admin" }, schema: { body: CreateUnit, response: { 201: Unit, ...problems(409) } } },
    (req, reply) => respond(reply, (m) => createUnit(m, req.body), (_m, u) => presentUnit(u), 201));

  app.get("/units", { config: { role: "reader" }, schema: { querystring: PageQuery, response: { 200: Page(Unit), ...problems() } } },
    (req, reply) => respondRead(reply, (m) => ok(page(m.all("unit"), req.query, presentUnit, true))));

  app.get("/units/:id", { config: { role: "reader" }, schema: { params: IdParams, response: { 200: Unit, ...problems(404) } } },
    (req, reply) => respondRead(reply, (m) => lookup(m, "unit", req.params.id)));

  app.patch("/units/:id", { config: { role: "admin" }, schema: { params: IdParams, body: PatchUnit, response: { 200: Unit, ...problems(404) } } },
    (req, reply) => respond(reply, (m) => updateUnit(m, req.params.id, req.body), (_m, u) => presentUnit(u)));

  app.delete("/units/:id", { config: { role: "admin" }, schema: { params: IdParams, response: { 204: { type: "null" }, ...problems(404, 409) } } },
    (req, reply) => respond(reply, (m) => deleteUnit(m, req.params.id), () => null, 204));
};
