// Verify an SCS Router webhook in Node (no dependencies): Standard Webhooks, HMAC-SHA256 over
// "<webhook-id>.<webhook-timestamp>.<body>" with the base64 secret after "whsec_". During a
// secret rotation the header carries one "v1,<signature>" per secret: any may match.
//
//   import { verify } from "./verify.mjs";
//   http.createServer((req, res) => { ...collect the raw body...
//     const event = verify(process.env.SCS_WEBHOOK_SECRET, req.headers, rawBody);
//     res.writeHead(event ? 204 : 401).end(); });
import { createHmac, timingSafeEqual } from "node:crypto";

const TOLERANCE_SECONDS = 5 * 60;

export function verify(secret, headers, rawBody, now = Date.now() / 1000) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures) return null;
  if (Math.abs(now - Number(timestamp)) > TOLERANCE_SECONDS) return null;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key)
    .update(`${id}.${timestamp}.${rawBody}`)
    .digest();
  for (const candidate of signatures.split(" ")) {
    const [version, signature] = candidate.split(",");
    if (version !== "v1" || !signature) continue;
    const given = Buffer.from(signature, "base64");
    if (given.length === expected.length && timingSafeEqual(given, expected)) {
      return JSON.parse(rawBody);
    }
  }
  return null;
}

// `node verify.mjs SECRET HEADERS_JSON BODY`: prints the event type, or "invalid" (exit 1).
if (import.meta.url === `file://${process.argv[1]}`) {
  const [secret, headers, body] = process.argv.slice(2);
  const event = verify(secret, JSON.parse(headers), body);
  console.log(event ? event.type : "invalid");
  process.exit(event ? 0 : 1);
}
