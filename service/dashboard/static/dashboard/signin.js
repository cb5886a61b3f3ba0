// The sign-in form and the sign-out button, shared by every page.

import { ApiError, api, clearToken, getToken, setToken } from "./api.js";

const signin = document.getElementById("signin");
const app = document.getElementById("app");
const signOut = document.getElementById("sign-out");

function show(signedIn) {
  signin.hidden = signedIn;
  app.hidden = !signedIn;
  signOut.hidden = !signedIn;
}

// Call `start` once a token is known (now, or after the user signs in).
export function whenSignedIn(start) {
  let started = false;
  const begin = () => {
    show(true);
    if (!started) {
      started = true;
      start();
    }
  };
  const form = document.getElementById("signin-form");
  const error = document.getElementById("signin-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = form.elements.token.value.trim();
    error.hidden = true;
    try {
      // The cheapest authenticated call: proves the token before it is kept.
      await api("/v1/jobs?limit=1", { token });
      setToken(token);
      form.reset();
      if (started) location.reload();  // a page that was running signed out starts afresh
      else begin();
    } catch (exc) {
      error.textContent = exc instanceof ApiError && exc.status === 401
        ? "This token is invalid or revoked." : `Could not sign in: ${exc.message}`;
      error.hidden = false;
    }
  });
  signOut.addEventListener("click", () => {
    clearToken();
    location.reload();
  });
  window.addEventListener("bptt:signed-out", () => show(false));
  if (getToken()) begin();
  else show(false);
}
