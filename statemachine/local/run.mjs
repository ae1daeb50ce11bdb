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
// Prints one JSON line: {status, output | error, cause, events}.
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

function approvalOverride(stateName) {
  return async (input) => {
    const token = `${execName}/${stateName}/${randomUUID()}`;
    const payload = { ...(input.Payload ?? {}), taskToken: token };
    const fn = encodeURIComponent(input.FunctionName);
    const r = await fetch(`${endpoint}/2015-03-31/functions/${fn}/invocations`, { method: 'POST', body: JSON.stringify(payload) });
    const body = await r.text();
    if (!r.ok) throw named(`Lambda.${r.headers.get('x-amzn-errortype') ?? 'ServiceException'}`, body);
    if (r.headers.get('x-amz-function-error')) {
      const e = JSON.parse(body);
      throw named(e.errorType, `${e.errorType}: ${e.errorMessage}`);
    }
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
  if (st.Type === 'Task' && String(st.Resource).endsWith('.waitForTaskToken')) {
    taskResourceLocalHandlers[name] = approvalOverride(name);
  }
}

const sm = new StateMachine(definition);
const execution = sm.run(cfg.input, {
  overrides: { taskResourceLocalHandlers },
  context: {
    Execution: { Id: `arn:aws:states:us-east-1:000000000000:execution:kmig-cutover:${execName}`, Name: execName },
    Task: { Token: 'replaced-per-task-by-the-local-run' },
  },
});

const events = [];
const collecting = (async () => {
  for await (const ev of execution.eventLogs) {
    const e = { type: ev.type, timestamp: ev.timestamp };
    if (ev.state) { e.state = ev.state.name; e.stateType = ev.state.type; }
    if (ev.Error !== undefined) { e.error = ev.Error; e.cause = typeof ev.Cause === 'string' ? ev.Cause : JSON.stringify(ev.Cause); }
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
out.events = events;
process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));
