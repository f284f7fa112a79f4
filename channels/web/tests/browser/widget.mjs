// Drives the chat widget in headless Chromium against a running test server.
//
// Usage: node widget.mjs BASE_URL AGENT_TOKEN [SCREENSHOT.png]
//
// Chromium is controlled over the DevTools protocol (see cdp.mjs). Exits 0 when
// every check passes and 1 with the failed check otherwise.

import { check, runScenario, sleep, STEP_TIMEOUT_MS } from './cdp.mjs';

const [base, agentToken, screenshotPath] = process.argv.slice(2);
if (!base || !agentToken) {
  console.error('usage: node widget.mjs BASE_URL AGENT_TOKEN [SCREENSHOT.png]');
  process.exit(2);
}

let page;

function evaluate(expression) {
  return page.evaluate(expression);
}

// ---- helpers that run in the page ----

// Installed into each page load: finds elements in the widget's shadow root and
// waits for conditions.
const PAGE_HELPERS = `
  window.__w = {
    root() {
      const host = document.querySelector('[data-lepton-widget]');
      return host && host.shadowRoot;
    },
    q(selector) { return this.root().querySelector(selector); },
    all(selector) { return Array.from(this.root().querySelectorAll(selector)); },
    texts(selector) { return this.all(selector).map((node) => node.textContent); },
    async until(check, description) {
      const deadline = Date.now() + ${STEP_TIMEOUT_MS};
      while (Date.now() < deadline) {
        try {
          if (check()) return true;
        } catch (e) {}
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error('timed out waiting for ' + description + '; log: ' + JSON.stringify(this.texts('.log > div *')));
    },
    type(text) {
      const input = this.q('textarea');
      input.value = text;
      this.q('form button[type=submit]').click();
    },
  };
  true;
`;

async function loadPage(url) {
  await page.load(url, "document.querySelector('[data-lepton-widget]')");
  await evaluate(PAGE_HELPERS);
}

