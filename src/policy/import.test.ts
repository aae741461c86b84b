/**
 * @module policy/import.test
 * Registry import: zi-csv (windows-1251 bytes made here with iconv-lite, masks, subnets, URL-only
 * rows, ';' inside URLs), domains, hosts, adblock, cidr; malformed lines stop the import with their
 * position and nothing is written; the output loads as a policy and matches as documented.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import iconv from 'iconv-lite';
import { parseZi } from './import/zi.js';
import { parseAdblock, parseCidrList, parseDomains, parseHosts } from './import/formats.js';
import { ImportError } from './import/types.js';
import { loadPolicyFile } from './load.js';
import { compilePolicy } from './compile.js';
import { tempDir, flow } from './testutil.js';
import { runCli } from './clitest.js';

const ZI = [
  'Updated: 2019-06-06 12:00:00 +0000',
  '1.2.3.4;example.com;http://example.com/page;Генпрокуратура;27-31-2018/Ид2971-18;2018-04-16',
  '5.6.7.8 | 9.9.9.0/24;*.masked.example;;Роскомнадзор;ФНС-123;2019-01-02',
  ';;https://пример.рф/path | http://second.example/a;Суд;2-123/2019;2019-02-03',
  '10.0.0.0/8 | 2001:db8::/32;;;МВД;abc;2019-03-04',
  ';;http://semi.example/x;y=1;Суд;1;2019-01-01',
  '192.0.2.7;;;ФСКН;7;2019-05-05',
].join('\r\n');

test('zi-csv: header, exact, masks → subdomains, URL-only hosts, address-only rows, provenance', () => {
  const text = iconv.decode(iconv.encode(ZI, 'win1251'), 'win1251');
  const imp = parseZi(text, 'dump.csv');
  assert.equal(imp.updated, '2019-06-06 12:00:00 +0000');
  assert.equal(imp.rows, 6);
  assert.deepEqual(
    [...imp.exact.keys()],
    ['example.com', 'xn--e1afmkfd.xn--p1ai', 'second.example', 'semi.example'],
  );
  assert.deepEqual([...imp.subdomains.keys()], ['masked.example']);
  assert.deepEqual([...imp.cidr.keys()], ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7/32']);
  assert.deepEqual(imp.exact.get('example.com'), {
    line: 2,
    authority: 'Генпрокуратура',
    reference: '27-31-2018/Ид2971-18',
    decided: '2018-04-16',
  });
  assert.equal(imp.notes['addresses of domain/URL rows (resolutions, not imported)'], 3);
});

test('zi-csv: malformed lines stop the import with their position', () => {
  const bad: [string, number, number, RegExp][] = [
    ['Updated: x\nfoo;bar\n', 2, 1, /6 ';'-separated fields/],
    ['Updated: x\n;ok.example;;a;b;2019-01-01\n1.2.3.999;;;a;b;2019-01-01\n', 3, 1, /invalid address/],
    ['Updated: x\n1.1.1.1 | 300.1.1.1;;;a;b;2019-01-01\n', 2, 11, /invalid address/],
    ['Updated: x\n;bad name.example;;a;b;2019-01-01\n', 2, 2, /invalid domain/],
    ['Updated: x\n;;not a url;a;b;2019-01-01\n', 2, 3, /invalid URL/],
    ['Updated: x\n;ok.example;;a;b;01.02.2019\n', 2, 18, /invalid decision date/],
    ['1.2.3.4;a.example;;a;b;2019-01-01\n', 1, 1, /Updated/],
  ];
  for (const [text, line, col, re] of bad) {
    assert.throws(
      () => parseZi(text, 'd.csv'),
      (e: unknown) => e instanceof ImportError && e.line === line && e.column === col && re.test(e.detail),
      `${JSON.stringify(text)}`,
    );
  }
});

test('domains, hosts, adblock, cidr lists', () => {
  const d = parseDomains('# c\nA.example\n*.b.example\n  c.example  # x\n', 'd.txt', { match: 'suffix' });
  assert.deepEqual(
    [[...d.suffix.keys()], [...d.subdomains.keys()]],
    [['a.example', 'c.example'], ['b.example']],
  );
  assert.throws(
    () => parseDomains('ok.example\n0.0.0.0 x.example\n', 'd.txt'),
    (e: unknown) => e instanceof ImportError && e.line === 2 && /hosts/.test(e.detail),
  );
  const h = parseHosts(
    '127.0.0.1 localhost\n0.0.0.0 ads.example tracker.example # c\n::1 ip6-localhost\n',
    'hosts',
  );
  assert.deepEqual([...h.exact.keys()], ['ads.example', 'tracker.example']);
  assert.throws(
    () => parseHosts('0.0.0.0 ok.example\nads.example\n', 'hosts'),
    (e: unknown) => e instanceof ImportError && e.line === 2,
  );
  const a = parseAdblock('[Adblock Plus 2.0]\n! comment\n||ads.example^\n||Track.Example^|\n', 'a.txt');
  assert.deepEqual([...a.suffix.keys()], ['ads.example', 'track.example']);
  assert.throws(
    () => parseAdblock('||ok.example^\n||x.example^$third-party\n', 'a.txt'),
    (e: unknown) => e instanceof ImportError && e.line === 2 && /unsupported/.test(e.detail),
  );
  const a2 = parseAdblock('||ok.example^\n##.banner\n@@||x.example^\n', 'a.txt', { skipUnsupported: true });
  assert.deepEqual(
    [[...a2.suffix.keys()], a2.notes['unsupported adblock rules skipped']],
    [['ok.example'], 2],
  );
  const c = parseCidrList('10.0.0.0/8\n# x\n2001:db8::/48 # y\n192.0.2.1\n', 'c.txt');
  assert.deepEqual([...c.cidr.keys()], ['10.0.0.0/8', '2001:db8::/48', '192.0.2.1/32']);
  assert.throws(
    () => parseCidrList('10.0.0.0/8\n10.0.0.1/8\n', 'c.txt'),
    (e: unknown) => e instanceof ImportError && e.line === 2 && /host bits/.test(e.detail),
  );
});

test('CLI: zi-csv import writes a loadable policy with provenance; it matches as documented', async () => {
  const t = tempDir();
  try {
    const src = join(t.dir, 'dump.csv');
    writeFileSync(src, iconv.encode(ZI, 'win1251'));
    const out = join(t.dir, 'reg');
    const r = await runCli([
      'registry',
      'import',
      '--format',
      'zi-csv',
      '--action',
      'throttle',
      '--rate',
      '128kbit',
      '--out',
      out,
      src,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(join(out, 'lists')).sort(), [
      'cidr.txt',
      'exact.txt',
      'provenance.tsv',
      'subdomains.txt',
    ]);
    const p = await loadPolicyFile(join(out, 'policy.yaml'));
    assert.deepEqual(
      p.rules.map((x) => x.id),
      ['registry-exact', 'registry-subdomains', 'registry-ip'],
    );
    assert.equal(p.rules[0].provenance!.updated, '2019-06-06 12:00:00 +0000');
    assert.match(String(p.rules[0].provenance!.sha256), /^[0-9a-f]{64}$/);
    assert.match(
      readFileSync(join(out, 'lists', 'provenance.tsv'), 'utf8'),
      /exact\texample\.com\t2\tГенпрокуратура\t27-31-2018\/Ид2971-18\t2018-04-16/,
    );
    const c = compilePolicy(p);
    const r2 = (i: Parameters<typeof flow>[0]) => c.match(flow(i)).rule_id;
    assert.equal(r2({ host: 'example.com' }), 'registry-exact');
    assert.equal(r2({ host: 'www.example.com' }), null);
    assert.equal(r2({ host: 'a.masked.example' }), 'registry-subdomains');
    assert.equal(r2({ host: 'masked.example' }), null);
    assert.equal(r2({ host: 'xn--e1afmkfd.xn--p1ai' }), 'registry-exact');
    assert.equal(r2({ host: null, dest_ip: '10.20.30.40' }), 'registry-ip');
    assert.equal(r2({ host: null, dest_ip: '1.2.3.4' }), null); // resolution of a domain row: not imported
    assert.equal(c.match(flow({ host: 'example.com' })).rate_bps, 128000);

    // existing output without --force: refused, untouched
    const r3 = await runCli(['registry', 'import', '--format', 'zi-csv', '--out', out, src]);
    assert.equal(r3.code, 1);
    assert.match(r3.stderr, /exists/);
    const r4 = await runCli(['registry', 'import', '--format', 'zi-csv', '--force', '--out', out, src]);
    assert.equal(r4.code, 0, r4.stderr);
    assert.equal((await loadPolicyFile(join(out, 'policy.yaml'))).rules[0].action, 'block');
  } finally {
    t.cleanup();
  }
});

test('CLI: a malformed line stops the import, names the line, writes nothing', async () => {
  const t = tempDir();
  try {
    const src = join(t.dir, 'dump.csv');
    writeFileSync(src, iconv.encode(ZI + '\r\n1.2.3.4/33;;;a;b;2019-01-01\r\n', 'win1251'));
    const out = join(t.dir, 'reg');
    const r = await runCli(['registry', 'import', '--format', 'zi-csv', '--out', out, src]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /dump\.csv:8:1: invalid address or subnet/);
    assert.match(r.stderr, /nothing was written/);
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(t.dir), ['dump.csv']);
    // an existing output is left as it was
    mkdirSync(out);
    writeFileSync(join(out, 'keep'), 'x');
    const r2 = await runCli(['registry', 'import', '--format', 'zi-csv', '--force', '--out', out, src]);
    assert.equal(r2.code, 1);
    assert.deepEqual(readdirSync(out), ['keep']);
    // usage errors
    assert.equal((await runCli(['registry', 'import', '--format', 'nope', '--out', out, src])).code, 2);
    assert.equal(
      (await runCli(['registry', 'import', '--format', 'cidr', '--action', 'throttle', '--out', out, src]))
        .code,
      2,
    );
  } finally {
    t.cleanup();
  }
});

test('CLI: adblock and cidr imports', async () => {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, 'a.txt'), '! list\n||ads.example^\n||track.example^\n');
    writeFileSync(join(t.dir, 'c.txt'), '203.0.113.0/24\n2001:db8::/32\n');
    const r = await runCli([
      'registry',
      'import',
      '--format',
      'adblock',
      '--out',
      join(t.dir, 'a'),
      join(t.dir, 'a.txt'),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const c1 = compilePolicy(await loadPolicyFile(join(t.dir, 'a', 'policy.yaml')));
    assert.equal(c1.match(flow({ host: 'x.ads.example' })).rule_id, 'registry-suffix');
    const r2 = await runCli([
      'registry',
      'import',
      '--format',
      'cidr',
      '--action',
      'block',
      '--method',
      'drop',
      '--out',
      join(t.dir, 'c'),
      join(t.dir, 'c.txt'),
    ]);
    assert.equal(r2.code, 0, r2.stderr);
    const c2 = compilePolicy(await loadPolicyFile(join(t.dir, 'c', 'policy.yaml')));
    assert.deepEqual(c2.match(flow({ dest_ip: '2001:db8::9' })), {
      rule_id: 'registry-ip',
      action: 'block',
      method: 'drop',
    });
  } finally {
    t.cleanup();
  }
});
