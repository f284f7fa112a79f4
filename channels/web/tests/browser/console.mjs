// Drives the support console at /console and the chat widget in headless
// Chromium against a running test server.
//
// Usage: node console.mjs CONFIG_JSON
//   CONFIG_JSON: {"base": "http://127.0.0.1:PORT",
//                 "agents": [{"name": "alice", "password": "..."}, {"name": "bob", ...}],
//                 "limited_base": "http://127.0.0.1:PORT2" (a second server for the sign-in rate limit),
//                 "teach": "stored" | "unavailable" (what adding an example does on `base`),
//                 "screenshots": "FOLDER" (optional: saves console-*.png there),
//                 "mode": "demo" (optional: instead of the checks, fills the queue of a
//                         `lepton demo` server with customers and saves the screenshots)}
//
// Each agent and the customer get their own browser context (cookies and
// storage apart). Exits 0 when every check passes and 1 with the failed check
// otherwise.

import { join } from 'node:path';

import { check, runScenario, sleep } from './cdp.mjs';

const config = JSON.parse(process.argv[2] || 'null');
if (!config || !config.base || !config.agents || config.agents.length < 2 || (config.mode === 'demo' && !config.screenshots)) {
  console.error('usage: node console.mjs \'{"base": URL, "agents": [{"name", "password"}, {"name", "password"}], ...}\'');
  process.exit(2);
}

const { base } = config;
const [alice, bob] = config.agents;
const json = JSON.stringify;
const ATTACK = '<img src=x onerror=alert(1)>';

/** A desktop window, for screenshots that show the whole console. */
const DESKTOP = { width: 1360, height: 820, deviceScaleFactor: 1, mobile: false };

/** JavaScript dialogs (alert, confirm) opened in any page; an XSS would open one. */
const dialogs = [];

/** Uncaught exceptions in any page. */
const exceptions = [];

// ---- the console page ----

async function openConsole(page, url = `${base}/console`) {
  await page.command('Runtime.enable');
  await page.load(url, "document.querySelector('.sign-in-card, .topbar')");
  await page.evaluate(`window.lastText = (selector) => {
    const nodes = document.querySelectorAll(selector);
    return nodes.length ? nodes[nodes.length - 1].textContent : null;
  }; true`);
}

async function signIn(page, agent) {
  await fillSignIn(page, agent.name, agent.password);
  await page.waitFor(`document.querySelector('.topbar .me strong')?.textContent === ${json(agent.name)}`, `${agent.name} signed in`);
}

async function fillSignIn(page, name, password) {
  await page.evaluate(`(() => {
    document.getElementById('sign-in-name').value = ${json(name)};
    document.getElementById('sign-in-password').value = ${json(password)};
    document.querySelector('.sign-in-card').requestSubmit();
    return true;
  })()`);
}

/** Waits for the sign-in form's error after a submit and returns it. */
async function signInError(page) {
  return page.waitFor(
    `(() => {
      const error = document.querySelector('.sign-in-error');
      const busy = document.querySelector('.sign-in-card button[type=submit]').disabled;
      return !busy && error && !error.hidden && error.textContent;
    })()`,
    'the sign-in error',
  );
}

function click(page, selector) {
  return page.evaluate(`(() => { document.querySelector(${json(selector)}).click(); return true; })()`);
}

function text(page, selector) {
  return page.evaluate(`document.querySelector(${json(selector)})?.textContent ?? null`);
}

function texts(page, selector) {
  return page.evaluate(`Array.from(document.querySelectorAll(${json(selector)}), (node) => node.textContent)`);
}

function queueItem(section, id) {
  return `.queue-${section} .queue-item[data-id=${json(id)}]`;
}

async function openConversation(page, section, id) {
  await page.waitFor(`!!document.querySelector(${json(queueItem(section, id))})`, `${id} in the ${section} queue`);
  await click(page, queueItem(section, id));
  await page.waitFor(`document.querySelector('.conv-title h1')?.textContent === ${json(id)}`, `conversation ${id} open`);
}

