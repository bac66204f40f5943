// What the container image will contain, without a Docker engine: the
// Dockerfile is parsed, and its stages are replayed in temporary directories,
// each standing for a stage's WORKDIR. COPY copies from the build context (the
// repository, filtered by .dockerignore) or from an earlier stage; RUN runs
// the npm commands the Dockerfile gives. The runtime stage's directory is then
// what /app holds in the image.
import { cpSync, existsSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { basename, join, posix, relative } from 'node:path';
import { repoRoot } from '../../tools/testenv/paths.js';
import { mustRun, tempDir, type RuntimeImage } from './helpers.js';

export interface Instruction {
  keyword: string;
  /** The arguments after the keyword and its --flags. */
  args: string;
  flags: Record<string, string>;
  line: number;
}

export interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

/** Parses a Dockerfile: comments and line continuations, stages, instructions with --flags. */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i] ?? '';
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      i += 1;
      const next = lines[i] ?? '';
      if (/^\s*#/.test(next)) continue;
      line = `${line.replace(/\\\s*$/, '')} ${next.trim()}`;
    }
    const match = /^\s*([A-Za-z]+)\s*(.*)$/.exec(line);
    if (!match) throw new Error(`Dockerfile line ${start}: cannot parse "${line}"`);
    const keyword = (match[1] as string).toUpperCase();
    let rest = (match[2] as string).trim();
    const flags: Record<string, string> = {};
    for (let flag = /^--([a-z-]+)=(\S+)\s*/.exec(rest); flag; flag = /^--([a-z-]+)=(\S+)\s*/.exec(rest)) {
      flags[flag[1] as string] = flag[2] as string;
      rest = rest.slice(flag[0].length);
    }
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      if (!from) throw new Error(`Dockerfile line ${start}: cannot parse FROM "${rest}"`);
      stages.push({ name: from[2] ?? String(stages.length), from: from[1] as string, instructions: [] });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (!stage) {
      if (keyword === 'ARG') continue;
      throw new Error(`Dockerfile line ${start}: ${keyword} before any FROM`);
    }
    stage.instructions.push({ keyword, args: rest, flags, line: start });
  }
  return stages;
}

/** An exec-form (JSON array) ENTRYPOINT or CMD. */
export function execForm(instruction: Instruction): string[] {
  const parsed: unknown = JSON.parse(instruction.args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string'))
    throw new Error(`Dockerfile line ${instruction.line}: ${instruction.keyword} is not in exec form`);
  return parsed as string[];
}

/** .dockerignore semantics: the last matching pattern wins; a pattern matching a parent directory matches its files. */
export function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'))
    .map((l) => {
      const include = l.startsWith('!');
      const pattern = posix.normalize((include ? l.slice(1) : l).replace(/^\/+/, '')).replace(/\/+$/, '');
      const source = pattern
        .split('/')
        .map((seg) =>
          seg === '**'
            ? '.*'
            : seg
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/')
        .replace(/\.\*\//g, '(.*/)?');
      return { include, re: new RegExp(`^${source}$`) };
    });
  return (path: string) => {
    const parts = path.split('/');
    let excluded = false;
    for (const rule of rules) {
      for (let n = 1; n <= parts.length; n++) {
        if (rule.re.test(parts.slice(0, n).join('/'))) {
          excluded = !rule.include;
          break;
        }
      }
    }
    return excluded;
  };
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full));
    else out.push(full);
  }
  return out;
}

export interface AssembledImage extends RuntimeImage {
  stages: Stage[];
  runtime: Stage;
  user: string;
  /** What each RUN did, for the test's report. */
  runs: { stage: string; command: string; how: 'ran' | 'stand-in' }[];
}

/**
 * Replays the Dockerfile's stages. One stand-in: the build stage's full
 * `npm ci` (dev dependencies included) links the repository's node_modules,
 * installed by `npm ci` from the same package-lock.json, instead of
 * installing them again. Every other RUN must be `npm ci --omit=dev …` or
 * `npm run build`, and runs for real.
 */
