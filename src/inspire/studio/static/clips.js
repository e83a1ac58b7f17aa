// The clips view: every clip of the opened folders, ranked by curation, auditioned and triaged
// by keyboard like a photo-culling tool. Marks go to the server the moment a key is pressed.
//
// Hundreds of clips: every clip gets a light card of fixed height at once; a card builds its
// waveform, spectrogram and player only while it is near the visible part of the list, and
// gives them back when it scrolls far away (IntersectionObserver).

import { ApiError, clock, getJSON, putJSON, say, token } from './api.js';
import { claim, createWave, drawSpectrogram, drawTemperature, loadWaveform, quietAudio, trackColour } from './wave.js';

const REFRESH_MS = 6000;
const HYDRATE_DELAY_MS = 120;
const KEEPER_COLOUR = 'rgba(95, 211, 141, 0.28)';
const SEEK_S = 2;
const SEEK_LONG_S = 10;

const state = {
  cards: new Map(),  // key "folder/id" -> Card
  order: [],         // keys shown, in order
  current: null,     // key of the selected card
  tempRange: [0.5, 1.5],
  folders: [],
  observer: null,
  list: null,
  loaded: false,
};

const keyOf = (entry) => `${entry.folder}/${entry.id}`;

// ---- what a record says --------------------------------------------------------------------

function curation(entry) { return (entry.record && entry.record.curation) || null; }
function marksOf(entry) {
  const m = (entry.record && entry.record.marks) || {};
  return { verdict: m.verdict ?? null, star: !!m.star, regions: (m.regions || []).map((r) => [r[0], r[1]]) };
}
function verdictOf(card) {
  const person = card.marks.verdict;
  if (person) return { verdict: person, by: 'you' };
  const c = curation(card.entry);
  return c && c.verdict ? { verdict: c.verdict, by: 'curation' } : { verdict: null, by: null };
}
function meanTemperature(entry) {
  const t = entry.record && entry.record.temperature;
  if (!t || !t.times_s || t.times_s.length === 0) return null;
  const ts = t.times_s;
  const vs = t.values;
  if (ts.length === 1 || ts[ts.length - 1] <= ts[0]) return vs[0];
  let area = 0;
  for (let i = 1; i < ts.length; i++) area += (ts[i] - ts[i - 1]) * (vs[i] + vs[i - 1]) / 2;
  return area / (ts[ts.length - 1] - ts[0]);
}
function lineageShare(entry) {
  const c = curation(entry);
  return c && c.lineage && Number.isFinite(c.lineage.fraction) ? c.lineage.fraction : 0;
}
function matchesOf(entry) {
  const c = curation(entry);
  return (c && c.lineage && c.lineage.matches) || [];
}

// ---- one card ------------------------------------------------------------------------------

class Card {
  constructor(entry) {
    this.key = keyOf(entry);
    this.entry = entry;
    this.marks = marksOf(entry);
    this.status = entry.status;  // ready | generating | unreadable | deleted
    this.wave = null;             // { ws, regions, media } while hydrated
    this.hydrating = null;
    this.near = false;            // near the visible part of the list (IntersectionObserver)
    this.soon = null;
    this.saving = Promise.resolve();
    this.unsaved = 0;             // PUTs in flight
    this.el = document.createElement('article');
    this.el.className = 'clip';
    this.el.dataset.key = this.key;
    this.el.dataset.id = entry.id;
    this.el.dataset.folder = entry.folder;
    this.el.innerHTML = `
      <div class="clip-head">
        <span class="rank"></span><span class="cid mono"></span><span class="badge verdict"></span>
        <span class="star" title="star (S)">&#9733;</span><span class="meta"></span><span class="saving"></span>
      </div>
      <div class="media"><div class="placeholder"></div></div>
      <div class="clip-foot"><span class="lineage"></span><span class="reasons"></span><span class="scores"></span></div>`;
    this.el.addEventListener('pointerdown', () => select(this.key, { scroll: false }));
    this.render();
  }

  get ready() { return this.status === 'ready'; }

  /** Whether this card should hold a waveform: near the visible part of the list, or selected. */
  get wanted() { return this.near || state.current === this.key; }

  /** Build the waveform if the card is still near the view a moment later (a fast scroll
   *  passes hundreds of cards: only those it stops at are drawn). */
  hydrateSoon() {
    clearTimeout(this.soon);
    this.soon = setTimeout(() => { if (this.wanted) this.hydrate(); }, HYDRATE_DELAY_MS);
  }

