// The contention page's script: inlined into contention.html by the build.
'use strict';
const $ = (id) => document.getElementById(id);
// The token lives in this tab only (sessionStorage), never on the server.
let token = sessionStorage.getItem('lockprof-token') || '';
let profile = null;   // The last profile.json.
let zoom = null;      // The flame graph node shown at the top, or null.
let base = null;      // A profile kept to compare with (pprof -base), or null.

function setStatus(text, error) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}

async function get(path) {
  const headers = token ? { Authorization: 'Bearer ' + token } : {};
  const r = await fetch(path, { headers, cache: 'no-store' });
  if (r.status === 401) {
    throw new Error(token ? 'the token was refused (401)' : 'this endpoint needs its token (401): enter it above');
  }
  if (!r.ok) throw new Error(path + ': ' + r.status + ' ' + (await r.text()).trim());
  return r;
}

function fmtSeconds(s) {
  if (!isFinite(s)) return s > 0 ? '> 8.4 s' : '-';
  if (s >= 1) return s.toFixed(2) + ' s';
  if (s >= 1e-3) return (s * 1e3).toFixed(2) + ' ms';
  return (s * 1e6).toFixed(1) + ' µs';
}

function fmtValue(v, unit) {
  return unit === 'nanoseconds' ? fmtSeconds(v / 1e9) : String(v);
}

// ---- Top locks, from the lockprof_lock_* series of /metrics.

// The names /metrics gives what no one name stands for (agent/metrics/
// metrics.cc): UNNAMED, locks without a name or with an empty one; OTHER,
// the locks its per-lock table had no room for.
const UNNAMED = '(unnamed)', OTHER = '(other)';

function unescapeLabel(v) {
  return v.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
}

function parseMetrics(text) {
  const locks = new Map();
  // A label block: quoted values may hold '}' (a lock named "map{shard}").
  const block = '\\{((?:[^"}]|"(?:[^"\\\\]|\\\\.)*")*)\\}';
  const series = new RegExp(
      '^lockprof_lock_(wait|hold)_seconds_(sum|count|bucket)' + block + ' (\\S+)$|' +
      '^lockprof_lock_(contentions|waits)_total' + block + ' (\\S+)$');
  for (const line of text.split('\n')) {
    const m = series.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[3] || m[6]).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = unescapeLabel(l[2]);
    }
    const key = labels.lock + '\0' + (labels.mode || '');
    let e = locks.get(key);
    if (!e) {
      const h = () => ({ sum: 0, count: 0, buckets: [] });
      e = { lock: labels.lock, mode: labels.mode || '', contentions: 0, waits: 0, wait: h(), hold: h() };
      locks.set(key, e);
    }
    if (m[5] !== undefined) {
      e[m[5]] = Number(m[7]);  // e.contentions or e.waits.
      continue;
    }
    const h = e[m[1]], v = Number(m[4]);
    if (m[2] === 'sum') h.sum = v;
    else if (m[2] === 'count') h.count = v;
    else h.buckets.push([labels.le === '+Inf' ? Infinity : Number(labels.le), v]);
  }
  return [...locks.values()];
}

// The upper bound of the bucket that holds quantile q (cumulative buckets).
// "≤ bound" of quantile q, or "-" for an empty histogram.
function fmtQuantile(h, q) {
  const v = quantile(h, q);
  return isNaN(v) ? '-' : '≤ ' + fmtSeconds(v);
}

function quantile(h, q) {
  if (!h.count) return NaN;
  for (const [le, c] of h.buckets) if (c >= q * h.count) return le;
  return Infinity;
}

let lockStats = [];
let histLock = null;  // The lock whose histograms are shown: clicked, else the top one.

// A lock's wait and hold histograms: one bar per bucket of /metrics.
function drawHistograms(e) {
  const box = $('hist');
  box.textContent = '';
  box.dataset.lock = e ? e.lock : '';
  if (!e) return;
  for (const [what, h] of [['wait', e.wait], ['hold', e.hold]]) {
    const col = box.appendChild(document.createElement('div'));
    col.className = 'hist';
    col.appendChild(document.createElement('div')).textContent =
      e.lock + (e.mode ? ' (' + e.mode + ')' : '') + ': ' + what + ' times, ' + Math.round(h.count) + ' in all';
    let prev = 0;
    const counts = h.buckets.map(([le, c]) => { const n = c - prev; prev = c; return [le, n]; });
    const max = Math.max(1, ...counts.map(([, n]) => n));
    const bars = col.appendChild(document.createElement('div'));
    bars.className = 'bars';
    for (const [le, n] of counts) {
      const bar = bars.appendChild(document.createElement('div'));
      bar.style.height = (100 * n) / max + '%';
      bar.title = '≤ ' + fmtSeconds(le) + ': ' + Math.round(n);
    }
    const axis = col.appendChild(document.createElement('div'));
    axis.className = 'axis';
    // Bucket k holds values up to 1 µs * 2^k: 1 ms is bucket 10, 1 s bucket 20.
    for (const [k, t] of [[0, '1 µs'], [10, '1 ms'], [20, '1 s'], [24, '+Inf']]) {
      const span = axis.appendChild(document.createElement('span'));
      span.style.left = k * 10 + 'px';
      span.textContent = t;
    }
  }
}

