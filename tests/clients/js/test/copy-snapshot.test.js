// The CopySnapshot story through the AWS SDK for JavaScript v3, unchanged, against snapferry.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CopySnapshotCommand, DescribeSnapshotsCommand, waitUntilSnapshotCompleted }
  from "@aws-sdk/client-ec2";
import { CreateAliasCommand, CreateKeyCommand } from "@aws-sdk/client-kms";
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { digestsOf, ebs, ec2, kms, randomBlocks, readDigests, sts, writeSnapshot }
  from "../helpers.js";

const SRC = "us-east-1";
const DST = "eu-west-3";
const WAIT = { maxWaitTime: 120, minDelay: 1, maxDelay: 2 };

async function completed(client, snapshotId) {
  const waited = await waitUntilSnapshotCompleted({ client, ...WAIT },
    { SnapshotIds: [snapshotId] });
  assert.equal(waited.state, "SUCCESS", JSON.stringify(waited.reason));
  const { Snapshots } = await client.send(new DescribeSnapshotsCommand({
    SnapshotIds: [snapshotId] }));
  assert.equal(Snapshots.length, 1);
  return Snapshots[0];
}

test("the SDK's identity is the account of its key", async () => {
  const identity = await sts(SRC).send(new GetCallerIdentityCommand({}));
  assert.equal(identity.Account, process.env.SNAPFERRY_ACCOUNT_ID);
});

test("a cross-region encrypted copy by key id, alias and ARN reads back the same blocks",
  async () => {
    const blocks = randomBlocks([0, 7, 2047]);
    const source = await writeSnapshot(ebs(SRC), blocks);
    const keys = kms(DST);
    const key = (await keys.send(new CreateKeyCommand({ Description: "js copy target" })))
      .KeyMetadata;
    const alias = `alias/js-copy-${key.KeyId.slice(0, 8)}`;
    await keys.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyId }));
    const there = ec2(DST);
    for (const form of [key.KeyId, alias, key.Arn]) {
      // The SDK presigns the source-region request itself (PresignedUrl, DestinationRegion).
      const copy = await there.send(new CopySnapshotCommand({
        SourceRegion: SRC, SourceSnapshotId: source, Encrypted: true, KmsKeyId: form,
        Description: `copy by ${form}` }));
      assert.match(copy.SnapshotId, /^snap-[0-9a-f]{17}$/);
      const done = await completed(there, copy.SnapshotId);
      assert.equal(done.State, "completed", done.StateMessage);
      assert.equal(done.Encrypted, true);
      assert.equal(done.KmsKeyId, key.Arn);
      assert.equal(done.Description, `copy by ${form}`);
      assert.deepEqual(await readDigests(ebs(DST), copy.SnapshotId), digestsOf(blocks));
    }
  });

test("a same-region copy keeps the data and is unencrypted like its source", async () => {
  const blocks = randomBlocks([1, 2]);
  const here = ec2(SRC);
  const source = await writeSnapshot(ebs(SRC), blocks);
  const copy = await here.send(new CopySnapshotCommand({
    SourceRegion: SRC, SourceSnapshotId: source }));
  const done = await completed(here, copy.SnapshotId);
  assert.equal(done.Encrypted, false);
  assert.deepEqual(await readDigests(ebs(SRC), copy.SnapshotId), digestsOf(blocks));
});

test("a refused copy reaches the SDK as EC2's error code", async () => {
  const there = ec2(DST);
  await assert.rejects(
    there.send(new CopySnapshotCommand({ SourceRegion: SRC,
      SourceSnapshotId: "snap-0123456789abcdef0" })),
    (error) => {
      assert.equal(error.name, "InvalidSnapshot.NotFound");
      assert.equal(error.$metadata.httpStatusCode, 400);
      assert.match(error.message, /snap-0123456789abcdef0/);
      return true;
    });
  await assert.rejects(
    there.send(new CopySnapshotCommand({ SourceRegion: SRC, SourceSnapshotId: "not-a-snapshot" })),
    (error) => {
      assert.equal(error.name, "InvalidSnapshotID.Malformed");
      assert.equal(error.$metadata.httpStatusCode, 400);
      return true;
    });
});
