// Print the PresignedUrl that @aws-sdk/client-ec2 builds for a cross-region CopySnapshot,
// exactly as the SDK builds it: the CopySnapshot command runs through a real EC2Client, whose
// copySnapshotPresignedUrlMiddleware (@aws-sdk/middleware-sdk-ec2) presigns the source-region
// request; a middleware after it captures the URL and stops the request before it is sent.
//
// usage: node presign-copy-snapshot.js '[<json>, ...]': one URL a line, one per object of
//   {"accessKeyId", "secretAccessKey", "sourceRegion", "destinationRegion", "snapshotId",
//    "endpoint", "date" (ISO 8601, the signing time), "input" (optional extra CopySnapshot
//    members, e.g. {"Encrypted": true, "KmsKeyId": "alias/x"})}
import { CopySnapshotCommand, EC2Client } from "@aws-sdk/client-ec2";

const requests = JSON.parse(process.argv[2] ?? "[]");

// The middleware signs at `new Date()` (it passes no signingDate to SignatureV4.presign):
// a fixed clock is the only way to a reproducible URL. Dates built from a value are untouched.
let signingTime = 0;
const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...values) {
    super(...(values.length ? values : [signingTime]));
  }
  static now() {
    return signingTime;
  }
};

class Captured extends Error {
  constructor(url) {
    super("captured");
    this.url = url;
  }
}

function fail(message) {
  console.error(`presign-copy-snapshot.js: ${message}`);
  process.exit(2);
}

async function presign(args) {
  for (const name of ["accessKeyId", "secretAccessKey", "sourceRegion", "destinationRegion",
    "snapshotId", "endpoint", "date"]) {
    if (args[name] === undefined) fail(`"${name}" is missing`);
  }
  signingTime = new RealDate(args.date).getTime();
  if (Number.isNaN(signingTime)) fail(`"date" is not a date: ${args.date}`);
  const client = new EC2Client({
    region: args.destinationRegion,
    endpoint: args.endpoint,
    credentials: { accessKeyId: args.accessKeyId, secretAccessKey: args.secretAccessKey },
    maxAttempts: 1,
  });
  // "build" runs after every "serialize" middleware, the presigning one included.
  client.middlewareStack.add((next) => async (call) => {
    throw new Captured(call.input.PresignedUrl);
  }, { step: "build", name: "capturePresignedUrl" });
  try {
    await client.send(new CopySnapshotCommand({
      SourceRegion: args.sourceRegion, SourceSnapshotId: args.snapshotId,
      ...(args.input ?? {}) }));
  } catch (error) {
    if (error instanceof Captured && error.url) return error.url;
    throw error;
  }
  return fail("the request was not stopped");
}

if (!Array.isArray(requests)) fail("the argument must be a JSON list");
for (const args of requests) process.stdout.write(`${await presign(args)}\n`);
