// The overview view (issue 13). Filled in on the ui-views branch; see the view contract
// at the top of js/app.js.

export async function mount(root, ctx) {
  const {h} = ctx.dom;
  root.append(h("div", {class: "panel panel-body"}, h("h2", {}, "Overview"),
    h("p", {class: "muted"}, "This view is not built yet.")));
}
