#!/usr/bin/env node
// Rewrites docs/errors.md from the ERROR_CODES table in daemon/base/errors.ts (a test keeps them in step).
import { readFileSync, writeFileSync } from 'node:fs';

const src = readFileSync(new URL('../daemon/base/errors.ts', import.meta.url), 'utf8');
const rows = [...src.matchAll(/^ {2}([A-Z0-9_]+): '([^']*)',/gm)];
let out = `# Error codes

Every failure in attestd carries one of these stable codes: thrown inside the daemon as
\`AttestdError\` (also by the native core), and sent to socket clients in \`Error.code\` with the
fixed text below as the message. Details go to the operator log, never to the client.
Codes are never renamed or reused; a retired code stays listed.

| code | meaning |
| --- | --- |
`;
for (const [, code, meaning] of rows) out += `| \`${code}\` | ${meaning} |\n`;
writeFileSync(new URL('../docs/errors.md', import.meta.url), out);