export async function assembleImage(): Promise<AssembledImage> {
  const stages = parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
  const ignored = dockerignore(readFileSync(join(repoRoot, '.dockerignore'), 'utf8'));
  const root = tempDir('image');
  const stageDirs = new Map<string, { dir: string; workdir: string }>();
  const runs: AssembledImage['runs'] = [];
  let runtime: AssembledImage | undefined;

  for (const stage of stages) {
    let workdir: string | undefined;
    const dir = join(root, stage.name);
    const env: Record<string, string> = {};
    let user = '';
    let entrypoint: string[] = [];
    const target = (dest: string) => {
      if (!workdir) throw new Error(`stage ${stage.name}: COPY or RUN before WORKDIR`);
      const abs = posix.resolve(workdir, dest);
      if (abs !== workdir && !abs.startsWith(`${workdir}/`))
        throw new Error(`stage ${stage.name}: ${dest} is outside WORKDIR ${workdir} (not modelled)`);
      return join(dir, posix.relative(workdir, abs));
    };
    for (const ins of stage.instructions) {
      switch (ins.keyword) {
        case 'WORKDIR': {
          if (workdir) throw new Error(`stage ${stage.name}: a second WORKDIR is not modelled`);
          workdir = posix.resolve('/', ins.args);
          stageDirs.set(stage.name, { dir, workdir });
          break;
        }
        case 'COPY': {
          const parts = ins.args.split(/\s+/);
          const dest = parts.pop() as string;
          const destIsDir = dest.endsWith('/') || parts.length > 1;
          for (const src of parts) {
            let from: string;
            if (ins.flags.from) {
              const source = stageDirs.get(ins.flags.from);
              if (!source) throw new Error(`line ${ins.line}: COPY --from=${ins.flags.from}: no such earlier stage`);
              const rel = posix.relative(source.workdir, posix.resolve(source.workdir, src));
              if (rel.startsWith('..')) throw new Error(`line ${ins.line}: ${src} is outside ${source.workdir}`);
              from = join(source.dir, rel);
            } else {
              const rel = posix.normalize(src).replace(/\/+$/, '');
              if (ignored(rel)) throw new Error(`line ${ins.line}: COPY ${src}: excluded by .dockerignore`);
              from = join(repoRoot, rel);
            }
            if (!existsSync(from)) throw new Error(`line ${ins.line}: COPY ${src}: not found (${from})`);
            const to = target(dest);
            if (statSync(from).isDirectory()) {
              // COPY dir/ dest/ copies the directory's contents into dest.
              for (const file of listFiles(from)) {
                const rel = relative(from, file);
                const contextPath = ins.flags.from ? undefined : relative(repoRoot, file);
                if (contextPath !== undefined && ignored(contextPath)) continue;
                cpSync(file, join(to, rel), { recursive: true });
              }
            } else {
              cpSync(from, destIsDir ? join(to, basename(from)) : to, { recursive: true });
            }
          }
          break;
        }
        case 'RUN': {
          const command = ins.args;
          const cwd = target('.');
          if (/^npm ci\b/.test(command) && !/--omit=dev\b/.test(command)) {
            if (
              readFileSync(join(cwd, 'package-lock.json'), 'utf8') !==
              readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')
            )
              throw new Error(`line ${ins.line}: the stage's package-lock.json differs from the repository's`);
            symlinkSync(join(repoRoot, 'node_modules'), join(cwd, 'node_modules'), 'dir');
            runs.push({ stage: stage.name, command, how: 'stand-in' });
          } else if (/^npm ci\b.*--omit=dev\b/.test(command) || command === 'npm run build') {
            const [bin, ...args] = command.split(/\s+/);
            await mustRun(bin as string, args, {
              cwd,
              env: { ...process.env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' },
              timeoutMs: 300_000,
            });
            runs.push({ stage: stage.name, command, how: 'ran' });
          } else {
            throw new Error(`line ${ins.line}: RUN ${command}: not modelled by test/e2e/image.ts; extend it`);
          }
          break;
        }
        case 'ENV': {
          for (const m of ins.args.matchAll(/(\w+)=("[^"]*"|\S+)/g))
            env[m[1] as string] = (m[2] as string).replace(/^"|"$/g, '');
          break;
        }
        case 'USER':
          user = ins.args;
          break;
        case 'ENTRYPOINT':
          entrypoint = execForm(ins);
          break;
        case 'ARG':
        case 'LABEL':
        case 'EXPOSE':
          break;
        default:
          throw new Error(`line ${ins.line}: ${ins.keyword} is not modelled by test/e2e/image.ts`);
      }
    }
    if (stage === stages[stages.length - 1]) {
      const [node, ...rest] = entrypoint;
      if (!node || basename(node) !== 'node')
        throw new Error(`the ENTRYPOINT does not start with node: ${entrypoint.join(' ')}`);
      runtime = {
        dir,
        entrypoint: [process.execPath, ...rest],
        env,
        stages,
        runtime: stage,
        user,
        runs,
      };
    }
  }
  if (!runtime) throw new Error('the Dockerfile has no stages');
  return runtime;
}

let assembled: Promise<AssembledImage> | undefined;
/** The runtime stage's files, assembled once per test run. */
export function runtimeImage(): Promise<AssembledImage> {
  assembled ??= assembleImage();
  return assembled;
}