/** Types into the composer and presses Enter; `lines` are joined with Shift+Enter. */
async function compose(page, ...lines) {
  await page.evaluate(`document.querySelector('.composer-input').focus(); true`);
  for (const [index, line] of lines.entries()) {
    if (index > 0) {
      await page.pressEnter(true);
    }
    await page.insertText(line);
  }
  await page.pressEnter();
}

async function statePill(page) {
  return text(page, '.conv-header .state-pill');
}

// ---- the customer's widget ----

const WIDGET = `document.querySelector('[data-lepton-widget]').shadowRoot`;

async function openWidget(page) {
  await page.load(`${base}/`, "document.querySelector('[data-lepton-widget]')");
  await page.evaluate(`${WIDGET}.querySelector('.launcher').click(); true`);
}

async function customerSays(page, message) {
  await page.evaluate(`(() => {
    const root = ${WIDGET};
    root.querySelector('textarea').value = ${json(message)};
    root.querySelector('form button[type=submit]').click();
    return true;
  })()`);
}

function widgetTexts(page, selector) {
  return page.evaluate(`Array.from(${WIDGET}.querySelectorAll(${json(selector)}), (node) => node.textContent)`);
}

async function waitForWidgetText(page, selector, expected, description) {
  await page.waitFor(
    `Array.from(${WIDGET}.querySelectorAll(${json(selector)}), (node) => node.textContent).includes(${json(expected)})`,
    description,
  );
}

// ---- the scenario ----

async function scenario(browser) {
  browser.onEvent((message) => {
    if (message.method === 'Page.javascriptDialogOpening') {
      dialogs.push(message.params.message);
    }
    if (message.method === 'Runtime.exceptionThrown') {
      const details = message.params.exceptionDetails;
      const description = (details.exception && details.exception.description) || details.text;
      exceptions.push(description);
      console.error(`page exception: ${description}`);
    }
  });
  const alicePage = await browser.newPage(await browser.newContext());
  await alicePage.command('Emulation.setDeviceMetricsOverride', DESKTOP);
  const customer = await browser.newPage(await browser.newContext());

  if (config.limited_base) {
    await signInRateLimit(alicePage);
  }
  await signInAndOut(alicePage);
  const id = await customerAsksForPerson(customer);
  await conversationArrives(alicePage, id);
  await claimAndReply(alicePage, customer, id);
  await notesAndCannedReplies(alicePage, customer);
  await markupStaysText(alicePage, customer, id);
  await reconnectBanner(alicePage, customer);
  await teachTheBot(alicePage);
  await handBack(alicePage, customer);
  await unrecognisedList(alicePage);
  await adminStatistics(alicePage);

  const bobPage = await browser.newPage(await browser.newContext());
  await bobPage.command('Emulation.setDeviceMetricsOverride', DESKTOP);
  await openConsole(bobPage);
  await signIn(bobPage, bob);
  check(!(await bobPage.evaluate(`!!document.querySelector('.reload-bot')`)), 'agents without the admin role get no reload button');
  check(!(await bobPage.evaluate(`!!document.querySelector('.nav-admin')`)), 'agents without the admin role get no statistics tab');
  await twoAgentsClaim(alicePage, bobPage, customer, id);
  await chineseUi(alicePage, browser);

  await click(alicePage, '.sign-out');
  await alicePage.waitFor(`!!document.querySelector('.sign-in-card')`, 'the sign-in form after signing out');
  await openConsole(alicePage);
  check(!!(await alicePage.evaluate(`!!document.querySelector('.sign-in-card')`)), 'signing out ends the session');
  check(dialogs.length === 0, `no page opened a JavaScript dialog: ${json(dialogs)}`);
  check(exceptions.length === 0, `no page threw an uncaught exception: ${json(exceptions)}`);
}

