import { api, enc, hasRole } from '../api.js';
import { h, clear, field, form, pageHeader, select, localMillis } from '../ui.js';
import { handOver } from '../tasks-shared.js';

// Creating a task: the whole TaskCreateRequest of the API as a form, or YAML pasted as it is (the
// manager converts it; `klevr task create -f` reads the same). The server validates everything and its
// refusals are shown verbatim.
export async function render(ctx) {
  ctx.setTitle('New task');
  ctx.root.append(pageHeader('New task', h('a.button', { href: '#/tasks' }, 'Back to tasks')));
  if (!hasRole('operator')) {
    ctx.root.append(h('p.notice', 'Creating tasks needs the operator role.'));
    return;
  }
  const [zones, commands] = await Promise.all([api.all('/api/v1/zones'), api.get('/api/v1/commands')]);
  if (!ctx.alive) return;
  const commandList = commands.items || [];

  const created = async (task) => {
    if (task.callbackSecret) handOver(`callback-secret:${task.id}`, task.callbackSecret);
    ctx.navigate(`#/tasks/${enc(task.id)}`);
  };

  // --- Tabs: the form or pasted YAML.
  const formTab = h('button', { type: 'button', role: 'tab', dataset: { action: 'tab-form' } }, 'Form');
  const yamlTab = h('button', { type: 'button', role: 'tab', dataset: { action: 'tab-yaml' } }, 'Paste YAML');
  const formPane = h('div', { role: 'tabpanel', dataset: { part: 'task-form' } });
  const yamlPane = h('div', { role: 'tabpanel', dataset: { part: 'task-yaml' } });
  function showTab(yaml) {
    formTab.setAttribute('aria-selected', String(!yaml));
    yamlTab.setAttribute('aria-selected', String(yaml));
    formPane.hidden = yaml;
    yamlPane.hidden = !yaml;
  }
  formTab.addEventListener('click', () => showTab(false));
  yamlTab.addEventListener('click', () => showTab(true));
  ctx.root.append(h('div.tabs', { role: 'tablist', 'aria-label': 'How to describe the task' }, formTab, yamlTab), formPane, yamlPane);
  showTab(ctx.query.yaml === '1');

  if (!zones.length) {
    formPane.append(h('p.notice', 'There is no zone yet: create one under Zones first.'));
  }

  // --- Where: name, zone, target.
  const name = h('input', { name: 'name', maxlength: 200, placeholder: 'nightly-backup' });
  const zone = select(zones.map((z) => [z.name, z.name]), ctx.query.zone || (zones[0] && zones[0].name), { name: 'zone', required: true });
  const kind = select([['all', 'every agent of the zone (all)'], ['any', 'any one online agent (any)'], ['agent', 'one agent (agent)'], ['selector', 'agents matching labels (selector)']],
    'all', { name: 'target-kind' });
  const agent = h('select', { name: 'agent-id' });
  const selector = h('input', { name: 'selector', placeholder: 'env=prod,role!=db', maxlength: 1024 });
  const allZones = h('input', { type: 'checkbox', name: 'all-zones' });
  const agentField = field('Agent', agent);
  const selectorField = field('Label selector', selector, 'key=value, key!=value, key in (a,b), key, !key — comma-separated, all must hold.');
  const allZonesField = h('div.field.inline', allZones, h('label', { for: 'all-zones-box' }, 'Match agents of every zone, not only this one (allZones)'));
  allZones.id = 'all-zones-box';
  const credentials = h('select', { name: 'credentials', multiple: true, size: 4 });
  const credentialsHint = h('small.hint');

  async function loadZoneThings() {
    const z = zone.value;
    if (!z) return;
    const [agents, creds] = await Promise.all([
      api.all('/api/v1/agents', { zone: z }, 5000),
      api.get('/api/v1/credentials', { zone: z, global: true }),
    ]);
    if (!ctx.alive || zone.value !== z) return;
    const chosenAgent = agent.value;
    clear(agent).append(...agents.filter((a) => a.status !== 'retired' && a.status !== 'retiring')
      .map((a) => h('option', { value: a.id, selected: a.id === chosenAgent }, `${a.hostname} · ${a.status} · ${a.id.slice(0, 8)}`)));
    if (!agent.options.length) agent.append(h('option', { value: '' }, 'no agent in this zone'));
    const chosen = new Set([...credentials.selectedOptions].map((o) => o.value));
    clear(credentials).append(...creds.items.map((c) => h('option', { value: c.name, selected: chosen.has(c.name) },
      `${c.name} (${c.scope === 'zone' ? `zone ${c.zone}` : 'global'})${c.description ? ` — ${c.description}` : ''}`)));
    credentials.hidden = !creds.items.length;
    credentialsHint.textContent = creds.items.length
      ? 'Ctrl/Cmd-click to choose several. Each reaches the scripts as KLEVR_CRED_<NAME>.'
      : 'No credential this zone\'s tasks may use (create them under Credentials).';
  }
  function showTarget() {
    agentField.hidden = kind.value !== 'agent';
    selectorField.hidden = kind.value !== 'selector';
    allZonesField.hidden = kind.value !== 'selector';
  }
  kind.addEventListener('change', showTarget);
  zone.addEventListener('change', () => loadZoneThings().catch(() => {}));
  showTarget();

  // --- What: steps and recover steps.
  const steps = stepsEditor('step', commandList, 1);
  const recover = stepsEditor('recover step', commandList, 0);

  // --- Parameters.
  const params = paramsEditor();

  // --- When.
  const timeout = h('input', { type: 'number', name: 'timeout-seconds', min: 1, max: 604800, placeholder: '3600' });
  const runAt = h('input', { type: 'datetime-local', name: 'run-at', step: 1 });
  const deliverWithin = h('input', { type: 'number', name: 'deliver-within-seconds', min: 1, max: 2592000 });
  const recurring = h('input', { type: 'checkbox', name: 'recurring', id: 'recurring-box' });
  const cron = h('input', { name: 'cron', placeholder: '0 3 * * mon-fri', maxlength: 200 });
  const browserZone = (() => { try { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch { return 'UTC'; } })();
  const timeZone = h('input', { name: 'time-zone', value: browserZone, maxlength: 64 });
  const until = h('input', { type: 'datetime-local', name: 'until', step: 1 });
  const maxOccurrences = h('input', { type: 'number', name: 'max-occurrences', min: 1, max: 1000000 });
  const overlap = select([['skip', 'skip (not while a run of it is unfinished)'], ['queue', 'queue (fire anyway)']], 'skip', { name: 'overlap' });
  const catchUp = select([['none', 'none'], ['latest', 'latest missed occurrence'], ['all', 'all missed (up to the limit)']], 'none', { name: 'catch-up' });
  const catchUpLimit = h('input', { type: 'number', name: 'catch-up-limit', min: 1, max: 100, placeholder: '10' });
  const catchUpLimitField = field('Catch-up limit', catchUpLimit);
  const scheduleBox = h('div.schedule-box', { dataset: { part: 'schedule' } },
    h('div.row', field('Cron', cron, 'minute hour day-of-month month day-of-week'), field('Time zone', timeZone, 'IANA name; the browser\'s by default.')),
    h('div.row', field('Until', until, 'No occurrence after this (your local time).'), field('Max occurrences', maxOccurrences)),
    h('div.row', field('Overlap', overlap), field('Catch up after downtime', catchUp), catchUpLimitField));
  const showSchedule = () => {
    scheduleBox.hidden = !recurring.checked;
    catchUpLimitField.hidden = catchUp.value !== 'all';
    runAt.disabled = recurring.checked;
  };
  recurring.addEventListener('change', showSchedule);
  catchUp.addEventListener('change', showSchedule);
  showSchedule();

  // --- Rollout and callback.
  const maxConcurrency = h('input', { name: 'max-concurrency', placeholder: '2 or 10%', maxlength: 8 });
  const maxErrors = h('input', { name: 'max-errors', placeholder: '0 or 5%', maxlength: 8 });
  const callbackUrl = h('input', { type: 'url', name: 'callback-url', placeholder: 'https://ci.example.com/klevr-hook', maxlength: 2048 });

  const taskForm = form([
    h('fieldset', h('legend', 'Task'),
      field('Name', name, 'Optional.'),
      h('div.row', field('Zone', zone), field('Target', kind)),
      agentField, selectorField, allZonesField),
    h('fieldset', h('legend', 'Steps'), h('p.hint.muted', 'Run in order on each target agent; a step that fails ends the run (after the recover steps).'), steps.el),
    h('fieldset', h('legend', 'Parameters'), h('p.hint.muted', 'Each reaches the scripts as KLEVR_PARAM_<NAME> and in the JSON file $KLEVR_PARAMS_FILE.'), params.el),
    h('fieldset', h('legend', 'Credentials'), field('Credentials', credentials), credentialsHint),
    h('fieldset', h('legend', 'Timing'),
      h('div.row', field('Timeout (seconds)', timeout, 'Per run; 3600 by default.'), field('Deliver within (seconds)', deliverWithin, 'A run not started in time ends expired.')),
      field('Run at', runAt, 'Optional: the runs wait until then (your local time). Not with a schedule.'),
      h('div.field.inline', recurring, h('label', { for: 'recurring-box' }, 'Recurring (cron schedule)')),
      scheduleBox),
    h('fieldset', h('legend', 'Rollout'), h('p.hint.muted', 'For fan-outs: a count or a percentage of the task\'s runs.'),
      h('div.row', field('Max concurrency', maxConcurrency), field('Max errors', maxErrors, 'More errors than this stop the runs not started yet.'))),
    h('fieldset', h('legend', 'Recover steps'), h('p.hint.muted', 'Run when a step fails; they see KLEVR_FAILED_STEP and KLEVR_FAILED_REASON.'), recover.el),
    h('fieldset', h('legend', 'Callback'), field('Callback URL', callbackUrl, 'The task\'s run events are POSTed here, signed with a secret shown once after creation.')),
  ], async () => {
    const body = buildRequest();
    created(await api.post('/api/v1/tasks', body));
  }, 'Create task', { name: 'create-task' });
  formPane.append(taskForm);

  function buildRequest() {
    const body = { zone: zone.value, target: { kind: kind.value }, steps: steps.value() };
    if (name.value.trim()) body.name = name.value.trim();
    if (kind.value === 'agent') body.target.agentId = agent.value;
    if (kind.value === 'selector') {
      body.target.selector = selector.value.trim();
      if (allZones.checked) body.target.allZones = true;
    }
    const p = params.value();
    if (Object.keys(p).length) body.params = p;
    const creds = [...credentials.selectedOptions].map((o) => o.value);
    if (creds.length) body.credentials = creds;
    if (timeout.value !== '') body.timeoutSeconds = number(timeout.value);
    if (deliverWithin.value !== '') body.deliverWithinSeconds = number(deliverWithin.value);
    if (recurring.checked) {
      body.schedule = { cron: cron.value.trim(), timeZone: timeZone.value.trim() || 'UTC', overlap: overlap.value, catchUp: catchUp.value };
      if (until.value) body.schedule.until = epochMillis(until.value, 'Until');
      if (maxOccurrences.value !== '') body.schedule.maxOccurrences = number(maxOccurrences.value);
      if (catchUp.value === 'all' && catchUpLimit.value !== '') body.schedule.catchUpLimit = number(catchUpLimit.value);
    } else if (runAt.value) {
      body.runAt = epochMillis(runAt.value, 'Run at');
    }
    if (maxConcurrency.value.trim() || maxErrors.value.trim()) {
      body.rollout = {};
      if (maxConcurrency.value.trim()) body.rollout.maxConcurrency = maxConcurrency.value.trim();
      if (maxErrors.value.trim()) body.rollout.maxErrors = maxErrors.value.trim();
    }
    const r = recover.value();
    if (r.length) body.recover = r;
    if (callbackUrl.value.trim()) body.callbackUrl = callbackUrl.value.trim();
    return body;
  }

  // --- YAML.
  const yaml = h('textarea.yaml', { name: 'yaml', rows: 18, spellcheck: false, wrap: 'off', placeholder: yamlExample(zones[0] ? zones[0].name : 'lab') });
  yamlPane.append(
    h('p.muted', 'A TaskCreateRequest in YAML (or JSON), as ', h('code', 'klevr task create -f FILE'), ' reads it, with the API\'s field names. '
      + 'It is sent as it is; the manager checks it and refuses a misspelt field.'),
    form([field('Task (YAML)', yaml)], async () => {
      created(await api.postText('/api/v1/tasks', yaml.value, 'application/yaml'));
    }, 'Create task', { name: 'create-task-yaml' }));

  await loadZoneThings().catch(() => {});
}

function number(text) {
  const n = Number(text);
  return Number.isFinite(n) && String(text).trim() !== '' ? n : text;
}

// A datetime-local value (the browser's zone) as epoch ms; not a date: an error naming the field.
function epochMillis(value, label) {
  const ms = localMillis(value);
  if (ms === undefined) throw new Error(`${label}: not a date and time`);
  return ms;
}

function yamlExample(zone) {
  return `name: disk-report
zone: ${zone}
target: { kind: all }
steps:
  - name: df
    script: |
      df -h /
  - command: host.facts
params:
  THRESHOLD: "90"
timeoutSeconds: 600
schedule: { cron: "0 6 * * mon-fri", timeZone: Europe/Berlin }`;
}

// --- The steps editor (for steps and for recover steps): each step a script or a built-in command
// with a form generated from the command's parameter schema; add, remove, move up and down.
function stepsEditor(noun, commands, initial) {
  const list = h('ol.steps', { dataset: { part: noun === 'step' ? 'steps' : 'recover-steps' } });
  const items = [];
  const add = h('button', { type: 'button', dataset: { action: noun === 'step' ? 'add-step' : 'add-recover-step' } }, `Add ${noun}`);
  add.addEventListener('click', () => { const s = stepEditor(); items.push(s); redraw(); s.focus(); });
  const el = h('div.steps-editor', list, add);

  function redraw() {
    clear(list);
    items.forEach((item, i) => {
      item.setIndex(i, items.length, initial);
      list.append(item.el);
    });
  }
  function move(item, delta) {
    const i = items.indexOf(item);
    const j = i + delta;
    if (i < 0 || j < 0 || j >= items.length) return;
    [items[i], items[j]] = [items[j], items[i]];
    redraw();
    item.focusMove(delta);
  }
  function remove(item) {
    const i = items.indexOf(item);
    if (i >= 0) items.splice(i, 1);
    redraw();
    add.focus();
  }
  function stepEditor() {
    return makeStep(noun, commands, { move, remove });
  }
  for (let i = 0; i < initial; i += 1) items.push(stepEditor());
  redraw();
  return { el, value: () => items.map((item) => item.value()) };
}

function makeStep(noun, commands, { move, remove }) {
  const kindSelect = select([['script', 'Script (/bin/sh)'], ['command', 'Built-in command']], 'script', { name: 'step-kind' });
  const stepName = h('input', { name: 'step-name', maxlength: 200, placeholder: 'optional' });
  const script = h('textarea', { name: 'step-script', rows: 5, spellcheck: false, placeholder: 'echo "hello from $(hostname)"' });
  const command = select(commands.map((c) => [c.name, c.name]), commands[0] ? commands[0].name : '', { name: 'step-command' });
  const description = h('p.hint.muted');
  const argsBox = h('div.args');
  const stepTimeout = h('input', { type: 'number', name: 'step-timeout-seconds', min: 1, max: 604800, placeholder: 'the task\'s' });
  const title = h('h3.step-title');
  const up = h('button', { type: 'button', dataset: { action: 'move-step-up' }, title: `Move this ${noun} up` }, '↑ Up');
  const down = h('button', { type: 'button', dataset: { action: 'move-step-down' }, title: `Move this ${noun} down` }, '↓ Down');
  const del = h('button.danger', { type: 'button', dataset: { action: 'remove-step' } }, 'Remove');
  const scriptField = field('Script', script);
  const commandField = field('Command', command);
  let args = argsForm(null);

  const item = {
    el: null,
    setIndex(i, count, min) {
      title.textContent = `${noun[0].toUpperCase()}${noun.slice(1)} ${i + 1}`;
      up.disabled = i === 0;
      down.disabled = i === count - 1;
      del.disabled = count <= min;
      item.el.dataset.index = String(i);
    },
    focus() { kindSelect.focus(); },
    focusMove(delta) { (delta < 0 && !up.disabled ? up : !down.disabled ? down : up).focus(); },
    value() {
      const step = {};
      if (stepName.value.trim()) step.name = stepName.value.trim();
      if (kindSelect.value === 'script') step.script = script.value;
      else { step.command = command.value; step.args = args.value(); }
      if (stepTimeout.value !== '') step.timeoutSeconds = number(stepTimeout.value);
      return step;
    },
  };
  function showKind() {
    scriptField.hidden = kindSelect.value !== 'script';
    commandField.hidden = kindSelect.value !== 'command';
    argsBox.hidden = kindSelect.value !== 'command';
    description.hidden = kindSelect.value !== 'command';
  }
  function showCommand() {
    const chosen = commands.find((c) => c.name === command.value);
    description.textContent = chosen ? chosen.description : '';
    args = argsForm(chosen ? chosen.parameters : null);
    clear(argsBox).append(args.el);
  }
  kindSelect.addEventListener('change', showKind);
  command.addEventListener('change', showCommand);
  up.addEventListener('click', () => move(item, -1));
  down.addEventListener('click', () => move(item, 1));
  del.addEventListener('click', () => remove(item));
  item.el = h('li.step-editor', { dataset: { part: 'step' } },
    h('div.step-head', title, h('span.step-buttons', up, down, del)),
    h('div.row', field('Kind', kindSelect), field('Name', stepName), field('Timeout (seconds)', stepTimeout)),
    scriptField, commandField, description, argsBox);
  showCommand();
  showKind();
  return item;
}

// A form for a command's arguments from its parameter JSON schema: strings, integers, numbers,
// booleans and enums get inputs; a schema with anything else is edited as JSON.
function argsForm(schema) {
  const props = schema && schema.type === 'object' && schema.properties ? schema.properties : null;
  const simple = (p) => p && (Array.isArray(p.enum) || ['string', 'integer', 'number', 'boolean'].includes(p.type));
  if (!schema || !props || !Object.values(props).every(simple)) {
    const json = h('textarea.json-args', { name: 'step-args-json', rows: 4, spellcheck: false, value: '{}' });
    return {
      el: field('Arguments (JSON)', json, 'A JSON object, checked against the command\'s parameter schema by the manager.'),
      value: () => {
        const text = json.value.trim();
        if (!text) return {};
        try { return JSON.parse(text); } catch (error) { throw new Error(`Arguments (JSON): ${error.message}`); }
      },
    };
  }
  const names = Object.keys(props);
  if (!names.length) return { el: h('p.muted.no-args', 'This command takes no arguments.'), value: () => ({}) };
  const required = new Set(schema.required || []);
  const inputs = names.map((key) => {
    const p = props[key];
    const hintParts = [p.description, p.default !== undefined ? `Default: ${p.default}.` : null, required.has(key) ? null : 'Optional.'].filter(Boolean);
    let input;
    let read;
    if (Array.isArray(p.enum)) {
      input = select([...(required.has(key) ? [] : [['', p.default !== undefined ? `(default: ${p.default})` : '(not set)']]), ...p.enum.map((v) => [String(v), String(v)])], '', { name: `arg-${key}` });
      read = () => (input.value === '' ? undefined : p.enum.find((v) => String(v) === input.value));
    } else if (p.type === 'boolean') {
      input = select([['', p.default !== undefined ? `(default: ${p.default})` : '(not set)'], ['true', 'true'], ['false', 'false']], '', { name: `arg-${key}` });
      read = () => (input.value === '' ? undefined : input.value === 'true');
    } else if (p.type === 'integer' || p.type === 'number') {
      input = h('input', { type: 'number', name: `arg-${key}`, min: p.minimum, max: p.maximum, step: p.type === 'integer' ? 1 : 'any', placeholder: p.default !== undefined ? String(p.default) : '' });
      read = () => (input.value === '' ? undefined : number(input.value));
    } else {
      const long = (p.maxLength && p.maxLength > 4096) || p.contentEncoding;
      input = long ? h('textarea', { name: `arg-${key}`, rows: 3, spellcheck: false }) : h('input', { name: `arg-${key}`, placeholder: p.default !== undefined ? String(p.default) : '', maxlength: p.maxLength });
      read = () => (input.value === '' ? undefined : input.value);
    }
    if (required.has(key)) input.required = true;
    return { key, el: field(`${key}${required.has(key) ? ' *' : ''}`, input, hintParts.join(' ')), read };
  });
  return {
    el: h('div.args-form', inputs.map((i) => i.el)),
    value: () => Object.fromEntries(inputs.map((i) => [i.key, i.read()]).filter(([, v]) => v !== undefined)),
  };
}

// Key/value rows for the task's parameters.
function paramsEditor() {
  const rows = h('div.param-rows', { dataset: { part: 'params' } });
  const add = h('button', { type: 'button', dataset: { action: 'add-param' } }, 'Add parameter');
  const entries = [];
  function addRow() {
    const key = h('input', { name: 'param-name', placeholder: 'NAME', maxlength: 64 });
    const value = h('input', { name: 'param-value', placeholder: 'value' });
    const remove = h('button', { type: 'button', dataset: { action: 'remove-param' } }, 'Remove');
    const row = h('div.param-row', field('Name', key), field('Value', value), remove);
    const entry = { row, key, value };
    remove.addEventListener('click', () => { entries.splice(entries.indexOf(entry), 1); row.remove(); add.focus(); });
    entries.push(entry);
    rows.append(row);
    return key;
  }
  add.addEventListener('click', () => addRow().focus());
  return {
    el: h('div', rows, add),
    value: () => Object.fromEntries(entries.filter((e) => e.key.value.trim()).map((e) => [e.key.value.trim(), e.value.value])),
  };
}

