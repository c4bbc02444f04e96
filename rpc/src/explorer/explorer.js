// Stele explorer: a read-only view of this node, served by the node itself and talking only to
// its JSON-RPC API (docs/rpc.md), same-origin: POST to the node's root and the WebSocket
// subscription chain_subscribeBlocks. No framework, no library, nothing fetched from elsewhere.
//
// What it costs the node is bounded: blocks come in chain_getBlocks pages of at most 100 and at
// most a few pages per view, recent blocks are kept in memory (at most RECENT_MAX), live updates
// come from one subscription (with polling of chain_status as the fallback), and every retry
// and poll backs off when the node does not answer.
'use strict';

(() => {
  // The node's root: the page is /explorer/ (or <prefix>/explorer/ behind a proxy).
  const RPC_URL = new URL('../', location.href).href;
  const WS_URL = RPC_URL.replace(/^http/, 'ws');
  const PAGE_MAX = 100; // chain_getBlocks answers at most this many blocks per call
  const RECENT_MAX = 300; // blocks kept for the overview, the lists and the charts
  const OVERVIEW_BLOCKS = 100;
  const GRID_BLOCKS = 36;
  const LIST_BLOCKS = 25;
  const TX_PAGE = 25;
  const NOT_FOUND = 1011;
  const CALL_TIMEOUT_MS = 15000;

  // ---------------------------------------------------------------- JSON-RPC

  class RpcError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  let nextId = 1;

  async function rpc(method, params = [], timeoutMs = CALL_TIMEOUT_MS) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const response = await fetch(RPC_URL, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }),
        signal: controller.signal,
        cache: 'no-store',
        credentials: 'omit',
      });
      const text = await response.text();
      let body;
      try {
        body = JSON.parse(text);
      } catch (_) {
        throw new RpcError(response.status, `HTTP ${response.status}: ${text.slice(0, 200).trim()}`);
      }
      if (body && body.error) throw new RpcError(body.error.code, body.error.message);
      return body.result;
    } catch (error) {
      if (error && error.name === 'AbortError') {
        throw new RpcError(0, `${method}: no answer within ${timeoutMs / 1000} s`);
      }
      if (error instanceof RpcError) throw error;
      throw new RpcError(0, `cannot reach the node (${error && error.message ? error.message : error})`);
    } finally {
      clearTimeout(timer);
    }
  }

  // Blocks from..to (inclusive), in pages of at most PAGE_MAX, at most `maxPages` calls: a page
  // may be shorter (the node's response budget), so ask again from the last height + 1.
  async function getBlocks(from, to, maxPages) {
    const blocks = [];
    let next = Math.max(1, from);
    for (let page = 0; page < maxPages && next <= to; page++) {
      const got = await rpc('chain_getBlocks', [next, Math.min(to, next + PAGE_MAX - 1)]);
      if (!Array.isArray(got) || got.length === 0) break;
      blocks.push(...got);
      next = got[got.length - 1].header.height + 1;
    }
    return blocks;
  }

  // At most `limit` calls of `work` at once over `items`.
  async function eachLimited(items, limit, work) {
    let index = 0;
    const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (index < items.length) {
        const item = items[index++];
        await work(item);
      }
    });
    await Promise.all(runners);
  }

  // ---------------------------------------------------------------- state

  const state = {
    status: null, // chain_status
    statusError: null,
    validators: null, // chain_getValidators() of the next height
    sets: new Map(), // validator-set digest -> chain_getValidators answer
    setsLoading: new Map(),
    recent: new Map(), // height -> summary of a committed block
    head: 0,
    headTime: 0,
    peers: null,
    peersError: null,
  };

  function summary(block) {
    const header = block.header;
    const certificate = block.certificate || { view: 0, signatures: [] };
    return {
      height: header.height,
      hash: header.hash,
      previous_hash: header.previous_hash,
      timestamp_ms: header.timestamp_ms,
      proposer: header.proposer,
      validator_set_digest: header.validator_set_digest,
      tx_count: header.tx_count,
      view: certificate.view,
      signers: (certificate.signatures || []).map((signature) => signature.validator),
      // Enough of the transactions to list them and to find an account's recent ones.
      txs: (block.transactions || []).slice(0, 64).map((tx) => ({ hash: tx.hash, sender: tx.sender, payload: tx.payload })),
    };
  }

  function remember(block) {
    const item = summary(block);
    state.recent.set(item.height, item);
    if (item.height > state.head) {
      state.head = item.height;
      state.headTime = item.timestamp_ms;
    }
    while (state.recent.size > RECENT_MAX) {
      let lowest = Infinity;
      for (const height of state.recent.keys()) lowest = Math.min(lowest, height);
      state.recent.delete(lowest);
    }
    return item;
  }

  // The newest `count` blocks in memory without a gap, newest first; while the blocks of a new
  // head are on their way, they end at the highest block already here.
  function recentList(count) {
    const list = [];
    let top = state.head;
    while (top >= 1 && !state.recent.has(top) && state.head - top < PAGE_MAX) top--;
    for (let height = top; height >= 1 && list.length < count; height--) {
      const item = state.recent.get(height);
      if (!item) break;
      list.push(item);
    }
    return list; // newest first
  }

  // Makes sure the latest `count` blocks (up to the head) are in memory, in a bounded number of
  // pages; one fill at a time, the later request widening the next one.
  let filling = null;
  let fillWanted = 0;
  async function ensureRecent(count) {
    fillWanted = Math.max(fillWanted, Math.min(count, RECENT_MAX));
    if (filling) return filling;
    // Cleared from a callback, after the assignment: a fill that ends at once (no head yet)
    // would otherwise clear it before it is set and leave it set for good.
    filling = fillRecent().finally(() => {
      filling = null;
    });
    return filling;
  }

  async function fillRecent() {
    for (let round = 0; round < 3; round++) {
      const want = fillWanted;
      const head = state.head;
      if (head < 1) return;
      const low = Math.max(1, head - want + 1);
      let missingFrom = 0;
      let missingTo = 0;
      for (let height = head; height >= low; height--) {
        if (!state.recent.has(height)) {
          if (!missingTo) missingTo = height;
          missingFrom = height;
        }
      }
      if (!missingTo) return;
      const blocks = await getBlocks(missingFrom, missingTo, Math.ceil((missingTo - missingFrom + 1) / PAGE_MAX) + 2);
      blocks.forEach(remember);
      await loadSetsFor(blocks.map((block) => block.header));
      if (blocks.length === 0) return;
    }
  }


  // The validator sets that certify these headers (by digest), each asked for once.
  async function loadSetsFor(headers) {
    const wanted = new Map();
    for (const header of headers) {
      const digest = header.validator_set_digest;
      if (digest && !state.sets.has(digest) && !wanted.has(digest)) wanted.set(digest, header.height);
    }
    // A set change is rare: a few calls at most, even over a long window.
    const calls = [...wanted.entries()].slice(0, 4).map(([digest, height]) => setFor(digest, height));
    await Promise.allSettled(calls);
  }

  function setFor(digest, height) {
    if (state.sets.has(digest)) return Promise.resolve(state.sets.get(digest));
    if (state.setsLoading.has(digest)) return state.setsLoading.get(digest);
    const loading = rpc('chain_getValidators', [height])
      .then((set) => {
        state.sets.set(set.digest, set);
        state.sets.set(digest, set);
        return set;
      })
      .finally(() => state.setsLoading.delete(digest));
    state.setsLoading.set(digest, loading);
    return loading;
  }

  function validatorByKey(publicKey) {
    for (const set of [state.validators, ...state.sets.values()]) {
      if (!set) continue;
      const found = set.validators.find((validator) => validator.public_key === publicKey);
      if (found) return found;
    }
    return null;
  }

  function validatorByPeer(peerId) {
    const set = state.validators;
    return set ? set.validators.find((validator) => validator.peer_id === peerId) || null : null;
  }

  function nameOfKey(publicKey) {
    const validator = validatorByKey(publicKey);
    return validator ? validator.name : null;
  }

  // ---------------------------------------------------------------- DOM helpers

  function h(tag, attributes, ...children) {
    const element = document.createElement(tag);
    applyAttributes(element, attributes);
    append(element, children);
    return element;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function s(tag, attributes, ...children) {
    const element = document.createElementNS(SVG_NS, tag);
    applyAttributes(element, attributes);
    append(element, children);
    return element;
  }

  function applyAttributes(element, attributes) {
    if (!attributes) return;
    for (const [key, value] of Object.entries(attributes)) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith('on') && typeof value === 'function') element.addEventListener(key.slice(2), value);
      else if (key === 'text') element.textContent = value;
      else if (key === 'dataset') Object.assign(element.dataset, value);
      else element.setAttribute(key, value === true ? '' : String(value));
    }
  }

  // Appends a node, a text, or a (nested) list of them; null, undefined and false are skipped.
  function append(element, children) {
    for (const child of [children].flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      element.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  function clear(element) {
    while (element.firstChild) element.firstChild.remove();
  }

  function short(value, head = 8, tail = 6) {
    if (typeof value !== 'string') return String(value);
    return value.length > head + tail + 3 ? `${value.slice(0, head)}…${value.slice(-tail)}` : value;
  }

  // A hash, key or address: monospace, shortened (the whole value in the tooltip), copied on
  // click; a link when it names something the explorer shows.
  function hashView(value, options = {}) {
    if (!value) return h('span', { class: 'muted' }, '—');
    const text = options.full ? value : short(value, options.head || 8, options.tail || 6);
    const copyIt = (event) => {
      event.preventDefault();
      event.stopPropagation();
      copy(value);
    };
    const label = options.href
      ? h('a', { class: 'text', href: options.href, title: value }, text)
      : h('span', { class: 'text', title: `${value}\n(click to copy)`, onclick: copyIt }, text);
    return h(
      'span',
      { class: options.full ? 'hash full' : 'hash' },
      label,
      h('button', { class: 'copy', type: 'button', title: 'Copy', 'aria-label': `Copy ${value}`, onclick: copyIt }, copyIcon()),
    );
  }

  // Two overlapping sheets, drawn rather than a glyph no font may have.
  function copyIcon() {
    return s(
      'svg',
      { viewBox: '0 0 16 16', width: 13, height: 13, 'aria-hidden': 'true', class: 'icon' },
      s('rect', { x: 5.5, y: 5.5, width: 8, height: 8, rx: 1.6 }),
      s('path', { d: 'M10.5 3.5v-.4A1.6 1.6 0 0 0 8.9 1.5H3.1A1.6 1.6 0 0 0 1.5 3.1v5.8a1.6 1.6 0 0 0 1.6 1.6h.4' }),
    );
  }

  async function copy(text) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
      } else {
        const area = h('textarea', { readonly: true, 'aria-hidden': 'true', class: 'offscreen' });
        area.value = text;
        area.style.position = 'fixed';
        area.style.opacity = '0';
        document.body.append(area);
        area.select();
        document.execCommand('copy');
        area.remove();
      }
      toast('Copied to the clipboard');
    } catch (_) {
      toast('Could not copy: select the text instead');
    }
  }

  let toastTimer = 0;
  function toast(message) {
    const element = document.getElementById('toast');
    element.textContent = message;
    element.classList.add('show');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => element.classList.remove('show'), 1600);
  }

  function number(value) {
    return typeof value === 'number' ? value.toLocaleString('en-US') : String(value);
  }

  function ago(ms) {
    const seconds = Math.max(0, (Date.now() - ms) / 1000);
    if (seconds < 1) return 'just now';
    if (seconds < 60) return `${Math.floor(seconds)} s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
    return `${Math.floor(seconds / 86400)} d ago`;
  }

  // An age that stays current (the ticker below updates every element marked with its time).
  function ageView(ms) {
    return h('span', { class: 'age', dataset: { ageMs: String(ms) }, title: new Date(ms).toLocaleString() }, ago(ms));
  }

  function tickAges() {
    for (const element of document.querySelectorAll('[data-age-ms]')) {
      element.textContent = ago(Number(element.dataset.ageMs));
    }
  }

  function seconds(value) {
    if (!Number.isFinite(value)) return '—';
    return value >= 100 ? `${value.toFixed(0)} s` : value >= 10 ? `${value.toFixed(1)} s` : `${value.toFixed(2)} s`;
  }

  function panel(title, sub, ...body) {
    return h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', null, title), sub ? h('span', { class: 'sub' }, sub) : null), body);
  }

  function stat(label, value, note, tone) {
    return h(
      'div',
      { class: `stat${tone ? ` ${tone}` : ''}` },
      h('div', { class: 'label' }, label),
      h('div', { class: 'value' }, value),
      h('div', { class: 'note' }, note || '\u00a0'),
    );
  }

  function kv(rows) {
    return h('dl', { class: 'kv' }, rows.filter(Boolean).map(([key, value]) => [h('dt', null, key), h('dd', null, value)]));
  }

  function notice(kind, title, message, ...extra) {
    return h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, h('strong', null, title), message ? ' ' : null, message, extra);
  }

  function loading(what) {
    return h('div', { class: 'loading' }, `Loading ${what}`);
  }

  function errorText(error) {
    if (error instanceof RpcError && error.code) return `${error.message} (code ${error.code})`;
    return error && error.message ? error.message : String(error);
  }

  function table(columns, rows, options = {}) {
    return h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { id: options.id },
        h('thead', null, h('tr', null, columns.map((column) => h('th', { class: column.num ? 'num' : (column.narrow ? 'hide-narrow' : null) }, column.title)))),
        h('tbody', null, rows),
      ),
    );
  }

  function payloadKind(payload) {
    const type = payload && payload.type ? payload.type : 'unknown';
    const names = {
      transfer: 'Transfer',
      mint: 'Mint',
      put_record: 'Put record',
      delete_record: 'Delete record',
      grant_role: 'Grant role',
      revoke_role: 'Revoke role',
      add_validator: 'Add validator',
      remove_validator: 'Remove validator',
    };
    return names[type] || type;
  }

  function payloadSummary(payload) {
    if (!payload) return '';
    switch (payload.type) {
      case 'transfer':
      case 'mint':
        return [h('b', null, number(payload.amount)), ' → ', hashView(payload.to, { href: `#/account/${payload.to}` })];
      case 'put_record':
      case 'delete_record':
        return ['key ', hashView(payload.key, { href: `#/record/${payload.key}` }), ' ', h('span', { class: 'muted' }, recordText(payload.key))];
      case 'grant_role':
      case 'revoke_role':
        return [h('span', { class: 'badge accent' }, String(payload.role)), ' ', payload.type === 'grant_role' ? 'to ' : 'from ', hashView(payload.account, { href: `#/account/${payload.account}` })];
      case 'add_validator':
        return [h('b', null, payload.validator && payload.validator.name ? payload.validator.name : 'validator'), ' ', hashView(payload.validator && payload.validator.public_key)];
      case 'remove_validator':
        return [nameOfKey(payload.public_key) || '', ' ', hashView(payload.public_key)];
      default:
        return h('span', { class: 'mono' }, JSON.stringify(payload));
    }
  }

  // A record key or value as text when it is printable UTF-8, else empty.
  function recordText(hexValue) {
    const bytes = hexBytes(hexValue);
    if (!bytes) return '';
    try {
      const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      return /^[\P{C}\n\t]*$/u.test(text) ? `“${text.length > 60 ? `${text.slice(0, 60)}…` : text}”` : '';
    } catch (_) {
      return '';
    }
  }

  function hexBytes(hexValue) {
    if (typeof hexValue !== 'string') return null;
    const digits = hexValue.startsWith('0x') ? hexValue.slice(2) : hexValue;
    if (digits.length % 2 || /[^0-9a-fA-F]/.test(digits)) return null;
    const bytes = new Uint8Array(digits.length / 2);
    for (let index = 0; index < bytes.length; index++) bytes[index] = parseInt(digits.slice(2 * index, 2 * index + 2), 16);
    return bytes;
  }

  function textToHex(text) {
    return `0x${[...new TextEncoder().encode(text)].map((byte) => byte.toString(16).padStart(2, '0')).join('')}`;
  }

  // ---------------------------------------------------------------- charts (hand-drawn SVG)

  const tip = () => document.getElementById('tip');
  function showTip(event, text) {
    const element = tip();
    element.textContent = text;
    element.classList.add('show');
    const x = Math.min(event.clientX + 14, window.innerWidth - element.offsetWidth - 8);
    element.style.left = `${x}px`;
    element.style.top = `${event.clientY - 36}px`;
  }
  function hideTip() {
    tip().classList.remove('show');
  }

  // A scale for values up to `value`: a round step (1, 2 or 5 times a power of ten, at least 1
  // for counts) and the top of the axis, a whole number of steps, about four of them.
  function niceScale(value, integer) {
    const rough = Math.max(value, integer ? 1 : 1e-3) / 4;
    const power = 10 ** Math.floor(Math.log10(rough));
    let step = [1, 2, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= rough) || 10 * power;
    if (integer) step = Math.max(1, Math.round(step));
    return { step, top: step * Math.max(1, Math.ceil(value / step)) };
  }

  // points: [{x: height, y: value}] in height order. kind: 'bars' or 'line'.
  function chart(container, points, options) {
    clear(container);
    const width = Math.max(280, Math.floor(container.clientWidth || 600));
    const height = options.height || 200;
    const pad = { left: 44, right: 12, top: 18, bottom: 26 };
    const innerWidth = width - pad.left - pad.right;
    const innerHeight = height - pad.top - pad.bottom;
    const svg = s('svg', { class: 'chart', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': options.label });
    container.append(svg);
    if (points.length === 0) {
      svg.append(s('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'axis-label' }, options.empty || 'No blocks yet'));
      return;
    }
    // A few outliers (the first blocks, a quiet spell closed by an empty block) would flatten
    // everything else: past 4 times the 90th percentile the axis stops at twice it, and the
    // points above are drawn at the top, marked.
    const largest = Math.max(...points.map((point) => point.y));
    const p90 = percentile(points.map((point) => point.y), 0.9);
    const clipped = p90 > 0 && largest > 4 * p90;
    const scale = niceScale(clipped ? 2 * p90 : largest, options.kind === 'bars');
    const maxY = scale.top;
    const yClip = (value) => Math.min(value, maxY);
    const minX = points[0].x;
    const maxX = points[points.length - 1].x;
    const spanX = Math.max(1, maxX - minX);
    const slot = innerWidth / Math.max(1, points.length);
    const xOf = options.kind === 'bars'
      ? (index) => pad.left + slot * index + slot / 2
      : (index) => pad.left + (points.length === 1 ? innerWidth / 2 : ((points[index].x - minX) / spanX) * innerWidth);
    const yOf = (value) => pad.top + innerHeight - (value / maxY) * innerHeight;

    for (let tick = 0; tick * scale.step <= maxY + 1e-9; tick++) {
      const value = tick * scale.step;
      const y = yOf(value);
      svg.append(s('line', { class: 'grid-line', x1: pad.left, x2: width - pad.right, y1: y, y2: y }));
      svg.append(s('text', { class: 'axis-label', x: pad.left - 6, y: y + 4, 'text-anchor': 'end' }, options.format(value, true)));
    }
    const labels = Math.min(6, points.length);
    for (let label = 0; label < labels; label++) {
      const index = labels === 1 ? 0 : Math.round((label / (labels - 1)) * (points.length - 1));
      svg.append(s('text', { class: 'axis-label', x: xOf(index), y: height - 6, 'text-anchor': 'middle' }, `#${points[index].x}`));
    }

    if (options.kind === 'bars') {
      const barWidth = Math.max(1, Math.min(18, slot * 0.72));
      points.forEach((point, index) => {
        const y = point.y > 0 ? yOf(yClip(point.y)) : pad.top + innerHeight - 1.5;
        svg.append(s('rect', {
          class: point.y > maxY ? 'bar over' : point.y > 0 ? 'bar' : 'bar zero',
          x: xOf(index) - barWidth / 2,
          y,
          width: barWidth,
          height: Math.max(1.5, pad.top + innerHeight - y),
          rx: Math.min(3, barWidth / 3),
        }));
      });
    } else {
      const path = points.map((point, index) => `${index ? 'L' : 'M'}${xOf(index).toFixed(1)},${yOf(yClip(point.y)).toFixed(1)}`).join('');
      const base = (pad.top + innerHeight).toFixed(1);
      svg.append(s('path', { class: 'area', d: `${path}L${xOf(points.length - 1).toFixed(1)},${base}L${xOf(0).toFixed(1)},${base}Z` }));
      svg.append(s('path', { class: 'line', d: path }));
      if (points.length <= 60) points.forEach((point, index) => svg.append(s('circle', { class: 'dotted', cx: xOf(index), cy: yOf(yClip(point.y)), r: 2.5 })));
    }
    if (clipped) {
      points.forEach((point, index) => {
        if (point.y > maxY) svg.append(s('path', { class: 'over-mark', d: `M${xOf(index) - 4},${pad.top + 5}l4,-6l4,6z` }));
      });
      svg.append(s('text', { class: 'axis-label', x: width - pad.right, y: pad.top - 2, 'text-anchor': 'end' }, `▲ off the scale (up to ${options.format(largest, false)})`));
    }
    if (options.average !== undefined && Number.isFinite(options.average)) {
      const y = yOf(options.average);
      svg.append(s('line', { class: 'avg', x1: pad.left, x2: width - pad.right, y1: y, y2: y }));
    }

    // Hover and click: the nearest block.
    const cursor = s('line', { class: 'cursor', x1: 0, x2: 0, y1: pad.top, y2: pad.top + innerHeight, visibility: 'hidden' });
    svg.append(cursor);
    const hit = s('rect', { class: 'hit', x: pad.left, y: pad.top, width: innerWidth, height: innerHeight });
    svg.append(hit);
    const nearest = (event) => {
      const box = svg.getBoundingClientRect();
      const x = ((event.clientX - box.left) / box.width) * width;
      let best = 0;
      let bestDistance = Infinity;
      points.forEach((_, index) => {
        const distance = Math.abs(xOf(index) - x);
        if (distance < bestDistance) {
          bestDistance = distance;
          best = index;
        }
      });
      return best;
    };
    hit.addEventListener('mousemove', (event) => {
      const index = nearest(event);
      const x = xOf(index);
      cursor.setAttribute('x1', x);
      cursor.setAttribute('x2', x);
      cursor.setAttribute('visibility', 'visible');
      showTip(event, `#${points[index].x} · ${options.format(points[index].y, false)}`);
    });
    hit.addEventListener('mouseleave', () => {
      cursor.setAttribute('visibility', 'hidden');
      hideTip();
    });
    hit.addEventListener('click', (event) => {
      hideTip();
      location.hash = `#/block/${points[nearest(event)].x}`;
    });
  }

  // Redraws the charts when the page's width changes (not its height, which the redraw changes).
  function redrawOnResize(element, draw) {
    let width = element.clientWidth;
    const observer = new ResizeObserver(() => {
      if (element.clientWidth !== width) {
        width = element.clientWidth;
        draw();
      }
    });
    observer.observe(element);
    return observer;
  }

  // Intervals between consecutive known blocks, and transactions per block, oldest first.
  function series(count) {
    const blocks = recentList(count).reverse();
    const intervals = [];
    const txs = blocks.map((block) => ({ x: block.height, y: block.tx_count }));
    for (let index = 1; index < blocks.length; index++) {
      intervals.push({ x: blocks[index].height, y: Math.max(0, (blocks[index].timestamp_ms - blocks[index - 1].timestamp_ms) / 1000) });
    }
    return { blocks, intervals, txs };
  }

  // The value below which a `fraction` of `values` lie (nearest rank).
  function percentile(values, fraction) {
    if (!values.length) return NaN;
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))];
  }

  function median(values) {
    if (!values.length) return NaN;
    const sorted = [...values].sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  }

  function chartPanels(count, height) {
    const intervalBox = h('div', { class: 'chart-box', id: 'chart-interval' });
    const txBox = h('div', { class: 'chart-box', id: 'chart-txs' });
    const intervalFacts = h('div', { class: 'chart-facts' });
    const txFacts = h('div', { class: 'chart-facts' });
    const element = h(
      'div',
      { class: 'grid two' },
      panel('Block interval', `last ${count} blocks`, intervalBox, intervalFacts),
      panel('Transactions per block', `last ${count} blocks`, txBox, txFacts),
    );
    const draw = () => {
      const { blocks, intervals, txs } = series(count);
      const values = intervals.map((point) => point.y);
      const average = values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
      chart(intervalBox, intervals, { kind: 'line', height, label: 'Seconds between blocks', average, format: (value, axis) => (axis ? `${+value.toFixed(1)} s` : seconds(value)), empty: 'Needs two blocks' });
      chart(txBox, txs, { kind: 'bars', height, label: 'Transactions per block', format: (value, axis) => (axis ? number(+value.toFixed(1)) : `${number(value)} tx`) });
      clear(intervalFacts);
      append(intervalFacts, [
        h('span', null, 'average ', h('b', null, seconds(average))),
        h('span', null, 'median ', h('b', null, seconds(median(values)))),
        h('span', null, 'longest ', h('b', null, seconds(values.length ? Math.max(...values) : NaN))),
      ]);
      const total = txs.reduce((sum, point) => sum + point.y, 0);
      const span = blocks.length > 1 ? (blocks[blocks.length - 1].timestamp_ms - blocks[0].timestamp_ms) / 1000 : 0;
      clear(txFacts);
      append(txFacts, [
        h('span', null, 'total ', h('b', null, `${number(total)} tx`)),
        h('span', null, 'busiest ', h('b', null, `${number(txs.length ? Math.max(...txs.map((point) => point.y)) : 0)} tx`)),
        h('span', null, 'throughput ', h('b', null, span > 0 ? `${(total / span).toFixed(2)} tx/s` : '—')),
      ]);
    };
    return { element, draw };
  }

  // ---------------------------------------------------------------- live updates

  const live = { socket: null, mode: 'connecting', retryMs: 1000, pollTimer: 0, pollMs: 3000, statusTimer: 0 };

  function setMode(mode) {
    live.mode = mode;
    const element = document.getElementById('live');
    element.className = `live ${mode}`;
    element.querySelector('.live-text').textContent = { connecting: 'connecting', on: 'live', polling: 'polling', off: 'offline' }[mode] || mode;
    element.title = {
      on: 'Live: new blocks arrive over the WebSocket subscription',
      polling: 'The WebSocket is down: polling chain_status with back-off',
      off: 'The node does not answer; retrying with back-off',
      connecting: 'Connecting to the node',
    }[mode] || '';
  }

  function connect() {
    let socket;
    try {
      socket = new WebSocket(WS_URL);
    } catch (_) {
      startPolling();
      return;
    }
    live.socket = socket;
    socket.addEventListener('open', () => {
      socket.send(JSON.stringify({ jsonrpc: '2.0', id: 'subscribe', method: 'chain_subscribeBlocks', params: [] }));
    });
    socket.addEventListener('message', (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      if (message.id === 'subscribe') {
        if (message.error) {
          socket.close();
          return;
        }
        live.retryMs = 1000;
        stopPolling();
        setMode('on');
        // Blocks committed while the socket was down are fetched from the next header on.
        refreshStatus();
      } else if (message.method === 'chain_block' && message.params && message.params.result) {
        onHeader(message.params.result);
      }
    });
    socket.addEventListener('close', () => {
      if (live.socket === socket) live.socket = null;
      startPolling();
      // Reconnect with back-off: 1 s doubling to 60 s while it keeps failing.
      setTimeout(connect, live.retryMs);
      live.retryMs = Math.min(live.retryMs * 2, 60000);
    });
  }

  function startPolling() {
    if (live.pollTimer) return;
    setMode(state.statusError ? 'off' : 'polling');
    const poll = async () => {
      const ok = await refreshStatus();
      // Back off while the node does not answer: 3 s doubling to 30 s.
      live.pollMs = ok ? 3000 : Math.min(live.pollMs * 2, 30000);
      if (live.pollTimer) live.pollTimer = setTimeout(poll, live.pollMs);
      if (live.mode !== 'on') setMode(ok ? 'polling' : 'off');
    };
    live.pollTimer = setTimeout(poll, 0);
  }

  function stopPolling() {
    clearTimeout(live.pollTimer);
    live.pollTimer = 0;
  }

  let statusInFlight = null;
  async function refreshStatus() {
    if (statusInFlight) return statusInFlight;
    statusInFlight = readStatus().finally(() => {
      statusInFlight = null;
    });
    return statusInFlight;
  }

  async function readStatus() {
    try {
      const status = await rpc('chain_status');
      state.status = status;
      state.statusError = null;
      if (status.height > state.head) {
        state.head = status.height;
        state.headTime = status.timestamp_ms;
        ensureRecent(currentWant()).then(changed, changed);
      }
      changed();
      return true;
    } catch (error) {
      state.statusError = error;
      changed();
      return false;
    }
  }


  // Status (mempool, peers, view) every 10 s while the subscription is up; the poll covers it
  // otherwise.
  function statusTicker() {
    clearTimeout(live.statusTimer);
    live.statusTimer = setTimeout(async () => {
      if (live.mode === 'on') await refreshStatus();
      statusTicker();
    }, 10000);
  }

  let headerStatusAt = 0;
  function onHeader(header) {
    if (header.height > state.head) {
      state.head = header.height;
      state.headTime = header.timestamp_ms;
    }
    if (state.validators && header.validator_set_digest !== state.validators.digest) {
      // The set changed: ask for the next height's set again.
      rpc('chain_getValidators').then((set) => {
        state.validators = set;
        state.sets.set(set.digest, set);
        changed();
      }, () => {});
    }
    ensureRecent(currentWant()).then(changed, changed);
    // chain_status at most once every 2 s however fast blocks come.
    if (Date.now() - headerStatusAt > 2000) {
      headerStatusAt = Date.now();
      refreshStatus();
    }
  }

  // ---------------------------------------------------------------- pages

  const main = () => document.getElementById('main');
  let page = null; // { want, update, leave }
  let renderScheduled = false;

  function currentWant() {
    return page && page.want ? page.want : OVERVIEW_BLOCKS;
  }

  // New data: let the page redraw, at most once per animation frame.
  function changed() {
    if (renderScheduled) return;
    renderScheduled = true;
    requestAnimationFrame(() => {
      renderScheduled = false;
      updateFooter();
      if (page && page.update) {
        try {
          page.update();
        } catch (error) {
          console.error(error);
        }
      }
    });
  }

  function updateFooter() {
    const element = document.getElementById('foot-chain');
    const status = state.status;
    element.textContent = status ? `chain ${status.chain_id} · genesis ${short(status.genesis_hash)} · ${RPC_URL.replace(/\/$/, '')}` : '';
  }

  function statusProblem() {
    if (!state.statusError) return null;
    return notice('error', 'The node does not answer.', `${errorText(state.statusError)}. Retrying with back-off.`);
  }

  // Overview: the chain at a glance.
  function overviewPage(root) {
    const head = h('div', { class: 'page-head' }, h('h1', null, 'Overview'), h('span', { class: 'sub', id: 'overview-sub' }));
    const problem = h('div');
    const stats = h('div', { class: 'stats', id: 'stats' });
    const validatorsBox = h('div', { id: 'validators' }, loading('validators'));
    const peersBox = h('div', { id: 'peers' }, loading('peers'));
    const validatorsSub = h('span');
    const charts = chartPanels(OVERVIEW_BLOCKS, 170);
    const blocksBody = h('tbody');
    const latest = panel(
      'Latest blocks',
      h('a', { href: '#/blocks' }, 'All blocks →'),
      h('div', { class: 'table-wrap' }, h('table', { id: 'latest-blocks' }, blockHead(), blocksBody)),
    );
    append(root, [
      head,
      problem,
      stats,
      h('div', { class: 'grid two' }, panel('Validators and their signatures', validatorsSub, validatorsBox), panel('Peers', 'net_peers', peersBox)),
      charts.element,
      latest,
    ]);
    let peersTimer = 0;
    let peersMs = 15000;
    let left = false;
    const loadPeers = async () => {
      try {
        state.peers = await rpc('net_peers');
        state.peersError = null;
        peersMs = 15000;
      } catch (error) {
        state.peersError = error;
        peersMs = Math.min(peersMs * 2, 120000);
      }
      changed();
      if (!left) peersTimer = setTimeout(loadPeers, peersMs);
    };
    loadPeers();
    let shownTop = 0;
    const update = () => {
      const status = state.status;
      clear(problem);
      append(problem, statusProblem());
      const sub = document.getElementById('overview-sub');
      if (status) sub.textContent = `${status.chain_id} · ${status.role} node`;
      clear(stats);
      const set = state.validators;
      const headTime = state.headTime || (status && status.timestamp_ms);
      append(stats, [
        stat('Chain', status ? status.chain_id : '—', status ? ['genesis ', hashView(status.genesis_hash, { head: 6, tail: 4 })] : null),
        stat('Height', h('span', { id: 'stat-height' }, state.head ? number(state.head) : status ? '0' : '—'), status ? ['head ', hashView(status.head_hash, { head: 6, tail: 4, href: state.head ? `#/block/${state.head}` : null })] : null, 'teal'),
        stat('Last block', headTime ? ageView(headTime) : '—', headTime ? new Date(headTime).toLocaleTimeString() : null, 'good'),
        stat('Validators', set ? number(set.validators.length) : '—', set ? `quorum ${set.quorum} · f = ${set.max_faulty}` : null),
        stat('Peers', status ? number(status.peers) : '—', status ? (status.syncing ? 'syncing from a peer' : 'in sync') : null, 'teal'),
        stat('Mempool', status ? number(status.mempool_txs) : '—', status ? `pending tx · view ${status.view}` : null, status && status.mempool_txs > 0 ? 'warn' : 'good'),
      ]);
      clear(validatorsBox);
      append(validatorsBox, signatureGrid());
      validatorsSub.textContent = set ? `${set.validators.length} validators · quorum ${set.quorum}` : '';
      clear(peersBox);
      append(peersBox, peersTable());
      charts.draw();
      const list = recentList(10);
      const top = list.length ? list[0].height : 0;
      clear(blocksBody);
      append(blocksBody, list.length ? list.map((block) => blockRow(block, shownTop && block.height > shownTop)) : emptyRow(6, state.head ? 'Loading blocks' : 'No blocks yet'));
      shownTop = top;
    };
    const resize = redrawOnResize(root, charts.draw);
    update();
    return {
      want: OVERVIEW_BLOCKS,
      update,
      leave() {
        left = true;
        clearTimeout(peersTimer);
        resize.disconnect();
      },
    };
  }

  function emptyRow(columns, text) {
    return h('tr', null, h('td', { colspan: columns, class: 'empty' }, text));
  }

  // The recent certificates: which validator signed which block (columns: blocks, oldest left).
  function signatureGrid() {
    const set = state.validators;
    if (!set) return loading('validators');
    const blocks = recentList(GRID_BLOCKS).reverse();
    const grid = h('div', { class: 'sig-grid', id: 'signature-grid', role: 'table', 'aria-label': 'Signatures of the recent certificates' });
    grid.style.gridTemplateColumns = `minmax(90px, max-content) repeat(${Math.max(1, blocks.length)}, minmax(8px, 28px)) max-content`;
    for (const validator of set.validators) {
      let signed = 0;
      const cells = blocks.map((block) => {
        const blockSet = state.sets.get(block.validator_set_digest) || (block.validator_set_digest === set.digest ? set : null);
        const index = blockSet ? blockSet.validators.findIndex((member) => member.public_key === validator.public_key) : -1;
        const didSign = index >= 0 && block.signers.includes(index);
        const proposed = block.proposer === validator.public_key;
        if (didSign) signed++;
        const what = didSign ? (proposed ? 'signed (proposer)' : 'signed') : index < 0 ? 'not in the set' : 'did not sign';
        return h('a', {
          class: `sig-cell${didSign ? (proposed ? ' proposer' : ' on') : ''}`,
          href: `#/block/${block.height}`,
          title: `${validator.name} · block #${block.height}: ${what}`,
          'aria-label': `${validator.name}, block ${block.height}: ${what}`,
          dataset: { height: String(block.height), signed: didSign ? '1' : '0' },
        });
      });
      append(grid, [
        h('div', { class: 'sig-name', title: `${validator.name}\n${validator.public_key}\npeer ${validator.peer_id}` }, validator.name),
        cells,
        h('div', { class: 'sig-rate' }, blocks.length ? `${signed}/${blocks.length}` : ''),
      ]);
    }
    if (blocks.length) {
      grid.append(h('div'), h('div', { class: 'sig-axis' }, `#${blocks[0].height}`));
      for (let index = 1; index < blocks.length - 1; index++) grid.append(h('div'));
      if (blocks.length > 1) grid.append(h('div', { class: 'sig-axis' }, `#${blocks[blocks.length - 1].height}`));
      grid.append(h('div'));
    }
    const legend = h('div', { class: 'legend' }, h('span', null, h('i', { class: 'on' }), 'signed the certificate'), h('span', null, h('i', { class: 'proposer' }), 'proposed and signed'), h('span', null, h('i'), 'no signature'));
    return [blocks.length ? grid : h('div', { class: 'empty' }, 'No certificates yet: the first block is being committed.'), legend];
  }

  function peersTable() {
    if (state.peersError && !state.peers) return notice('error', 'Peers unavailable.', errorText(state.peersError));
    if (!state.peers) return loading('peers');
    if (state.peers.length === 0) return h('div', { class: 'empty' }, 'No peers connected.');
    const rows = state.peers.map((peer) => {
      const validator = validatorByPeer(peer.peer_id);
      return h(
        'tr',
        null,
        h('td', null, validator ? h('span', { class: 'badge accent' }, validator.name) : h('span', { class: 'badge' }, 'observer')),
        h('td', null, hashView(peer.peer_id, { head: 10, tail: 6 })),
        // The address without the /p2p/<peer id> that repeats the previous column.
        h('td', { class: 'mono hide-narrow', title: peer.address }, peer.address.replace(/\/p2p\/[^/]+$/, '')),
        h('td', { class: 'num' }, peer.score === null || peer.score === undefined ? '—' : h('span', { class: peer.score < 0 ? 'badge bad' : 'badge good' }, peer.score.toFixed(2))),
      );
    });
    return table([{ title: 'Who' }, { title: 'Peer id' }, { title: 'Address', narrow: true }, { title: 'Score', num: true }], rows, { id: 'peers-table' });
  }

  function blockHead() {
    return h('thead', null, h('tr', null, ['Height', 'Hash', 'Age', 'Txs', 'Proposer', 'Signatures'].map((title, index) => h('th', { class: index === 3 ? 'num' : index === 1 || index === 4 ? 'hide-narrow' : null }, title))));
  }

  function blockRow(block, fresh) {
    const set = state.sets.get(block.validator_set_digest);
    const size = set ? set.validators.length : null;
    return h(
      'tr',
      { class: fresh ? 'block-row fresh' : 'block-row', dataset: { height: String(block.height) } },
      h('td', null, h('a', { href: `#/block/${block.height}` }, h('b', null, `#${number(block.height)}`))),
      h('td', { class: 'hide-narrow' }, hashView(block.hash, { href: `#/block/${block.hash}` })),
      h('td', null, ageView(block.timestamp_ms)),
      h('td', { class: 'num' }, block.tx_count ? h('b', null, number(block.tx_count)) : h('span', { class: 'muted' }, '0')),
      h('td', { class: 'hide-narrow' }, nameOfKey(block.proposer) || hashView(block.proposer)),
      h('td', null, h('span', { class: 'badge good' }, size ? `${block.signers.length} of ${size}` : `${block.signers.length}`), block.view ? h('span', { class: 'badge', title: 'committed after a view change' }, ` view ${block.view}`) : null),
    );
  }

  // Blocks: the latest, live, or an older page (#/blocks/<top height>).
  function blocksPage(root, args) {
    const fixedTop = args[0] ? Number(args[0]) : 0;
    const title = h('div', { class: 'page-head' }, h('h1', null, 'Blocks'), h('span', { class: 'sub' }, fixedTop ? `up to #${number(fixedTop)}` : 'latest, live'));
    const problem = h('div');
    const body = h('tbody', null, emptyRow(6, 'Loading blocks'));
    const pager = h('div', { class: 'pager' });
    append(root, [title, problem, h('section', { class: 'panel' }, h('div', { class: 'table-wrap' }, h('table', { id: 'blocks-table' }, blockHead(), body)), pager)]);
    let shownTop = 0;
    const drawPager = (top, bottom) => {
      clear(pager);
      const newer = fixedTop ? (top + LIST_BLOCKS >= state.head ? '#/blocks' : `#/blocks/${top + LIST_BLOCKS}`) : null;
      append(pager, [
        h('div', { class: 'chain-links' }, newer ? h('a', { href: newer }, '← Newer') : h('span', null, '← Newer'), bottom > 1 ? h('a', { href: `#/blocks/${bottom - 1}` }, 'Older →') : h('span', null, 'Older →')),
        h('span', { class: 'muted' }, top ? `#${number(bottom)} – #${number(top)} of ${number(state.head)}` : ''),
      ]);
    };
    if (fixedTop) {
      const low = Math.max(1, fixedTop - LIST_BLOCKS + 1);
      getBlocks(low, fixedTop, 2).then((blocks) => {
        loadSetsFor(blocks.map((block) => block.header)).then(changed);
        const list = blocks.map(summary).reverse();
        clear(body);
        append(body, list.length ? list.map((block) => blockRow(block, false)) : emptyRow(6, 'No blocks in this range.'));
        drawPager(fixedTop, low);
      }, (error) => {
        clear(problem);
        append(problem, notice('error', 'Could not load the blocks.', errorText(error)));
      });
      return { want: OVERVIEW_BLOCKS };
    }
    const update = () => {
      clear(problem);
      append(problem, statusProblem());
      const list = recentList(LIST_BLOCKS);
      if (!list.length && state.head) return;
      clear(body);
      append(body, list.length ? list.map((block) => blockRow(block, shownTop && block.height > shownTop)) : emptyRow(6, 'No blocks yet.'));
      shownTop = list.length ? list[0].height : 0;
      drawPager(shownTop, list.length ? list[list.length - 1].height : 0);
    };
    ensureRecent(LIST_BLOCKS).then(changed, (error) => {
      clear(problem);
      append(problem, notice('error', 'Could not load the blocks.', errorText(error)));
    });
    update();
    return { want: OVERVIEW_BLOCKS, update };
  }

  // One block: header, certificate, transactions with their receipts.
  function blockPage(root, args) {
    const id = args[0] || '';
    const isHash = /^0x[0-9a-f]{64}$/i.test(id);
    if (!isHash && !/^\d+$/.test(id)) {
      append(root, notice('error', 'Not a block.', `“${id}” is neither a height nor a block hash (0x and 64 hex digits).`));
      return {};
    }
    const param = isHash ? id.toLowerCase() : Number(id);
    append(root, loading('the block'));
    let nextLink = null;
    let height = 0;
    rpc('chain_getBlock', [param]).then(async (block) => {
      const header = block.header;
      height = header.height;
      remember(block);
      let set = null;
      try {
        set = await setFor(header.validator_set_digest, header.height);
      } catch (_) {
        // Names are a nicety: the indexes still show.
      }
      clear(root);
      const links = h('div', { class: 'chain-links' });
      nextLink = h('span', null, 'Next →');
      append(links, [header.height > 1 ? h('a', { href: `#/block/${header.height - 1}`, id: 'prev-block' }, '← Previous') : h('span', { title: 'The previous header is the genesis' }, '← Genesis'), nextLink]);
      append(root, [
        h('div', { class: 'page-head' }, h('h1', null, `Block #${number(header.height)}`), links),
        panel('Header', h('span', null, ageView(header.timestamp_ms)), kv([
          ['Height', h('b', null, number(header.height))],
          ['Hash', hashView(header.hash, { full: true })],
          ['Time', `${new Date(header.timestamp_ms).toLocaleString()} (${header.timestamp_ms} ms)`],
          ['Proposer', [nameOfKey(header.proposer) ? h('b', null, nameOfKey(header.proposer), ' ') : null, hashView(header.proposer)]],
          ['Previous', header.height > 1 ? hashView(header.previous_hash, { href: `#/block/${header.height - 1}` }) : [hashView(header.previous_hash), h('span', { class: 'muted' }, ' (the genesis)')]],
          ['Transactions', number(header.tx_count)],
          ['Transactions root', hashView(header.tx_root)],
          ['Receipts root', hashView(header.receipts_root)],
          ['State root', hashView(header.state_root)],
          ['Validator set', hashView(header.validator_set_digest)],
        ])),
        certificateView(block.certificate, set, header),
        transactionsView(block, header),
      ]);
      updateNext();
    }, (error) => {
      clear(root);
      if (error.code === NOT_FOUND) {
        append(root, notice('error', 'No such block.', `This node has no block ${isHash ? `with hash ${id}` : `at height ${id}`}${state.head ? `; the head is #${number(state.head)}` : ''}.`));
      } else {
        append(root, notice('error', 'Could not load the block.', errorText(error)));
      }
    });
    const updateNext = () => {
      if (!nextLink || !height) return;
      const next = height < state.head ? h('a', { href: `#/block/${height + 1}`, id: 'next-block' }, 'Next →') : h('span', { title: 'The newest block' }, 'Next →');
      nextLink.replaceWith(next);
      nextLink = next;
    };
    return { update: updateNext };
  }

  function certificateView(certificate, set, header) {
    const signatures = certificate ? certificate.signatures || [] : [];
    const signed = new Set(signatures.map((signature) => signature.validator));
    const members = set ? set.validators : [];
    const badges = members.length
      ? members.map((validator, index) => h('span', {
        class: signed.has(index) ? 'badge good signer' : 'badge signer missing',
        title: `${validator.name}: ${signed.has(index) ? 'signed' : 'no signature in this certificate'}\n${validator.public_key}`,
        dataset: { name: validator.name, signed: signed.has(index) ? '1' : '0' },
      }, ` ${validator.name}`))
      : signatures.map((signature) => h('span', { class: 'badge good signer', dataset: { name: `#${signature.validator}`, signed: '1' } }, ` validator #${signature.validator}`));
    const quorum = set ? set.quorum : null;
    const rows = signatures.map((signature) => {
      const validator = members[signature.validator];
      return h('tr', null, h('td', null, validator ? h('b', null, validator.name) : `#${signature.validator}`), h('td', null, validator ? hashView(validator.public_key) : '—'), h('td', null, hashView(signature.signature, { head: 12, tail: 8 })));
    });
    return h(
      'section',
      { class: 'panel', id: 'certificate' },
      h('div', { class: 'panel-head' }, h('h2', null, 'Commit certificate'), h('span', { class: 'sub' }, `${signatures.length}${members.length ? ` of ${members.length}` : ''} signatures${quorum ? ` · quorum ${quorum}` : ''}`)),
      kv([
        ['View', h('span', { id: 'certificate-view' }, String(certificate ? certificate.view : '—'), certificate && certificate.view ? h('span', { class: 'muted' }, ' (committed after a view change)') : null)],
        ['Signs', certificate ? [hashView(certificate.digest), certificate.digest === header.hash ? h('span', { class: 'badge good' }, 'the header hash') : h('span', { class: 'badge bad' }, 'not the header hash')] : '—'],
        ['Signed by', h('div', { class: 'badges', id: 'signers' }, badges)],
      ]),
      rows.length ? table([{ title: 'Validator' }, { title: 'Key' }, { title: 'Signature' }], rows) : null,
    );
  }

  function transactionsView(block, header) {
    const transactions = block.transactions || [];
    const body = h('tbody');
    const pager = h('div', { class: 'pager' });
    const sub = h('span', { class: 'sub' }, `${number(transactions.length)} transaction${transactions.length === 1 ? '' : 's'}`);
    const section = h(
      'section',
      { class: 'panel', id: 'transactions' },
      h('div', { class: 'panel-head' }, h('h2', null, 'Transactions'), sub),
      transactions.length
        ? [h('div', { class: 'table-wrap' }, h('table', null, h('thead', null, h('tr', null, h('th', { class: 'num' }, '#'), h('th', null, 'Hash'), h('th', null, 'Kind'), h('th', { class: 'hide-narrow' }, 'From'), h('th', null, 'Details'), h('th', null, 'Receipt'))), body)), pager]
        : h('div', { class: 'empty' }, header.height ? 'No transactions: an empty block (the network commits one when idle, so time keeps moving).' : ''),
    );
    const receipts = new Map();
    let failures = 0;
    const show = async (pageIndex) => {
      const start = pageIndex * TX_PAGE;
      const slice = transactions.slice(start, start + TX_PAGE);
      clear(body);
      const cells = new Map();
      for (const [offset, tx] of slice.entries()) {
        const receiptCell = h('td', null, h('span', { class: 'muted' }, '…'));
        cells.set(tx.hash, receiptCell);
        body.append(h(
          'tr',
          { class: 'tx-row', dataset: { hash: tx.hash } },
          h('td', { class: 'num muted' }, String(start + offset)),
          h('td', null, hashView(tx.hash, { href: `#/tx/${tx.hash}` })),
          h('td', null, h('span', { class: 'badge teal' }, payloadKind(tx.payload))),
          h('td', { class: 'hide-narrow' }, hashView(tx.sender, { href: `#/account/${tx.sender}` })),
          h('td', null, payloadSummary(tx.payload)),
          receiptCell,
        ));
      }
      clear(pager);
      const pages = Math.ceil(transactions.length / TX_PAGE);
      if (pages > 1) {
        append(pager, [
          h('div', { class: 'chain-links' }, pageIndex > 0 ? h('a', { href: '#', onclick: (event) => { event.preventDefault(); show(pageIndex - 1); } }, '← Previous') : h('span', null, '← Previous'), pageIndex + 1 < pages ? h('a', { href: '#', onclick: (event) => { event.preventDefault(); show(pageIndex + 1); } }, 'Next →') : h('span', null, 'Next →')),
          h('span', { class: 'muted' }, `${start + 1}–${start + slice.length} of ${number(transactions.length)}`),
        ]);
      }
      // The receipts of the shown transactions only, four calls at a time.
      await eachLimited(slice, 4, async (tx) => {
        if (!receipts.has(tx.hash)) {
          try {
            receipts.set(tx.hash, await rpc('tx_get', [tx.hash]));
          } catch (error) {
            receipts.set(tx.hash, { error });
          }
        }
        const cell = cells.get(tx.hash);
        if (cell) {
          clear(cell);
          append(cell, receiptView(receipts.get(tx.hash)));
        }
      });
      failures = [...receipts.values()].filter((status) => status.receipt && !status.receipt.success).length;
      sub.textContent = `${number(transactions.length)} transaction${transactions.length === 1 ? '' : 's'}${failures ? ` · ${failures} failed` : ''}`;
    };
    if (transactions.length) show(0);
    return section;
  }

  function receiptView(status) {
    if (!status) return h('span', { class: 'muted' }, '…');
    if (status.error) return h('span', { class: 'badge', title: errorText(status.error) }, 'unavailable');
    if (!status.receipt) return h('span', { class: 'badge' }, status.status);
    if (status.receipt.success) return h('span', { class: 'badge good receipt' }, '✓ success');
    return [h('span', { class: 'badge bad receipt' }, '✕ failed'), ' ', h('span', { class: 'failure' }, status.receipt.failure || 'no reason given')];
  }

  // One transaction: status, receipt, the transaction itself, and its proof bundle.
  function txPage(root, args) {
    const hash = (args[0] || '').toLowerCase();
    if (!/^0x[0-9a-f]{64}$/.test(hash)) {
      append(root, notice('error', 'Not a transaction hash.', `“${args[0] || ''}” is not 0x followed by 64 hex digits.`));
      return {};
    }
    append(root, loading('the transaction'));
    let left = false;
    let tries = 0;
    const load = async () => {
      let status;
      try {
        status = await rpc('tx_get', [hash]);
      } catch (error) {
        clear(root);
        append(root, notice('error', 'Could not load the transaction.', errorText(error)));
        return;
      }
      if (left) return;
      if (status.status === 'pending' && tries < 30) {
        // Pending in the mempool: look again, backing off (2 s, growing), for a few minutes at most.
        tries++;
        clear(root);
        append(root, [h('div', { class: 'page-head' }, h('h1', null, 'Transaction'), h('span', { class: 'badge accent' }, 'pending')), panel('Status', null, kv([['Hash', hashView(hash, { full: true })], ['Status', 'pending in this node\'s mempool; this page updates when it commits']]))]);
        setTimeout(() => left || load(), Math.min(2000 * tries, 15000));
        return;
      }
      if (status.status !== 'committed') {
        clear(root);
        append(root, notice('error', 'Transaction not found.', `This node knows no transaction ${hash}: it is neither committed nor in its mempool.`));
        return;
      }
      let tx = null;
      let blockError = null;
      try {
        const block = await rpc('chain_getBlock', [status.height]);
        tx = (block.transactions || [])[status.index] || (block.transactions || []).find((item) => item.hash === hash) || null;
      } catch (error) {
        blockError = error;
      }
      if (left) return;
      clear(root);
      const receipt = status.receipt || {};
      append(root, [
        h('div', { class: 'page-head' }, h('h1', null, 'Transaction'), receipt.success ? h('span', { class: 'badge good' }, '✓ committed, success') : h('span', { class: 'badge bad' }, '✕ committed, failed')),
        h('div', { class: 'grid two' },
          panel('Status and receipt', null, kv([
            ['Hash', hashView(hash, { full: true })],
            ['Status', h('span', { id: 'tx-status' }, status.status)],
            ['Block', h('a', { href: `#/block/${status.height}` }, `#${number(status.height)}`)],
            ['Index', `${status.index} in the block`],
            ['Receipt', receiptView(status)],
            !receipt.success ? ['Why it failed', h('span', { class: 'failure' }, receipt.failure || 'no reason given')] : null,
          ])),
          panel('Transaction', tx ? payloadKind(tx.payload) : null, tx ? kv([
            ['Kind', h('span', { class: 'badge teal' }, payloadKind(tx.payload))],
            ['From', hashView(tx.sender, { href: `#/account/${tx.sender}`, full: true })],
            ['Details', payloadSummary(tx.payload)],
            ['Signer key', hashView(tx.signer)],
            ['Nonce', number(tx.nonce)],
            ['Size', `${number((tx.raw.length - 2) / 2)} bytes`],
            ['Payload', h('pre', { class: 'value' }, JSON.stringify(tx.payload, null, 2))],
          ]) : notice('error', 'The block is unavailable.', blockError ? errorText(blockError) : 'the transaction is not at its index'))),
        proofView(hash),
      ]);
    };
    load();
    return { leave() { left = true; } };
  }

  function commandBox(text, id) {
    return h('div', { class: 'cmd', id }, text, h('button', { class: 'copy-cmd', type: 'button', onclick: () => copy(text) }, 'Copy'));
  }

  function proofView(hash) {
    const rpcUrl = RPC_URL.replace(/\/$/, '');
    const genesis = state.status ? state.status.genesis_hash : null;
    const result = h('div', { id: 'proof-result' });
    const button = h('button', { type: 'button', id: 'proof-fetch' }, 'Fetch the proof bundle');
    button.addEventListener('click', async () => {
      button.disabled = true;
      clear(result);
      append(result, loading('the proof bundle'));
      try {
        const bundle = await rpc('tx_getProof', [hash], 30000);
        const json = JSON.stringify(bundle);
        const link = h('a', { class: 'button', download: 'proof.json', href: URL.createObjectURL(new Blob([`${json}\n`], { type: 'application/json' })) }, 'Download proof.json');
        clear(result);
        append(result, [
          kv([
            ['Chain', bundle.chain_id],
            ['Block', [h('a', { href: `#/block/${bundle.height}` }, `#${number(bundle.height)}`), ` · index ${bundle.index}`]],
            ['Validator-set changes proven', number(bundle.validator_changes)],
            ['Proof', `${number((bundle.proof.length - 2) / 2)} bytes (borsh TxProof)`],
          ]),
          h('div', { class: 'actions' }, link, h('span', { class: 'muted' }, 'the same file the first command writes')),
        ]);
      } catch (error) {
        clear(result);
        append(result, notice('error', 'No proof bundle.', errorText(error)));
      } finally {
        button.disabled = false;
      }
    });
    return h(
      'section',
      { class: 'panel', id: 'proof' },
      h('div', { class: 'panel-head' }, h('h2', null, 'Check it offline'), h('span', { class: 'sub' }, 'tx_getProof')),
      h('p', { class: 'muted' }, 'The proof bundle holds the transaction and its receipt with their Merkle paths, the certified header and every validator-set change since the genesis. It verifies from the genesis file alone, without trusting this node:'),
      commandBox(`stele query tx-proof ${hash} --json --rpc ${rpcUrl} > proof.json\nstele verify-proof proof.json --genesis genesis.json`, 'proof-command'),
      h('p', { class: 'muted' }, 'genesis.json is this chain\'s genesis file (for the local testnet, ~/.stele/testnet/genesis.json)', genesis ? ['; its hash is ', hashView(genesis)] : null, '. verify-proof exits 0 only if the bundle is valid.'),
      h('div', { class: 'actions' }, button),
      result,
    );
  }

  // One account: balance, nonce, roles, and its transactions among the recent blocks loaded.
  function accountPage(root, args) {
    const address = (args[0] || '').toLowerCase();
    if (!/^0x[0-9a-f]{40}$/.test(address)) {
      append(root, notice('error', 'Not an address.', `“${args[0] || ''}” is not 0x followed by 40 hex digits.`));
      return {};
    }
    append(root, loading('the account'));
    const activity = h('div');
    const drawActivity = () => {
      const rows = [];
      const blocks = recentList(RECENT_MAX);
      for (const block of blocks) {
        for (const tx of block.txs) {
          const payload = tx.payload || {};
          if (tx.sender === address || payload.to === address || payload.account === address) {
            rows.push(h('tr', null, h('td', null, h('a', { href: `#/block/${block.height}` }, `#${number(block.height)}`)), h('td', null, hashView(tx.hash, { href: `#/tx/${tx.hash}` })), h('td', null, h('span', { class: 'badge teal' }, payloadKind(payload))), h('td', null, tx.sender === address ? h('span', { class: 'badge accent' }, 'sent') : h('span', { class: 'badge good' }, 'received')), h('td', null, payloadSummary(payload))));
          }
          if (rows.length >= 20) break;
        }
        if (rows.length >= 20) break;
      }
      clear(activity);
      append(activity, rows.length ? table([{ title: 'Block' }, { title: 'Transaction' }, { title: 'Kind' }, { title: '' }, { title: 'Details' }], rows) : h('div', { class: 'empty' }, `None in the ${number(blocks.length)} most recent blocks this page has loaded.`));
    };
    rpc('state_getAccount', [address]).then((account) => {
      clear(root);
      const untouched = account.balance === 0 && account.nonce === 0 && account.roles.length === 0;
      append(root, [
        h('div', { class: 'page-head' }, h('h1', null, 'Account'), hashView(address, { full: true })),
        untouched ? notice('info', 'An untouched account.', 'No transaction has given it a balance, a nonce or a role yet.') : null,
        h('div', { class: 'stats' },
          stat('Balance', h('span', { id: 'account-balance' }, number(account.balance)), `at height ${number(account.height)}`, 'teal'),
          stat('Nonce', number(account.nonce), 'its next transaction carries this'),
          stat('Roles', h('span', { class: 'value small' }, account.roles.length ? account.roles.join(', ') : 'none'), null, 'good')),
        panel('Roles', null, account.roles.length ? h('div', { class: 'badges' }, account.roles.map((role) => h('span', { class: 'badge accent' }, String(role)))) : h('div', { class: 'empty' }, 'No roles: it can receive, but not send or write.')),
        panel('Recent transactions', `from the last ${RECENT_MAX} blocks at most`, activity),
      ]);
      drawActivity();
    }, (error) => {
      clear(root);
      append(root, notice('error', 'Could not load the account.', errorText(error)));
    });
    ensureRecent(OVERVIEW_BLOCKS).then(changed, changed);
    return { want: OVERVIEW_BLOCKS, update: drawActivity };
  }

  // Records: look one up by key (text, or hex with 0x, as `stele query record` takes it).
  function recordsPage(root, args) {
    const given = args.length ? decodeURIComponent(args.join('/')) : '';
    const input = h('input', { id: 'record-key', type: 'text', spellcheck: 'false', placeholder: 'Record key: text, or 0x and hex', value: given || null, 'aria-label': 'Record key' });
    const result = h('div', { id: 'record-result' });
    const form = h('form', { class: 'field' }, input, h('button', { type: 'submit' }, 'Look up'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (key) location.hash = `#/record/${encodeURIComponent(key)}`;
    });
    append(root, [h('div', { class: 'page-head' }, h('h1', null, 'Records'), h('span', { class: 'sub' }, 'state_getRecord')), panel('Look up a record', null, form, result)]);
    if (given) {
      const key = /^0x([0-9a-fA-F]{2})*$/.test(given) ? given.toLowerCase() : textToHex(given);
      append(result, loading('the record'));
      rpc('state_getRecord', [key]).then((record) => {
        clear(result);
        const text = record.value ? recordText(record.value) : '';
        append(result, kv([
          ['Key', [hashView(record.key, { full: record.key.length <= 80 }), ' ', h('span', { class: 'muted' }, recordText(record.key))]],
          ['At height', number(record.height)],
          ['Value', record.value === null ? h('span', { class: 'badge' }, 'absent: no record with this key') : [text ? h('pre', { class: 'value' }, text.slice(1, -1)) : null, h('pre', { class: 'value' }, record.value)]],
          record.value !== null ? ['Size', `${number((record.value.length - 2) / 2)} bytes`] : null,
        ]));
      }, (error) => {
        clear(result);
        append(result, notice('error', 'Could not read the record.', errorText(error)));
      });
    } else {
      append(result, h('p', { class: 'muted' }, 'Records are written by put-record transactions; a block page links each one\'s key here.'));
    }
    setTimeout(() => input.focus(), 0);
    return {};
  }

  function chartsPage(root) {
    const charts = chartPanels(RECENT_MAX, 240);
    const problem = h('div');
    append(root, [h('div', { class: 'page-head' }, h('h1', null, 'Charts'), h('span', { class: 'sub' }, `the last ${RECENT_MAX} blocks, live`)), problem, charts.element]);
    ensureRecent(RECENT_MAX).then(changed, (error) => {
      clear(problem);
      append(problem, notice('error', 'Could not load the blocks.', errorText(error)));
    });
    const resize = redrawOnResize(root, charts.draw);
    charts.draw();
    return { want: RECENT_MAX, update: charts.draw, leave: () => resize.disconnect() };
  }

  // ---------------------------------------------------------------- search and routing

  // Reads the search box: a height, a block or transaction hash, or an address.
  async function search(raw) {
    const text = raw.trim();
    const plain = text.toLowerCase().replace(/^0x/, '');
    if (/^\d{1,15}$/.test(text)) {
      const height = Number(text);
      if (height === 0) return { error: 'Height 0 is the genesis: it has no block or certificate. Blocks start at height 1.' };
      try {
        await rpc('chain_getBlock', [height]);
        return { go: `#/block/${height}` };
      } catch (error) {
        if (error.code === NOT_FOUND) return { error: `No block at height ${number(height)} yet: the head is #${number(state.head)}.` };
        return { error: `The node did not answer: ${errorText(error)}` };
      }
    }
    if (/^[0-9a-f]{64}$/.test(plain)) {
      const hash = `0x${plain}`;
      const [block, tx] = await Promise.allSettled([rpc('chain_getBlock', [hash]), rpc('tx_get', [hash])]);
      if (block.status === 'fulfilled') return { go: `#/block/${hash}` };
      if (tx.status === 'fulfilled' && tx.value.status !== 'unknown') return { go: `#/tx/${hash}` };
      const failed = [block, tx].find((result) => result.status === 'rejected' && result.reason.code !== NOT_FOUND);
      if (failed) return { error: `The node did not answer: ${errorText(failed.reason)}` };
      return { error: `No block and no transaction has the hash ${short(hash, 10, 8)} on this node.` };
    }
    if (/^[0-9a-f]{40}$/.test(plain)) return { go: `#/account/0x${plain}` };
    if (!text) return { error: 'Type a block height, a block or transaction hash, or an account address.' };
    return {
      error: `“${text.length > 80 ? `${text.slice(0, 80)}…` : text}” is not something the explorer can look up: type a block height (such as 12), a block or transaction hash (0x and 64 hex digits) or an account address (0x and 40 hex digits).`,
    };
  }

  function showSearchMessage(message) {
    const root = main();
    const old = document.getElementById('search-message');
    if (old) old.remove();
    const element = notice('error', 'Search:', message);
    element.id = 'search-message';
    root.prepend(element);
  }

  function setupSearch() {
    const form = document.getElementById('search');
    const input = document.getElementById('search-input');
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const query = input.value;
      input.disabled = true;
      try {
        const found = await search(query);
        if (found.go) {
          input.value = '';
          if (location.hash === found.go) route();
          else location.hash = found.go;
        } else {
          showSearchMessage(found.error);
        }
      } finally {
        input.disabled = false;
        input.focus();
      }
    });
  }

  const ROUTES = {
    '': overviewPage,
    blocks: blocksPage,
    block: blockPage,
    tx: txPage,
    account: accountPage,
    records: recordsPage,
    record: recordsPage,
    charts: chartsPage,
  };

  function route() {
    const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
    const name = parts.length ? parts[0] : '';
    const render = ROUTES[name];
    if (page && page.leave) page.leave();
    hideTip();
    const root = main();
    clear(root);
    const nav = { '': 'overview', blocks: 'blocks', block: 'blocks', charts: 'charts', records: 'records', record: 'records' }[name];
    for (const link of document.querySelectorAll('[data-nav]')) link.classList.toggle('active', link.dataset.nav === nav);
    if (!render) {
      page = null;
      append(root, notice('error', 'No such page.', `The explorer has no page “${location.hash}”.`, ' ', h('a', { href: '#/' }, 'Go to the overview.')));
      return;
    }
    const view = h('div', { class: 'view', dataset: { page: name || 'overview' } });
    root.append(view);
    page = render(view, parts.slice(1)) || {};
    document.title = `${{ '': 'Overview', blocks: 'Blocks', block: `Block ${parts[1] || ''}`, tx: 'Transaction', account: 'Account', records: 'Records', record: 'Record', charts: 'Charts' }[name]} · Stele explorer`;
    window.scrollTo(0, 0);
  }

  function setupTheme() {
    const saved = localStorage.getItem('stele-explorer-theme');
    if (saved === 'dark' || saved === 'light') document.documentElement.dataset.theme = saved;
    document.getElementById('theme').addEventListener('click', () => {
      const dark = document.documentElement.dataset.theme
        ? document.documentElement.dataset.theme === 'dark'
        : window.matchMedia('(prefers-color-scheme: dark)').matches;
      const next = dark ? 'light' : 'dark';
      document.documentElement.dataset.theme = next;
      localStorage.setItem('stele-explorer-theme', next);
      changed();
    });
  }

  async function start() {
    setupTheme();
    setupSearch();
    window.addEventListener('hashchange', route);
    setInterval(tickAges, 1000);
    setMode('connecting');
    route();
    // The chain's basics first (retried with back-off until the node answers), then live.
    let delay = 1000;
    for (;;) {
      try {
        const [status, validators] = await Promise.all([rpc('chain_status'), rpc('chain_getValidators')]);
        state.status = status;
        state.statusError = null;
        state.validators = validators;
        state.sets.set(validators.digest, validators);
        state.head = Math.max(state.head, status.height);
        state.headTime = state.headTime || status.timestamp_ms;
        break;
      } catch (error) {
        state.statusError = error;
        setMode('off');
        changed();
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 30000);
      }
    }
    changed();
    ensureRecent(currentWant()).then(changed, changed);
    connect();
    statusTicker();
  }

  start();
})();
