// What the server's pages (coverage, insights, GraphiQL) and the widget share: calling
// GraphQL with a credential, asking for a key once when one is refused, reading an answer
// into its data or a clear error, and the taxonomy's stage and role lists. Served as
// /pages.js to the pages; glued into widget.js when the server is built (no CDN, no build
// step).
const stagefit = (() => {
  "use strict";
  const KEY = "stagefit-key";

  // An answer as its data, or an Error a person can act on: the server said no to the
  // key, the endpoint is not a stagefit GraphQL endpoint, or GraphQL errors.
  async function answer(response, endpoint) {
    const type = response.headers.get("content-type") || "";
    if (!/json/.test(type)) {
      throw new Error(`${endpoint} answered ${response.status} ${type || "without a type"}, not GraphQL: ` +
        "is the endpoint a stagefit server's /graphql?");
    }
    const body = await response.json();
    if (body.errors && body.errors.length) {
      const code = body.errors[0].extensions && body.errors[0].extensions.code;
      const messages = body.errors.map((e) => e.message).join("; ");
      if (response.status === 401 || code === "UNAUTHENTICATED") {
        throw new Error(`the key was refused (${messages})`);
      }
      throw new Error(messages);
    }
    return body.data;
  }

  // POSTs a GraphQL request. `credential` is sent as a Bearer token; without one, the key
  // kept in this tab is. With `ask`, a first refusal (401, or a status in `askOn`) asks for
  // a key with that message and tries once more. A request the browser stops (CORS,
  // network) is named.
  async function post(body, { endpoint = "/graphql", credential, ask, askOn = [401, 403],
                              headers: extra = {}, keepalive = false } = {}) {
    for (let attempt = 0; ; attempt++) {
      const headers = { "content-type": "application/json",
                        accept: "application/graphql-response+json, application/json", ...extra };
      const key = credential || (ask ? sessionStorage.getItem(KEY) : null);
      if (key && !Object.keys(headers).some((h) => h.toLowerCase() === "authorization")) {
        headers.authorization = `Bearer ${key}`;
      }
      let response;
      try {
        response = await fetch(endpoint, { method: "POST", headers, keepalive, body: JSON.stringify(body) });
      } catch (e) {
        throw new Error(`cannot reach ${endpoint} (${e.message}): is the server up, and is this ` +
          `page's origin (${location.origin}) in its --cors-origin?`);
      }
      if (askOn.includes(response.status) && attempt === 0 && ask) {
        const typed = window.prompt(ask);
        if (typed && typed.trim()) {
          sessionStorage.setItem(KEY, typed.trim());
          continue;
        }
      }
      return response;
    }
  }

  const EDITOR_KEY = "This stagefit server needs an editor API key (sf_edt_... or sf_adm_...). " +
    "It is kept in this tab only.";

  // A page's GraphQL call: the tab's key, asked for on a first refusal.
  async function gql(query, variables) {
    return answer(await post({ query, variables }, { ask: EDITOR_KEY }), "/graphql");
  }

  let lists;
  // The stages and roles, as the server's taxonomy names them, in its order.
  function taxonomy() {
    lists = lists || gql("{ taxonomy { stages { name } roles { name } } }").then((d) => ({
      stages: d.taxonomy.stages.map((s) => s.name),
      roles: d.taxonomy.roles.map((r) => r.name),
    }));
    return lists;
  }

  return { answer, post, gql, taxonomy };
})();
