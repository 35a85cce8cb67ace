/// <reference lib="dom" />
/** @jsxImportSource preact */
/**
 * The login screen: log in, create an account, or continue as a guest.
 *
 * @module
 */

import { useEffect, useRef, useState } from "preact/hooks";
import { isValidName } from "../../protocol/names.ts";
import { useChat } from "./hooks.ts";
import { Logo } from "./icons.tsx";
import type { ChatState } from "./model.ts";

/** The login form. */
export function Login({ state }: { state: ChatState }) {
  const chat = useChat();
  const [mode, setMode] = useState<"login" | "register">("login");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [serverPassword, setServerPassword] = useState("");
  const [problem, setProblem] = useState<string | undefined>(undefined);
  const nameRef = useRef<HTMLInputElement>(null);
  const error = problem ?? state.loginError;

  useEffect(() => nameRef.current?.focus(), []);

  /** Gives the chat the server's password typed (an empty field keeps the tab's, if any). */
  const withServerPassword = () => {
    if (state.serverPasswordWanted && serverPassword !== "") chat.setServerPassword(serverPassword);
  };

  const submit = (ev: Event) => {
    ev.preventDefault();
    if (!isValidName(name)) {
      setProblem("A name is 1-32 letters, digits, _ or -");
      return nameRef.current?.focus();
    }
    if (mode === "register" && name.toLowerCase().startsWith("guest-")) {
      return setProblem("Names starting with guest- are for guests");
    }
    if (mode === "register" && password.length < 8) {
      return setProblem("Choose a password of at least 8 characters");
    }
    if (password === "") return setProblem("Type your password");
    setProblem(undefined);
    withServerPassword();
    if (mode === "login") chat.login(name, password);
    else chat.register(name, password);
  };

  const asGuest = () => {
    if (name !== "" && !isValidName(name)) {
      return setProblem(
        "A name is 1-32 letters, digits, _ or -, or leave it empty",
      );
    }
    setProblem(undefined);
    withServerPassword();
    chat.guest(name);
  };

  const resume = () => {
    if (serverPassword === "") return setProblem("Type the server password");
    setProblem(undefined);
    withServerPassword();
    chat.resume();
  };

  return (
    <main class="login" aria-labelledby="login-title">
      <div class="login-card">
        {state.savedApp && (
          <p class="status-banner saved" data-testid="reconnect-banner" data-kind="saved-app">
            Offline: showing the saved app. The server cannot be reached: log in once it is back.
          </p>
        )}
        <h1 id="login-title" class="login-title">
          <Logo size={36} /> parley
        </h1>
        <div class="segmented" role="group" aria-label="I want to">
          <button
            type="button"
            aria-pressed={mode === "login"}
            data-testid="mode-login"
            onClick={() => setMode("login")}
          >
            Log in
          </button>
          <button
            type="button"
            aria-pressed={mode === "register"}
            data-testid="mode-register"
            onClick={() => setMode("register")}
          >
            Create account
          </button>
        </div>
        <form
          class="login-form"
          onSubmit={submit}
          noValidate
          aria-describedby="login-error"
        >
          <label for="login-name">Name</label>
          <input
            id="login-name"
            ref={nameRef}
            name="username"
            autoComplete="username"
            autoCapitalize="none"
            spellcheck={false}
            maxLength={32}
            value={name}
            aria-invalid={problem !== undefined && !isValidName(name)}
            onInput={(e) => setName(e.currentTarget.value.trim())}
          />
          <label for="login-password">Password</label>
          <input
            id="login-password"
            type="password"
            name="password"
            autoComplete={mode === "login" ? "current-password" : "new-password"}
            aria-describedby={mode === "register" ? "password-hint" : undefined}
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
          {mode === "register" && <p id="password-hint" class="hint">At least 8 characters.</p>}
          {state.serverPasswordWanted && (
            <>
              <label for="login-server-password">Server password</label>
              <input
                id="login-server-password"
                type="password"
                name="server-password"
                autoComplete="off"
                data-testid="server-password"
                aria-describedby="server-password-hint"
                value={serverPassword}
                onInput={(e) => setServerPassword(e.currentTarget.value)}
              />
              <p id="server-password-hint" class="hint">
                This server is private: its password is kept for this tab only.
              </p>
            </>
          )}
          <p
            id="login-error"
            class="form-error"
            role="alert"
            data-testid="login-error"
          >
            {error ?? ""}
          </p>
          <button
            type="submit"
            class="primary"
            disabled={state.loginBusy}
            data-testid="login-submit"
          >
            {state.loginBusy ? "Connecting…" : mode === "login" ? "Log in" : "Create account"}
          </button>
        </form>
        {state.savedSession && (
          <button
            type="button"
            class="secondary"
            disabled={state.loginBusy}
            data-testid="resume"
            onClick={resume}
          >
            Continue my saved session
          </button>
        )}
        {state.guestsAllowed && (
          <div class="guest">
            <p class="divider">
              <span>or</span>
            </p>
            <button
              type="button"
              class="secondary"
              disabled={state.loginBusy}
              data-testid="guest"
              onClick={asGuest}
            >
              Continue as a guest
            </button>
            <p class="hint">
              Guests take the name above, or get one. No password, no history of direct messages.
            </p>
          </div>
        )}
      </div>
    </main>
  );
}