function renderLocks() {
  const by = $('sort').value;
  const key = {
    wait: (e) => e.wait.sum, hold: (e) => e.hold.sum, contentions: (e) => e.contentions,
    waits: (e) => e.waits,
  }[by];
  const rows = lockStats.filter((e) => e.waits || e.contentions || e.hold.count)
    .sort((a, b) => key(b) - key(a));
  const body = $('lockTable').tBodies[0];
  body.textContent = '';
  for (const e of rows.slice(0, 20)) {
    const tr = body.insertRow();
    tr.dataset.lock = e.lock;
    tr.dataset.waits = e.waits;
    const cells = [e.lock, e.mode, String(e.waits), String(e.contentions), fmtSeconds(e.wait.sum),
      e.wait.count ? fmtSeconds(e.wait.sum / e.wait.count) : '-', fmtQuantile(e.wait, 0.5),
      fmtQuantile(e.wait, 0.99), String(Math.round(e.hold.count)),
      fmtSeconds(e.hold.sum), fmtQuantile(e.hold, 0.99)];
    for (const c of cells) tr.insertCell().textContent = c;
    // OTHER is many locks, named in the profiles by their own names: no one
    // filter selects them, so its row shows its histograms only.
    const focus = e.lock !== OTHER;
    if (!focus) {
      tr.className = 'nofocus';
      tr.title = 'locks the per-lock table had no room for: the profiles name each of them';
    }
    tr.onclick = () => {
      histLock = e;
      drawHistograms(e);
      if (focus) selectLock(e.lock);
      render();
    };
  }
  const shown = histLock && rows.find((e) => e.lock === histLock.lock && e.mode === histLock.mode);
  drawHistograms(shown || rows[0]);
  $('locks').dataset.locks = rows.map((e) => e.lock).join('\n');
}

// Each refresh supersedes those before it: an answer that comes after a
// newer request was made (a 5 s window asked for, then cumulative) is
// dropped, not drawn over the newer view.
let refreshes = 0;

async function loadLocks(seq) {
  const stats = parseMetrics(await (await get('../../metrics')).text());
  if (seq !== refreshes) return;
  lockStats = stats;
  renderLocks();
}

// ---- Flame graph (an icicle: callers on top), from profile.json.

// A sample's lock as /metrics names it: profile.json has no lock label for a
// lock without a name and "" for an empty one (pprof's reader drops an empty
// label, so to pprof both have none), and /metrics calls both UNNAMED.
function lockOf(s) {
  return s.l.lock || UNNAMED;
}

// Whether label `key` of sample `s` is `value` as the user typed it. A
// numeric label (a JSON number, e.g. shard) equals the integer written.
function labelIs(s, key, value) {
  if (!Object.prototype.hasOwnProperty.call(s.l, key)) return false;
  const v = s.l[key];
  return typeof v === 'number' ? /^[+-]?[0-9]+$/.test(value) && v === Number(value) : v === value;
}

function selectLock(lock) {
  const sel = $('lock');
  if (![...sel.options].some((o) => o.value === lock)) sel.add(new Option(lock, lock));
  sel.value = lock;
}

async function loadProfile(seq) {
  const name = $('profile').value, secs = $('window').value;
  setStatus('collecting the ' + name + ' profile' + (secs ? ' for ' + secs + ' s' : '') + '…');
  const q = 'name=' + encodeURIComponent(name) + (secs ? '&seconds=' + secs : '');
  const got = await (await get('profile.json?' + q)).json();
  if (seq !== refreshes) return;
  profile = got;
  zoom = null;
  const value = $('value'), keep = value.value;
  value.textContent = '';
  profile.types.forEach(([type, unit], i) => value.add(new Option(type + ' (' + unit + ')', String(i))));
  // The second value (delay, hold time) unless the user chose the first.
  value.value = keep === '0' ? '0' : '1';
  const lock = $('lock'), wanted = lock.value;
  lock.length = 1;
  const names = new Set(profile.samples.map(lockOf));
  for (const l of [...names].sort()) lock.add(new Option(l, l));
  if (wanted) selectLock(wanted);
  setStatus('');
}

