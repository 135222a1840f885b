// Opens a workflow's page in the real Temporal Web UI (headless Chromium), waits until the
// decoded text shows, and keeps a screenshot: tests/ui/test_web_ui_codec.py runs it.
//   node web_ui_decodes.js URL SCREENSHOT TEXT    -> prints "shown" or "not shown"
// With CODEC_URL and ORDERFLOW_TOKEN set, a person first signs in on the codec server's page,
// then turns on "Include cross-origin credentials" in the UI's own codec settings dialog.
const { chromium } = require('playwright-core');

async function signIn(page, codec, token) {
  await page.goto(`${codec}/signin`);
  await page.locator('input[name="token"]').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Signed in as').waitFor({ timeout: 10000 });
}

// The UI's dialog, as its own end-to-end tests drive it (tests/pages/data-encoder-settings.ts),
// on the namespace's list of workflows: a workflow's page redraws as its decodes fail.
async function includeCredentials(page, url, codec) {
  await page.goto(url.replace(/\/workflows\/.*$/, '/workflows'), { waitUntil: 'domcontentloaded' });
  await page.getByTestId('data-encoder-status-configured').filter({ visible: true }).click();
  await page.getByTestId('use-local-endpoint-input').click();
  await page.locator('#data-encoder-endpoint-input').fill(codec);
  await page.locator('label').filter({ hasText: 'Include cross-origin credentials' }).click();
  await page.locator('#data-encoder-settings >> [data-testid="confirm-modal-button"]').click();
}

(async () => {
  const [url, screenshot, text] = process.argv.slice(2);
  const { CODEC_URL: codec, ORDERFLOW_TOKEN: token } = process.env;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // Without the background-networking flags Chromium's calls to the closed network hang it.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    let shown = true;
    try {
      if (codec && token) await signIn(page, codec, token);
      if (codec && token) await includeCredentials(page, url, codec);
      await page.goto(url, { waitUntil: 'domcontentloaded' }); // the UI polls: never idle
      await page.getByText(text).first().waitFor({ timeout: 30000 });
    } catch (e) {
      console.error(e.message.replace(/\x1b\[[0-9;]*m/g, '').slice(-1500));
      shown = false;
    }
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(shown ? 'shown' : 'not shown');
  } finally {
    await browser.close();
  }
})();