  /** New data from the server (a poll or the answer to a PUT). */
  update(entry) {
    const wasStatus = this.status;
    this.entry = entry;
    this.status = entry.status;
    if (this.unsaved === 0) this.marks = marksOf(entry);
    this.render();
    if (wasStatus !== this.status && this.wave) this.dehydrate();
    if (this.wave && this.unsaved === 0) this.showKeepers();
    if (wasStatus !== this.status && this.ready && this.wanted) this.hydrateSoon();  // finished generating
  }

  gone(reason) {
    this.status = 'deleted';
    this.goneReason = reason;
    this.dehydrate();
    this.render();
  }

  render() {
    const e = this.entry;
    const c = curation(e);
    const q = (s) => this.el.querySelector(s);
    q('.rank').textContent = c && c.rank ? `#${c.rank}` : '';
    q('.cid').textContent = e.id;
    const v = verdictOf(this);
    const badge = q('.verdict');
    badge.className = `badge verdict ${v.verdict || ''} ${v.by === 'you' ? 'person' : ''}`;
    badge.textContent = v.verdict ? `${v.verdict} · ${v.by}` : 'no verdict';
    this.el.classList.toggle('v-keep', v.verdict === 'keep');
    this.el.classList.toggle('v-discard', v.verdict === 'discard');
    this.el.dataset.verdict = v.verdict || '';
    this.el.dataset.star = this.marks.star ? '1' : '0';
    q('.star').classList.toggle('on', this.marks.star);
    const meta = [];
    const r = e.record || {};
    if (c && Number.isFinite(c.score)) meta.push(`score ${c.score.toFixed(2)}`);
    if (r.temperature && r.temperature.spec) {
      const mean = meanTemperature(e);
      meta.push(`T ${r.temperature.spec}${mean !== null ? ` (mean ${mean.toFixed(2)})` : ''}`);
    }
    if (c && c.lineage) meta.push(`lineage ${(100 * lineageShare(e)).toFixed(0)}%`);
    if (Number.isFinite(r.seconds)) meta.push(`${r.seconds.toFixed(1)} s`);
    if (r.checkpoint && r.checkpoint.step !== undefined) meta.push(`step ${r.checkpoint.step}`);
    if (r.seed !== undefined && r.seed !== null) meta.push(`seed ${r.seed}`);
    if (this.marks.regions.length) meta.push(`${this.marks.regions.length} keeper passage(s)`);
    q('.meta').textContent = meta.join(' · ');

    const lineage = q('.lineage');
    lineage.replaceChildren();
    matchesOf(e).forEach((m, n) => {
      const chip = document.createElement('span');
      chip.className = 'lineage-chip';
      chip.style.background = trackColour(m.track, 0.9);
      chip.textContent = `${m.track} ${clock(m.source_start_s)}`;
      chip.title = `clip ${clock(m.clip_start_s)}–${clock(m.clip_end_s)} echoes ${m.track} at ${clock(m.source_start_s)} `
        + `(similarity ${m.similarity.toFixed(2)}); click to hear the clip's moment, then the source`;
      chip.addEventListener('click', (ev) => { ev.stopPropagation(); select(this.key, { scroll: false }); this.playLineage(n); });
      lineage.appendChild(chip);
    });
    q('.reasons').textContent = c && c.reasons ? c.reasons.join('; ') : (c && c.error ? c.error : '');
    const f = (c && c.features) || {};
    const scores = [];
    if (Number.isFinite(f.loudness_lufs)) scores.push(`${f.loudness_lufs.toFixed(1)} LUFS`);
    if (Number.isFinite(f.variety_db)) scores.push(`variety ${f.variety_db.toFixed(1)} dB`);
    if (Number.isFinite(f.silence_fraction)) scores.push(`silence ${(100 * f.silence_fraction).toFixed(0)}%`);
    q('.scores').textContent = scores.join(' · ');

    this.el.classList.toggle('gone', !this.ready);
    this.el.dataset.status = this.status;
    if (!this.wave) {
      const ph = this.el.querySelector('.placeholder');
      if (ph) {
        ph.textContent = {
          ready: '',
          generating: 'being generated…',
          unreadable: `cannot read this clip's sidecar${e.error ? `: ${e.error}` : ''}`,
          deleted: this.goneReason || 'deleted',
        }[this.status] ?? this.status;
      }
    }
  }