function color(name) {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return 'hsl(' + (10 + (h % 45)) + ',75%,' + (62 + (h >> 8) % 14) + '%)';
}

// The call tree of the samples that pass the filters, and each function's
// self value (what pprof -top lists first).
function buildTree(p) {
  const vi = Number($('value').value), lock = $('lock').value;
  const lm = /^\s*([^=\s]+)\s*=\s*(.*?)\s*$/.exec($('label').value);
  const root = { name: 'all', value: 0, kids: new Map() };
  const self = new Map();
  let all = 0;  // Before the filters: what pprof's percentages are of.
  for (const s of p.samples) {
    all += s.v[vi] || 0;
    if ((lock && lockOf(s) !== lock) || (lm && !labelIs(s, lm[1], lm[2]))) continue;
    const v = s.v[vi];
    if (!v) continue;
    root.value += v;
    let node = root;
    for (let i = s.s.length - 1; i >= 0; i--) {
      const f = p.funcs[s.s[i]];
      let kid = node.kids.get(f);
      if (!kid) node.kids.set(f, (kid = { name: f, value: 0, kids: new Map(), parent: node }));
      kid.value += v;
      node = kid;
    }
    if (s.s.length) self.set(p.funcs[s.s[0]], (self.get(p.funcs[s.s[0]]) || 0) + v);
  }
  return { root, all, self: [...self].sort((a, b) => b[1] - a[1]), unit: p.types[vi][1] };
}

// Red where the view grew since the base, blue where it shrank.
function diffColor(now, then) {
  const change = (now - then) / Math.max(now, then, 1);
  return change >= 0 ? 'hsl(0,80%,' + (92 - 40 * change) + '%)' : 'hsl(220,80%,' + (92 + 40 * change) + '%)';
}

// `top` and, when comparing, the node at the same call path in the base.
function drawFlame(top, baseTop, unit) {
  const flame = $('flame');
  flame.textContent = '';
  const total = top.value || 1;
  let depth = 0;
  const walk = (n, b, x, d) => {
    const w = n.value / total;
    if (w < 0.002) return;  // Too narrow to see or click.
    depth = Math.max(depth, d + 1);
    const div = document.createElement('div');
    div.className = 'frame';
    const then = b ? b.value : 0;
    div.style.cssText = 'left:' + x * 100 + '%;width:' + w * 100 + '%;top:' + d * 18 + 'px;background:' +
      (baseTop ? diffColor(n.value, then) : color(n.name));
    div.textContent = n.name;
    div.title = n.name + '\n' + fmtValue(n.value, unit) + ' (' + (100 * n.value / (profile.root || total)).toFixed(1) + '%)' +
      (baseTop ? '\nbase ' + fmtValue(then, unit) : '');
    div.onclick = () => { zoom = n === top ? top.parent || null : n; render(); };
    flame.appendChild(div);
    let cx = x;
    for (const k of [...n.kids.values()].sort((a, b) => b.value - a.value)) {
      walk(k, b && b.kids.get(k.name), cx, d + 1);
      cx += k.value / total;
    }
  };
  walk(top, baseTop, 0, 0);
  flame.style.height = depth * 18 + 'px';
}

function renderLinks(tree) {
  const name = profile.profile, secs = $('window').value;
  const raw = new URL('../pprof/' + name + (secs ? '?seconds=' + secs : ''), location.href).href;
  const filters = [];
  if ($('lock').value) filters.push(pprofLockFilter($('lock').value));
  const lm = /^\s*([^=\s]+)\s*=\s*(.*?)\s*$/.exec($('label').value);
  if (lm) filters.push(pprofLabelFilter(profile, lm[1], lm[2]));
  const sampleIndex = $('value').value === '1' ? profile.types[1][0] : '';
  const { cmd, flags, twoFilters } = pprofCommand(name, raw, token, sampleIndex, filters);
  const links = $('links');
  links.textContent = '';
  const line = (...parts) => {
    const div = links.appendChild(document.createElement('div'));
    for (const p of parts) div.append(p);
  };
  const a = (href, text) => Object.assign(document.createElement('a'), { href, textContent: text });
  const code = (text) => Object.assign(document.createElement('code'), { textContent: text });
  line('raw: ', a(raw, raw), secs ? '' : ' · ', secs ? '' : a(raw + '?debug=1', 'text (debug=1)'),
    ' · total ' + fmtValue(tree.root.value, tree.unit) + (profile.duration_nanos ? ' in ' + fmtSeconds(profile.duration_nanos / 1e9) : ''));
  line('go tool pprof: ', code(cmd));
  if (base && base.profile === name) {
    line('the comparison in go tool pprof: save each window from the raw link, then ',
      code('go tool pprof ' + flags.map(shellQuote).join(' ') + ' -base ' + name + '-base.pb.gz ' + name + '.pb.gz'),
      twoFilters ? ' (each file filtered by its lock first, as above)' : '');
  }
}

