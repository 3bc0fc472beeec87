// Verifies recorded callevents deliveries with the official libraries, as
// a receiver would (README, "Verifying the signature"): standardwebhooks
// with the raw secret and with its whsec_ form, and svix. Reads the secret
// from argv[2] and a JSON array of {method, url, headers, body} (url the
// raw request target, headers lower-case, as node:http gives them) on
// stdin; prints one JSON result per request.
import { readFileSync } from "node:fs";
import { Webhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";

// The signed payload: the POST body; for a GET, the ten parameters, which
// are the last ten &-separated fields of the raw query (never decoded).
function payloadOf(req, body) {
  if (req.method === "POST") return body;
  const query = req.url.slice(req.url.indexOf("?") + 1);
  return query.split("&").slice(-10).join("&");
}

const secret = process.argv[2];
const verifiers = {
  standardwebhooks: (p, h) => new Webhook(secret, { format: "raw" }).verify(p, h, { jsonParse: false }),
  whsec: (p, h) => new Webhook("whsec_" + Buffer.from(secret).toString("base64")).verify(p, h, { jsonParse: false }),
  svix: (p, h) => new SvixWebhook(secret, { format: "raw" }).verify(p, h),
};

function attempt(verify, payload, headers) {
  try {
    verify(payload, headers);
    return "ok";
  } catch (e) {
    return `${e.name}: ${e.message}`;
  }
}

const out = JSON.parse(readFileSync(0, "utf8")).map((req) => {
  const payload = payloadOf(req, req.body);
  const r = { payload, params: Object.fromEntries(new URLSearchParams(payload)) };
  // One byte more, or another id, must not verify.
  const otherId = { ...req.headers, "webhook-id": req.headers["webhook-id"] + "x" };
  for (const [name, verify] of Object.entries(verifiers)) {
    r[name] = attempt(verify, payload, req.headers);
    r[name + "Tampered"] = attempt(verify, payload + "x", req.headers);
    r[name + "OtherId"] = attempt(verify, payload, otherId);
  }
  return r;
});
process.stdout.write(JSON.stringify(out));
