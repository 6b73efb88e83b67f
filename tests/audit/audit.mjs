// Runs the GraphQL-over-HTTP conformance audit of the graphql-http package against a
// running stagefit server and prints one JSON object: { results: [{ id, name, status, reason }] }.
// Usage: node audit.mjs http://127.0.0.1:PORT/graphql
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}
const results = await auditServer({ url });
console.log(JSON.stringify({
  results: results.map((r) => ({ id: r.id, name: r.name, status: r.status, reason: r.reason ?? null })),
}));
