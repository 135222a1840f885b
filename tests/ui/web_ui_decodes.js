// Opens a workflow's page in the real Temporal Web UI (headless Chromium), waits until the
// decoded text shows, and keeps a screenshot: tests/ui/test_web_ui_codec.py runs it.
//   node web_ui_decodes.js URL SCREENSHOT TEXT    -> prints "shown" or "not shown"
const { chromium } = require('playwright-core');

(async () => {
  const [url, screenshot, text] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // Without the background-networking flags Chromium's calls to the closed network hang it.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(url, { waitUntil: 'domcontentloaded' }); // the UI polls: never idle
    let shown = true;
    try {
      await page.getByText(text).first().waitFor({ timeout: 30000 });
    } catch (e) {
      shown = false;
    }
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(shown ? 'shown' : 'not shown');
  } finally {
    await browser.close();
  }
})();