  async hydrate() {
    if (!this.ready || this.wave || this.hydrating) return this.hydrating;
    this.hydrating = (async () => {
      try {
        const data = await loadWaveform(this.entry.waveform_url);
        if (!this.ready || !this.el.isConnected || !this.wanted) return;
        const media = this.el.querySelector('.media');
        media.innerHTML = `
          <div class="wave"></div>
          <div class="spec-wrap"><canvas class="spec"></canvas><canvas class="temp"></canvas><span class="tlabel"></span></div>`;
        const wave = await createWave(media.querySelector('.wave'), this.entry.audio_url, data, { height: 72 });
        this.wave = wave;
        this.duration = data.duration;
        drawSpectrogram(media.querySelector('.spec'), data);
        const curve = this.entry.record && this.entry.record.temperature;
        drawTemperature(media.querySelector('.temp'), curve, data.duration, state.tempRange);
        if (curve && curve.values && curve.values.length) {
          const lo = Math.min(...curve.values);
          const hi = Math.max(...curve.values);
          media.querySelector('.tlabel').textContent = lo === hi ? `T ${lo.toFixed(2)}` : `T ${lo.toFixed(2)}–${hi.toFixed(2)}`;
        }
        this.showLineage();
        this.showKeepers();
        this.wireRegions();
        this.el.dataset.drawnAt = String(Math.round(performance.now()));
        if (!this.wanted) this.dehydrate();  // scrolled away while it was being built
        wave.media.addEventListener('play', () => this.el.classList.add('playing'));
        wave.media.addEventListener('pause', () => this.el.classList.remove('playing'));
        wave.media.addEventListener('error', () => this.mediaError());
        wave.ws.on('interaction', () => select(this.key, { scroll: false }));
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) this.gone('deleted');
        else {
          const ph = this.el.querySelector('.placeholder');
          if (ph) ph.textContent = `cannot draw this clip: ${err.message}`;
        }
      } finally {
        this.hydrating = null;
      }
    })();
    return this.hydrating;
  }

  dehydrate() {
    if (!this.wave) return;
    const { ws, media } = this.wave;
    media.pause();
    ws.destroy();
    media.removeAttribute('src');
    media.remove();
    if (this.source) { this.source.pause(); this.source.remove(); this.source = null; }
    this.wave = null;
    this.el.querySelector('.media').innerHTML = '<div class="placeholder"></div>';
    this.render();
  }

  async mediaError() {
    // The file may have been deleted or replaced since the list was loaded.
    try {
      const entry = await getJSON(`/api/clips/${encodeURIComponent(this.entry.id)}?folder=${this.entry.folder}`);
      this.update(entry);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) this.gone('deleted');
    }
  }

  // ---- regions: lineage (coloured by source track) and keeper passages ---------------------

  showLineage() {
    const { regions } = this.wave;
    // A band along the bottom of the waveform (above the timeline), one colour per source track;
    // the chips under the clip name the tracks in the same colours.
    matchesOf(this.entry).forEach((m, n) => {
      const region = regions.addRegion({
        id: `lineage-${n}`, start: m.clip_start_s, end: m.clip_end_s, color: trackColour(m.track, 0.6),
        drag: false, resize: false,
      });
      if (region.element) {
        Object.assign(region.element.style, { top: '62%', height: '20%', cursor: 'pointer' });
        region.element.title = `${m.track} at ${clock(m.source_start_s)} (similarity ${m.similarity.toFixed(2)}): `
          + 'click to hear this moment, then the source';
      }
    });
  }

  showKeepers() {
    const { regions } = this.wave;
    for (const r of regions.getRegions().slice()) if (r.id.startsWith('keep-')) r.remove();
    this.marks.regions.forEach(([start, end], i) => {
      regions.addRegion({ id: `keep-${i}-${Date.now()}`, start, end, color: KEEPER_COLOUR, drag: true, resize: true });
    });
  }

  wireRegions() {
    const { regions } = this.wave;
    // A drag on empty waveform makes a keeper passage; one that starts on a passage moves or
    // resizes it (wavesurfer's regions claim that drag, so no second passage starts).
    regions.enableDragSelection({ color: KEEPER_COLOUR });
    regions.on('region-created', (region) => {
      if (!region.id.startsWith('region-')) return;  // ours (lineage, keepers being shown)
      region.setOptions({ id: `keep-new-${Date.now()}` });
      select(this.key, { scroll: false });
      this.saveKeepers();
    });
    regions.on('region-updated', (region) => { if (region.id.startsWith('keep-')) this.saveKeepers(); });
    regions.on('region-double-clicked', (region, ev) => {
      if (!region.id.startsWith('keep-')) return;
      ev.stopPropagation();
      region.remove();
      this.saveKeepers();
    });
    regions.on('region-clicked', (region, ev) => {
      if (!region.id.startsWith('lineage-')) return;
      ev.stopPropagation();
      select(this.key, { scroll: false });
      this.playLineage(Number(region.id.slice('lineage-'.length)));
    });
  }

  keepersFromRegions() {
    return this.wave.regions.getRegions()
      .filter((r) => r.id.startsWith('keep-') && r.end > r.start)
      .map((r) => [Math.round(r.start * 1000) / 1000, Math.round(r.end * 1000) / 1000])
      .sort((a, b) => a[0] - b[0]);
  }

  saveKeepers() {
    this.setMarks({ ...this.marks, regions: this.keepersFromRegions() });
  }

  // ---- marks -------------------------------------------------------------------------------

  setMarks(marks) {
    const refuse = (message) => {
      say(message, { error: true });
      if (this.wave) this.showKeepers();  // undo a passage dragged on screen
    };
    if (!token) {
      refuse('read-only: open the URL `inspire studio` printed (with ?token=...) to mark clips');
      return;
    }
    if (!this.ready) {
      refuse(`${this.entry.id} is ${this.status === 'generating' ? 'still being generated' : this.status}; nothing to mark`);
      return;
    }
    this.marks = marks;
    this.render();
    this.unsaved++;
    const saving = this.el.querySelector('.saving');
    saving.textContent = 'saving…';
    saving.classList.remove('error');
    const url = `/api/clips/${encodeURIComponent(this.entry.id)}/marks?folder=${this.entry.folder}`;
    this.saving = this.saving.then(() => putJSON(url, marks)).then((entry) => {
      this.unsaved--;
      if (this.unsaved === 0) {
        saving.textContent = '';
        this.update(entry);
      }
    }, (err) => {
      this.unsaved--;
      saving.textContent = `not saved: ${err.message}`;
      saving.classList.add('error');
      say(`${this.entry.id}: not saved: ${err.message}`, { error: true });
      if (err.status === 404) this.gone('deleted');
    });
  }

  // ---- playing -----------------------------------------------------------------------------

  async togglePlay() {
    await this.hydrate();
    if (!this.wave) return;
    claim(this.wave.media);
    await this.wave.ws.playPause();
  }

  async play() {
    await this.hydrate();
    if (!this.wave) return;
    claim(this.wave.media);
    await this.wave.ws.play();
  }

  pause() { if (this.wave) this.wave.ws.pause(); if (this.source) this.source.pause(); }

  get playing() { return !!(this.wave && !this.wave.media.paused) || !!(this.source && !this.source.paused); }

  seek(delta) {
    if (!this.wave) return;
    const ws = this.wave.ws;
    ws.setTime(Math.max(0, Math.min(ws.getDuration(), ws.getCurrentTime() + delta)));
  }

  /** The clip's own moment of lineage match n, then the source passage it echoes. */
  async playLineage(n) {
    await this.hydrate();
    const m = matchesOf(this.entry)[n];
    const url = this.entry.lineage_urls && this.entry.lineage_urls[n];
    if (!this.wave || !m || !url) return;
    const { ws, media } = this.wave;
    if (!this.source) this.source = quietAudio(url, this.el);
    else if (!this.source.src.endsWith(url)) this.source.src = url;
    this.source.pause();
    say(`${this.entry.id} ${clock(m.clip_start_s)}–${clock(m.clip_end_s)}, then ${m.track} at ${clock(m.source_start_s)}`);
    claim(media);
    const end = m.clip_end_s;
    const unsubscribe = ws.on('pause', () => {
      unsubscribe();
      if (ws.getCurrentTime() >= end - 0.15) {
        this.source.currentTime = 0;
        this.source.play().catch((err) => say(`cannot play the source: ${err.message}`, { error: true }));
      }
    });
    await ws.play(m.clip_start_s, end);
  }
}

