/**
 * Voice signalling commands: `voice_join`, `voice_leave`, `voice_answer`, `voice_ice`,
 * `voice_mute`, `voice_who`, `voice_moderate` (docs/protocol.md, "Voice"). Joining, listing and
 * moderating need the session in the room; answering, candidates and muting need it in the voice
 * (the service checks); each has its own rate. The media itself is the voice service's
 * (`src/voice/voice.ts`).
 *
 * @module
 */

import { ChatError } from "../protocol/errors.ts";
import type { Calls } from "../voice/calls.ts";
import { turnCredentials } from "../voice/turn.ts";
import type { Voice } from "../voice/voice.ts";
import type { CommandGroup, Services } from "./command.ts";
import { webUrl } from "./connection.ts";

function callsOf(services: Services): Calls {
  if (services.calls === undefined) {
    throw new ChatError("forbidden", "Cannot call: voice is turned off on this server");
  }
  return services.calls;
}

function voiceOf(services: Services): Voice {
  if (services.voice === undefined) {
    throw new ChatError("forbidden", "Cannot use voice: it is turned off on this server");
  }
  return services.voice;
}

/** The voice commands. */
export const voiceCommands: CommandGroup<
  | "voice_join"
  | "voice_leave"
  | "voice_answer"
  | "voice_ice"
  | "voice_mute"
  | "voice_who"
  | "voice_moderate"
  | "voice_servers"
  | "call"
  | "call_accept"
  | "call_decline"
  | "call_hangup"
> = {
  voice_servers: {
    guard: { needs: "online", rate: { burst: 10, perSecond: 1 } },
    async run(_request, caller, services) {
      voiceOf(services);
      const { turnUrls, turnSecret, turnTtlMs } = services.config;
      const iceServers = turnSecret === undefined ? [] : await turnCredentials(
        turnUrls,
        turnSecret,
        caller.name,
        { now: Date.now(), ttlMs: turnTtlMs },
      );
      return { result: { command: "voice_servers", reply: { type: "ack", iceServers } } };
    },
  },
  call: {
    guard: { needs: "online", rate: { burst: 5, perSecond: 0.5 } },
    run(request, caller, services) {
      const { call, to } = callsOf(services).start(caller, request.to);
      return { result: { command: "call", reply: { type: "ack", call, to } } };
    },
  },
  call_accept: {
    guard: { needs: "online", rate: { burst: 5, perSecond: 1 } },
    run(request, caller, services) {
      callsOf(services).accept(caller, request.call);
      return { result: { command: "call_accept", reply: { type: "ack" } } };
    },
  },
  call_decline: {
    guard: { needs: "online", rate: { burst: 5, perSecond: 1 } },
    run(request, caller, services) {
      callsOf(services).decline(caller, request.call);
      return { result: { command: "call_decline", reply: { type: "ack" } } };
    },
  },
  call_hangup: {
    guard: { needs: "online", rate: { burst: 5, perSecond: 1 } },
    run(request, caller, services) {
      callsOf(services).hangUp(caller, request.call);
      return { result: { command: "call_hangup", reply: { type: "ack" } } };
    },
  },
  voice_join: {
    guard: {
      needs: "online",
      inRoom: { room: (r) => r.room, verb: "join its voice" },
      rate: { burst: 5, perSecond: 1 },
    },
    run(request, caller, services) {
      const { room } = services.hub.who(request.room);
      const participants = voiceOf(services).join(caller, room);
      return { result: { command: "voice_join", reply: { type: "ack", room, participants } } };
    },
  },
  voice_leave: {
    guard: { needs: "online", rate: { burst: 5, perSecond: 1 } },
    run(request, caller, services) {
      voiceOf(services).leave(caller, request.room);
      return {
        result: { command: "voice_leave", reply: { type: "ack", room: request.room } },
      };
    },
  },
  voice_answer: {
    // No rate of its own: an answer is taken only while the server's offer waits for it, and the
    // server makes one offer per answer at most (joins meanwhile wait for the next), so answers
    // never outrun offers; a limit refused answers to offers in a room where many joined at
    // once, and that participant then never got another offer.
    guard: { needs: "online" },
    async run(request, caller, services) {
      await voiceOf(services).answer(caller, request.room, request.sdp);
      return { result: { command: "voice_answer", reply: { type: "ack" } } };
    },
  },
  voice_ice: {
    guard: {
      needs: "online",
      rate: { burst: 40, perSecond: 20 },
    },
    async run(request, caller, services) {
      await voiceOf(services).candidate(caller, request.room, request.candidate, request.mid);
      return { result: { command: "voice_ice", reply: { type: "ack" } } };
    },
  },
  voice_mute: {
    guard: {
      needs: "online",
      rate: { burst: 20, perSecond: 10 },
    },
    run(request, caller, services) {
      const state = voiceOf(services).mute(caller, request.room, request.muted, request.deafened);
      return {
        result: { command: "voice_mute", reply: { type: "ack", room: request.room, ...state } },
      };
    },
  },
  voice_moderate: {
    guard: {
      needs: "online",
      inRoom: { room: (r) => r.room, verb: "moderate its voice" },
      rate: { burst: 10, perSecond: 2 },
      role: (r) => ({ room: r.room, least: "op", what: `moderate voice in ${r.room}` }),
    },
    run(request, caller, services) {
      const { room, name, action } = request;
      if (action !== "mute" && action !== "unmute" && action !== "remove") {
        throw new ChatError("bad_frame", "Field 'action' must be mute, unmute or remove");
      }
      const verb = action === "mute" ? "silence" : action === "unmute" ? "unsilence" : "remove";
      if (!voiceOf(services).moderate(room, name, verb, caller.name)) {
        throw new ChatError("no_such_user", `Cannot ${action} ${name}: not in ${room}'s voice`);
      }
      return {
        result: { command: "voice_moderate", reply: { type: "ack", room, name, action } },
      };
    },
  },
  voice_who: {
    guard: {
      needs: "online",
      inRoom: { room: (r) => r.room, verb: "see its voice" },
    },
    run(request, _caller, services) {
      const { room } = services.hub.who(request.room);
      const enabled = services.voice !== undefined;
      const participants = services.voice?.participants(room) ?? [];
      const reply = { type: "ack" as const, room, participants, enabled };
      if (services.web === undefined) return { result: { command: "voice_who", reply } };
      const web = webUrl(services.web, services.config.host);
      return { result: { command: "voice_who", reply, web } };
    },
  },
};
