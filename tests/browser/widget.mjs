// A customer's page on another origin puts <stagefit-recommendations> on it (the token from
// a callback), and a visitor reads it and follows the first card:
//   node widget.mjs PAGE_URL API_BASE
// Prints, as JSON, what the widget showed, what it recorded, and every request that left
// the page's origin and the API (only the followed card's own address may).
import { chromium } from "playwright-core";

const [pageUrl, api] = process.argv.slice(2);
const origin = new URL(pageUrl).origin;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const result = { errors: [], external: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
  page.on("pageerror", (e) => result.errors.push(String(e)));
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith(api)) return route.continue();
    result.external.push(url);
    return route.abort();
  });
  await page.goto(pageUrl);
  const widget = page.locator("stagefit-recommendations");
  await page.waitForFunction(() => {
    const w = document.querySelector("stagefit-recommendations");
    return w && w.dataset.state !== undefined && w.dataset.state !== "loading";
  });
  result.state = await widget.getAttribute("data-state");
  result.error = await widget.getAttribute("data-error");
  // Every card is in view: each is recorded once the observer has seen it.
  await page.waitForFunction(() => document.querySelector("stagefit-recommendations").dataset.impressions === "3");
  result.cards = await page.evaluate(() => {
    const root = document.querySelector("stagefit-recommendations").shadowRoot;
    return [...root.querySelectorAll("li")].map((li) => ({
      id: li.dataset.id,
      position: Number(li.dataset.position),
      title: li.querySelector("a").textContent,
      href: li.querySelector("a").href,
      type: li.querySelector(".type").textContent,
      reason: li.querySelector(".reason").textContent,
    }));
  });
  result.label = await page.evaluate(() => {
    const root = document.querySelector("stagefit-recommendations").shadowRoot;
    const section = root.querySelector("section");
    return root.getElementById(section.getAttribute("aria-labelledby")).textContent;
  });
  // Themed from the page through a custom property.
  result.linkColor = await page.evaluate(() => {
    const a = document.querySelector("stagefit-recommendations").shadowRoot.querySelector("a");
    return getComputedStyle(a).color;
  });
  // Following the first card records the click, then leaves for the card's address.
  const first = result.cards[0];
  const leaving = page.waitForRequest((r) => r.url() === first.href, { timeout: 5000 });
  await page.evaluate(() => {
    document.querySelector("stagefit-recommendations").shadowRoot.querySelector("a").click();
  });
  await leaving;
  result.followed = first.id;
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