// ---- the list: filters, sorting, selection -------------------------------------------------

function filters() {
  const val = (id) => document.getElementById(id).value;
  const num = (id) => (val(id) === '' ? null : Number(val(id)));
  return {
    folder: val('f-folder'), verdict: val('f-verdict'), marks: val('f-marks'),
    tmin: num('f-tmin'), tmax: num('f-tmax'), lmin: num('f-lmin'), lmax: num('f-lmax'), sort: val('f-sort'),
  };
}

function passes(card, f) {
  const e = card.entry;
  if (f.folder && e.folder !== f.folder) return false;
  const v = verdictOf(card).verdict;
  if (f.verdict === 'keep' && v !== 'keep') return false;
  if (f.verdict === 'discard' && v !== 'discard') return false;
  if (f.verdict === 'undecided' && card.marks.verdict !== null) return false;
  const m = card.marks;
  const marked = m.verdict !== null || m.star || m.regions.length > 0;
  if (f.marks === 'star' && !m.star) return false;
  if (f.marks === 'regions' && m.regions.length === 0) return false;
  if (f.marks === 'marked' && !marked) return false;
  if (f.marks === 'unmarked' && marked) return false;
  if (f.tmin !== null || f.tmax !== null) {
    const t = meanTemperature(e);
    if (t === null) return false;
    if (f.tmin !== null && t < f.tmin - 1e-9) return false;
    if (f.tmax !== null && t > f.tmax + 1e-9) return false;
  }
  const share = 100 * lineageShare(e);
  if (f.lmin !== null && share < f.lmin - 1e-9) return false;
  if (f.lmax !== null && share > f.lmax + 1e-9) return false;
  return true;
}

