// Drive the PhoneCallEvents SOAP service with node-soap.
//
// Run by TestE2ESOAPClients (clients_e2e_test.go) as `node node_client.js`
// with NODE_PATH set to <repo>/.ci/node/node_modules (where .ci/run installs
// soap@1.13.0). Everything comes from the environment: CE_WSDL_URL,
// CE_TOKEN_URL, CE_CLIENT_ID and CE_CLIENT_SECRET (admin),
// CE_SCOPED_CLIENT_ID and CE_SCOPED_CLIENT_SECRET (scope org:0003),
// CE_EXTENSION, CE_FOREIGN_EXTENSION and optionally CE_RAW_DIR, where every
// raw response envelope is saved for schema validation.
//
// Authenticates with an access token from the token endpoint in the
// userCredentials header. Checks every observation itself, prints one JSON
// object on stdout and exits 1 on the first mismatch.
'use strict';

const fs = require('fs');
const path = require('path');
const soap = require('soap');

const NS = 'urn:callevents:phonecallevents:1';
const CLIENT = 'node';
const env = process.env;
const EXT = env.CE_EXTENSION;
const FOREIGN = env.CE_FOREIGN_EXTENSION;
const RAW_DIR = env.CE_RAW_DIR || '';
const HOOK = 'https://hooks.example.com/' + CLIENT;
const SECRET = 'node-webhook-secret-0123456789';

const report = { client: CLIENT, extension: EXT };
let saved = 0; // responses seen, numbering the files in CE_RAW_DIR

class Mismatch extends Error {}

function expect(cond, msg) {
  if (!cond) throw new Mismatch(msg);
}

const show = (v) => JSON.stringify(v);

async function token(clientId, secret) {
  const res = await fetch(env.CE_TOKEN_URL, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret }),
  });
  const body = await res.json();
  expect(res.status === 200, `token endpoint: HTTP ${res.status} ${show(body)}`);
  expect(body.token_type === 'Bearer' && body.expires_in === 7200, `token ${show(body)}`);
  expect(typeof body.access_token === 'string' && body.access_token !== '', 'no access_token');
  return body.access_token;
}

// A node-soap client bound to the SOAP 1.1 port, authenticated with a token.
class Session {
  static async open(accessToken) {
    const s = new Session();
    s.client = await soap.createClientAsync(env.CE_WSDL_URL);
    s.client.addSoapHeader({ userCredentials: { accessToken } }, 'userCredentials', 'tns', NS);
    s.port = s.client.PhoneCallEvents.PhoneCallEventsPort;
    return s;
  }

  call(op, args) {
    return new Promise((resolve, reject) => {
      this.port[op](args, (err, result, rawResponse) => {
        this.save(op, err ? err.body : rawResponse);
        if (err) reject(err);
        else resolve(result);
      });
    });
  }

  save(op, raw) {
    saved++;
    if (!RAW_DIR || typeof raw !== 'string' || raw === '') return;
    const name = `${CLIENT}-soap11-${String(saved).padStart(2, '0')}-${op}.xml`;
    fs.writeFileSync(path.join(RAW_DIR, name), raw);
  }

  // fault calls op expecting a SOAP fault and returns what node-soap exposes.
  async fault(op, args) {
    try {
      await this.call(op, args);
    } catch (err) {
      expect(!(err instanceof Mismatch), err.message);
      const f = err.root && err.root.Envelope && err.root.Envelope.Body && err.root.Envelope.Body.Fault;
      expect(f && f.detail && f.detail.serviceFault, `${op}: no Fault.detail.serviceFault in ${err}`);
      return {
        code: Number(f.detail.serviceFault.code),
        message: f.detail.serviceFault.message,
        faultcode: f.faultcode,
        faultstring: f.faultstring,
      };
    }
    throw new Mismatch(`${op}: expected a SOAP fault, got a response`);
  }
}

