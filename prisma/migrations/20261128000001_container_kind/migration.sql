-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_Container" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL,
    "kind" TEXT NOT NULL DEFAULT 'iommufd',
    "owner" TEXT
);
INSERT INTO "new_Container" ("id", "name", "owner") SELECT "id", "name", "owner" FROM "Container";
DROP TABLE "Container";
ALTER TABLE "new_Container" RENAME TO "Container";
CREATE UNIQUE INDEX "Container_name_key" ON "Container"("name");
CREATE TABLE "new_Domain" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT,
    "type" TEXT NOT NULL,
    "driver" TEXT NOT NULL,
    "unitId" INTEGER,
    "config" JSONB NOT NULL,
    "auto" BOOLEAN NOT NULL DEFAULT false,
    "search" TEXT NOT NULL DEFAULT 'none',
    "containerId" INTEGER,
    "owner" TEXT,
    CONSTRAINT "Domain_unitId_fkey" FOREIGN KEY ("unitId") REFERENCES "Unit" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "Domain_containerId_fkey" FOREIGN KEY ("containerId") REFERENCES "Container" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
INSERT INTO "new_Domain" ("auto", "config", "containerId", "driver", "id", "name", "owner", "type", "unitId") SELECT "auto", "config", "containerId", "driver", "id", "name", "owner", "type", "unitId" FROM "Domain";
DROP TABLE "Domain";
ALTER TABLE "new_Domain" RENAME TO "Domain";
CREATE INDEX "Domain_unitId_idx" ON "Domain"("unitId");
CREATE INDEX "Domain_containerId_idx" ON "Domain"("containerId");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;


-- Data step, written by hand after the generated statements above: every
-- automatic domain of an existing database was allocated by the kernel-policy
-- search (the only one there was), so it belongs to that search.
UPDATE "Domain" SET "search" = 'kernel' WHERE "auto" = 1;
