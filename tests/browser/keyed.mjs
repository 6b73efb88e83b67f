// Once API keys exist, /coverage and GraphiQL ask for one and then work:
//   node keyed.mjs BASE_URL KEY
// Answers each page's prompt with KEY and prints, as JSON, what the pages showed.
import { chromium } from "playwright-core";

const [base, key] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const result = { prompts: [], errors: [] };
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => result.errors.push(String(e)));
  page.on("dialog", async (dialog) => {
    result.prompts.push(dialog.message());
    await dialog.accept(key);
  });
  await page.goto(`${base}/coverage`);
  await page.waitForSelector("#heatmap td");
  result.cells = await page.$$eval("#heatmap td", (tds) => tds.length);
  result.stored = await page.evaluate(() => sessionStorage.getItem("stagefit-key") !== null);

  const graphiql = await browser.newPage();
  graphiql.on("pageerror", (e) => result.errors.push(String(e)));
  graphiql.on("dialog", async (dialog) => {
    result.prompts.push(dialog.message());
    await dialog.accept(key);
  });
  await graphiql.goto(`${base}/`);
  // GraphiQL asks for the schema on load: the first 401 prompts, the retry carries the key.
  await graphiql.waitForFunction(() => sessionStorage.getItem("stagefit-key") !== null);
  result.graphiqlStored = true;
  // Then it runs queries with the key: the first operation of its editor, through its own
  // button (several operations: the button offers a menu of them).
  await graphiql.waitForSelector(".graphiql-execute-button");
  await graphiql.click(".graphiql-execute-button");
  await graphiql.click('[role="menuitem"] >> nth=0');
  await graphiql.waitForFunction(() => document.body.innerText.includes("\"score\""));
  result.graphiqlRan = true;
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
