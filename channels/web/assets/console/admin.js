// The admin page: this server's turns, fallback and handoff rates over the
// last six hours as small SVG charts, the intents matched most often and the
// unrecognised questions asked most often. Charts are built with DOM calls
// only, so the page's Content-Security-Policy needs no inline styles.

import { api } from './api.js';
import { el, replaceChildren } from './dom.js';
import { formatTime, t } from './i18n.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const REFRESH_MS = 60000;
const CHART_WIDTH = 720;
const CHART_HEIGHT = 160;
const PADDING = { left: 44, right: 12, top: 12, bottom: 26 };

/** Creates an SVG element with attributes and children. */
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child) {
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    }
  }
  return node;
}

function percent(part, whole) {
  return whole > 0 ? `${Math.round((part / whole) * 1000) / 10}%` : '–';
}

function hourLabel(millis) {
  const date = new Date(millis);
  return `${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}`;
}

/** Returns the chart's x position of bucket `index` of `count`, and the width of one. */
function xScale(count) {
  const inner = CHART_WIDTH - PADDING.left - PADDING.right;
  const step = inner / Math.max(count, 1);
  return { step, at: (index) => PADDING.left + index * step };
}

/** Draws the y axis from 0 to `max` with three labelled grid lines. */
function yAxis(max, format) {
  const inner = CHART_HEIGHT - PADDING.top - PADDING.bottom;
  const lines = [];
  for (const fraction of [0, 0.5, 1]) {
    const y = PADDING.top + inner * (1 - fraction);
    lines.push(svg('line', { class: 'grid', x1: PADDING.left, x2: CHART_WIDTH - PADDING.right, y1: y, y2: y }));
    lines.push(svg('text', { class: 'axis', x: PADDING.left - 6, y: y + 4, 'text-anchor': 'end' }, format(max * fraction)));
  }
  return lines;
}

/** Labels every whole hour on the x axis. */
function xAxis(buckets, scale) {
  const labels = [];
  buckets.forEach((bucket, index) => {
    if (bucket.start % 3600000 === 0) {
      const x = scale.at(index);
      labels.push(svg('text', { class: 'axis', x, y: CHART_HEIGHT - 8, 'text-anchor': 'middle' }, hourLabel(bucket.start)));
    }
  });
  return labels;
}

function chartFrame(title, description, ...content) {
  return svg(
    'svg',
    { class: 'chart', viewBox: `0 0 ${CHART_WIDTH} ${CHART_HEIGHT}`, role: 'img', 'aria-label': description },
    svg('title', {}, title),
    ...content,
  );
}

/** Draws one bar per bucket, as high as its turns. */
function turnsChart(buckets) {
  const max = Math.max(1, ...buckets.map((bucket) => bucket.turns));
  const scale = xScale(buckets.length);
  const inner = CHART_HEIGHT - PADDING.top - PADDING.bottom;
  const bars = buckets.map((bucket, index) => {
    const height = (bucket.turns / max) * inner;
    const bar = svg('rect', {
      class: 'bar',
      x: scale.at(index) + 0.5,
      y: PADDING.top + inner - height,
      width: Math.max(scale.step - 1, 1),
      height,
    });
    bar.appendChild(svg('title', {}, `${hourLabel(bucket.start)} · ${t('admin.turnsCount', { count: bucket.turns })}`));
    return bar;
  });
  return chartFrame(t('admin.turnsChart'), t('admin.turnsChart'), yAxis(max, (value) => String(Math.round(value))), xAxis(buckets, scale), bars);
}

/** Draws a line per rate (share of the bucket's turns), skipping buckets without turns. */
function ratesChart(buckets) {
  const scale = xScale(buckets.length);
  const inner = CHART_HEIGHT - PADDING.top - PADDING.bottom;
  const rates = {
    fallback: buckets.map((bucket) => (bucket.turns ? bucket.fallbacks / bucket.turns : null)),
    handoff: buckets.map((bucket) => (bucket.turns ? bucket.handoffs / bucket.turns : null)),
  };
  const max = Math.max(0.1, ...rates.fallback.filter((rate) => rate !== null), ...rates.handoff.filter((rate) => rate !== null));
  // A dot per bucket with turns, so that a single bucket still shows; the line joins them.
  const lines = Object.entries(rates).map(([name, values]) => {
    const points = [];
    values.forEach((value, index) => {
      if (value !== null) {
        points.push([scale.at(index) + scale.step / 2, PADDING.top + inner * (1 - value / max)]);
      }
    });
    const dots = points.map(([x, y]) => svg('circle', { class: `rate-dot rate-${name}-dot`, cx: x, cy: y, r: 2.5 }));
    return svg('g', {}, svg('polyline', { class: `rate rate-${name}`, points: points.map((point) => point.join(',')).join(' ') }), dots);
  });
  return chartFrame(t('admin.ratesChart'), t('admin.ratesChart'), yAxis(max, (value) => `${Math.round(value * 100)}%`), xAxis(buckets, scale), lines);
}

