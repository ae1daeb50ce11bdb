// Runs statemachine/cutover.asl.json under aws-local-stepfunctions for a
// local run (see local/cutoverrun). Usage: node run.mjs <config.json>
//
// config: {definition, substitutions: {Name: value}, input, endpoint,
//          executionName}
// Lambda tasks go through the AWS SDK to AWS_ENDPOINT_URL_LAMBDA. Tasks
// whose resource ends in .waitForTaskToken (approval hooks) are run by an
// override that does what Step Functions does: it invokes the function
// named in Parameters.FunctionName with Parameters.Payload, $$.Task.Token
// replaced by a fresh token, then waits until the local run resolves that
// token at the endpoint (SendTaskSuccess / SendTaskFailure).
// Every other Lambda task is run by an override too, which invokes the
// function at the endpoint the way the Lambda integration does, so that it
// can enforce Step Functions' payload limit: a task input (after
// Parameters), a task result or a state output over 256 KiB of UTF-8 JSON
// fails the execution with States.DataLimitExceeded, which no Catch or
// Retry handles (not even States.ALL). The function is never invoked with
// an input over the limit, and nothing runs after the failing state.
// A Task whose TimeoutSeconds pass fails with States.Timeout (the
// interpreter enforces it, overrides included); the invocation it started
// goes on at the endpoint, as a Lambda invocation does on AWS.
// Prints one JSON line: {status, output | error, cause, events,
// largestState: {state, bytes}}.
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { StateMachine } from 'aws-local-stepfunctions';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let text = readFileSync(cfg.definition, 'utf8');
for (const [k, v] of Object.entries(cfg.substitutions ?? {})) text = text.replaceAll('${' + k + '}', v);
const definition = JSON.parse(text);
const endpoint = cfg.endpoint.replace(/\/$/, '');
const execName = cfg.executionName ?? randomUUID();

function named(name, message) {
  const e = new Error(message ?? name);
  e.name = name || 'States.TaskFailed';
  return e;
}

// Step Functions' maximum input or output size for a task, state or
// execution.
const LIMIT = 256 * 1024;
const bytes = (v) => Buffer.byteLength(JSON.stringify(v ?? null), 'utf8');
let dataLimit = null;
let largest = { state: '', bytes: 0 };
let execution;

function measure(state, n) {
  if (n > largest.bytes) largest = { state, bytes: n };
}

// overLimit ends the run with States.DataLimitExceeded: it aborts the
// interpreter and never settles, so the state that exceeded the limit
// neither fails into a Catch nor continues.
function overLimit(state, what, n) {
  if (!dataLimit) {
    dataLimit = { state, cause: `The ${what} of state ${state} is ${n} bytes, over the ${LIMIT}-byte limit (256 KiB).` };
  }
  execution?.abort();
  return new Promise(() => {});
}

function checked(stateName, f) {
  return async (input) => {
    const n = bytes(input);
    measure(stateName, n);
    if (n > LIMIT) return overLimit(stateName, 'task input', n);
    const out = await f(input);
    const m = bytes(out);
    measure(stateName, m);
    if (m > LIMIT) return overLimit(stateName, 'task result', m);
    return out;
  };
}

// invoke calls a function at the endpoint the way the Lambda integration
// does: an API error becomes Lambda.<type>, a function error its
// errorType.
async function invoke(functionName, payload) {
  const fn = encodeURIComponent(functionName);
  const r = await fetch(`${endpoint}/2015-03-31/functions/${fn}/invocations`, { method: 'POST', body: JSON.stringify(payload) });
  const body = await r.text();
  if (!r.ok) throw named(`Lambda.${r.headers.get('x-amzn-errortype') ?? 'ServiceException'}`, body);
  if (r.headers.get('x-amz-function-error')) {
    const e = JSON.parse(body);
    throw named(e.errorType, `${e.errorType}: ${e.errorMessage}`);
  }
  return body === '' ? null : JSON.parse(body);
}

