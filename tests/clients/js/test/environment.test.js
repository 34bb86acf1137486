// A client given nothing but its region finds snapferry through the standard environment
// variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), as the README says.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CopySnapshotCommand, EC2Client, waitUntilSnapshotCompleted } from "@aws-sdk/client-ec2";
import { EBSClient } from "@aws-sdk/client-ebs";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { digestsOf, randomBlocks, readDigests, writeSnapshot } from "../helpers.js";

test("AWS_ENDPOINT_URL and the key variables are enough", async () => {
  assert.ok(process.env.AWS_ENDPOINT_URL, "AWS_ENDPOINT_URL must be set");
  const identity = await new STSClient({ region: "eu-west-1" })
    .send(new GetCallerIdentityCommand({}));
  assert.equal(identity.Account, process.env.SNAPFERRY_ACCOUNT_ID);

  const blocks = randomBlocks([5]);
  const source = await writeSnapshot(new EBSClient({ region: "us-west-2" }), blocks);
  const there = new EC2Client({ region: "ca-central-1", maxAttempts: 1 });
  const copy = await there.send(new CopySnapshotCommand({
    SourceRegion: "us-west-2", SourceSnapshotId: source }));
  const waited = await waitUntilSnapshotCompleted(
    { client: there, maxWaitTime: 120, minDelay: 1, maxDelay: 2 },
    { SnapshotIds: [copy.SnapshotId] });
  assert.equal(waited.state, "SUCCESS", JSON.stringify(waited.reason));
  assert.deepEqual(await readDigests(new EBSClient({ region: "ca-central-1" }), copy.SnapshotId),
    digestsOf(blocks));
});
