import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { createDevice, deleteDevice, updateDevice } from "../../core/objects.js";
import { attachDevice, detachDevice } from "../../core/group-moves.js";
import { lookup } from "../../core/lookup.js";
import { ok } from "../../core/result.js";
import { IdParams, Page, PageQuery, problems, writeProblems } from "../schemas/common.js";
import { CreateDevice, Device, DomainTarget, Moved, PatchDevice } from "../schemas/resources.js";
import { page, presentDevice, presentMove, versionTag } from "../present.js";
import { groupOfDevice, resource } from "../preconditions.js";
import { callerOf, respond, respondRead } from "../respond.js";

const MOVE_ERRORS = writeProblems(403, 404, 507);

export const deviceRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post("/devices", { config: { role: "admin" }, schema: { body: CreateDevice, response: { 201: Device, ...writeProblems(404) } } },
    (req, reply) => respond(reply, (m) => createDevice(m, req.body), (_m, d) => presentDevice(d), { status: 201, etag: versionTag }));

  app.get("/devices", { config: { role: "reader" }, schema: { querystring: PageQuery, response: { 200: Page(Device), ...problems() } } },
    (req, reply) => respondRead(reply, (m) => ok(page(m.all("device"), req.query, presentDevice, true))));

  app.get("/devices/:id", { config: { role: "reader" }, schema: { params: IdParams, response: { 200: Device, ...problems(404) } } },
    (req, reply) => respondRead(reply, (m) => {
      const d = lookup(m, "device", req.params.id);
      return d.ok ? ok(presentDevice(d.value)) : d;
    }, { etag: versionTag }));

  app.patch("/devices/:id", { config: { role: "admin" }, schema: { params: IdParams, body: PatchDevice, response: { 200: Device, ...writeProblems(404) } } },
    (req, reply) => respond(reply, (m) => updateDevice(m, req.params.id, req.body), (_m, d) => presentDevice(d),
      { etag: versionTag, target: resource("device", req.params.id) }));

  app.delete("/devices/:id", { config: { role: "admin" }, schema: { params: IdParams, response: { 204: { type: "null" }, ...writeProblems(404) } } },
    (req, reply) => respond(reply, (m) => deleteDevice(m, req.params.id), () => null, { status: 204, target: resource("device", req.params.id) }));

  // A device moves its group: If-Match is compared with the group's version.
  app.post("/devices/:id/attach", { config: { role: "client" }, schema: { params: IdParams, body: DomainTarget, response: { 200: Moved, ...MOVE_ERRORS } } },
    (req, reply) => respond(reply,
      (m) => attachDevice(m, callerOf(req, req.body.owner), req.params.id, req.body.domainId),
      presentMove, { target: groupOfDevice(req.params.id) }));

  app.post("/devices/:id/detach", { config: { role: "client" }, schema: { params: IdParams, body: DomainTarget, response: { 200: Moved, ...MOVE_ERRORS } } },
    (req, reply) => respond(reply,
      (m) => detachDevice(m, callerOf(req, req.body.owner), req.params.id, req.body.domainId),
      presentMove, { target: groupOfDevice(req.params.id), warning: (r) => r.warning }));
};