const eventOut = (ev) => ({
  id: ev.id, extension: ev.extension, type: ev.type, method: ev.method, url: ev.url,
  status: ev.status, note: ev.note, hasSecret: ev.hasSecret,
  modified: ev.modified instanceof Date ? ev.modified.toISOString() : ev.modified,
});
// node-soap gives an array for maxOccurs="unbounded" elements, and nothing when there are none.
const list = (v) => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);
const ids = (r) => list(r.phoneCallEvent).map((e) => e.id);
const sorted = (a) => [...a].sort();

async function main() {
  const admin = await Session.open(await token(env.CE_CLIENT_ID, env.CE_CLIENT_SECRET));

  // 1. Add three Call Events.
  const adds = [
    { extension: EXT, type: 0, url: `${HOOK}/dial-in` },
    { extension: EXT, type: 2, url: `${HOOK}/hangup`, method: 1, note: 'hangup note <&> \u00e9\u2713', secret: SECRET },
    { extension: EXT, type: 3, url: `${HOOK}/answer-in?x=1&y=2`, method: 0, status: 1 },
  ];
  const added = [];
  for (const a of adds) {
    const r = await admin.call('AddPhoneCallEvent', a);
    expect(r.result === 'success', `Add result ${show(r)}`);
    const ev = eventOut(r.phoneCallEvent);
    expect(/^[A-Za-z0-9]{30}$/.test(ev.id), `Add id ${show(ev)}`);
    expect(ev.extension === EXT && ev.type === a.type && ev.url === a.url, `Add echoed ${show(ev)}`);
    expect(ev.method === (a.method || 0) && ev.status === 1, `Add defaults ${show(ev)}`);
    expect(ev.note === (a.note || ''), `Add note ${show(ev)}`);
    expect(ev.hasSecret === ('secret' in a), `Add hasSecret ${show(ev)}`);
    expect(ev.modified, `Add modified ${show(ev)}`);
    added.push(ev);
  }
  const idList = added.map((e) => e.id);
  expect(new Set(idList).size === 3, `ids not distinct ${show(idList)}`);
  report.ids = idList;
  report.hasSecret = added.map((e) => e.hasSecret);
  report.added = added;

  // 2. Get with paging and filters.
  const p1 = await admin.call('GetPhoneCallEvents', { extension: EXT, startIndex: 0, count: 2 });
  const p2 = await admin.call('GetPhoneCallEvents', { extension: EXT, startIndex: 2, count: 2 });
  report.pages = [
    { count: ids(p1).length, total: p1.totalResults, ids: ids(p1) },
    { count: ids(p2).length, total: p2.totalResults, ids: ids(p2) },
  ];
  expect(ids(p1).length === 2 && p1.totalResults === 3, `page 1 ${show(report.pages[0])}`);
  expect(ids(p2).length === 1 && p2.totalResults === 3, `page 2 ${show(report.pages[1])}`);
  expect(show(sorted([...ids(p1), ...ids(p2)])) === show(sorted(idList)), `pages ${show(report.pages)} added ${show(idList)}`);
  const byType = await admin.call('GetPhoneCallEvents', { extension: EXT, type: 2 });
  report.byType = { total: byType.totalResults, ids: ids(byType) };
  expect(show(report.byType) === show({ total: 1, ids: [idList[1]] }), `by type ${show(report.byType)}`);
  const byID = await admin.call('GetPhoneCallEvents', { extension: EXT, id: idList[0] });
  report.byId = { total: byID.totalResults, ids: ids(byID) };
  expect(show(report.byId) === show({ total: 1, ids: [idList[0]] }), `by id ${show(report.byId)}`);
  const got = eventOut(list(byID.phoneCallEvent)[0]);
  expect(got.url === adds[0].url && got.type === 0 && got.hasSecret === false, `by id event ${show(got)}`);

  // 3. Edit (url, note) and SetPhoneCallEventStatus, then read back.
  const newURL = `${HOOK}/hangup-v2`;
  const newNote = 'edited by node';
  let r = await admin.call('EditPhoneCallEvent', { extension: EXT, type: 2, id: idList[1], url: newURL, note: newNote });
  expect(r.result === 'success', `Edit result ${show(r)}`);
  r = await admin.call('SetPhoneCallEventStatus', { extension: EXT, type: 3, id: idList[2], status: 0 });
  expect(r.result === 'success' && r.phoneCallEvent.status === 0, `SetStatus ${show(r)}`);
  const e1 = eventOut(list((await admin.call('GetPhoneCallEvents', { extension: EXT, id: idList[1] })).phoneCallEvent)[0]);
  const e2 = eventOut(list((await admin.call('GetPhoneCallEvents', { extension: EXT, id: idList[2] })).phoneCallEvent)[0]);
  report.edited = e1;
  report.statusSet = e2;
  expect(e1.url === newURL && e1.note === newNote, `edit read back ${show(e1)}`);
  expect(e1.method === 1 && e1.hasSecret === true, `edit kept method/secret ${show(e1)}`);
  expect(e2.status === 0 && e2.url === adds[2].url, `status read back ${show(e2)}`);

  // 4. Delete by id, by type only, then all.
  const d1 = await admin.call('DelPhoneCallEvent', { extension: EXT, id: idList[0] });
  const d2 = await admin.call('DelPhoneCallEvent', { extension: EXT, type: 2 });
  const d3 = await admin.call('DelPhoneCallEvent', { extension: EXT });
  report.deleted = { byId: list(d1.deletedId), byType: list(d2.deletedId), all: list(d3.deletedId) };
  expect(d1.result === 'success' && d2.result === 'success' && d3.result === 'success', 'Del results');
  expect(show(report.deleted) === show({ byId: [idList[0]], byType: [idList[1]], all: [idList[2]] }), `deleted ${show(report.deleted)}`);
  const final = await admin.call('GetPhoneCallEvents', { extension: EXT });
  report.finalTotal = final.totalResults;
  expect(final.totalResults === 0 && ids(final).length === 0, `final ${show(final)}`);

  // 5. Faults, read through the error's parsed envelope (err.root).
  const faults = { extensionInvalid: await admin.fault('AddPhoneCallEvent', { extension: 'abc', type: 0, url: `${HOOK}/x` }) };
  const scoped = await Session.open(await token(env.CE_SCOPED_CLIENT_ID, env.CE_SCOPED_CLIENT_SECRET));
  report.scopedOwnTotal = (await scoped.call('GetPhoneCallEvents', { extension: EXT })).totalResults;
  faults.outOfScope = await scoped.fault('AddPhoneCallEvent', { extension: FOREIGN, type: 0, url: `${HOOK}/x` });
  faults.badCredentials = await (await Session.open('not-a-valid-token')).fault('GetPhoneCallEvents', { extension: EXT });
  report.faults = faults;
  for (const [name, code] of [['extensionInvalid', 254], ['outOfScope', 103], ['badCredentials', 100]]) {
    const f = faults[name];
    expect(f.code === code, `${name} fault ${show(f)}`);
    expect(/(^|:)Client$/.test(f.faultcode), `${name} faultcode ${show(f)}`);
    expect(typeof f.faultstring === 'string' && f.faultstring !== '', `${name} faultstring ${show(f)}`);
  }
}

main().then(
  () => {
    console.log(JSON.stringify(report));
  },
  (err) => {
    const msg = err instanceof Mismatch ? err.message : `unexpected error: ${err && err.stack ? err.stack : err}` +
      (err && err.body ? `\nresponse body: ${String(err.body).slice(0, 2000)}` : '');
    process.stderr.write(`node_client: ${msg}\n`);
    report.error = msg;
    console.log(JSON.stringify(report));
    process.exitCode = 1;
  },
);
