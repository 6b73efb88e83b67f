// A customer's web page on another origin asks stagefit for its visitor's
// recommendations with a visitor token:
//   node visitor.mjs ALLOWED_PAGE_URL BLOCKED_PAGE_URL
// Prints, as JSON, what each page showed.
import { chromium } from "playwright-core";

const [allowed, blocked] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const result = { errors: [] };
async function visit(url) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => result.errors.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.state !== "loading");
  return page.evaluate(() => ({
    state: document.body.dataset.state,
    ids: [...document.querySelectorAll("#recs li")].map((li) => li.dataset.id),
    role: document.querySelector("#role").textContent,
  }));
}
try {
  result.allowed = await visit(allowed);
  result.blocked = await visit(blocked);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
