-- AlterTable
ALTER TABLE "Container" ADD COLUMN "owner" TEXT;

-- AlterTable
ALTER TABLE "Domain" ADD COLUMN "owner" TEXT;

