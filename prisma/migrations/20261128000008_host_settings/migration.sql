-- CreateTable
CREATE TABLE "Host" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "kernelProfile" TEXT NOT NULL DEFAULT '6.5+'
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
    "strandedOnDomainId" INTEGER,
    CONSTRAINT "Device_groupId_fkey" FOREIGN KEY ("groupId") REFERENCES "Group" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "Device_strandedOnDomainId_fkey" FOREIGN KEY ("strandedOnDomainId") REFERENCES "Domain" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
INSERT INTO "new_Device" ("faulty", "flags", "groupId", "hostDriver", "id", "maxPasids", "name") SELECT "faulty", "flags", "groupId", "hostDriver", "id", "maxPasids", "name" FROM "Device";
DROP TABLE "Device";
ALTER TABLE "new_Device" RENAME TO "Device";
CREATE UNIQUE INDEX "Device_name_key" ON "Device"("name");
CREATE INDEX "Device_groupId_idx" ON "Device"("groupId");
CREATE INDEX "Device_strandedOnDomainId_idx" ON "Device"("strandedOnDomainId");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
