// The AWS SDK for JavaScript v3's S3 client, unchanged, against a live snapferry: run by
// tests/integration/test_js_sdk_s3.py as `node --test s3-suite.js` (its own file, so the
// EC2/EBS suite's count stays its own). Path-style addressing: `<bucket>.localhost` does
// not resolve here.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { test } from "node:test";
import {
  CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand,
  DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command,
  PutObjectCommand, S3Client, UploadPartCommand,
} from "@aws-sdk/client-s3";
import { config } from "./helpers.js";

const s3 = new S3Client({ ...config("us-east-1"), forcePathStyle: true });
const md5 = (data) => createHash("md5").update(data).digest("hex");

test("objects: put, get, head, list, delete; NoSuchKey", async () => {
  const Bucket = "js-sdk-objects";
  await s3.send(new CreateBucketCommand({ Bucket }));
  const data = randomBytes(100000);
  const put = await s3.send(new PutObjectCommand({ Bucket, Key: "dir/a.bin", Body: data,
    ContentType: "application/x-test", Metadata: { from: "js" } }));
  assert.equal(put.ETag, `"${md5(data)}"`);
  const got = await s3.send(new GetObjectCommand({ Bucket, Key: "dir/a.bin" }));
  assert.deepEqual(Buffer.from(await got.Body.transformToByteArray()), data);
  assert.equal(got.ContentType, "application/x-test");
  assert.deepEqual(got.Metadata, { from: "js" });
  const head = await s3.send(new HeadObjectCommand({ Bucket, Key: "dir/a.bin" }));
  assert.equal(head.ContentLength, data.length);
  const listed = await s3.send(new ListObjectsV2Command({ Bucket, Delimiter: "/" }));
  assert.deepEqual(listed.CommonPrefixes.map((p) => p.Prefix), ["dir/"]);
  await s3.send(new DeleteObjectCommand({ Bucket, Key: "dir/a.bin" }));
  await assert.rejects(s3.send(new GetObjectCommand({ Bucket, Key: "dir/a.bin" })),
    (error) => error.name === "NoSuchKey" && error.$metadata.httpStatusCode === 404);
});

test("a streamed body goes aws-chunked with a trailing CRC32", async () => {
  const Bucket = "js-sdk-stream";
  await s3.send(new CreateBucketCommand({ Bucket }));
  const data = randomBytes(3 * 1024 * 1024 + 5);
  const put = await s3.send(new PutObjectCommand({ Bucket, Key: "s", ContentLength: data.length,
    Body: Readable.from([data.subarray(0, 1000000), data.subarray(1000000)]) }));
  assert.ok(put.ChecksumCRC32, "the SDK sent a CRC32 and snapferry confirmed it");
  const got = await s3.send(new GetObjectCommand({ Bucket, Key: "s", ChecksumMode: "ENABLED" }));
  assert.deepEqual(Buffer.from(await got.Body.transformToByteArray()), data);
  assert.equal(got.ChecksumCRC32, put.ChecksumCRC32);
});

test("multipart upload", async () => {
  const Bucket = "js-sdk-multipart";
  await s3.send(new CreateBucketCommand({ Bucket }));
  const parts = [randomBytes(5 * 1024 * 1024), randomBytes(777)];
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: "m" }));
  const done = [];
  for (const [index, Body] of parts.entries()) {
    const { ETag } = await s3.send(new UploadPartCommand({ Bucket, Key: "m", UploadId,
      PartNumber: index + 1, Body }));
    done.push({ ETag, PartNumber: index + 1 });
  }
  const complete = await s3.send(new CompleteMultipartUploadCommand({ Bucket, Key: "m",
    UploadId, MultipartUpload: { Parts: done } }));
  assert.match(complete.ETag, /-2"$/);
  const got = await s3.send(new GetObjectCommand({ Bucket, Key: "m" }));
  assert.deepEqual(Buffer.from(await got.Body.transformToByteArray()), Buffer.concat(parts));
});
