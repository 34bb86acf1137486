// Clients pointed at the live snapferry named by the environment, and the EBS direct
// steps a backup tool takes: write blocks with checksums, read them back by SHA-256.
import { createHash, randomBytes } from "node:crypto";
import { EBSClient, StartSnapshotCommand, PutSnapshotBlockCommand, CompleteSnapshotCommand,
  ListSnapshotBlocksCommand, GetSnapshotBlockCommand } from "@aws-sdk/client-ebs";
import { EC2Client } from "@aws-sdk/client-ec2";
import { KMSClient } from "@aws-sdk/client-kms";
import { STSClient } from "@aws-sdk/client-sts";

export const BLOCK = 524288;

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set: tests/integration/test_js_sdk.py sets it`);
  return value;
}

// What a user writes: an endpoint, a region, credentials. No retries, so a refusal is seen
// once and at once.
export function config(region) {
  return {
    region,
    endpoint: required("SNAPFERRY_ENDPOINT"),
    credentials: {
      accessKeyId: required("SNAPFERRY_ACCESS_KEY_ID"),
      secretAccessKey: required("SNAPFERRY_SECRET_ACCESS_KEY"),
    },
    maxAttempts: 1,
  };
}

export const ec2 = (region) => new EC2Client(config(region));
export const ebs = (region) => new EBSClient(config(region));
export const kms = (region) => new KMSClient(config(region));
export const sts = (region) => new STSClient(config(region));

export const sha256 = (data) => createHash("sha256").update(data).digest();
export const hex = (data) => sha256(data).toString("hex");

export function randomBlocks(indexes) {
  return new Map(indexes.map((index) => [index, randomBytes(BLOCK)]));
}

// StartSnapshot, PutSnapshotBlock with SHA-256 checksums, CompleteSnapshot with the LINEAR
// aggregate: the snapshot id once snapferry says "completed".
export async function writeSnapshot(client, blocks) {
  const { SnapshotId, Status } = await client.send(new StartSnapshotCommand({
    VolumeSize: 1, Description: "written by the JS SDK" }));
  if (Status !== "pending") throw new Error(`StartSnapshot answered ${Status}`);
  await Promise.all([...blocks].map(([index, data]) => client.send(new PutSnapshotBlockCommand({
    SnapshotId, BlockIndex: index, BlockData: data, DataLength: data.length,
    Checksum: sha256(data).toString("base64"), ChecksumAlgorithm: "SHA256" }))));
  const ordered = [...blocks.keys()].sort((a, b) => a - b);
  const aggregate = sha256(Buffer.concat(ordered.map((i) => sha256(blocks.get(i)))));
  const done = await client.send(new CompleteSnapshotCommand({
    SnapshotId, ChangedBlocksCount: blocks.size, Checksum: aggregate.toString("base64"),
    ChecksumAlgorithm: "SHA256", ChecksumAggregationMethod: "LINEAR" }));
  if (done.Status !== "completed") throw new Error(`CompleteSnapshot answered ${done.Status}`);
  return SnapshotId;
}

// block index -> SHA-256 hex of what GetSnapshotBlock returns, each checked against the
// Checksum header the server sent with it.
export async function readDigests(client, snapshotId) {
  const tokens = new Map();
  let NextToken;
  do {
    const page = await client.send(new ListSnapshotBlocksCommand({
      SnapshotId: snapshotId, MaxResults: 100, NextToken }));
    for (const block of page.Blocks) tokens.set(block.BlockIndex, block.BlockToken);
    NextToken = page.NextToken;
  } while (NextToken);
  const digests = new Map();
  for (const [index, token] of [...tokens].sort((a, b) => a[0] - b[0])) {
    const got = await client.send(new GetSnapshotBlockCommand({
      SnapshotId: snapshotId, BlockIndex: index, BlockToken: token }));
    const data = Buffer.from(await got.BlockData.transformToByteArray());
    if (got.Checksum !== sha256(data).toString("base64") || got.DataLength !== BLOCK) {
      throw new Error(`block ${index}: the data does not match its Checksum header`);
    }
    digests.set(index, hex(data));
  }
  return digests;
}

export const digestsOf = (blocks) => new Map([...blocks].map(([i, data]) => [i, hex(data)]));
