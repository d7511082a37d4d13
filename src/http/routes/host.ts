// The host's settings: one resource, read by every role, changed by an
// administrator (the kernel profile changes what every client is answered).
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { HOST_ID } from "../../core/entities.js";
import { updateHost } from "../../core/objects.js";
import { ok } from "../../core/result.js";
import { problems, writeProblems } from "../schemas/common.js";
import { Host, PatchHost } from "../schemas/resources.js";
import { presentHost, versionTag } from "../present.js";
import { resource } from "../preconditions.js";
import { respond, respondRead } from "../respond.js";

export const hostRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get("/host", { config: { role: "reader" }, schema: { response: { 200: Host, ...problems() } } },
    (_req, reply) => respondRead(reply, (m) => ok(presentHost(m.host())), { etag: versionTag }));

  app.patch("/host", { config: { role: "admin" }, schema: { body: PatchHost, response: { 200: Host, ...writeProblems() } } },
    (req, reply) => respond(reply, (m) => updateHost(m, req.body), (_m, h) => presentHost(h),
      { etag: versionTag, target: resource("host", HOST_ID) }));
};
