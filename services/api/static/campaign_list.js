// The campaign list keeps up while a campaign sends: the tabs' counts and the rows (states, next sends) are
// refreshed from the page itself every few seconds, and no longer once nothing is sending or paused.
import { refreshFragments } from "./app.js";

const REFRESH_MS = 5000;

async function follow() {
  if (document.visibilityState === "visible") {
    try {
      await refreshFragments(["campaign-tabs", "campaign-rows"]);
    } catch {
      /* a missed refresh is retried on the next tick */
    }
  }
  if (document.getElementById("campaign-rows")?.dataset.open === "true") setTimeout(follow, REFRESH_MS);
}

if (document.getElementById("campaign-rows")?.dataset.open === "true") setTimeout(follow, REFRESH_MS);
