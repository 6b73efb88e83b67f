// stagefit's drop-in widget: <stagefit-recommendations placement="home" first="3"
// token="VISITOR_TOKEN"></stagefit-recommendations> after <script src=".../widget.js">.
// On an anonymous page, key="PUBLISHABLE_KEY" instead of a token.
//
// Attributes:
//   token            a visitor token (createVisitorToken, minted by your backend)
//   token-callback   or the name of a global function returning one (or a promise of one)
//   key              or a publishable key, for visitors nobody knows: the widget keeps a
//                    first-party cookie (stagefit_visitor, a year) with a random id, so an
//                    experiment shows a visitor the same variant on every page
//   placement        where the list is shown; experiments run per placement
//   first            how many cards (default 3)
//   heading          the list's accessible name (default "Recommended for you")
//   endpoint         the GraphQL URL (default: /graphql beside this script)
// Theme with CSS custom properties on the element: --stagefit-font, --stagefit-text,
// --stagefit-muted, --stagefit-background, --stagefit-border, --stagefit-accent,
// --stagefit-radius, --stagefit-gap, --stagefit-columns.
// It records an impression when half a card has been visible, and a click when a card is
// followed, however it is opened (a click, a modified click for a new tab or window, a
// middle click): a VIEW event of the token's account, or recordClick on an anonymous list.
// When it cannot show anything it stays empty, sets data-state="failed" and data-error, and
// says why in the console (a wrong endpoint, a refused key, an origin missing from the
// server's --cors-origin).
(() => {
  "use strict";
  if (customElements.get("stagefit-recommendations")) return;
  const script = document.currentScript;
  const defaultEndpoint = script && script.src ? new URL("graphql", script.src).href : "/graphql";

  const QUERY = `query($first: Int, $placement: String, $visitor: String) {
    recommendations(audience: { visitorId: $visitor }, first: $first, placement: $placement) {
      recommendationId
      items { position asset { id title url imageUrl contentType } reasons { contribution detail } }
    }
  }`;
  const IMPRESSIONS = `mutation($id: ID!, $assets: [ID!]!, $positions: [Int!]) {
    recordImpressions(recommendationId: $id, assetIds: $assets, positions: $positions) { recorded }
  }`;
  const ENGAGE = `mutation($event: EngagementInput!) { recordEngagement(event: $event) { recorded } }`;
  const CLICK = `mutation($id: ID!, $asset: ID!, $position: Int) {
    recordClick(recommendationId: $id, assetId: $asset, position: $position)
  }`;
  const COOKIE = "stagefit_visitor";

  // The anonymous visitor's id: a first-party cookie of this page's site, made once.
  function visitorId() {
    const found = document.cookie.split("; ").find((c) => c.startsWith(`${COOKIE}=`));
    if (found) return decodeURIComponent(found.slice(COOKIE.length + 1));
    const id = crypto.randomUUID ? crypto.randomUUID()
      : [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
    const secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie = `${COOKIE}=${encodeURIComponent(id)}; Max-Age=31536000; Path=/; SameSite=Lax${secure}`;
    return id;
  }

  const STYLE = `
    :host { display: block; font: var(--stagefit-font, 14px/1.4 system-ui, sans-serif);
            color: var(--stagefit-text, #1d2433); }
    h2 { font-size: 1em; margin: 0 0 .5em; }
    ul { list-style: none; margin: 0; padding: 0; display: grid; gap: var(--stagefit-gap, .75em);
         grid-template-columns: repeat(var(--stagefit-columns, auto-fill), minmax(12em, 1fr)); }
    li { background: var(--stagefit-background, #fff); border: 1px solid var(--stagefit-border, #d9dde5);
         border-radius: var(--stagefit-radius, 8px); padding: .75em 1em; }
    img { display: block; width: 100%; aspect-ratio: 16 / 9; object-fit: cover;
          border-radius: calc(var(--stagefit-radius, 8px) / 2); margin-bottom: .5em; }
    a { color: var(--stagefit-accent, #2f6fde); font-weight: 600; text-decoration: none; }
    a:hover, a:focus-visible { text-decoration: underline; }
    .type { display: block; font-size: .8em; color: var(--stagefit-muted, #5a6478);
            text-transform: uppercase; letter-spacing: .04em; margin-bottom: .25em; }
    .reason { margin: .35em 0 0; font-size: .9em; color: var(--stagefit-muted, #5a6478); }
  `;

  // The account a visitor token is bound to (its `sub`): events name their account.
  function accountOf(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part + "===".slice((part.length + 3) % 4))).sub;
    } catch (_) {
      return null;
    }
  }

  const words = (name) => name.charAt(0) + name.slice(1).toLowerCase().replace(/_/g, " ");

  class StagefitRecommendations extends HTMLElement {
    constructor() {
      super();
      this.attachShadow({ mode: "open" });
      this.seen = new Set();
      this.pending = [];
      this.impressions = 0;
      this.clicks = 0;
    }

    connectedCallback() {
      if (!this.started) {
        this.started = true;
        this.load();
      }
    }

    disconnectedCallback() {
      if (this.observer) this.observer.disconnect();
    }

    get endpoint() {
      return this.getAttribute("endpoint") || defaultEndpoint;
    }

    async token() {
      const direct = this.getAttribute("token");
      if (direct) return direct;
      const name = this.getAttribute("token-callback");
      const callback = name && window[name];
      return typeof callback === "function" ? await callback() : null;
    }

    async gql(query, variables, keepalive = false) {
      const response = await stagefit.post({ query, variables }, {
        endpoint: this.endpoint, credential: this.credential, keepalive,
      });
      return stagefit.answer(response, this.endpoint);
    }

    async load() {
      this.dataset.state = "loading";
      try {
        this.credential = await this.token();
        this.account = this.credential ? accountOf(this.credential) : null;
        if (!this.credential) this.credential = this.getAttribute("key");
        if (!this.credential) throw new Error("give the widget a token, a token-callback or a publishable key");
        // A visitor nobody knows keeps the same id (and experiment variant) across pages.
        const visitor = this.account ? null : visitorId();
        const first = Number(this.getAttribute("first")) || 3;
        const placement = this.getAttribute("placement") || null;
        const data = await this.gql(QUERY, { first, placement, visitor });
        this.render(data.recommendations);
        this.dataset.state = "shown";
      } catch (e) {
        this.dataset.state = "failed";
        this.dataset.error = e.message;
        this.shadowRoot.replaceChildren();
        console.warn(`stagefit-recommendations: ${e.message}`);
      }
    }

    render(list) {
      this.list = list;
      const style = document.createElement("style");
      style.textContent = STYLE;
      const section = document.createElement("section");
      const headingId = "stagefit-heading";
      const heading = document.createElement("h2");
      heading.id = headingId;
      heading.textContent = this.getAttribute("heading") || "Recommended for you";
      section.setAttribute("aria-labelledby", headingId);
      const ul = document.createElement("ul");
      for (const item of list.items) {
        const li = document.createElement("li");
        li.dataset.id = item.asset.id;
        li.dataset.position = item.position;
        const type = document.createElement("span");
        type.className = "type";
        type.textContent = words(item.asset.contentType);
        const a = document.createElement("a");
        a.href = item.asset.url || "#";
        a.textContent = item.asset.title;
        a.addEventListener("click", (event) => this.follow(event, item, a.href));
        // A middle click opens a new tab without a click event.
        a.addEventListener("auxclick", (event) => {
          if (event.button === 1) this.record(item, true).catch(() => {});
        });
        const best = [...item.reasons].sort((x, y) => y.contribution - x.contribution)[0];
        const reason = document.createElement("p");
        reason.className = "reason";
        reason.textContent = best ? best.detail.charAt(0).toUpperCase() + best.detail.slice(1) : "";
        const article = document.createElement("article");
        if (item.asset.imageUrl) {
          const img = document.createElement("img");
          img.src = item.asset.imageUrl;
          img.alt = "";
          img.loading = "lazy";
          article.append(img);
        }
        article.append(type, a, reason);
        li.append(article);
        ul.append(li);
      }
      section.append(heading, ul);
      this.shadowRoot.replaceChildren(style, section);
      this.observer = new IntersectionObserver((entries) => this.visible(entries), { threshold: 0.5 });
      for (const li of ul.children) this.observer.observe(li);
    }

    visible(entries) {
      for (const entry of entries) {
        const id = entry.target.dataset.id;
        if (entry.isIntersecting && !this.seen.has(id)) {
          this.seen.add(id);
          this.observer.unobserve(entry.target);
          this.pending.push([id, Number(entry.target.dataset.position)]);
        }
      }
      // Cards that come into view together are recorded in one request.
      clearTimeout(this.flushTimer);
      this.flushTimer = setTimeout(() => this.flush(), 200);
    }

    async flush() {
      const batch = this.pending.splice(0);
      if (batch.length === 0 || !this.list) return;
      try {
        const data = await this.gql(IMPRESSIONS, {
          id: this.list.recommendationId,
          assets: batch.map((b) => b[0]),
          positions: batch.map((b) => b[1]),
        });
        this.impressions += data.recordImpressions.recorded;
        this.dataset.impressions = this.impressions;
      } catch (e) {
        this.dataset.error = e.message;
      }
    }

    // The click: a VIEW of the token's account, or the anonymous list's click.
    record(item, keepalive) {
      const sent = this.account
        ? this.gql(ENGAGE, {
          event: {
            accountId: this.account, assetId: item.asset.id, kind: "VIEW",
            recommendationId: this.list.recommendationId, position: item.position,
          },
        }, keepalive)
        : this.gql(CLICK, {
          id: this.list.recommendationId, asset: item.asset.id, position: item.position,
        }, keepalive);
      return sent.then(() => {
        this.clicks += 1;
        this.dataset.clicks = this.clicks;
      });
    }

    follow(event, item, href) {
      const plain = event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey && !event.altKey;
      if (!plain) {
        this.record(item, true).catch(() => {});
        return;
      }
      // Record, then go: at most a second's wait, and the link works whatever happens.
      event.preventDefault();
      const go = () => { window.location.href = href; };
      Promise.race([this.record(item, false), new Promise((r) => setTimeout(r, 1000))])
        .catch(() => {})
        .then(go);
    }
  }

  customElements.define("stagefit-recommendations", StagefitRecommendations);
})();