// Five wrong passwords on a server of its own; the next attempt is rate limited
// and the form shows when to try again.
async function signInRateLimit(page) {
  await openConsole(page, `${config.limited_base}/console`);
  const errors = [];
  for (let attempt = 0; attempt < 7 && !errors.some((error) => error.includes('Too many')); attempt++) {
    await page.evaluate(`document.querySelector('.sign-in-error').hidden = true; true`);
    await fillSignIn(page, alice.name, 'wrong password');
    errors.push(await signInError(page));
  }
  check(errors[0] === 'Wrong name or password.', `a wrong password says so: ${errors[0]}`);
  const limited = errors[errors.length - 1];
  check(/^Too many sign-in attempts\. Try again in \d+ s\.$/.test(limited), `the rate limit says when to retry: ${limited}`);
  check(errors.length === 6, `five failures are allowed before the limit: ${json(errors)}`);
}

async function signInAndOut(page) {
  await openConsole(page);
  check((await page.evaluate(`document.documentElement.lang`)) === 'en', 'English UI for an English browser');
  check((await text(page, '.sign-in-card h1')) === 'Sign in to the support console', 'the sign-in form shows');

  await fillSignIn(page, alice.name, 'not the password');
  check((await signInError(page)) === 'Wrong name or password.', 'a wrong password is rejected');
  await fillSignIn(page, 'nobody', alice.password);
  check((await signInError(page)) === 'Wrong name or password.', 'an unknown name gets the same answer');

  await signIn(page, alice);
  check((await page.evaluate(`document.title`)) === 'Lepton console', 'title without waiting conversations');
  await page.waitFor(`document.querySelector('.banner').hidden`, 'the live connection');
  check(true, 'the live WebSocket connects');

  await openConsole(page);
  check(!!(await page.evaluate(`!!document.querySelector('.topbar')`)), 'a reload keeps the agent signed in');

  // The test server has no bot folder, so the admin's reload fails and says why.
  await click(page, '.reload-bot');
  const notice = await page.waitFor(`!document.querySelector('.notice-bar').hidden && document.querySelector('.notice-text').textContent`, 'the reload notice');
  check(notice === 'This server cannot reload the bot: it was started without a bot folder.', `an admin's reload shows the outcome: ${notice}`);
  await click(page, '.dismiss-notice');
}

async function customerAsksForPerson(page) {
  await openWidget(page);
  await customerSays(page, 'hello');
  await waitForWidgetText(page, '.reply .bubble', 'Hello! How can I help?', 'the greeting');
  await customerSays(page, 'I want a person');
  await page.waitFor(`${WIDGET}.querySelector('.status').textContent === 'Waiting for an agent…'`, 'the waiting status');
  const id = await page.evaluate(`localStorage.getItem('lepton.conversation')`);
  check(/^web:[0-9a-f]{32}$/.test(id), `the customer waits in conversation ${id}`);
  return id;
}

async function conversationArrives(page, id) {
  const item = queueItem('waiting', id);
  await page.waitFor(`!!document.querySelector(${json(item)})`, 'the conversation in the waiting queue');
  check(true, 'a new waiting conversation appears without a reload');
  await page.waitFor(`document.title === '(1) Lepton console'`, 'the title badge');
  check(true, 'the title counts waiting conversations');
  check((await text(page, `${item} .preview`)) === 'I want a person', 'the queue shows the last customer message');
  check((await text(page, `${item} .meta-main`)) === 'Flow handed off', 'the queue says why the bot handed off');
  check((await text(page, `${item} .channel`)) === 'Web', 'the queue shows the channel');
  check((await text(page, `${item} .lang`)) === 'EN', 'the queue shows the language');
  const first = await text(page, `${item} .elapsed`);
  check(/^\d+:\d\d$/.test(first), `the waiting time shows: ${first}`);
  await sleep(2100);
  const later = await text(page, `${item} .elapsed`);
  check(later !== first, `the waiting time ticks: ${first} then ${later}`);
  if (config.screenshots) {
    await page.screenshot(join(config.screenshots, 'console-queue.png'));
  }
}

