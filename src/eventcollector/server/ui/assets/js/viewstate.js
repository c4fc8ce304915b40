// A view's root carries data-state ("loading", "ready", "empty", "error"), which tests
// and styles read; a failed load shows the server's message in the view's body.

import {notice, replace} from "./dom.js";
import {resolve} from "./timerange.js";

export function showFailure(view, body, err) {
  body.classList.remove("loading");
  replace(body, notice("error", err.message));
  view.dataset.state = "error";
}

// Marks the view loading and resolves its time range ({since, until} of the URL); on
// a range that does not parse, shows why and returns null.
export function startLoad(view, body, {since, until}) {
  view.dataset.state = "loading";
  body.classList.add("loading");
  try {
    return resolve(since, until);
  } catch (err) {
    showFailure(view, body, err);
    return null;
  }
}
