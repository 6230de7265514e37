// prepack of every published package: npm packs only what is inside the package's folder, so the
// repository's LICENSE is copied in first (the copies are ignored by git).
import { copyFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
copyFileSync(join(root, "LICENSE"), join(process.cwd(), "LICENSE"));