function comparator(sort) {
  const rank = (c) => { const r = curation(c.entry); return r && Number.isFinite(r.rank) ? r.rank : Infinity; };
  const score = (c) => { const r = curation(c.entry); return r && Number.isFinite(r.score) ? r.score : -Infinity; };
  const temp = (c) => { const t = meanTemperature(c.entry); return t === null ? Infinity : t; };
  const created = (c) => (c.entry.record && c.entry.record.created) || '';
  const byId = (a, b) => (a.entry.id < b.entry.id ? -1 : a.entry.id > b.entry.id ? 1 : 0);
  const then = (f) => (a, b) => f(a, b) || byId(a, b);
  switch (sort) {
    case 'score': return then((a, b) => score(b) - score(a));
    case 'temp-asc': return then((a, b) => temp(a) - temp(b));
    case 'temp-desc': return then((a, b) => (temp(b) === Infinity ? -Infinity : temp(b)) - (temp(a) === Infinity ? -Infinity : temp(a)));
    case 'lineage': return then((a, b) => lineageShare(b.entry) - lineageShare(a.entry));
    case 'newest': return then((a, b) => (created(a) < created(b) ? 1 : created(a) > created(b) ? -1 : 0));
    case 'id': return byId;
    default: return then((a, b) => (rank(a) - rank(b)) || 0);
  }
}

function apply({ fallback = 0 } = {}) {
  const f = filters();
  const cards = [...state.cards.values()].filter((c) => passes(c, f)).sort(comparator(f.sort));
  state.order = cards.map((c) => c.key);
  const shown = new Set(state.order);
  for (const c of state.cards.values()) if (!shown.has(c.key)) c.dehydrate();
  if (cards.length === 0) {
    const empty = document.createElement('div');
    empty.className = 'empty';
    empty.textContent = state.cards.size ? 'No clip matches these filters.' : 'No clips here yet. Generate some with `inspire generate RUN`.';
    state.list.replaceChildren(empty);
  } else {
    state.list.replaceChildren(...cards.map((c) => c.el));
  }
  const ready = [...state.cards.values()].filter((c) => c.ready).length;
  const kept = [...state.cards.values()].filter((c) => verdictOf(c).verdict === 'keep').length;
  document.getElementById('count').textContent =
    `${cards.length} shown of ${state.cards.size} · ${kept} kept` + (ready < state.cards.size ? ` · ${state.cards.size - ready} not ready` : '');
  if (!state.current || !shown.has(state.current)) {
    select(state.order[Math.min(fallback, state.order.length - 1)] || null, { scroll: false });
  }
}

function select(key, { scroll = true, play = false } = {}) {
  const before = state.current && state.cards.get(state.current);
  const wasPlaying = before ? before.playing : false;
  if (before && key !== state.current) {
    before.el.classList.remove('current');
    before.pause();
  }
  state.current = key;
  if (before && before.key !== key && !before.near) before.dehydrate();
  const card = key && state.cards.get(key);
  if (!card) return;
  card.el.classList.add('current');
  if (scroll) card.el.scrollIntoView({ block: 'center' });
  card.hydrate();
  if (play || (wasPlaying && before !== card)) card.play();
}