async function claimAndReply(page, customer, id) {
  await openConversation(page, 'waiting', id);
  check((await statePill(page)) === 'Waiting for an agent', 'the conversation waits for an agent');
  const customerTexts = await texts(page, '.msg-customer .bubble');
  check(json(customerTexts) === json(['hello', 'I want a person']), `the transcript shows the customer: ${json(customerTexts)}`);
  check((await texts(page, '.msg-bot .bubble')).includes('Hello! How can I help?'), 'the transcript shows the bot');
  const reading = await texts(page, '.msg-customer .context-item.matched .context-value');
  check(reading[0] === 'greet 90%', `the bot's reading is shown: ${json(reading)}`);
  check(await page.evaluate(`document.querySelector('.composer-input').disabled`), 'replying needs a claim first');

  await click(page, '.action-claim');
  await page.waitFor(`document.querySelector('.conv-header .state-pill')?.textContent === 'With ${alice.name}'`, 'the claim');
  check(!(await page.evaluate(`document.querySelector('.composer-input').disabled`)), 'the claim enables the composer');
  await page.waitFor(`!!document.querySelector(${json(queueItem('mine', id))})`, 'the conversation under mine');
  check(true, 'the claimed conversation moves to mine');
  await customer.waitFor(`${WIDGET}.querySelector('.status').textContent === ${json(alice.name)}`, 'the agent in the widget');
  check(true, 'the customer sees the agent join');

  await compose(page, 'Hi, this is Alice.', 'How can I help?');
  const sent = 'Hi, this is Alice.\nHow can I help?';
  await page.waitFor(`Array.from(document.querySelectorAll('.msg-agent .bubble'), (n) => n.textContent).includes(${json(sent)})`, 'the reply in the transcript');
  check(true, 'Enter sends and Shift+Enter adds a line');
  check((await page.evaluate(`document.querySelector('.composer-input').value`)) === '', 'the composer empties after sending');
  await waitForWidgetText(customer, '.reply.agent .bubble', sent, 'the reply in the widget');
  check(true, "the customer's widget shows the agent's reply");
}

async function notesAndCannedReplies(page, customer) {
  await click(page, '.mode-note');
  await compose(page, 'VIP customer, be kind');
  await page.waitFor(`lastText('.msg-note .bubble') === 'VIP customer, be kind'`, 'the note');
  check((await page.evaluate(`lastText('.msg-note .author')`)) === `Internal note · ${alice.name}`, 'the note is marked internal');
  await sleep(500);
  const widgetText = await customer.evaluate(`${WIDGET}.textContent`);
  check(!widgetText.includes('VIP customer'), 'the customer never sees the note');
  await click(page, '.mode-reply');

  await click(page, '.canned-button');
  await page.waitFor(`document.querySelectorAll('.canned-item').length > 0`, 'canned replies');
  const canned = await texts(page, '.canned-item .canned-text');
  check(canned.includes('Your order is on its way.'), `canned replies come from the bot's responses: ${json(canned)}`);
  await page.evaluate(`(() => {
    const items = Array.from(document.querySelectorAll('.canned-item'));
    items.find((item) => item.querySelector('.canned-text').textContent === 'Your order is on its way.').click();
    return true;
  })()`);
  check((await page.evaluate(`document.querySelector('.composer-input').value`)) === 'Your order is on its way.', 'a canned reply fills the composer');
  await page.evaluate(`document.querySelector('.composer-input').value = ''; true`);
}

async function markupStaysText(page, customer, id) {
  await customerSays(customer, ATTACK);
  await page.waitFor(`lastText('.msg-customer .bubble') === ${json(ATTACK)}`, 'the markup message');
  check(true, 'markup from the customer shows as its characters');
  check((await page.evaluate(`document.querySelectorAll('img').length`)) === 0, 'no img element was created');
  await page.waitFor(`document.querySelector(${json(`${queueItem('mine', id)} .preview`)})?.textContent === ${json(ATTACK)}`, 'the markup preview');
  check(true, 'the queue preview shows markup as text');
}

