// Alerts (/alerts): the stored alert rules (docs/alerts.md) with their state per group,
// what each watches, and the silences in force. A row opens the rule: its groups'
// states and its history, newest first. A key with the admin scope silences a rule
// (every group, or one) for a while and ends a silence. The URL holds the rule open.

const SILENCE_FOR = [["30m", "30 min"], ["1h", "1 hour"], ["4h", "4 hours"], ["1d", "1 day"]];
const HISTORY = 50;

export async function mount(root, ctx) {
  const {h, replace, notice, fmtTime} = ctx.dom;
  const state = {rule: ctx.params.get("rule") || ""};
  const view = h("div", {class: "view-root alerts-view", dataset: {state: "loading"}});
  const message = h("div", {class: "alerts-message"});
  const rulesBox = h("div", {class: "alerts-rules"});
  const silencesBox = h("div", {class: "alerts-silences"});
  const detail = h("div", {class: "panel alert-detail hidden", "aria-live": "polite"});
  view.append(h("div", {class: "view-title"}, h("h2", {}, "Alerts")), message, rulesBox,
    silencesBox, detail);
  root.append(view);
  let rules = [];
  let silences = [];

  function stateOf(rule) {
    const firing = rule.states.filter((s) => s.state === "firing");
    if (firing.length) return "firing";
    if (rule.states.some((s) => s.state === "pending")) return "pending";
    return rule.states.length === 1 ? rule.states[0].state : "ok";
  }

  function stateBadge(name) {
    return h("span", {class: `status alert-${name}`, title: name}, name);
  }

  function watches(rule) {
    const what = rule.condition || `trigger ${rule.trigger}`;
    return rule.window ? `${what} over ${rule.window}` : what;
  }

  async function act(work, scopeHint) {
    replace(message);
    try {
      await work();
      await load();
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(message, notice("error", err.status === 403
        ? `${err.message}. ${scopeHint} needs a key with the admin scope.` : err.message));
    }
  }

  function silence(rule, group, duration) {
    const body = {rule, for: duration};
    if (group !== null) body.group = group;
    return act(() => ctx.api.post("/v1/silences", body, {signal: ctx.signal, scope: "admin"}),
      "Silencing");
  }

  function silenceMenu(rule, group) {
    const select = h("select", {class: "silence-for", "aria-label": `Silence ${rule} for`},
      h("option", {value: ""}, group === null ? "Silence…" : "Silence group…"),
      SILENCE_FOR.map(([value, label]) => h("option", {value}, label)));
    select.addEventListener("change", () => {
      if (select.value) silence(rule, group, select.value);
    });
    return select;
  }

  // The silences of ``rule``: of every group, or of the one given.
  function silencesOf(rule, group) {
    return silences.filter((s) => (s.rule === "*" || s.rule === rule) &&
      (group === undefined || s.group === null || s.group === group));
  }

  function silencedMark(rule) {
    const held = silencesOf(rule);
    if (!held.length) return null;
    const groups = new Set(held.map((s) => s.group));
    const text = groups.has(null) ? "silenced"
      : `${groups.size} group${groups.size === 1 ? "" : "s"} silenced`;
    return h("span", {class: "silenced-mark", title: "notices held back (below)"}, ` ${text}`);
  }

  function drawRules() {
    if (!rules.length) {
      replace(rulesBox, h("div", {class: "panel empty"},
        "No alert rules. Add them with serve --alerts FILE, POST /v1/alerts or " +
        "eventcollector alerts add (docs/alerts.md)."));
      return;
    }
    const tbody = h("tbody");
    for (const rule of rules) {
      const now = stateOf(rule);
      const firing = rule.states.filter((s) => s.state === "firing").map((s) => s.group || "-");
      const row = h("tr", {class: "alert-row", tabindex: "0", dataset: {name: rule.name},
        "aria-selected": String(state.rule === rule.name)},
      h("td", {class: "alert-name"}, rule.name),
      h("td", {class: "alert-state-cell"}, stateBadge(now), firing.length && rule.group_by
        ? h("span", {class: "muted firing-groups"}, ` ${firing.slice(0, 5).join(", ")}`) : null,
      silencedMark(rule.name)),
      h("td", {class: "mono"}, watches(rule)),
      h("td", {class: "mono alert-filter", title: rule.filter || ""}, rule.filter || ""),
      h("td", {class: "num"}, String(rule.notify.length)),
      h("td", {class: "muted"}, rule.source),
      h("td", {}, silenceMenu(rule.name, null)));
      row.addEventListener("click", (e) => {
        if (!e.target.closest("a, button, select")) open(rule.name);
      });
      row.addEventListener("keydown", (e) => {
        if (e.target !== row) return;
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(rule.name); }
        if (e.key === "Escape") close();
      });
      tbody.append(row);
    }
    replace(rulesBox, h("div", {class: "panel"}, h("table", {class: "grid alerts"},
      h("thead", {}, h("tr", {}, h("th", {}, "Rule"), h("th", {}, "State"),
        h("th", {}, "Watches"), h("th", {}, "Filter"), h("th", {class: "num"}, "Notifies"),
        h("th", {}, "Source"), h("th", {}, ""))),
      tbody)));
  }

  function drawSilences() {
    if (!silences.length) {
      replace(silencesBox);
      return;
    }
    const tbody = h("tbody", {}, silences.map((s) => h("tr", {class: "silence-row",
      dataset: {id: String(s.id)}},
    h("td", {}, s.rule === "*" ? "every rule" : s.rule),
    h("td", {}, s.group === null ? "every group" : (s.group || "-")),
    h("td", {class: "ts", title: fmtTime(s.until)}, `until ${fmtTime(s.until)}`),
    h("td", {}, s.reason),
    h("td", {}, h("button", {type: "button", class: "small end-silence",
      onclick: () => act(() => ctx.api.del(`/v1/silences/${s.id}`,
        {signal: ctx.signal, scope: "admin"}), "Ending a silence")}, "End")))));
    replace(silencesBox, h("div", {class: "panel"},
      h("div", {class: "panel-head"}, h("h2", {}, "Silences in force")),
      h("table", {class: "grid silences"},
        h("thead", {}, h("tr", {}, h("th", {}, "Rule"), h("th", {}, "Group"),
          h("th", {}, "Ends"), h("th", {}, "Reason"), h("th", {}, ""))),
        tbody)));
  }

  function close() {
    state.rule = "";
    detail.classList.add("hidden");
    markSelected();
    ctx.setParams({});
  }

  function markSelected() {
    for (const r of rulesBox.querySelectorAll("tr.alert-row")) {
      r.setAttribute("aria-selected", String(r.dataset.name === state.rule));
    }
  }

  async function open(name) {
    const rule = rules.find((r) => r.name === name);
    if (!rule) return;
    state.rule = name;
    ctx.setParams({rule: name});
    markSelected();
    const groups = h("tbody", {}, rule.states.map((s) => h("tr", {class: "group-row",
      dataset: {group: s.group}},
    h("td", {class: "mono"}, s.group || "-"),
    h("td", {}, stateBadge(s.state), silencesOf(rule.name, s.group).length
      ? h("span", {class: "silenced-mark"}, " silenced") : null),
    h("td", {class: "num"}, s.value === null ? "–" : String(s.value)),
    h("td", {class: "ts"}, s.since ? fmtTime(s.since) : ""),
    h("td", {class: "ts"}, s.notified ? fmtTime(s.notified) : "never"),
    h("td", {}, rule.group_by ? silenceMenu(rule.name, s.group) : null))));
    const history = h("div", {class: "alert-history"}, h("div", {class: "muted"}, "Loading…"));
    replace(detail,
      h("div", {class: "panel-head"}, h("h2", {class: "alert-detail-title"}, rule.name),
        h("span", {class: "spacer"}),
        h("button", {type: "button", class: "small close-detail", title: "Close (Escape)",
          onclick: close}, "Close")),
      h("div", {class: "panel-body"},
        rule.states.length ? h("table", {class: "grid alert-groups"},
          h("thead", {}, h("tr", {}, h("th", {}, rule.group_by || "Group"), h("th", {}, "State"),
            h("th", {class: "num"}, "Value"), h("th", {}, "Since"), h("th", {}, "Last notice"),
            h("th", {}, ""))), groups)
          : h("div", {class: "muted"}, "Not evaluated yet."),
        h("h3", {}, "History"), history));
    detail.classList.remove("hidden");
    try {
      const found = await ctx.api.get(`/v1/alerts/${encodeURIComponent(name)}/history`,
        {limit: HISTORY}, {signal: ctx.signal});
      if (state.rule !== name) return;
      if (!found.history.length) {
        replace(history, h("div", {class: "empty"}, "Nothing has happened yet."));
        return;
      }
      replace(history, h("table", {class: "grid alert-history-table"},
        h("thead", {}, h("tr", {}, h("th", {}, "At"), h("th", {}, "Group"), h("th", {}, "What"),
          h("th", {}, "State"), h("th", {class: "num"}, "Value"), h("th", {}, "Target / error"))),
        h("tbody", {}, found.history.map((r) => h("tr", {class: `record record-${r.kind}`},
          h("td", {class: "ts"}, fmtTime(r.at)), h("td", {class: "mono"}, r.group || "-"),
          h("td", {}, r.kind), h("td", {}, r.state),
          h("td", {class: "num"}, r.value === null ? "" : String(r.value)),
          h("td", {class: "mono"}, r.error || r.target || ""))))));
    } catch (err) {
      if (err.name !== "AbortError") replace(history, notice("error", err.message));
    }
  }

  async function load() {
    try {
      const [found, held] = await Promise.all([
        ctx.api.get("/v1/alerts", {}, {signal: ctx.signal}),
        ctx.api.get("/v1/silences", {}, {signal: ctx.signal}),
      ]);
      rules = found.alerts;
      silences = held.silences;
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(rulesBox, notice("error", err.message));
      view.dataset.state = "error";
      return;
    }
    drawRules();
    drawSilences();
    view.dataset.state = rules.length ? "ready" : "empty";
    if (state.rule) open(state.rule);
  }

  await load();
  return undefined;
}
