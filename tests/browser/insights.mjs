// Drives /insights in Debian's headless Chromium and prints what it shows, as JSON, for
// tests/api/browser.rs to check against the API:
//   node insights.mjs BASE_URL SCREENSHOT.png
// Every request the page makes outside BASE_URL is refused and reported (the page must
// work with no internet).
import { chromium } from "playwright-core";

const [base, screenshot] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const result = { external: [], errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  page.on("pageerror", (e) => result.errors.push(String(e)));
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(base)) return route.continue();
    result.external.push(url);
    return route.abort();
  });
  await page.goto(`${base}/insights`);
  await page.waitForFunction(() => document.body.dataset.state !== undefined);
  result.state = await page.evaluate(() => document.body.dataset.state);
  result.cells = await page.$$eval("#ctr td", (tds) =>
    tds.map((td) => ({
      stage: td.dataset.stage,
      role: td.dataset.role || null,
      impressions: Number(td.dataset.impressions),
      clicks: Number(td.dataset.clicks),
      ctr: Number(td.dataset.ctr),
      text: td.textContent,
    })),
  );
  const rows = (sel) =>
    page.$$eval(sel, (trs) =>
      trs.map((tr) => ({ id: tr.dataset.id, ctr: Number(tr.dataset.ctr), impressions: Number(tr.dataset.impressions) })),
    );
  result.best = await rows("#best tbody tr");
  result.worst = await rows("#worst tbody tr");
  result.experiments = await page.$$eval(".experiment", (boxes) =>
    boxes.map((b) => ({
      name: b.dataset.experiment,
      bars: b.querySelectorAll("svg line").length,
      variants: [...b.querySelectorAll("tr")].map((tr) => ({
        profile: tr.dataset.profile,
        low: Number(tr.dataset.low),
        high: Number(tr.dataset.high),
        ctr: Number(tr.dataset.ctr),
        verdict: tr.lastElementChild.textContent,
      })),
    })),
  );
  await page.screenshot({ path: screenshot, fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