// Offline, the console shows the lost connection; back online it reconnects
// and shows what the customer wrote meanwhile.
async function reconnectBanner(page, customer) {
  const offline = { offline: true, latency: 0, downloadThroughput: -1, uploadThroughput: -1 };
  await page.command('Network.enable');
  await page.command('Network.emulateNetworkConditions', offline);
  await page.waitFor(`!document.querySelector('.banner').hidden && document.querySelector('.banner').textContent.includes('Live updates lost')`, 'the lost-connection banner');
  check(true, 'a dropped WebSocket shows the banner');
  await customerSays(customer, 'are you still there?');
  await sleep(300);
  await page.command('Network.emulateNetworkConditions', { ...offline, offline: false });
  await page.waitFor(`document.querySelector('.banner').hidden`, 'the reconnect');
  check(true, 'the WebSocket reconnects and the banner goes');
  await page.waitFor(`Array.from(document.querySelectorAll('.msg-customer .bubble'), (n) => n.textContent).includes('are you still there?')`, 'the message sent while offline');
  check(true, 'messages from the time offline show after the reconnect');
}

async function teachTheBot(page) {
  await page.evaluate(`(() => {
    const hello = Array.from(document.querySelectorAll('.msg-customer')).find((node) => node.querySelector('.bubble').textContent === 'I want a person');
    hello.querySelector('.teach').click();
    return true;
  })()`);
  await page.waitFor(`document.querySelector('.teach-dialog').open`, 'the teach dialog');
  check((await text(page, '.teach-text')) === 'I want a person', 'the teach dialog quotes the message');
  await page.waitFor(`document.querySelectorAll('#teach-intents option').length > 0`, 'the intents');
  const intents = await page.evaluate(`Array.from(document.querySelectorAll('#teach-intents option'), (o) => o.value)`);
  check(intents.includes('human') && intents.includes('order'), `the dialog offers the bot's intents: ${json(intents)}`);

  await page.evaluate(`(() => {
    const input = document.querySelector('.teach-intent');
    input.value = 'talk_to_human';
    input.dispatchEvent(new Event('input'));
    return true;
  })()`);
  const hint = await text(page, '.teach-hint');
  check(hint.includes('is not an intent yet'), `a new intent name is announced: ${hint}`);
  await page.evaluate(`(() => {
    const input = document.querySelector('.teach-intent');
    input.value = 'human';
    input.dispatchEvent(new Event('input'));
    document.querySelector('.teach-dialog form').requestSubmit();
    return true;
  })()`);
  const result = await page.waitFor(
    `(() => { const r = document.querySelector('.teach-result'); return r.textContent && r.textContent !== 'Adding…' && r.className + '|' + r.textContent; })()`,
    'the teach result',
  );
  if (config.teach === 'stored') {
    check(/success\|Added to \S+:\d+\./.test(result), `the example was added: ${result}`);
  } else {
    check(result.includes('error|'), `a failed example shows the error: ${result}`);
  }
  await click(page, '.teach-cancel');
  check(!(await page.evaluate(`document.querySelector('.teach-dialog').open`)), 'the teach dialog closes');
}

async function handBack(page, customer) {
  await click(page, '.action-handback');
  await page.waitFor(`document.querySelector('.conv-header .state-pill')?.textContent === 'Bot is handling it'`, 'the hand back');
  check(true, 'hand back returns the conversation to the bot');
  check(await page.evaluate(`document.querySelector('.composer-input').disabled`), 'the composer is off after the hand back');

  const before = (await widgetTexts(customer, '.reply .bubble')).filter((reply) => reply === 'Your order is on its way.').length;
  await customerSays(customer, 'where is my order');
  await customer.waitFor(
    `Array.from(${WIDGET}.querySelectorAll('.reply .bubble')).filter((n) => n.textContent === 'Your order is on its way.').length === ${before + 1}`,
    'the bot answer after the hand back',
  );
  check(true, 'the bot answers the customer again');
  await page.waitFor(`lastText('.msg-bot .bubble') === 'Your order is on its way.'`, 'the bot answer in the console');
  check(true, "the console shows the bot's answer live");
  await customerSays(customer, 'blue bananas');
  await page.waitFor(`Array.from(document.querySelectorAll('.msg-customer .bubble'), (n) => n.textContent).includes('blue bananas')`, 'the unrecognised message');
}

