// Drives /coverage in Debian's headless Chromium and prints what a visitor sees, as JSON,
// for tests/api/browser.rs to check against the API:
//   node coverage.mjs BASE_URL SCREENSHOT.png
// It loads the page, reads every heatmap cell, clicks the first filled cell, switches the
// columns to content types and clicks the first gap there, then to industries, where it
// clicks DECISION x healthcare and takes a screenshot, and last counts only assets
// written for each industry. Every request the page makes outside BASE_URL is refused and
// reported (the page must work with no internet).
import { chromium } from "playwright-core";

const [base, screenshot] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const result = { external: [], errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on("pageerror", (e) => result.errors.push(String(e)));
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(base)) return route.continue();
    result.external.push(url);
    return route.abort();
  });
  await page.goto(`${base}/coverage`);
  await page.waitForSelector("#heatmap td");
  const cells = () =>
    page.$$eval("#heatmap td", (tds) =>
      tds.map((td) => ({
        stage: td.dataset.stage,
        column: td.dataset.column,
        count: Number(td.dataset.count),
        specific: Number(td.dataset.specific),
        shown: Number(td.childNodes[0].textContent),
        gap: td.classList.contains("gap"),
        unwritten: td.classList.contains("unwritten"),
      })),
    );
  result.roleCells = await cells();
  result.legend = await page.textContent("#legend");

  const filled = result.roleCells.find((c) => c.count > 0);
  await page.click(`#heatmap td[data-stage="${filled.stage}"][data-column="${filled.column}"]`);
  await page.waitForSelector("#asset-list li");
  result.clicked = { ...filled, items: await page.$$eval("#asset-list li", (lis) => lis.map((li) => li.textContent)) };

  await page.selectOption("#by", "CONTENT_TYPE");
  await page.waitForFunction(() => document.querySelector("#by-label").textContent === "content type"
    && document.querySelector("#heatmap td[data-column='API_DOCS']"));
  result.typeCells = await cells();
  const gap = result.typeCells.find((c) => c.gap);
  if (gap) {
    await page.click(`#heatmap td[data-stage="${gap.stage}"][data-column="${gap.column}"]`);
    result.gapText = await page.textContent("#assets");
  }

  await page.selectOption("#by", "INDUSTRY");
  await page.waitForFunction(() => document.querySelector("#heatmap td[data-column='healthcare']"));
  result.industryCells = await cells();
  result.industryLegend = await page.textContent("#legend");
  const healthcare = '#heatmap td[data-stage="DECISION"][data-column="healthcare"]';
  await page.click(healthcare);
  await page.waitForSelector("#asset-list li");
  result.healthcareText = await page.textContent("#assets");
  await page.screenshot({ path: screenshot, fullPage: true });

  await page.selectOption("#count", "SPECIFIC");
  await page.waitForFunction((sel) => document.querySelector(sel)?.classList.contains("gap"), healthcare);
  result.writtenCells = await cells();
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