async function agent(path, body) {
  const response = await fetch(`${base}/api/v1/agent/conversations${path}`, {
    method: body ? 'POST' : 'GET',
    headers: { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await response.json();
  if (!response.ok) {
    throw new Error(`agent ${path} returned ${response.status}: ${JSON.stringify(json)}`);
  }
  return json;
}

// ---- the scenario ----

async function scenario(browser) {
  page = await browser.newPage();
  await loadPage(`${base}/`);

  // Page CSS does not reach into the widget, and the widget adds no page-level CSS.
  const isolated = await evaluate(`
    const rule = document.createElement('style');
    rule.textContent = 'button, div, textarea { background: rgb(255, 0, 0) !important; font-size: 40px !important; }';
    document.head.appendChild(rule);
    const launcher = getComputedStyle(__w.q('.launcher'));
    const pageStyles = Array.from(document.querySelectorAll('style')).map((node) => node.textContent).join('');
    launcher.backgroundColor !== 'rgb(255, 0, 0)' && launcher.fontSize !== '40px' && !pageStyles.includes('.launcher')
  `);
  check(isolated, 'page CSS and widget CSS stay apart');

  await evaluate(`__w.q('.launcher').click(); true`);
  check(await evaluate(`!__w.q('.panel').hidden`), 'launcher opens the panel');
  check((await evaluate(`__w.q('.title').textContent`)) === 'Customer support', 'English UI for an English browser');

  await evaluate(`__w.type('hello'); true`);
  await evaluate(`__w.until(() => __w.texts('.reply .bubble').includes('Hello! How can I help?'), 'greeting reply')`);
  check(true, 'typed message gets the bot reply');
  const buttons = await evaluate(`__w.texts('.quick button')`);
  check(JSON.stringify(buttons) === JSON.stringify(['Track my order', 'Talk to a person']), 'quick replies shown');

  await evaluate(`__w.all('.quick button')[0].click(); true`);
  await evaluate(`__w.until(() => __w.texts('.reply .bubble').includes('Your order is on its way.'), 'order reply')`);
  const customerTexts = await evaluate(`__w.texts('.customer .bubble')`);
  check(
    JSON.stringify(customerTexts) === JSON.stringify(['hello', 'Track my order']),
    'quick reply shows its title as the customer message, no duplicates',
  );

  const attack = '<img src=x onerror="window.__xss=1">';
  await evaluate(`__w.type(${JSON.stringify(attack)}); true`);
  await evaluate(`__w.until(() => __w.all('.customer:not(.pending) .bubble').length === 3, 'third message')`);
  const escaped = await evaluate(`
    __w.texts('.customer .bubble')[2] === ${JSON.stringify(attack)} && __w.all('img').length === 0 && window.__xss === undefined
  `);
  check(escaped, 'markup in a message is shown as text');

  // Offline: the send fails and is retried, the WebSocket drops and reconnects.
  await page.command('Network.enable', {});
  const offline = { offline: true, latency: 0, downloadThroughput: -1, uploadThroughput: -1 };
  await page.command('Network.emulateNetworkConditions', offline);
  await evaluate(`__w.type('where is my order'); true`);
  await sleep(1500);
  check((await evaluate(`__w.texts('.pending .state')`)).includes('Sending…'), 'offline send stays pending');
  await page.command('Network.emulateNetworkConditions', { ...offline, offline: false });
  await evaluate(`__w.until(() => __w.texts('.reply .bubble').filter((t) => t === 'Your order is on its way.').length === 2, 'reply after reconnect')`);
  await sleep(500);
  const afterRetry = await evaluate(`__w.texts('.customer .bubble')`);
  check(afterRetry.length === 4 && afterRetry[3] === 'where is my order', 'retried send shows once after going online');

  await evaluate(`__w.type('I want a person'); true`);
  await evaluate(`__w.until(() => __w.texts('.notice').some((text) => text.includes('Please wait')), 'waiting notice')`);
  check((await evaluate(`__w.q('.status').textContent`)) === 'Waiting for an agent…', 'handoff shows the waiting notice and status');

  const conversationId = await evaluate(`localStorage.getItem('lepton.conversation')`);
  check(/^web:[0-9a-f]{32}$/.test(conversationId), 'conversation id stored in localStorage');
  await agent(`/${conversationId}/claim`, { agent: 'alice' });
  await evaluate(`__w.until(() => __w.texts('.notice').some((text) => text.includes('alice from our support team')), 'joined notice')`);
  check(true, 'agent claim arrives over the WebSocket');
  await agent(`/${conversationId}/messages`, { agent: 'alice', text: 'Hi, this is Alice.' });
  await evaluate(`__w.until(() => __w.texts('.reply.agent .bubble').includes('Hi, this is Alice.'), 'agent reply')`);
  check((await evaluate(`__w.q('.status').textContent`)) === 'alice', 'header shows the agent');

  await evaluate(`__w.q('header button').click(); true`);
  check((await evaluate(`__w.q('.title').textContent`)) === '在线客服', 'language button switches to Chinese');
  check((await evaluate(`__w.q('textarea').placeholder`)) === '请输入消息…', 'placeholder switches to Chinese');
  check((await evaluate(`document.documentElement.lang`)) === 'zh', 'demo page follows the widget to Chinese');

  await rejectedSends();
  await pageLanguageButton();
  await smallScreen();

  const before = await evaluate(`__w.texts('.log .bubble')`);
  await loadPage(`${base}/`);
  await evaluate(`__w.q('.launcher').click(); true`);
  await evaluate(`__w.until(() => __w.all('.log .bubble').length >= ${before.length}, 'history after reload')`);
  await sleep(300);
  const after = await evaluate(`__w.texts('.log .bubble')`);
  check(JSON.stringify(after) === JSON.stringify(before), 'reload replays the same history without duplicates');
  check((await evaluate(`__w.q('.title').textContent`)) === '在线客服', 'language choice survives reload');

  await unusableStoredIds();

  if (screenshotPath) {
    await page.screenshot(screenshotPath);
  }
}

// Checks in the Chinese UI that a too-long message is stopped in the browser, that
// one the server rejects (its limit is 4096 bytes) is reported in Chinese, and that
// in both cases the text stays in the input box.
async function rejectedSends() {
  const bubbles = await evaluate(`__w.all('.customer .bubble').length`);

  const huge = 'x'.repeat(20000);
  await evaluate(`__w.type(${JSON.stringify(huge)}); true`);
  await evaluate(`__w.until(() => __w.q('.alert').textContent.includes('消息太长'), 'too-long alert')`);
  check((await evaluate(`__w.q('textarea').value.length`)) === 20000, 'too-long text stays in the input box');
  check((await evaluate(`__w.all('.customer .bubble').length`)) === bubbles, 'too-long text is not sent');

  const long = '长'.repeat(2000);
  await evaluate(`__w.type(${JSON.stringify(long)}); true`);
  await evaluate(`__w.until(() => __w.q('textarea').value === ${JSON.stringify(long)} && __w.all('.pending').length === 0, 'restored text')`);
  const alert = await evaluate(`__w.q('.alert').textContent`);
  check(alert.includes('消息太长'), `server rejection shows the too-long message: ${alert}`);
  check(!/[a-z]{3}/i.test(alert), 'server rejection message has no English words');
  check(!(await evaluate(`__w.root().textContent.includes('bytes')`)), 'no English server message in the Chinese UI');
  check((await evaluate(`__w.all('.customer .bubble').length`)) === bubbles, 'rejected text leaves no bubble');

  await evaluate(`__w.q('textarea').value = ''; __w.q('textarea').dispatchEvent(new Event('input')); true`);
  check((await evaluate(`__w.q('.alert').hidden`)), 'clearing the input hides the alert');
}

// Reloads the page with `id` stored as the recent conversation; `started` says
// whether the widget connects its WebSocket at once.
async function loadWithStoredId(id, started) {
  await evaluate(`
    localStorage.setItem('lepton.conversation', ${JSON.stringify(id)});
    localStorage.setItem('lepton.lastActive', String(Date.now()));
    localStorage.setItem('lepton.started', ${JSON.stringify(started ? '1' : '')});
    true
  `);
  await loadPage(`${base}/`);
  await evaluate(`__w.q('.launcher').click(); true`);
}

const NEW_CONVERSATION_ZH = '之前的对话无法继续，已为您开始新的对话。';
const STORED_ID = `localStorage.getItem('lepton.conversation')`;

// A stored conversation id the server rejects is replaced by a new conversation,
// and the customer is told so in the widget's language (Chinese here): on load
// when the id breaks the id rules, after a failed WebSocket handshake, and after
// a rejected message, which then goes to the new conversation.
async function unusableStoredIds() {
  await loadWithStoredId('web:' + 'a'.repeat(200), true);
  check(/^web:[0-9a-f]{32}$/.test(await evaluate(STORED_ID)), 'an over-long stored id is replaced on load');
  check((await evaluate(`__w.texts('.notice')`)).includes(NEW_CONVERSATION_ZH), 'the customer is told a new chat started');
  await sleep(1000);
  check((await evaluate(`__w.q('.status').textContent`)) === '智能助手', 'status is not stuck on reconnecting');
  await evaluate(`__w.type('hello'); true`);
  await evaluate(`__w.until(() => __w.all('.reply .bubble').length === 1, 'reply in the new conversation')`);
  check(await evaluate(`__w.q('.alert').hidden`), 'the new conversation shows no error');

  await loadWithStoredId('telegram:42', true);
  await evaluate(`__w.until(() => /^web:[0-9a-f]{32}$/.test(${STORED_ID}), 'new id after the rejected handshake')`);
  check((await evaluate(`__w.texts('.notice')`)).includes(NEW_CONVERSATION_ZH), 'a rejected handshake starts a new chat and says so');
  await evaluate(`__w.until(() => __w.q('.status').textContent === '智能助手', 'status after the rejected handshake')`);
  check(true, 'status leaves reconnecting after the rejected handshake');

  await loadWithStoredId('telegram:43', false);
  await evaluate(`__w.type('where is my order'); true`);
  await evaluate(`__w.until(() => __w.all('.reply .bubble').length === 1 && __w.all('.pending').length === 0, 'reply after the rejected send')`);
  const sent = await evaluate(`__w.texts('.customer .bubble')`);
  check(JSON.stringify(sent) === JSON.stringify(['where is my order']), 'a rejected send goes to the new conversation once');
  check(/^web:[0-9a-f]{32}$/.test(await evaluate(STORED_ID)), 'a rejected send replaces the stored id');
  check((await evaluate(`__w.texts('.notice')`)).includes(NEW_CONVERSATION_ZH), 'a rejected send starts a new chat and says so');
  check(await evaluate(`__w.q('.alert').hidden`), 'a rejected send that went through shows no error');
}

// The demo page's own language button switches the widget too.
async function pageLanguageButton() {
  await evaluate(`document.getElementById('switch-lang').click(); true`);
  check((await evaluate(`__w.q('.title').textContent`)) === 'Customer support', 'page button switches the widget to English');
  check((await evaluate(`document.documentElement.lang`)) === 'en', 'page button switches the page to English');
  await evaluate(`document.getElementById('switch-lang').click(); true`);
  check((await evaluate(`__w.q('.title').textContent`)) === '在线客服', 'page button switches the widget back to Chinese');
}

// On a 390 px wide phone the open panel fills the screen and its close button is on screen.
async function smallScreen() {
  const phone = { width: 390, height: 844, deviceScaleFactor: 2, mobile: true };
  await page.command('Emulation.setDeviceMetricsOverride', phone);
  const layout = await evaluate(`(() => {
    const panel = __w.q('.panel').getBoundingClientRect();
    const close = __w.q('header .close');
    const box = close.getBoundingClientRect();
    const hit = __w.root().elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
    return { panel: [panel.left, panel.top, panel.width, panel.height], closeOnTop: hit === close, closeSize: box.width * box.height };
  })()`);
  check(JSON.stringify(layout.panel) === JSON.stringify([0, 0, 390, 844]), `panel fills a 390 px screen: ${JSON.stringify(layout.panel)}`);
  check(layout.closeOnTop && layout.closeSize >= 32 * 32, 'close button is visible and large enough to tap');

  await evaluate(`__w.q('header .close').click(); true`);
  const closed = await evaluate(`__w.q('.panel').hidden && __w.q('.launcher').getBoundingClientRect().width > 0`);
  check(closed, 'close button hides the panel and shows the launcher');
  await page.command('Emulation.clearDeviceMetricsOverride', {});
}

await runScenario('widget', { lang: 'en-US', profilePrefix: 'lepton-widget-' }, scenario);
