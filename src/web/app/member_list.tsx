/// <reference lib="dom" />
/** @jsxImportSource preact */
/**
 * Who is in the room (everyone listed is online), with each member's role (owner, op, admin); a
 * name opens direct messages with them. For an operator or above, each member of a lower rank
 * has a moderation menu (Kick, Ban, Mute or Unmute; Make or Remove operator for the owner and
 * administrators): a menu button, then menu items moved through with the arrow keys; Kick and
 * Ban ask for an optional reason first.
 *
 * @module
 */

import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { nameKey } from "../../protocol/names.ts";
import { avatarClass, initial } from "./format.ts";
import { useChat } from "./hooks.ts";
import { menuActions, ROLE_LABELS, roleOf } from "./model.ts";
import type { Conversation, MenuAction } from "./model.ts";

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
          const role = roleOf(conv, m);
          const actions = menuActions(conv, me, m);
          return (
            <li
              key={m}
              class="member"
              data-testid="member"
              data-name={m}
              data-role={role ?? ""}
            >
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
                    aria-label={`${m}${role ? `, ${ROLE_LABELS[role]}` : ""}, online: ` +
                      "send a direct message"}
                    onClick={() => {
                      chat.openDm(m);
                      onPicked();
                    }}
                  >
                    {m}
                  </button>
                )}
              {role !== undefined && (
                <span class={`role-badge role-${role}`} data-testid="role">
                  {ROLE_LABELS[role]}
                </span>
              )}
              {actions.length > 0 && <MemberMenu conv={conv} name={m} actions={actions} />}
            </li>
          );
        })}
      </ul>
    </aside>
  );
}

/** The moderation menu of one member. */
function MemberMenu(
  { conv, name, actions }: { conv: Conversation; name: string; actions: MenuAction[] },
) {
  const chat = useChat();
  const [open, setOpen] = useState(false);
  const [asking, setAsking] = useState<MenuAction | undefined>(undefined);
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const wrap = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  const reasonBox = useRef<HTMLInputElement>(null);
  const id = `member-menu-${nameKey(name)}`;

  const close = (refocus = true) => {
    setOpen(false);
    setAsking(undefined);
    setReason("");
    setError(undefined);
    if (refocus) button.current?.focus();
  };

  // Opening focuses the first item; asking for a reason focuses its box (before the next key).
  useLayoutEffect(() => {
    if (!open) return;
    if (asking !== undefined) reasonBox.current?.focus();
    else wrap.current?.querySelector<HTMLElement>("[role=menuitem]")?.focus();
  }, [open, asking]);

  // A click elsewhere closes it.
  useEffect(() => {
    if (!open) return;
    const away = (ev: MouseEvent) => {
      if (!wrap.current?.contains(ev.target as Node)) close(false);
    };
    document.addEventListener("mousedown", away);
    return () => document.removeEventListener("mousedown", away);
  }, [open]);

  const run = async (action: MenuAction, why = "") => {
    setBusy(true);
    const problem = await chat.moderate(conv.key, action.action, name, why);
    setBusy(false);
    if (problem === undefined) close();
    else setError(problem);
  };

  const onKeyDown = (ev: KeyboardEvent) => {
    if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation(); // not the drawer's Escape too
      close();
      return;
    }
    if (asking !== undefined) return;
    const items = [...(wrap.current?.querySelectorAll<HTMLElement>("[role=menuitem]") ?? [])];
    const at = items.indexOf(document.activeElement as HTMLElement);
    const go = (n: number) => {
      ev.preventDefault();
      items[(n + items.length) % items.length]?.focus();
    };
    if (ev.key === "ArrowDown") go(at + 1);
    else if (ev.key === "ArrowUp") go(at - 1);
    else if (ev.key === "Home") go(0);
    else if (ev.key === "End") go(items.length - 1);
    else if (ev.key === "Tab") close(false);
  };

  return (
    <div class="member-menu-wrap" ref={wrap} onKeyDown={onKeyDown}>
      <button
        ref={button}
        type="button"
        class="member-menu-button"
        aria-label={`Moderate ${name}`}
        aria-haspopup="menu"
        aria-expanded={open}
        aria-controls={open ? id : undefined}
        data-testid="member-menu-button"
        onClick={() => (open ? close() : setOpen(true))}
      >
        <span aria-hidden="true">⋯</span>
      </button>
      {open && asking === undefined && (
        <div
          id={id}
          role="menu"
          class="member-menu"
          aria-label={`Moderate ${name}`}
          data-testid="member-menu"
        >
          {actions.map((a) => (
            <button
              key={a.action}
              type="button"
              role="menuitem"
              tabIndex={-1}
              class="member-menu-item"
              data-action={a.action}
              disabled={busy}
              onClick={() => (a.reason ? setAsking(a) : run(a))}
            >
              {a.label}
            </button>
          ))}
          {error !== undefined && <p class="form-error" role="alert">{error}</p>}
        </div>
      )}
      {open && asking !== undefined && (
        <form
          id={id}
          class="member-menu"
          role="dialog"
          aria-label={`${asking.label} ${name} from ${conv.name}`}
          data-testid="moderation-form"
          onSubmit={(ev) => {
            ev.preventDefault();
            run(asking, reason);
          }}
        >
          <label for={`${id}-reason`}>Reason (optional)</label>
          <input
            ref={reasonBox}
            id={`${id}-reason`}
            type="text"
            maxLength={300}
            autocomplete="off"
            value={reason}
            data-testid="moderation-reason"
            onInput={(ev) => setReason((ev.target as HTMLInputElement).value)}
          />
          <div class="member-menu-actions">
            <button
              type="submit"
              class="primary compact"
              disabled={busy}
              data-testid="moderation-confirm"
            >
              {asking.label} {name}
            </button>
            <button type="button" class="small" onClick={() => close()}>Cancel</button>
          </div>
          {error !== undefined && <p class="form-error" role="alert">{error}</p>}
        </form>
      )}
    </div>
  );
}