function step(delta) {
  if (!state.order.length) return;
  const i = state.order.indexOf(state.current);
  const j = i < 0 ? 0 : Math.max(0, Math.min(state.order.length - 1, i + delta));
  select(state.order[j]);
}

function currentCard() { return state.current ? state.cards.get(state.current) : null; }

function decide(verdict) {
  const card = currentCard();
  if (!card) return;
  card.setMarks({ ...card.marks, verdict });
  if (verdict !== null && document.getElementById('f-advance').checked) {
    // The card may leave the list under the current filter; step from its place first.
    const i = state.order.indexOf(card.key);
    if (i >= 0 && i < state.order.length - 1) select(state.order[i + 1]);
  }
  if (filters().verdict || filters().marks) setTimeout(reapply, 0);
}

function reapply() {
  // A card that leaves the list under the filters hands the selection to the one now in its place.
  const keep = state.current;
  apply({ fallback: Math.max(0, state.order.indexOf(keep)) });
  if (keep && state.order.includes(keep)) select(keep, { scroll: false });
}

function keeperEdge(which) {
  const card = currentCard();
  if (!card || !card.wave) return;
  const t = card.wave.ws.getCurrentTime();
  if (which === 'start') {
    card.pendingStart = t;
    say(`keeper passage from ${clock(t)}: press ] at its end`);
    return;
  }
  const start = card.pendingStart ?? 0;
  card.pendingStart = null;
  if (t - start < 0.05) { say('a keeper passage needs its end after its start', { error: true }); return; }
  const regions = [...card.marks.regions, [Math.round(start * 1000) / 1000, Math.round(t * 1000) / 1000]].sort((a, b) => a[0] - b[0]);
  card.setMarks({ ...card.marks, regions });
  card.showKeepers();
}

function removeKeeperAtPlayhead() {
  const card = currentCard();
  if (!card || !card.wave || card.marks.regions.length === 0) return;
  const t = card.wave.ws.getCurrentTime();
  let i = card.marks.regions.findIndex(([s, e]) => s <= t && t <= e);
  if (i < 0) i = card.marks.regions.length - 1;
  const regions = card.marks.regions.filter((_, k) => k !== i);
  card.setMarks({ ...card.marks, regions });
  card.showKeepers();
}

function lineageAtPlayhead() {
  const card = currentCard();
  if (!card || !card.wave) return;
  const matches = matchesOf(card.entry);
  if (!matches.length) { say(`${card.entry.id}: no lineage found for this clip`); return; }
  const t = card.wave.ws.getCurrentTime();
  let n = matches.findIndex((m) => m.clip_start_s <= t && t <= m.clip_end_s);
  if (n < 0) n = matches.findIndex((m) => m.clip_start_s >= t);
  card.playLineage(n < 0 ? 0 : n);
}

export function onKey(ev) {
  if (ev.target.closest && ev.target.closest('input, select, textarea, [contenteditable]')) return false;
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return false;
  const card = currentCard();
  const k = ev.key;
  const handled = () => { ev.preventDefault(); return true; };
  switch (k) {
    case ' ': if (card) card.togglePlay(); return handled();
    case 'ArrowDown': case 'j': case 'J': step(1); return handled();
    case 'ArrowUp': case 'k': case 'K': step(-1); return handled();
    case 'ArrowRight': if (card) card.seek(ev.shiftKey ? SEEK_LONG_S : SEEK_S); return handled();
    case 'ArrowLeft': if (card) card.seek(-(ev.shiftKey ? SEEK_LONG_S : SEEK_S)); return handled();
    case 'Home': if (card && card.wave) card.wave.ws.setTime(0); return handled();
    case 'p': case 'P': decide('keep'); return handled();
    case 'x': case 'X': decide('discard'); return handled();
    case 'u': case 'U': decide(null); return handled();
    case 's': case 'S': if (card) card.setMarks({ ...card.marks, star: !card.marks.star }); return handled();
    case '[': keeperEdge('start'); return handled();
    case ']': keeperEdge('end'); return handled();
    case 'Delete': case 'Backspace': removeKeeperAtPlayhead(); return handled();
    case 'l': case 'L': lineageAtPlayhead(); return handled();
    case 'a': case 'A': {
      const box = document.getElementById('f-advance');
      box.checked = !box.checked;
      say(`advance after keep/discard: ${box.checked ? 'on' : 'off'}`);
      return handled();
    }
    case '?': { const keys = document.getElementById('keys'); keys.hidden = !keys.hidden; return handled(); }
    default: return false;
  }
}

