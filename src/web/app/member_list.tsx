/// <reference lib="dom" />
/** @jsxImportSource preact */
/**
 * Who is in the room (everyone listed is online); a name opens direct messages with them.
 *
 * @module
 */

import { nameKey } from "../../protocol/names.ts";
import { avatarClass, initial } from "./format.ts";
import { useChat } from "./hooks.ts";
import type { Conversation } from "./model.ts";

/** Props of {@linkcode MemberList}. */
export interface MemberListProps {
  conv: Conversation;
  me: string;
  /** Called after a member was picked (closes the panel on narrow screens). */
  onPicked: () => void;
}

/** The member panel of a room. */
export function MemberList({ conv, me, onPicked }: MemberListProps) {
  const chat = useChat();
  return (
    <aside id="members" class="members" aria-labelledby="members-heading">
      <h2 id="members-heading" class="side-heading">
        Members <span class="count">({conv.members.length})</span>
      </h2>
      <ul class="member-list" data-testid="member-list">
        {conv.members.map((m) => {
          const self = nameKey(m) === nameKey(me);
          return (
            <li key={m} class="member" data-testid="member" data-name={m}>
              <span class={`avatar small ${avatarClass(m)}`} aria-hidden="true">
                {initial(m)}
                <span class="presence-dot online" />
              </span>
              {self
                ? (
                  <span class="member-name">
                    {m} <span class="muted">(you)</span>
                  </span>
                )
                : (
                  <button
                    type="button"
                    class="member-name link-like"
                    title={`Send ${m} a direct message`}
                    aria-label={`${m}, online: send a direct message`}
                    onClick={() => {
                      chat.openDm(m);
                      onPicked();
                    }}
                  >
                    {m}
                  </button>
                )}
            </li>
          );
        })}
      </ul>
    </aside>
  );
}
