// iommufd device objects (src/core/iommufd-device.ts), as a client reaches
// them through VFIO's device cdev: bind the device to its iommufd context
// (VFIO_DEVICE_BIND_IOMMUFD), attach it, replace its domain, detach it
// (VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_DETACH_IOMMUFD_PT) and unbind
// it (closing the device). Each acts on the device's group: If-Match is
// compared with the group's version, as for a device's moves.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import {
  attachIommufd, bindIommufd, detachIommufd, replaceIommufd, unbindIommufd, type IommufdMoved as Moved,
} from "../../core/iommufd-device.js";
import { lookup } from "../../core/lookup.js";
import type { Model } from "../../core/model.js";
import { fail, ok } from "../../core/result.js";
import { IdParams, problems, writeProblems } from "../schemas/common.js";
import { IommufdDetached, IommufdDevice, IommufdMoved, IommufdTarget, OwnerBody } from "../schemas/resources.js";
import { presentIommufd, presentPlacement, versionTag } from "../present.js";
import { groupOfDevice } from "../preconditions.js";
import { callerOf, respond, respondRead } from "../respond.js";

const MOVE_ERRORS = writeProblems(403, 404, 501, 507);

function presentMoved(m: Model, r: Moved) {
  return {
    changed: r.changed, iommufdDevice: presentIommufd(m.get("iommufd", r.iommufdId)!), ...presentPlacement(m, r.groupId),
    allocated: r.allocated, attempts: r.attempts,
  };
}

export const iommufdRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Binding claims the group's DMA ownership for the caller's context: in
  // open mode the body names the owner, as a claim does.
  app.post("/devices/:id/iommufd", {
    config: { role: "client", ownerRequired: true },
    schema: { params: IdParams, body: OwnerBody, response: { 200: IommufdDevice, 201: IommufdDevice, ...writeProblems(403, 404) } },
  }, (req, reply) => respond(reply,
    (m) => bindIommufd(m, callerOf(req, req.body.owner), req.params.id, app.iommufdParams),
    (_m, r) => presentIommufd(r.iommufd),
    { status: (r) => (r.changed ? 201 : 200), etag: versionTag, target: groupOfDevice(req.params.id) }));

  app.get("/devices/:id/iommufd", { config: { role: "reader" }, schema: { params: IdParams, response: { 200: IommufdDevice, ...problems(404) } } },
    (req, reply) => respondRead(reply, (m) => {
      const d = lookup(m, "device", req.params.id);
      if (!d.ok) return d;
      const bound = m.iommufdDeviceOf(d.value.id);
      return bound ? ok(presentIommufd(bound)) : fail("not-bound", `${d.value.name} is not bound to iommufd`, { deviceId: d.value.id });
    }, { etag: versionTag }));

  // The owner of a binding names itself in a body (open mode only); a DELETE
  // without one has an empty body.
  app.delete("/devices/:id/iommufd", {
    config: { role: "client" },
    schema: { params: IdParams, body: OwnerBody, response: { 204: { type: "null" }, ...writeProblems(403, 404) } },
    preValidation: (req, _reply, done) => {
      req.body ??= {};
      done();
    },
  }, (req, reply) => respond(reply,
    (m) => unbindIommufd(m, callerOf(req, req.body.owner), req.params.id),
    () => null, { status: 204, target: groupOfDevice(req.params.id) }));

  const move = { config: { role: "client" }, schema: { params: IdParams, body: IommufdTarget, response: { 200: IommufdMoved, ...MOVE_ERRORS } } } as const;

  app.post("/devices/:id/iommufd/attach", move, (req, reply) => respond(reply,
    (m) => attachIommufd(m, callerOf(req, req.body.owner), req.params.id, req.body),
    presentMoved, { target: groupOfDevice(req.params.id) }));

  app.post("/devices/:id/iommufd/replace", move, (req, reply) => respond(reply,
    (m) => replaceIommufd(m, callerOf(req, req.body.owner), req.params.id, req.body),
    presentMoved, { target: groupOfDevice(req.params.id) }));

  app.post("/devices/:id/iommufd/detach", {
    config: { role: "client" },
    schema: { params: IdParams, body: OwnerBody, response: { 200: IommufdDetached, ...writeProblems(403, 404) } },
  }, (req, reply) => respond(reply,
    (m) => detachIommufd(m, callerOf(req, req.body.owner), req.params.id),
    (m, r) => ({ changed: r.changed, iommufdDevice: presentIommufd(m.get("iommufd", r.iommufdId)!), ...presentPlacement(m, r.groupId), freedDomainId: r.freedDomainId }),
    { target: groupOfDevice(req.params.id) }));
};