async function unrecognisedList(page) {
  await click(page, '.nav-unrecognised');
  await page.waitFor(`document.querySelector('.unrecognised h1')?.textContent === 'Unrecognised messages'`, 'the unrecognised view');
  const item = `.unrecognised-item[data-seq]`;
  await page.waitFor(`Array.from(document.querySelectorAll('${item} .bubble'), (n) => n.textContent).includes('blue bananas')`, 'the unrecognised message in the list');
  check(true, 'a message the bot did not understand is listed');
  await page.evaluate(`(() => {
    const row = Array.from(document.querySelectorAll('${item}')).find((node) => node.querySelector('.bubble').textContent === 'blue bananas');
    row.querySelector('.dismiss').click();
    return true;
  })()`);
  await page.waitFor(`!Array.from(document.querySelectorAll('${item} .bubble'), (n) => n.textContent).includes('blue bananas')`, 'the dismissed message gone');
  await click(page, '.unrecognised .refresh');
  await sleep(300);
  check(!(await texts(page, `${item} .bubble`)).includes('blue bananas'), 'a dismissed message stays gone after a refresh');
  await click(page, '.nav-conversations');
}

// The admin's statistics tab draws this server's turns as SVG charts.
async function adminStatistics(page) {
  await click(page, '.nav-admin');
  await page.waitFor(`document.querySelector('.admin h1')?.textContent === 'Statistics'`, 'the statistics view');
  const turns = Number(await page.waitFor(`document.querySelector('.summary-turns')?.textContent`, 'the turn count'));
  check(turns > 0, `the statistics count the turns so far: ${turns}`);
  const bars = await page.evaluate(`document.querySelectorAll('.admin svg.chart rect.bar').length`);
  check(bars >= 72, `the turns chart has a bar per five minutes: ${bars}`);
  const lines = await page.evaluate(`document.querySelectorAll('.admin svg.chart polyline.rate').length`);
  check(lines === 2, `the rates chart has a fallback and a handoff line: ${lines}`);
  const dots = await page.evaluate(`document.querySelectorAll('.admin svg.chart circle.rate-dot').length`);
  check(dots >= 2, `each rate has a dot for the bucket with turns: ${dots}`);
  const fallback = await text(page, '.summary-fallback');
  check(/^\d+(\.\d)?%$/.test(fallback), `the fallback rate is a percentage: ${fallback}`);
  if (config.screenshots) {
    await page.screenshot(join(config.screenshots, 'console-statistics.png'));
  }
  await click(page, '.nav-conversations');
}

async function twoAgentsClaim(alicePage, bobPage, customer, id) {
  await customerSays(customer, 'I want a person again');
  await openConversation(alicePage, 'waiting', id);
  await openConversation(bobPage, 'waiting', id);
  await alicePage.waitFor(`!!document.querySelector('.action-claim')`, 'the claim button for alice');
  await bobPage.waitFor(`!!document.querySelector('.action-claim')`, 'the claim button for bob');

  const clickClaim = `document.querySelector('.action-claim').click(); true`;
  await Promise.all([alicePage.evaluate(clickClaim), bobPage.evaluate(clickClaim)]);
  const owner = `(() => { const pill = document.querySelector('.conv-header .state-pill'); return pill && pill.textContent.startsWith('With ') && pill.textContent.slice(5); })()`;
  const [aliceSees, bobSees] = await Promise.all([alicePage.waitFor(owner, 'the owner for alice'), bobPage.waitFor(owner, 'the owner for bob')]);
  check(aliceSees === bobSees, `both agents see the same owner: ${aliceSees}, ${bobSees}`);
  check([alice.name, bob.name].includes(aliceSees), `one of the two agents won: ${aliceSees}`);

  const [winnerPage, loserPage] = aliceSees === alice.name ? [alicePage, bobPage] : [bobPage, alicePage];
  const enabled = `!document.querySelector('.composer-input').disabled`;
  check(await winnerPage.evaluate(enabled), 'the winner can reply');
  check(!(await loserPage.evaluate(enabled)), 'the loser cannot reply');
  const alert = await loserPage.waitFor(`document.querySelector('.conv-alert:not([hidden])')?.textContent`, "the loser's alert");
  check(alert === `Claimed by ${aliceSees}.`, `the loser is told who has it: ${alert}`);
  check((await text(loserPage, '.claimed-by')) === `Claimed by ${aliceSees}`, 'the header shows who has it');
  await loserPage.waitFor(`!!document.querySelector(${json(queueItem('others', id))})`, "the conversation under the loser's others");
  check((await text(loserPage, `${queueItem('others', id)} .meta-main`)) === `with ${aliceSees}`, 'the queue shows the owner');

  if (config.screenshots) {
    await winnerPage.screenshot(join(config.screenshots, 'console-conversation.png'));
  }
}

