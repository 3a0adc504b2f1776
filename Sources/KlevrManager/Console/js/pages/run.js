import { api, enc, hasRole } from '../api.js';
import { debounced } from '../events.js';
import { h, clear, link, section, pageHeader, badge, dl, time, actionButton, errorBox, flash, duration } from '../ui.js';
import { isFinished, taskName } from '../tasks-shared.js';

// One run: its facts, a status badge that follows the run, the live log (Server-Sent Events from
// /api/v1/runs/{id}/logs?follow=true: `log` events, then `end` with the finished run), its result
// and, for operators, Cancel while it is not finished.
export async function render(ctx) {
  const id = ctx.params.id;
  const operator = hasRole('operator');
  const head = h('div');
  const facts = h('div', { dataset: { part: 'run-facts' } });
  const resultBox = h('div', { dataset: { part: 'run-result' } });
  const log = h('pre.log', { dataset: { part: 'run-log', state: 'connecting' }, tabindex: 0, 'aria-label': 'Run log', 'aria-live': 'off' });
  const logState = h('span.log-state.muted', { dataset: { part: 'log-state' } }, 'connecting…');
  const follow = h('input', { type: 'checkbox', id: 'log-follow', checked: true, name: 'follow' });
  const errors = errorBox();
  const statusBadge = h('span', { dataset: { part: 'run-status' } });
  const cancelSlot = h('span');
  ctx.root.append(head, errors,
    h('div.grid', section('Run', facts), section('Result', resultBox)),
    h('section.card.run-log-card',
      h('div.log-head', h('h2', 'Log'), logState,
        h('span.field.inline', follow, h('label', { for: 'log-follow' }, 'Follow the end'))),
      log));

  let run = null;
  let task = null;
  let hostname = null;
  async function load() {
    const found = await api.get(`/api/v1/runs/${enc(id)}`);
    if (!ctx.alive) return;
    showRun(found);
  }

  function showRun(found) {
    run = found;
    ctx.setTitle(`Run ${run.id.slice(0, 8)}`);
    clear(statusBadge).append(badge(run.status));
    statusBadge.dataset.status = run.status;
    clear(cancelSlot);
    if (operator && !isFinished(run)) {
      cancelSlot.append(actionButton(run.cancelRequested ? 'Cancel again' : 'Cancel', async () => {
        showRun(await api.post(`/api/v1/runs/${enc(id)}/cancel`));
        flash('Cancel requested: the agent stops the run.');
      }, { name: 'cancel-run', tone: 'danger', errors, confirmText: 'Really cancel the run?' }));
    }
    if (!head.firstChild) {
      head.append(pageHeader(h('span.run-title', `Run ${run.id.slice(0, 8)} `, statusBadge), cancelSlot));
    }
    const took = run.startedAt ? Math.max(0, Math.round(((run.finishedAt || Date.now()) - run.startedAt) / 1000)) : null;
    clear(facts).append(dl([
      ['Status', h('span', badge(run.status), run.cancelRequested && !isFinished(run) ? ' cancel requested' : '')],
      run.reason ? ['Reason', run.reason] : null,
      run.exitCode !== undefined && run.exitCode !== null ? ['Exit code', h('span', { dataset: { value: 'exit-code' } }, String(run.exitCode))] : null,
      ['Task', link(`#/tasks/${enc(run.taskId)}`, task ? taskName(task) : run.taskId.slice(0, 8))],
      ['Agent', link(`#/agents/${enc(run.agentId)}`, hostname || run.agentId.slice(0, 8))],
      ['Zone', link(`#/zones/${enc(run.zone)}`, run.zone)],
      ['Created', time(run.createdAt)],
      run.occurrence ? ['Occurrence', time(run.occurrence)] : null,
      run.dueAt && run.dueAt !== run.createdAt ? ['Due', time(run.dueAt)] : null,
      run.deliverBy ? ['Deliver by', time(run.deliverBy)] : null,
      run.dispatchedAt ? ['Dispatched', time(run.dispatchedAt)] : null,
      run.startedAt ? ['Started', time(run.startedAt)] : null,
      run.finishedAt ? ['Finished', time(run.finishedAt)] : null,
      took !== null ? [run.finishedAt ? 'Took' : 'Running for', duration(took)] : null,
      ['Id', h('code', run.id)],
    ]));
    clear(resultBox).append(resultView(run));
  }

  await load();
  // The names of its task and agent, for the facts (not needed to show the run).
  Promise.all([
    api.get(`/api/v1/tasks/${enc(run.taskId)}`).catch(() => null),
    api.get(`/api/v1/agents/${enc(run.agentId)}`).catch(() => null),
  ]).then(([t, a]) => {
    if (!ctx.alive) return;
    task = t;
    hostname = a ? a.hostname : null;
    if (run) showRun(run);
  });

  // The live log. Chunks are deduplicated by seq (the browser resumes after the last id it saw when it
  // reconnects, but a repeat is harmless).
  let lastSeq = 0;
  let ended = false;
  const atBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  follow.addEventListener('change', () => { if (follow.checked) log.scrollTop = log.scrollHeight; });
  log.addEventListener('scroll', () => {
    // Scrolling up stops following; back at the end follows again.
    const bottom = atBottom();
    if (follow.checked !== bottom && log.dataset.scrolling !== '1') follow.checked = bottom;
  });
  function appendChunk(chunk) {
    if (chunk.seq <= lastSeq) return;
    lastSeq = chunk.seq;
    const stream = ['stdout', 'stderr', 'system'].includes(chunk.stream) ? chunk.stream : 'stdout';
    log.append(h(`span.${stream}`, { dataset: { seq: String(chunk.seq), stream } }, chunk.data));
  }
  function scrollToEnd() {
    if (!follow.checked) return;
    log.dataset.scrolling = '1';
    log.scrollTop = log.scrollHeight;
    requestAnimationFrame(() => { delete log.dataset.scrolling; });
  }
  function setState(state, text) {
    log.dataset.state = state;
    logState.textContent = text;
  }
  const source = new EventSource(`/api/v1/runs/${enc(id)}/logs?follow=true`, { withCredentials: true });
  ctx.onDispose(() => source.close());
  source.onopen = () => { if (!ended) setState('live', 'live'); };
  source.addEventListener('log', (message) => {
    if (!ctx.alive) return;
    let chunk;
    try { chunk = JSON.parse(message.data); } catch { return; }
    appendChunk(chunk);
    scrollToEnd();
  });
  source.addEventListener('end', (message) => {
    ended = true;
    source.close();
    if (!ctx.alive) return;
    try { showRun(JSON.parse(message.data)); } catch { load().catch(() => {}); }
    if (!log.firstChild) log.append(h('span.system', 'No output.'));
    setState('ended', 'finished: the whole log');
    scrollToEnd();
  });
  source.onerror = () => {
    if (ended || !ctx.alive) return;
    if (source.readyState === EventSource.CLOSED) {
      setState('closed', 'the log stream closed; reload the page to try again');
    } else setState('reconnecting', 'reconnecting…');
  };

  // The status (cancel requested, recovering …) also follows the run's events.
  const refresh = debounced(() => load().catch(() => {}), 300);
  ctx.subscribe(['run'], (event) => { if (event.subject === id) refresh(); });
}

function resultView(run) {
  if (run.result === undefined || run.result === null || run.result === '') {
    return h('p.muted', isFinished(run) ? 'No result: the last step wrote nothing to $KLEVR_RESULT_FILE.' : 'Not finished yet.');
  }
  let text = run.result;
  try { text = JSON.stringify(JSON.parse(run.result), null, 2); } catch { /* plain text */ }
  return h('pre.code.result', { dataset: { value: 'run-result' } }, text);
}
