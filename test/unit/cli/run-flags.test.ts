import { expect } from 'chai';
import { DEFAULT_LIMITS } from '../../../src/api/limits.js';
import { limitsFromFlags, shardOwnershipFromFlags, type RunFlags } from '../../../src/cli/commands/run.js';
import { DEFAULT_SHARD_COUNT, MAX_SHARD_COUNT } from '../../../src/sharding/ownership.js';
import { buildProgram } from '../../../src/cli/main.js';
import { captureIo } from '../helpers/index.js';

/** The flags `secretsync run` parses from argv and env, without running the operator. */
async function parseRun(args: string[], env: Record<string, string> = {}): Promise<RunFlags> {
  const io = captureIo();
  const program = buildProgram(io);
  const run = program.commands.find((c) => c.name() === 'run');
  if (!run) throw new Error('no run command');
  let parsed: RunFlags | undefined;
  run.action((flags: RunFlags) => {
    parsed = flags;
  });
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    await program.parseAsync(['node', 'secretsync', 'run', ...args]);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  if (!parsed) throw new Error(`run did not parse: ${io.errLines.join(' ')}`);
  return parsed;
}

describe('secretsync run --max-* flags', () => {
  it('default to DEFAULT_LIMITS', async () => {
    expect(limitsFromFlags(await parseRun([]))).to.deep.equal(DEFAULT_LIMITS);
  });

  it('are read from the flags and from SECRETSYNC_ environment variables', async () => {
    const flags = await parseRun(
      ['--max-template-bytes', '1024', '--max-secret-bytes', '2048', '--max-keys-per-secret', '10'],
      { SECRETSYNC_MAX_FIND_ENTRIES: '20', SECRETSYNC_MAX_VALUE_BYTES: '4096' },
    );
    expect(limitsFromFlags(flags)).to.deep.equal({
      maxTemplateBytes: 1024,
      maxSecretBytes: 2048,
      maxKeysPerSecret: 10,
      maxFindEntries: 20,
      maxValueBytes: 4096,
    });
  });

  for (const bad of ['0', '-1', '1.5', 'lots'])
    it(`refuse ${bad}: a positive integer is required`, async () => {
      let error: unknown;
      try {
        await parseRun(['--max-find-entries', bad]);
      } catch (err) {
        error = err;
      }
      expect(String(error)).to.include(`--max-find-entries must be a positive integer, got "${bad}"`);
    });
});

describe('secretsync run --events-ibm-en-secret', () => {
  it('is off (empty) by default, and read from the flag or SECRETSYNC_EVENTS_IBM_EN_SECRET', async () => {
    expect((await parseRun([])).eventsIbmEnSecret).to.equal('');
    expect((await parseRun(['--events-ibm-en-secret', 'en-token'])).eventsIbmEnSecret).to.equal('en-token');
    expect((await parseRun([], { SECRETSYNC_EVENTS_IBM_EN_SECRET: 'from-env' })).eventsIbmEnSecret).to.equal(
      'from-env',
    );
  });
});

describe('secretsync run --sharding flags', () => {
  it('are off by default, with DEFAULT_SHARD_COUNT shards', async () => {
    const flags = await parseRun([]);
    expect([flags.sharding, flags.shards, flags.shardsOwned]).to.deep.equal([false, DEFAULT_SHARD_COUNT, undefined]);
    expect(shardOwnershipFromFlags(flags)).to.equal(undefined);
  });

  it('hold exactly the shards given by hand with --shards-owned (or its environment variable)', async () => {
    const flags = await parseRun(['--sharding', 'true', '--shards', '8'], { SECRETSYNC_SHARDS_OWNED: '0-2,6' });
    const ownership = shardOwnershipFromFlags(flags);
    expect(ownership?.shardCount).to.equal(8);
    expect([...(ownership?.owned() ?? [])]).to.deep.equal([0, 1, 2, 6]);
  });

  it('refuse a shard count over the maximum, shards beyond the count, and --shards-owned without --sharding', async () => {
    let error: unknown;
    try {
      await parseRun(['--shards', String(MAX_SHARD_COUNT + 1)]);
    } catch (err) {
      error = err;
    }
    expect(String(error)).to.include(`--shards must be at most ${MAX_SHARD_COUNT}`);
    expect(() => shardOwnershipFromFlags({ sharding: true, shards: 4, shardsOwned: '4' })).to.throw(/not below/);
    expect(() => shardOwnershipFromFlags({ sharding: false, shards: 4, shardsOwned: '1' })).to.throw(
      /needs --sharding/,
    );
  });
});
