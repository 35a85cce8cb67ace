import assert from "node:assert/strict";
import { TokenBucket } from "../src/session/token_bucket.ts";

Deno.test("TokenBucket.take() allows a burst immediately", () => {
  const bucket = new TokenBucket(3, 2, 0);
  assert.deepEqual([bucket.take(0), bucket.take(0), bucket.take(0)], [0, 0, 0]);
});

Deno.test("TokenBucket.take() makes each wait past the burst 1/rate seconds longer", () => {
  const bucket = new TokenBucket(3, 2, 0);
  for (let i = 0; i < 3; i++) bucket.take(0);
  assert.deepEqual([bucket.take(0), bucket.take(0), bucket.take(0)], [500, 1000, 1500]);
});

Deno.test("TokenBucket.take() refills at rate tokens per second", () => {
  const bucket = new TokenBucket(2, 1, 0);
  assert.equal(bucket.take(0), 0);
  assert.equal(bucket.take(0), 0);
  assert.equal(bucket.take(0), 1000);
  // The third take borrowed a token; two seconds later one is left over.
  assert.equal(bucket.take(2000), 0);
  assert.equal(bucket.take(2000), 1000);
});

Deno.test("TokenBucket.take() waits only for the part of a token not yet refilled", () => {
  const bucket = new TokenBucket(1, 1, 0);
  assert.equal(bucket.take(0), 0);
  assert.equal(bucket.take(500), 500);
  assert.equal(bucket.take(1500), 500);
});

Deno.test("TokenBucket.take() never refills beyond the burst", () => {
  const bucket = new TokenBucket(2, 10, 0);
  assert.equal(bucket.take(0), 0);
  const later = 3_600_000;
  assert.deepEqual([bucket.take(later), bucket.take(later)], [0, 0]);
  assert.equal(bucket.take(later), 100);
});

Deno.test("TokenBucket treats a burst below 1 as 1", () => {
  const bucket = new TokenBucket(0, 1, 0);
  assert.equal(bucket.take(0), 0);
  assert.equal(bucket.take(0), 1000);
});

Deno.test("TokenBucket.take() never waits when the rate is 0 or less", () => {
  for (const rate of [0, -1]) {
    const bucket = new TokenBucket(1, rate, 0);
    for (let i = 0; i < 1000; i++) assert.equal(bucket.take(0), 0, `rate ${rate}, take ${i}`);
  }
});
