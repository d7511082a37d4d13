import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { createDevice, deleteDevice, updateDevice } from "../../core/objects.js";
import { attachDevice, detachDevice } from "../../core/group-moves.js";
import { bindHostDriver, unbindHostDriver } from "../../core/host-driver.js";
import { lookup } from "../../core/lookup.js";
import { attachPasid, detachPasid } from "../../core/pasid.js";
import { ok } from "../../core/result.js";
import { IdParams, Page, PageQuery, problems, writeProblems } from "../schemas/common.js";
import {
  CreateDevice, Device, DomainTarget, HostDriverBody, HostDriverChanged, Moved, OwnerBody, PasidAttachment, PasidParams,
  PasidTarget, PatchDevice,
} from "../schemas/resources.js";
import { page, presentDevice, presentMove, presentPasid, versionTag } from "../present.js";
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

  // Host drivers (iommu_device_use_default_domain / _unuse_): the host's
  // administrator binds them, as with sysfs bind and unbind. If-Match: the device.
  const hostDriverAnswer = { 200: HostDriverChanged, ...writeProblems(404) };
  app.post("/devices/:id/bind", { config: { role: "admin" }, schema: { params: IdParams, body: HostDriverBody, response: hostDriverAnswer } },
    (req, reply) => respond(reply,
      (m) => bindHostDriver(m, callerOf(req), req.params.id, req.body.hostDriver),
      (m, r) => ({ changed: r.changed, device: presentDevice(m.get("device", r.deviceId)!) }),
      { target: resource("device", req.params.id) }));

  app.post("/devices/:id/unbind", { config: { role: "admin" }, schema: { params: IdParams, body: Type.Object({}, { additionalProperties: false }), response: hostDriverAnswer } },
    (req, reply) => respond(reply,
      (m) => unbindHostDriver(m, callerOf(req), req.params.id),
      (m, r) => ({ changed: r.changed, device: presentDevice(m.get("device", r.deviceId)!) }),
      { target: resource("device", req.params.id) }));

  // PASIDs (iommu_attach_device_pasid / iommu_detach_device_pasid) are the
  // device's group's: listed for every device of the group, and If-Match is
  // compared with the group's version, as for a device's moves.
  app.post("/devices/:id/pasids", { config: { role: "client" }, schema: { params: IdParams, body: PasidTarget, response: { 201: PasidAttachment, ...writeProblems(403, 404, 501, 507) } } },
    (req, reply) => respond(reply,
      (m) => attachPasid(m, callerOf(req, req.body.owner), req.params.id, req.body.pasid, req.body.domainId),
      (_m, a) => presentPasid(a), { status: 201, etag: versionTag, target: groupOfDevice(req.params.id) }));

  app.get("/devices/:id/pasids", { config: { role: "reader" }, schema: { params: IdParams, querystring: PageQuery, response: { 200: Page(PasidAttachment), ...problems(404) } } },
    (req, reply) => respondRead(reply, (m) => {
      const d = lookup(m, "device", req.params.id);
      return d.ok ? ok(page(m.pasidAttachmentsOfGroup(d.value.groupId), req.query, presentPasid, true)) : d;
    }));

  // The owner of an owned group names itself in a body (open mode only);
  // a DELETE without one has an empty body.
  app.delete("/devices/:id/pasids/:pasid", {
    config: { role: "client" },
    schema: { params: PasidParams, body: OwnerBody, response: { 204: { type: "null" }, ...writeProblems(403, 404) } },
    preValidation: (req, _reply, done) => {
      req.body ??= {};
      done();
    },
  }, (req, reply) => respond(reply,
      (m) => detachPasid(m, callerOf(req, req.body.owner), req.params.id, req.params.pasid),
      () => null, { status: 204, target: groupOfDevice(req.params.id) }));
};
