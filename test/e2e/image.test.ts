// The container image without a Docker engine: the Dockerfile's layout and
// what its runtime stage contains, assembled by replaying its COPY and RUN
// lines (test/e2e/image.ts), then run.
import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../tools/testenv/paths.js';
import { run } from './helpers.js';
import { dockerignore, execForm, parseDockerfile, runtimeImage, type Stage } from './image.js';

const dockerfile = () => parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
const npmCi = (stage: Stage) => stage.instructions.filter((i) => i.keyword === 'RUN' && /^npm ci\b/.test(i.args));

describe('the container image (Dockerfile)', function () {
  this.timeout(600_000);

  describe('layout', () => {
    it('has a build stage with dev dependencies and a runtime stage on a slim or distroless Node 24 base', () => {
      const stages = dockerfile();
      expect(stages.length).to.be.at.least(2);
      const runtime = stages[stages.length - 1] as Stage;
      expect(runtime.from).to.match(/^(node:24[\w.-]*-slim|gcr\.io\/distroless\/nodejs24-[\w.-]+)(:[\w.-]+)?$/);
      for (const stage of stages.slice(0, -1)) expect(stage.from, `stage ${stage.name}`).to.match(/^node:24[\w.-]*$/);
      const build = stages.find((s) => s.instructions.some((i) => i.keyword === 'RUN' && i.args === 'npm run build'));
      expect(build, 'a stage that runs npm run build').to.not.equal(undefined);
      expect(npmCi(build as Stage).map((i) => i.args)).to.satisfy((cmds: string[]) =>
        cmds.some((c) => !c.includes('--omit=dev')),
      );
    });

    it('installs no dev dependencies into the runtime stage', () => {
      const stages = dockerfile();
      const runtime = stages[stages.length - 1] as Stage;
      // Nothing is installed in the runtime stage itself, unless production-only.
      for (const ins of npmCi(runtime)) expect(ins.args).to.contain('--omit=dev');
      const copies = runtime.instructions.filter((i) => i.keyword === 'COPY' && i.flags.from);
      const sourcesOfNodeModules = copies.filter((i) => /node_modules/.test(i.args)).map((i) => i.flags.from);
      expect(sourcesOfNodeModules, 'stages node_modules come from').to.have.length(1);
      for (const copy of copies) {
        const from = stages.find((s) => s.name === copy.flags.from) as Stage;
        const withDev = npmCi(from).some((i) => !i.args.includes('--omit=dev'));
        if (/node_modules/.test(copy.args)) {
          expect(withDev, `node_modules copied from stage ${from.name}, which installs dev dependencies`).to.equal(
            false,
          );
          expect(npmCi(from).length, `stage ${from.name} installs with npm ci --omit=dev`).to.be.greaterThan(0);
        }
      }
    });

    it('runs as a numeric non-root user, with an exec-form ENTRYPOINT that runs `secretsync run`', () => {
      const runtime = dockerfile().at(-1) as Stage;
      const users = runtime.instructions.filter((i) => i.keyword === 'USER');
      expect(users, 'one USER in the runtime stage').to.have.length(1);
      const user = (users[0] as { args: string }).args;
      expect(user).to.match(/^\d+(:\d+)?$/);
      expect(Number(user.split(':')[0])).to.be.greaterThan(0);
      expect(Number(user.split(':')[1] ?? '1')).to.be.greaterThan(0);
      const entrypoints = runtime.instructions.filter((i) => i.keyword === 'ENTRYPOINT');
      expect(entrypoints).to.have.length(1);
      const argv = execForm(entrypoints[0] as Parameters<typeof execForm>[0]);
      expect(argv[0]).to.match(/(^|\/)node$/);
      expect(argv.slice(1)).to.deep.equal(['bin/secretsync.js', 'run']);
      expect(
        runtime.instructions.some((i) => i.keyword === 'CMD'),
        'no CMD: flags come from the Pod args',
      ).to.equal(false);
    });

    it('carries OCI labels', () => {
      const runtime = dockerfile().at(-1) as Stage;
      const labels = runtime.instructions
        .filter((i) => i.keyword === 'LABEL')
        .map((i) => i.args)
        .join(' ');
      for (const key of ['title', 'description', 'licenses', 'version', 'revision'])
        expect(labels).to.contain(`org.opencontainers.image.${key}=`);
      expect(labels).to.contain('org.opencontainers.image.licenses="Apache-2.0"');
    });

    it('keeps node_modules, dist and everything else not copied out of the build context (.dockerignore)', () => {
      const ignored = dockerignore(readFileSync(join(repoRoot, '.dockerignore'), 'utf8'));
      for (const path of [
        'node_modules',
        'node_modules/yaml/package.json',
        'dist/src/index.js',
        '.git/HEAD',
        'coverage',
      ])
        expect(ignored(path), path).to.equal(true);
      for (const path of ['package.json', 'package-lock.json', 'tsconfig.json', 'src/index.ts', 'bin/secretsync.js'])
        expect(ignored(path), path).to.equal(false);
    });
  });

  describe('the runtime stage, assembled', () => {
    it('holds the compiled code, production dependencies only, bin/ and crds/', async () => {
      const image = await runtimeImage();
      expect(image.runs.map((r) => `${r.stage}: ${r.command} (${r.how})`)).to.have.length.greaterThan(1);
      expect(readdirSync(image.dir).sort()).to.deep.equal([
        'bin',
        'crds',
        'dist',
        'node_modules',
        'package-lock.json',
        'package.json',
      ]);
      expect(readdirSync(join(image.dir, 'dist'))).to.deep.equal(['src']);
      expect(existsSync(join(image.dir, 'dist', 'src', 'cli', 'main.js'))).to.equal(true);
      expect(readdirSync(join(image.dir, 'crds')).sort()).to.deep.equal(readdirSync(join(repoRoot, 'crds')).sort());
      // Every package npm marks dev-only in the lockfile is absent; every production one is present.
      const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as {
        packages: Record<string, { dev?: boolean; optional?: boolean }>;
      };
      const dev = Object.entries(lock.packages).filter(([p, meta]) => p.startsWith('node_modules/') && meta.dev);
      const prod = Object.entries(lock.packages).filter(
        ([p, meta]) => p.startsWith('node_modules/') && !meta.dev && !meta.optional,
      );
      expect(dev.length).to.be.greaterThan(50);
      for (const [path] of dev) expect(existsSync(join(image.dir, path)), `${path} (dev)`).to.equal(false);
      for (const [path] of prod) expect(existsSync(join(image.dir, path)), `${path} (production)`).to.equal(true);
    });

    it('answers `secretsync version` and `secretsync run --help` from there', async () => {
      const image = await runtimeImage();
      const [node, ...entry] = image.entrypoint as [string, ...string[]];
      const env = { PATH: '/usr/bin:/bin', HOME: '/nonexistent', ...image.env };
      // `docker run --entrypoint node IMAGE bin/secretsync.js version`
      const version = await run(node, [...entry.slice(0, -1), 'version'], { cwd: image.dir, env });
      expect(version.stderr).to.equal('');
      expect(version.code).to.equal(0);
      const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
      expect(version.stdout).to.match(new RegExp(`^secretsync ${pkg.version.replace(/\./g, '\\.')} \\(node v24\\.`));
      // `docker run IMAGE --help`: the ENTRYPOINT already says `run`.
      const help = await run(node, [...entry, '--help'], { cwd: image.dir, env });
      expect(help.code, help.stderr).to.equal(0);
      for (const flag of [
        '--namespaces',
        '--operator-namespace',
        '--leader-elect',
        '--metrics-address',
        '--hmac-secret',
      ])
        expect(help.stdout).to.contain(flag);
      expect(image.env.NODE_ENV).to.equal('production');
    });
  });
});
