import assert from "node:assert/strict";
import { ChatError } from "../src/protocol/errors.ts";
import type { ErrorCode } from "../src/protocol/errors.ts";
import { type ClientFrame, parseClientFrame, ParseError } from "../src/protocol/frames.ts";

function parsed(line: string): ClientFrame {
  const result = parseClientFrame(line);
  if (result instanceof ParseError) assert.fail(`${line} was refused: ${result.message}`);
  return result;
}

function refused(line: string, code: ErrorCode, ref?: string): ParseError {
  const result = parseClientFrame(line);
  assert.ok(result instanceof ParseError, `${line} was accepted`);
  assert.equal(result.code, code, line);
  assert.equal(result.ref, ref, `ref of ${line}`);
  return result;
}

Deno.test("parseClientFrame() accepts every client frame type", () => {
  const cases: [string, ClientFrame][] = [
    ['{"type":"hello"}', { type: "hello" }],
    ['{"type":"hello","client":"nc","proto":1}', { type: "hello", client: "nc", proto: 1 }],
    ['{"type":"nick","name":"alice"}', { type: "nick", name: "alice" }],
    ['{"type":"join","room":"#ops"}', { type: "join", room: "#ops" }],
    ['{"type":"part","room":"#ops"}', { type: "part", room: "#ops" }],
    ['{"type":"rooms"}', { type: "rooms" }],
    ['{"type":"who","room":"#general"}', { type: "who", room: "#general" }],
    ['{"type":"ping"}', { type: "ping" }],
    ['{"type":"send","room":"#ops","text":"hi"}', { type: "send", room: "#ops", text: "hi" }],
    [
      '{"type":"send","to":"bob","text":"waves","action":true}',
      { type: "send", to: "bob", text: "waves", action: true },
    ],
    ['{"type":"quit"}', { type: "quit" }],
    ['{"type":"quit","reason":"lunch"}', { type: "quit", reason: "lunch" }],
  ];
  for (const [line, frame] of cases) assert.deepEqual(parsed(line), frame, line);
});

Deno.test("parseClientFrame() keeps a string ref on a valid frame", () => {
  assert.deepEqual(parsed('{"type":"join","ref":"r1","room":"#ops"}'), {
    type: "join",
    ref: "r1",
    room: "#ops",
  });
});

Deno.test("parseClientFrame() caps a long ref at 64 characters", () => {
  const frame = parsed(JSON.stringify({ type: "ping", ref: "r".repeat(100) }));
  assert.equal(frame.ref, "r".repeat(64));
  refused(JSON.stringify({ type: "nick", ref: "q".repeat(100) }), "bad_frame", "q".repeat(64));
});

Deno.test("parseClientFrame() ignores unknown fields", () => {
  assert.deepEqual(
    parsed('{"type":"ping","ref":"a","extra":1,"nested":{"deep":[1,2]},"v2":null}'),
    { type: "ping", ref: "a" },
  );
  assert.deepEqual(parsed('{"name":"alice","type":"nick","room":5}'), {
    type: "nick",
    name: "alice",
  });
});

Deno.test("parseClientFrame() refuses invalid JSON as bad_frame", () => {
  for (const line of ["", "{", "not json", '{"type":"ping"} trailing', "{'type':'ping'}"]) {
    refused(line, "bad_frame");
  }
});

Deno.test("parseClientFrame() refuses JSON that is not an object as bad_frame", () => {
  for (const line of ["[]", '[{"type":"ping"}]', "42", "null", '"ping"', "true"]) {
    refused(line, "bad_frame");
  }
});

Deno.test("parseClientFrame() refuses a missing or mistyped type as bad_frame", () => {
  refused("{}", "bad_frame");
  refused('{"ref":"a"}', "bad_frame", "a");
  refused('{"type":5,"ref":"b"}', "bad_frame", "b");
  refused('{"type":null}', "bad_frame");
  refused('{"type":["ping"]}', "bad_frame");
});

Deno.test("parseClientFrame() refuses an unknown type as unknown_type", () => {
  refused('{"type":"dance","ref":"x"}', "unknown_type", "x");
  refused('{"type":""}', "unknown_type");
  refused('{"type":"PING"}', "unknown_type");
  // Text-mode-only commands and Object.prototype keys are not frame types.
  for (const type of ["help", "toString", "constructor", "__proto__", "hasOwnProperty"]) {
    refused(JSON.stringify({ type }), "unknown_type");
  }
});

Deno.test("parseClientFrame() refuses a missing required field as bad_frame", () => {
  refused('{"type":"nick","ref":"1"}', "bad_frame", "1");
  refused('{"type":"join"}', "bad_frame");
  refused('{"type":"part"}', "bad_frame");
  refused('{"type":"who"}', "bad_frame");
  refused('{"type":"send","room":"#ops","ref":"2"}', "bad_frame", "2");
});

Deno.test("parseClientFrame() refuses a mistyped required field as bad_frame", () => {
  refused('{"type":"nick","name":7}', "bad_frame");
  refused('{"type":"join","room":["#ops"],"ref":"3"}', "bad_frame", "3");
  refused('{"type":"send","room":"#ops","text":null}', "bad_frame");
});

Deno.test("parseClientFrame() refuses a mistyped optional field as bad_frame", () => {
  refused('{"type":"send","text":"x","action":"yes","ref":"4"}', "bad_frame", "4");
  refused('{"type":"send","text":"x","room":5}', "bad_frame");
  refused('{"type":"send","text":"x","to":null}', "bad_frame");
  refused('{"type":"hello","proto":"1"}', "bad_frame");
  refused('{"type":"hello","client":1}', "bad_frame");
  refused('{"type":"quit","reason":false,"ref":"5"}', "bad_frame", "5");
});

Deno.test("parseClientFrame() refuses a non-string ref as bad_frame", () => {
  for (const ref of ["5", "null", "true", "{}", '["a"]']) {
    refused(`{"type":"ping","ref":${ref}}`, "bad_frame");
  }
});

Deno.test("parseClientFrame() returns a ParseError that is a ChatError", () => {
  const error = refused('{"type":"dance"}', "unknown_type");
  assert.ok(error instanceof ChatError);
  assert.equal(error.name, "ParseError");
  assert.ok(error.message.length > 0);
});
