-- CreateTable
CREATE TABLE "PasidAttachment" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "deviceId" INTEGER NOT NULL,
    "pasid" INTEGER NOT NULL,
    "domainId" INTEGER NOT NULL,
    CONSTRAINT "PasidAttachment_deviceId_fkey" FOREIGN KEY ("deviceId") REFERENCES "Device" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "PasidAttachment_domainId_fkey" FOREIGN KEY ("domainId") REFERENCES "Domain" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_Device" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL,
    "groupId" INTEGER NOT NULL,
    "flags" JSONB NOT NULL,
    "faulty" BOOLEAN NOT NULL DEFAULT false,
    "maxPasids" INTEGER NOT NULL DEFAULT 0,
    "hostDriver" TEXT,
    CONSTRAINT "Device_groupId_fkey" FOREIGN KEY ("groupId") REFERENCES "Group" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
INSERT INTO "new_Device" ("faulty", "flags", "groupId", "id", "name") SELECT "faulty", "flags", "groupId", "id", "name" FROM "Device";
DROP TABLE "Device";
ALTER TABLE "new_Device" RENAME TO "Device";
CREATE UNIQUE INDEX "Device_name_key" ON "Device"("name");
CREATE INDEX "Device_groupId_idx" ON "Device"("groupId");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

-- CreateIndex
CREATE INDEX "PasidAttachment_deviceId_idx" ON "PasidAttachment"("deviceId");

-- CreateIndex
CREATE INDEX "PasidAttachment_domainId_idx" ON "PasidAttachment"("domainId");

-- Data step, written by hand after the generated statements above: the
-- device flag "pasid" ("PASIDs in use") is retired for the PASIDs attached
-- in PasidAttachment. A stored flag names no PASID and no domain, so there
-- is nothing to carry over: it is dropped, and the device loads with the
-- flags the service knows.
UPDATE "Device" SET "flags" = json_remove("flags", '$.pasid') WHERE json_type("flags", '$.pasid') IS NOT NULL;