// ---- loading and keeping up with the folders -----------------------------------------------

function temperatureRange() {
  let lo = Infinity;
  let hi = -Infinity;
  for (const c of state.cards.values()) {
    const t = c.entry.record && c.entry.record.temperature;
    for (const v of (t && t.values) || []) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  }
  if (!Number.isFinite(lo)) return [0.5, 1.5];
  if (hi - lo < 0.1) { lo -= 0.1; hi += 0.1; }
  const pad = 0.08 * (hi - lo);
  return [lo - pad, hi + pad];
}

function merge(entries) {
  const seen = new Set();
  let changed = false;
  for (const entry of entries) {
    const key = keyOf(entry);
    seen.add(key);
    const card = state.cards.get(key);
    if (!card) {
      const c = new Card(entry);
      state.cards.set(key, c);
      state.observer.observe(c.el);
      changed = true;
    } else if (JSON.stringify(card.entry) !== JSON.stringify(entry)) {
      const wasStatus = card.status;
      card.update(entry);
      if (wasStatus !== card.status) changed = true;
    }
  }
  for (const card of state.cards.values()) {
    if (!seen.has(card.key) && card.status !== 'deleted') { card.gone('deleted (no longer in the folder)'); changed = true; }
  }
  return changed;
}

/** Folders that appeared since the page loaded (a generate job's) join the folder filter. */
async function learnFolders(entries) {
  const known = new Set(state.folders.map((f) => f.key));
  if (entries.every((e) => known.has(e.folder))) return;
  const { folders } = await getJSON('/api/folders');
  addFolderOptions(folders.filter((f) => !known.has(f.key)));
}

function addFolderOptions(folders) {
  const select_ = document.getElementById('f-folder');
  for (const f of folders) {
    const opt = document.createElement('option');
    opt.value = f.key;
    opt.textContent = f.name;
    select_.appendChild(opt);
    state.folders.push(f);
  }
  select_.closest('label').hidden = state.folders.length < 2;
}

/** Show one clips folder (the generate view's "show clips"). */
export async function showFolder(key) {
  if (!state.folders.some((f) => f.key === key)) await learnFolders([{ folder: key }]);
  document.getElementById('f-folder').value = key;
  await refresh();
  reapply();
}

async function refresh() {
  if (document.hidden || document.getElementById('clips-view').hidden) return;
  try {
    const { clips } = await getJSON('/api/clips');
    await learnFolders(clips);
    if (merge(clips)) {
      state.tempRange = temperatureRange();
      reapply();
    }
  } catch (err) {
    say(`cannot refresh the clips: ${err.message}`, { error: true });
  }
}

export async function init(folders) {
  state.list = document.getElementById('clip-list');
  addFolderOptions(folders);
  state.observer = new IntersectionObserver((items) => {
    for (const item of items) {
      const card = state.cards.get(item.target.dataset.key);
      if (!card) continue;
      card.near = item.isIntersecting;
      if (card.near) card.hydrateSoon();
      else if (card.key !== state.current && !card.playing) card.dehydrate();
    }
  }, { root: state.list, rootMargin: '700px 0px' });
  document.getElementById('filters').addEventListener('input', reapply);
  document.getElementById('filters').addEventListener('change', reapply);  // selects: some browsers send only this
  document.getElementById('filters').addEventListener('submit', (ev) => ev.preventDefault());

  const started = performance.now();
  const { clips } = await getJSON('/api/clips');
  merge(clips);
  state.tempRange = temperatureRange();
  apply();
  state.loaded = true;
  // For tests and bench/studio_open.py: when the list was shown (ms since navigation) and how
  // long fetching and building it took.
  document.body.dataset.clipsLoaded = String(clips.length);
  document.body.dataset.clipsLoadMs = String(Math.round(performance.now() - started));
  document.body.dataset.clipsShownAt = String(Math.round(performance.now()));
  setInterval(refresh, REFRESH_MS);
  document.addEventListener('visibilitychange', refresh);
}

export function shown() {
  const card = currentCard();
  if (card) card.hydrate();
}