/** Builds the key of the rates chart as text above it, so that it never covers a line. */
function ratesLegend() {
  return el(
    'p',
    { className: 'chart-legend' },
    el('span', { className: 'legend-fallback', text: t('admin.fallbackRate') }),
    el('span', { className: 'legend-handoff', text: t('admin.handoffRate') }),
  );
}

/** Draws a horizontal bar per item of `items` [{label, value}], in the given order. */
function barList(items, emptyText) {
  if (!items.length) {
    return el('p', { className: 'placeholder', text: emptyText });
  }
  const rowHeight = 22;
  const labelWidth = 220;
  const height = items.length * rowHeight;
  const max = Math.max(...items.map((item) => item.value));
  const rows = items.map((item, index) => {
    const y = index * rowHeight;
    const width = ((CHART_WIDTH - labelWidth - 60) * item.value) / max;
    return svg(
      'g',
      {},
      svg('text', { class: 'bar-label', x: labelWidth - 8, y: y + 15, 'text-anchor': 'end' }, item.label),
      svg('rect', { class: 'bar', x: labelWidth, y: y + 4, width: Math.max(width, 1), height: rowHeight - 8 }),
      svg('text', { class: 'axis', x: labelWidth + width + 6, y: y + 15 }, String(item.value)),
    );
  });
  return svg('svg', { class: 'chart bars', viewBox: `0 0 ${CHART_WIDTH} ${height}`, role: 'img' }, rows);
}

export class AdminView {
  constructor(root) {
    this.root = root;
    this.stats = null;
    this.error = '';
    this.timer = null;
  }

  /** Loads the figures now and every minute until `stop`. */
  async start() {
    this.stop();
    this.timer = setInterval(() => this.load(), REFRESH_MS);
    await this.load();
  }

  stop() {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  async load() {
    try {
      this.stats = await api.get('/admin/stats');
      this.error = '';
    } catch (error) {
      this.error = error.describe ? error.describe() : String(error);
    }
    this.render();
  }

  render() {
    const header = el(
      'header',
      { className: 'page-header' },
      el('h1', { text: t('admin.title') }),
      el('button', { type: 'button', className: 'refresh', text: t('unrecognised.refresh'), on: { click: () => this.load() } }),
    );
    const intro = el('p', { className: 'muted', text: t('admin.intro') });
    const alert = el('p', { className: 'conv-alert', role: 'alert', text: this.error, hidden: !this.error });
    if (!this.stats) {
      replaceChildren(this.root, el('div', { className: 'admin' }, header, intro, alert));
      return;
    }

    const { buckets, top_intents: intents, top_unrecognised: unrecognised } = this.stats;
    const total = (field) => buckets.reduce((sum, bucket) => sum + bucket[field], 0);
    const turns = total('turns');
    const summary = el(
      'dl',
      { className: 'admin-summary' },
      el('div', {}, el('dt', { text: t('admin.turns') }), el('dd', { className: 'summary-turns', text: String(turns) })),
      el('div', {}, el('dt', { text: t('admin.fallbackRate') }), el('dd', { className: 'summary-fallback', text: percent(total('fallbacks'), turns) })),
      el('div', {}, el('dt', { text: t('admin.handoffRate') }), el('dd', { className: 'summary-handoff', text: percent(total('handoffs'), turns) })),
      el('div', {}, el('dt', { text: t('admin.knowledgeRate') }), el('dd', { text: percent(total('knowledge'), turns) })),
    );

    const unrecognisedList = el('ol', { className: 'admin-unrecognised' });
    for (const item of unrecognised) {
      unrecognisedList.appendChild(
        el(
          'li',
          {},
          el('span', { className: 'bubble', text: item.text }),
          el('span', { className: 'muted', text: ` ×${item.count} · ${formatTime(item.last_at)}` }),
        ),
      );
    }

    replaceChildren(
      this.root,
      el(
        'div',
        { className: 'admin' },
        header,
        intro,
        alert,
        summary,
        el('h2', { text: t('admin.turnsChart') }),
        turnsChart(buckets),
        el('h2', { text: t('admin.ratesChart') }),
        ratesLegend(),
        ratesChart(buckets),
        el('h2', { text: t('admin.topIntents') }),
        barList(intents.map((item) => ({ label: item.intent, value: item.turns })), t('admin.noIntents')),
        el('h2', { text: t('admin.topUnrecognised') }),
        unrecognised.length ? unrecognisedList : el('p', { className: 'placeholder', text: t('admin.noUnrecognised') }),
      ),
    );
  }
}
