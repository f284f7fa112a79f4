// Headless Chromium over the DevTools protocol, shared by the browser tests.
//
// Chromium is controlled on a pipe (--remote-debugging-pipe: commands go to
// fd 3 and replies come from fd 4, as JSON messages that each end with a NUL
// byte), so no npm package is needed. Pages attach with flattened sessions,
// and separate browser contexts (Target.createBrowserContext) keep cookies and
// storage apart, like two people on two computers.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const STEP_TIMEOUT_MS = 10000;

/** Starts Chromium with a fresh profile; `lang` sets its UI and Accept-Language. */
export function launchBrowser({ lang = 'en-US', profilePrefix = 'lepton-browser-' } = {}) {
  return new Browser(lang, profilePrefix);
}

class Browser {
  constructor(lang, profilePrefix) {
    this.profile = mkdtempSync(join(tmpdir(), profilePrefix));
    this.process = spawn(
      process.env.CHROMIUM || 'chromium',
      [
        '--headless=new',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--remote-debugging-pipe',
        `--user-data-dir=${this.profile}`,
        `--lang=${lang}`,
        'about:blank',
      ],
      { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
    );
    this.log = '';
    this.process.stderr.on('data', (chunk) => {
      this.log += chunk;
    });
    this.nextId = 1;
    this.waiting = new Map();
    this.listeners = new Set();
    this.buffer = Buffer.alloc(0);
    this.process.stdio[4].on('data', (chunk) => this.receive(chunk));
  }

  receive(chunk) {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    let end;
    while ((end = this.buffer.indexOf(0)) !== -1) {
      const message = JSON.parse(this.buffer.subarray(0, end).toString('utf8'));
      this.buffer = this.buffer.subarray(end + 1);
      if (message.id === undefined) {
        for (const listener of this.listeners) {
          listener(message);
        }
        continue;
      }
      const pending = this.waiting.get(message.id);
      if (!pending) {
        continue;
      }
      this.waiting.delete(message.id);
      if (message.error) {
        pending.reject(new Error(`${pending.method}: ${message.error.message}`));
      } else {
        pending.resolve(message.result);
      }
    }
  }

  /** Sends a DevTools command, to a page when `sessionId` is given. */
  command(method, params = {}, sessionId = undefined) {
    const id = this.nextId++;
    const message = { id, method, params };
    if (sessionId) {
      message.sessionId = sessionId;
    }
    this.process.stdio[3].write(JSON.stringify(message) + '\0');
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, method });
    });
  }

  /** Calls `listener({method, params, sessionId})` for every protocol event. */
  onEvent(listener) {
    this.listeners.add(listener);
  }

  /** Creates a browser context with its own cookies and storage; returns its id. */
  async newContext() {
    const { browserContextId } = await this.command('Target.createBrowserContext', { disposeOnDetach: true });
    return browserContextId;
  }

  /** Opens a blank page, in `context` when given, and attaches to it. */
  async newPage(context = undefined) {
    const params = { url: 'about:blank' };
    if (context) {
      params.browserContextId = context;
    }
    const { targetId } = await this.command('Target.createTarget', params);
    const { sessionId } = await this.command('Target.attachToTarget', { targetId, flatten: true });
    const page = new Page(this, sessionId);
    await page.command('Page.enable');
    return page;
  }

  /** Stops Chromium and removes its profile. */
  async close() {
    const exited = new Promise((resolve) => this.process.once('exit', resolve));
    this.process.kill();
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    try {
      rmSync(this.profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    } catch (error) {
      console.error(`could not remove the browser profile ${this.profile}: ${error.message}`);
    }
  }
}

class Page {
  constructor(browser, sessionId) {
    this.browser = browser;
    this.sessionId = sessionId;
  }

  command(method, params = {}) {
    return this.browser.command(method, params, this.sessionId);
  }

  /** Evaluates `expression` in the page, awaiting a promise, and returns its value. */
  async evaluate(expression) {
    const result = await this.command('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
    if (result.exceptionDetails) {
      const detail = result.exceptionDetails.exception;
      throw new Error(detail && detail.description ? detail.description : result.exceptionDetails.text);
    }
    return result.result.value;
  }

  /** Navigates to `url` and waits until `readyExpression` is true in the loaded page. */
  async load(url, readyExpression) {
    await this.command('Page.navigate', { url });
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    while (Date.now() < deadline) {
      try {
        if (await this.evaluate(`document.readyState === 'complete' && !!(${readyExpression})`)) {
          return;
        }
      } catch (error) {
        // The page is between documents while it navigates.
      }
      await sleep(100);
    }
    throw new Error(`page ${url} did not become ready: ${readyExpression}`);
  }

  /** Polls `expression` until it is truthy and returns its value; throws with `description` after the step timeout. */
  async waitFor(expression, description) {
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    let last;
    while (Date.now() < deadline) {
      try {
        last = await this.evaluate(expression);
        if (last) {
          return last;
        }
      } catch (error) {
        last = error.message;
      }
      await sleep(50);
    }
    throw new Error(`timed out waiting for ${description}; last value: ${JSON.stringify(last)}`);
  }

  /** Types `text` into the focused element, as an input method would commit it. */
  insertText(text) {
    return this.command('Input.insertText', { text });
  }

  /** Presses Enter in the focused element, with Shift when `shift` is true. */
  async pressEnter(shift = false) {
    const key = { key: 'Enter', code: 'Enter', windowsVirtualKeyCode: 13, modifiers: shift ? 8 : 0 };
    await this.command('Input.dispatchKeyEvent', { type: 'keyDown', text: '\r', ...key });
    await this.command('Input.dispatchKeyEvent', { type: 'keyUp', ...key });
  }

  /** Saves a PNG of the page's viewport. */
  async screenshot(path) {
    const { data } = await this.command('Page.captureScreenshot', { format: 'png' });
    writeFileSync(path, Buffer.from(data, 'base64'));
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Throws with `description` unless `condition` holds; logs passing checks. */
export function check(condition, description) {
  if (!condition) {
    throw new Error(`check failed: ${description}`);
  }
  console.log(`ok - ${description}`);
}

/**
 * Runs `scenario(browser)` in a fresh browser and exits the process: 0 when
 * every check passed, 1 with the failure and Chromium's log otherwise.
 */
export async function runScenario(name, options, scenario) {
  const browser = launchBrowser(options);
  let exitCode = 0;
  try {
    await scenario(browser);
    console.log(`all ${name} checks passed`);
  } catch (error) {
    console.error(String(error && error.stack ? error.stack : error));
    if (browser.log) {
      console.error('chromium stderr (last 2000 characters):\n' + browser.log.slice(-2000));
    }
    exitCode = 1;
  } finally {
    await browser.close();
  }
  process.exit(exitCode);
}