async function chineseUi(page, browser) {
  await page.evaluate(`(() => {
    const select = document.querySelector('.topbar .lang-select');
    select.value = 'zh-CN';
    select.dispatchEvent(new Event('change'));
    return true;
  })()`);
  check((await text(page, '.nav-conversations')) === '会话', 'the header switches to Chinese');
  check((await page.evaluate(`document.documentElement.lang`)) === 'zh-CN', '<html lang> follows the switch');
  check((await page.evaluate(`document.title`)).endsWith('Lepton 客服台'), 'the title switches to Chinese');
  check((await text(page, '.queue-waiting .queue-heading span')) === '等待接入', 'the queue switches to Chinese');
  check((await text(page, '.nav-admin')) === '统计', 'the statistics tab switches to Chinese');
  const composer = await page.evaluate(`document.querySelector('.composer-input')?.placeholder ?? ''`);
  check(composer === '' || /[\u4e00-\u9fff]/.test(composer), `the composer switches to Chinese: ${composer}`);
  if (config.screenshots) {
    await page.screenshot(join(config.screenshots, 'console-zh.png'));
  }

  await openConsole(page);
  await page.waitFor(`document.querySelector('.nav-conversations')?.textContent === '会话'`, 'Chinese after a reload');
  check(true, 'the language choice survives a reload');

  // A browser that prefers Chinese gets the Chinese sign-in form.
  const chinese = await browser.newPage(await browser.newContext());
  const { userAgent } = await browser.command('Browser.getVersion');
  await chinese.command('Emulation.setUserAgentOverride', { userAgent, acceptLanguage: 'zh-CN,zh;q=0.9' });
  await openConsole(chinese);
  check((await text(chinese, '.sign-in-card h1')) === '登录客服台', 'a Chinese browser gets the Chinese UI');
  check((await chinese.evaluate(`document.documentElement.lang`)) === 'zh-CN', '<html lang> is zh-CN for a Chinese browser');

  await page.evaluate(`(() => {
    const select = document.querySelector('.topbar .lang-select');
    select.value = 'en';
    select.dispatchEvent(new Event('change'));
    return true;
  })()`);
}

// ---- screenshots with the demo bot ----

/** Sends customer messages over the REST API, as a channel without a widget would. */
async function restCustomer(id, locale, messages) {
  for (const message of messages) {
    const response = await fetch(`${base}/api/v1/conversations/${id}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: json({ text: message, locale }),
    });
    if (!response.ok) {
      throw new Error(`customer message ${json(message)} returned ${response.status}: ${await response.text()}`);
    }
  }
}

/** Signs an agent in over the console API and claims a conversation, as a second agent elsewhere would. */
async function claimAs(agent, id) {
  const signIn = await fetch(`${base}/console/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: json({ name: agent.name, password: agent.password }),
  });
  if (!signIn.ok) {
    throw new Error(`signing in ${agent.name} returned ${signIn.status}`);
  }
  const { csrf } = await signIn.json();
  const cookie = signIn.headers.get('set-cookie').split(';')[0];
  const claim = await fetch(`${base}/console/api/conversations/${encodeURIComponent(id)}/claim`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie, 'x-csrf-token': csrf, origin: base },
    body: '{}',
  });
  if (!claim.ok) {
    throw new Error(`${agent.name} claiming ${id} returned ${claim.status}: ${await claim.text()}`);
  }
}

