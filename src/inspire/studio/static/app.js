// inspire studio: the page's entry point. The views (clips, runs, generate, arrange, live) chosen
// by the URL's #hash; #clips/KEY shows one clips folder.

import { getJSON, say, token } from './api.js';
import * as arrange from './arrange.js';
import * as clips from './clips.js';
import * as generate from './generate.js';
import * as live from './live.js';
import * as runs from './runs.js';

const VIEWS = ['clips', 'runs', 'generate', 'arrange', 'live'];

let folders = null;
let clipsReady = null;

async function route() {
  const [name, arg] = location.hash.slice(1).split('/');
  const view = VIEWS.includes(name) ? name : 'clips';
  for (const v of VIEWS) {
    document.getElementById(`${v}-view`).hidden = v !== view;
    document.getElementById(`tab-${v}`).classList.toggle('active', v === view);
  }
  try {
    if (view === 'clips') {
      clipsReady = clipsReady || clips.init(folders.folders);
      await clipsReady;
      if (arg) await clips.showFolder(decodeURIComponent(arg));
      clips.shown();
      document.getElementById('clip-list').focus({ preventScroll: true });
    } else if (view === 'generate') {
      await generate.show();
    } else if (view === 'arrange') {
      await arrange.show();
    } else if (view === 'live') {
      live.init(document.getElementById('live-view'));
      await live.show();
    } else {
      await runs.show();
    }
    document.body.dataset.view = view;
  } catch (err) {
    say(err.message, { error: true, sticky: true });
  }
}

async function main() {
  try {
    folders = await getJSON('/api/folders');
  } catch (err) {
    say(err.message, { error: true, sticky: true });
    return;
  }
  if (!token || !folders.writable) {
    const banner = document.getElementById('banner');
    banner.textContent = 'Read-only: this page was opened without the session token. Open the URL `inspire studio` '
      + 'printed (it ends with ?token=...) to keep, discard, star and mark clips.';
    banner.hidden = false;
  }
  if (!location.hash && folders.folders.length === 0 && folders.runs.length) location.hash = '#runs';
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && document.activeElement && document.activeElement !== document.body) {
      document.activeElement.blur();  // out of a filter field: the keys act on the clips again
      return;
    }
    if (!document.getElementById('live-view').hidden) live.onKey(ev);
    if (document.getElementById('clips-view').hidden) return;
    clips.onKey(ev);
  });
  window.addEventListener('hashchange', route);
  await route();
}

main();
