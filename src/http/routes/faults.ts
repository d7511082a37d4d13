import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { clearFaults, deleteFault, injectFault } from "../../core/objects.js";
import { ok } from "../../core/result.js";
import { IdParams, Page, PageQuery, problems, writeProblems } from "../schemas/common.js";
import { CreateFault, Fault } from "../schemas/resources.js";
import { page, presentFault, versionTag } from "../present.js";
import { resource } from "../preconditions.js";
import { respond, respondRead } from "../respond.js";

export const faultRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post("/faults", { config: { role: "admin" }, schema: { body: CreateFault, response: { 201: Fault, ...writeProblems(404) } } },
    (req, reply) => respond(reply, (m) => injectFault(m, { ...req.body, count: req.body.count ?? 1 }, app.quotas), (_m, f) => presentFault(f),
      { status: 201, etag: versionTag }));

  app.get("/faults", { config: { role: "reader" }, schema: { querystring: PageQuery, response: { 200: Page(Fault), ...problems() } } },
    (req, reply) => respondRead(reply, (m) => ok(page(m.all("fault"), req.query, presentFault, true))));

  app.delete("/faults", { config: { role: "admin" }, schema: { response: { 200: Type.Object({ cleared: Type.Integer() }), ...writeProblems() } } },
    (_req, reply) => respond(reply, (m) => clearFaults(m), (_m, r) => r));

  app.delete("/faults/:id", { config: { role: "admin" }, schema: { params: IdParams, response: { 204: { type: "null" }, ...writeProblems(404) } } },
    (req, reply) => respond(reply, (m) => deleteFault(m, req.params.id), () => null, { status: 204, target: resource("fault", req.params.id) }));
};