function randomId() {
  return `web:${Array.from({ length: 32 }, () => Math.floor(Math.random() * 16).toString(16)).join('')}`;
}

async function demoScreenshots(browser) {
  const customer = await browser.newPage(await browser.newContext());
  await openWidget(customer);
  await customerSays(customer, 'hi');
  await customer.waitFor(`${WIDGET}.querySelectorAll('.reply .bubble').length >= 1`, 'the greeting');
  for (const message of ['where is my parcel', '100003', 'how long does shipping take?']) {
    const replies = await customer.evaluate(`${WIDGET}.querySelectorAll('.reply .bubble').length`);
    await customerSays(customer, message);
    await customer.waitFor(`${WIDGET}.querySelectorAll('.reply .bubble').length > ${replies}`, `the answer to ${message}`);
  }
  await customerSays(customer, 'it is still not here, I want to speak to a person');
  await customer.waitFor(`${WIDGET}.querySelector('.status').textContent === 'Waiting for an agent…'`, 'the handoff');
  const mainId = await customer.evaluate(`localStorage.getItem('lepton.conversation')`);

  const complaintId = randomId();
  await restCustomer(complaintId, 'zh', ['你好', '快递盒都压扁了，里面东西也摔坏了，怎么搞的']);
  await restCustomer(randomId(), 'en', ['order status', 'abc', '12345', 'no idea']);
  await sleep(1500);
  await restCustomer(randomId(), 'zh', ['转人工']);
  const bobsId = randomId();
  await restCustomer(bobsId, 'en', ['I want to cancel my order, please get me a person']);
  await claimAs(bob, bobsId);

  const page = await browser.newPage(await browser.newContext());
  await page.command('Emulation.setDeviceMetricsOverride', DESKTOP);
  await openConsole(page);
  await signIn(page, alice);
  await page.waitFor(`document.querySelectorAll('.queue-waiting .queue-item').length >= 4`, 'four waiting conversations');
  await sleep(3000);
  await page.screenshot(join(config.screenshots, 'console-queue.png'));

  await openConversation(page, 'waiting', mainId);
  await click(page, '.action-claim');
  await page.waitFor(`document.querySelector('.conv-header .state-pill')?.textContent === 'With ${alice.name}'`, 'the claim');
  const reply = 'Hi, this is Alice from support. Order 100003 shows as delivered, but I will check with the courier for you.';
  await compose(page, reply);
  await page.waitFor(`lastText('.msg-agent .bubble') === ${json(reply)}`, 'the reply');
  await click(page, '.mode-note');
  const note = 'Courier hotline: parcel held at the depot. Offer redelivery tomorrow.';
  await compose(page, note);
  await page.waitFor(`lastText('.msg-note .bubble') === ${json(note)}`, 'the note');
  await click(page, '.mode-reply');
  await customerSays(customer, 'thank you, I will wait');
  await page.waitFor(`lastText('.msg-customer .bubble') === 'thank you, I will wait'`, 'the customer answer');
  await page.evaluate(`document.querySelector('.composer-input').focus(); true`);
  await page.insertText('The courier can bring it again tomorrow between 9:00 and 12:00. Does that work for you?');
  await sleep(500);
  await page.screenshot(join(config.screenshots, 'console-conversation.png'));

  await page.evaluate(`(() => {
    const select = document.querySelector('.topbar .lang-select');
    select.value = 'zh-CN';
    select.dispatchEvent(new Event('change'));
    return true;
  })()`);
  await openConversation(page, 'waiting', complaintId);
  await sleep(500);
  await page.screenshot(join(config.screenshots, 'console-zh.png'));
  await page.evaluate(`(() => {
    const select = document.querySelector('.topbar .lang-select');
    select.value = 'en';
    select.dispatchEvent(new Event('change'));
    return true;
  })()`);
}

if (config.mode === 'demo') {
  await runScenario('screenshot', { lang: 'en-US', profilePrefix: 'lepton-console-' }, demoScreenshots);
} else {
  await runScenario('console', { lang: 'en-US', profilePrefix: 'lepton-console-' }, scenario);
}