// The node at `path` (function names from the root) of a tree, or null.
function follow(root, path) {
  let n = root;
  for (const f of path) n = n && n.kids.get(f);
  return n || null;
}

function render() {
  if (!profile) return;
  const tree = buildTree(profile);
  const compare = base && base.profile === profile.profile;
  const baseTree = compare ? buildTree(base) : null;
  $('baseInfo').textContent = !base ? '' : !compare ? 'base is a ' + base.profile + ' profile: not compared'
    : 'compared with the base kept at ' + base.kept + ' (red: grew, blue: shrank)';
  // Keep the zoomed frame if the same path exists in the new tree.
  const path = [];
  for (let n = zoom; n && n.parent; n = n.parent) path.unshift(n.name);
  const top = follow(tree.root, path) || tree.root;
  zoom = top === tree.root ? null : top;
  profile.root = tree.root.value;
  drawFlame(top, baseTree && (top === tree.root ? baseTree.root : follow(baseTree.root, path)), tree.unit);
  renderLinks(tree);
  const list = $('topSelf');
  list.textContent = '';
  const baseSelf = new Map(baseTree ? baseTree.self : []);
  for (const [f, v] of tree.self.slice(0, 10)) {
    const then = baseSelf.get(f) || 0;
    list.appendChild(document.createElement('li')).textContent =
      f + ' — ' + fmtValue(v, tree.unit) + ' (' + (100 * v / (tree.all || 1)).toFixed(1) + '%)' +
      (baseTree ? ', base ' + fmtValue(then, tree.unit) + ', change ' + (v >= then ? '+' : '-') + fmtValue(Math.abs(v - then), tree.unit) : '');
  }
  // For tests and scripts: what the view shows, readable from the DOM.
  const flame = $('flame');
  flame.dataset.profile = profile.profile;
  flame.dataset.topSelf = tree.self.length ? tree.self[0][0] : '';
  flame.dataset.frames = String(flame.childElementCount);
  flame.dataset.total = String(tree.root.value);
  flame.dataset.durationNanos = String(profile.duration_nanos);
  flame.dataset.baseTotal = baseTree ? String(baseTree.root.value) : '';
}

async function refresh(what) {
  const seq = ++refreshes;
  try {
    if (what !== 'profile') await loadLocks(seq);
    if (what !== 'locks') await loadProfile(seq);
    if (seq !== refreshes) return;
    render();
    document.body.dataset.state = 'rendered';
  } catch (e) {
    if (seq !== refreshes) return;
    setStatus(String(e.message || e), true);
    document.body.dataset.state = 'error';
  }
}

// Initial state from the fragment: #profile=block&window=10&lock=x&show=flame
const opts = new URLSearchParams(location.hash.slice(1));
const secs = opts.get('window');
if (secs && /^[1-9][0-9]*$/.test(secs) && !$('window').querySelector('option[value="' + secs + '"]')) {
  $('window').add(new Option('last ' + secs + ' s', secs));
}
for (const id of ['profile', 'window', 'sort', 'label']) if (opts.has(id)) $(id).value = opts.get(id);
if (opts.has('lock')) selectLock(opts.get('lock'));
if (opts.get('show') === 'flame') $('locks').classList.add('hidden');
if (opts.get('show') === 'locks') $('flameSection').classList.add('hidden');

$('token').value = token;
$('token').onchange = () => {
  token = $('token').value.trim();
  if (token) sessionStorage.setItem('lockprof-token', token);
  else sessionStorage.removeItem('lockprof-token');
  refresh();
};
$('reload').onclick = () => refresh();
$('keepBase').onclick = () => {
  if (!profile) return;
  base = Object.assign({}, profile, { kept: new Date().toLocaleTimeString() });
  render();
};
$('clearBase').onclick = () => { base = null; render(); };
$('sort').onchange = renderLocks;
$('profile').onchange = $('window').onchange = () => refresh('profile');
$('value').onchange = $('lock').onchange = $('label').oninput = render;
// #diff=1: keep the first view as the base and load the same view again
// (for a window: the next one), to compare the two.
refresh().then(() => {
  if (opts.get('diff') !== '1' || !profile) return;
  base = Object.assign({}, profile, { kept: new Date().toLocaleTimeString() });
  document.body.dataset.state = 'loading';
  return refresh('profile');
});
