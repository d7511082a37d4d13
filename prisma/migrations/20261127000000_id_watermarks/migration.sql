-- CreateTable
CREATE TABLE "IdWatermark" (
    "kind" TEXT NOT NULL PRIMARY KEY,
    "last" INTEGER NOT NULL
);

-- Data step, written by hand after the generated statements above: the
-- watermarks used to be read from sqlite_sequence (kept by SQLite for the
-- AUTOINCREMENT tables), so an existing database carries them over here.
-- On a new database sqlite_sequence is empty and this inserts nothing.
INSERT INTO "IdWatermark" ("kind", "last")
SELECT lower("name"), "seq" FROM "sqlite_sequence"
WHERE "name" IN ('Unit', 'Container', 'Domain', 'Group', 'Device', 'Fault', 'Event');
