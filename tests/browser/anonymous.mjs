// An anonymous customer page on another origin with four widgets: one with a publishable
// key (the visitor nobody knows), one pointed at a wrong endpoint, one with a refused key,
// one at an address nothing answers (as a CORS refusal looks to the page).
// The visitor opens the good widget's cards three ways: a middle click, a Ctrl-click (a new
// tab) and a plain click (the page leaves):
//   node anonymous.mjs PAGE_URL API_BASE
// Prints, as JSON, what each widget showed or said, the visitor cookie before and after a
// reload, and the requests that left the page's origin and the API.
import { chromium } from "playwright-core";

const [pageUrl, api] = process.argv.slice(2);
const origin = new URL(pageUrl).origin;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const result = { errors: [], external: [], warnings: [] };
const state = (id) => document.getElementById(id).dataset.state;
try {
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => result.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "warning") result.warnings.push(m.text()); });
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith(api)) return route.continue();
    result.external.push(url);
    return route.abort();
  });
  await page.goto(pageUrl);
  const settled = (id) => page.waitForFunction((id) => {
    const s = document.getElementById(id).dataset.state;
    return s !== undefined && s !== "loading";
  }, id);
  await Promise.all(["good", "wrong", "refused", "unreachable"].map(settled));
  for (const id of ["good", "wrong", "refused", "unreachable"]) {
    result[id] = await page.evaluate((id) => ({
      state: document.getElementById(id).dataset.state,
      error: document.getElementById(id).dataset.error || null,
    }), id);
  }
  await page.waitForFunction(() => document.getElementById("good").dataset.impressions === "3");
  result.cards = await page.evaluate(() => {
    const root = document.getElementById("good").shadowRoot;
    return [...root.querySelectorAll("li")].map((li) => ({
      id: li.dataset.id,
      href: li.querySelector("a").href,
      image: li.querySelector("img") ? li.querySelector("img").getAttribute("src") : null,
    }));
  });
  result.cookie = await page.evaluate(() => document.cookie);
  const link = (i) => page.locator("#good").locator("a").nth(i);
  // A middle click and a Ctrl-click open new tabs: each is recorded all the same.
  await link(1).click({ button: "middle" });
  const tab = context.waitForEvent("page", { timeout: 5000 }).catch(() => null);
  await link(2).click({ modifiers: ["Control"] });
  await tab;
  await page.waitForFunction(() => document.getElementById("good").dataset.clicks === "2", null, { timeout: 5000 })
    .catch(() => {});
  result.clicksBeforeLeaving = await page.evaluate(() => document.getElementById("good").dataset.clicks || "0");
  // A plain click records, then leaves for the card's address.
  const leaving = page.waitForRequest((r) => r.url() === result.cards[0].href, { timeout: 5000 });
  await link(0).click();
  await leaving;
  // The same visitor comes back: the same id.
  const again = await context.newPage();
  await again.goto(pageUrl);
  result.cookieAgain = await again.evaluate(() => document.cookie);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