function lambdaOverride(resource) {
  return (input) => invoke(resource, input);
}

function approvalOverride(stateName) {
  return async (input) => {
    const token = `${execName}/${stateName}/${randomUUID()}`;
    await invoke(input.FunctionName, { ...(input.Payload ?? {}), taskToken: token });
    for (;;) {
      const w = await fetch(`${endpoint}/local/task-tokens/${encodeURIComponent(token)}/wait`, { method: 'POST' });
      const res = await w.json();
      if (res.status === 'pending') continue;
      if (res.status === 'success') return res.output ?? {};
      throw named(res.error, res.cause);
    }
  };
}

const taskResourceLocalHandlers = {};
for (const [name, st] of Object.entries(definition.States)) {
  if (st.Type !== 'Task') continue;
  if (String(st.Resource).endsWith('.waitForTaskToken')) {
    taskResourceLocalHandlers[name] = checked(name, approvalOverride(name));
  } else if (String(st.Resource).startsWith('arn:aws:lambda:')) {
    taskResourceLocalHandlers[name] = checked(name, lambdaOverride(st.Resource));
  }
}

const sm = new StateMachine(definition);
if (bytes(cfg.input) > LIMIT) {
  process.stdout.write(JSON.stringify({ status: 'FAILED', error: 'States.DataLimitExceeded', cause: 'the execution input is over 256 KiB', events: [] }) + '\n', () => process.exit(0));
  await new Promise(() => {});
}
execution = sm.run(cfg.input, {
  overrides: { taskResourceLocalHandlers },
  context: {
    Execution: { Id: `arn:aws:states:us-east-1:000000000000:execution:kmig-cutover:${execName}`, Name: execName },
    Task: { Token: 'replaced-per-task-by-the-local-run' },
    // The interpreter does not set $$.State; Step Functions sets
    // $$.State.EnteredTime to when the state was entered. Read when a
    // Task's Parameters are evaluated, this is that moment (or, on a retry,
    // the retry's), which is never later than when its invocation starts.
    State: { get EnteredTime() { return new Date().toISOString(); } },
  },
});

const events = [];
const collecting = (async () => {
  for await (const ev of execution.eventLogs) {
    const e = { type: ev.type, timestamp: ev.timestamp };
    if (ev.state) { e.state = ev.state.name; e.stateType = ev.state.type; }
    if (ev.Error !== undefined) { e.error = ev.Error; e.cause = typeof ev.Cause === 'string' ? ev.Cause : JSON.stringify(ev.Cause); }
    if (ev.type === 'StateExited' && ev.state) {
      // A state's output (after ResultSelector, ResultPath and
      // OutputPath, or a Catch's ResultPath) is limited too.
      const n = bytes(ev.state.output);
      measure(ev.state.name, n);
      if (n > LIMIT && !dataLimit) {
        overLimit(ev.state.name, 'output', n);
        // On AWS nothing follows the state whose output is over the
        // limit; here the interpreter may have moved on before the abort
        // (only into states without side effects: every task checks its
        // own input), so its later events are dropped.
        dataLimit.events = events.length + 1;
      }
    }
    events.push(e);
  }
})();

let out;
try {
  const output = await execution.result;
  out = { status: 'SUCCEEDED', output };
} catch (err) {
  const c = err.cause ?? err;
  out = { status: 'FAILED', error: c.name, cause: c.message };
}
await Promise.race([collecting, new Promise((r) => setTimeout(r, 1000))]);
const failed = events.find((e) => e.type === 'ExecutionFailed');
if (failed) { out.error = failed.error; out.cause = failed.cause; }
if (dataLimit) {
  if (dataLimit.events !== undefined) events.length = dataLimit.events;
  out = { status: 'FAILED', error: 'States.DataLimitExceeded', cause: dataLimit.cause };
  events.push({ type: 'ExecutionFailed', timestamp: Date.now(), state: dataLimit.state, error: out.error, cause: out.cause });
}
out.events = events;
out.largestState = largest;
process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));
