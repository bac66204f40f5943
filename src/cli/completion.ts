// `secretsync completion bash|zsh|fish|kubectl-plugin`: a shell completion
// script generated from the commander command tree at the moment it is
// printed, so it lists exactly the commands, subcommands, options and option
// choices this build has and never goes stale.
//
// Written by hand rather than with a package: the npm packages that do this
// for commander (@bomb.sh/tab, tabtab, omelette, commander-tabtab) emit a stub
// that runs the CLI again on every TAB, a Node start that loads this CLI
// (about a second per keystroke here, measured with `secretsync --version`),
// and are pre-1.0 or unmaintained; @gutenye/commander-completion-carapace needs
// the carapace binary. A static script answers at once and needs nothing at
// run time. All scripts share one algorithm: walk the words typed so far,
// skipping options and the values of options that take one, to find the
// command path; then offer that path's subcommands (or its argument's
// choices), its options (after a "-"), an option's choices, or files.
import { Argument, type Command, type Option } from 'commander';
import { addExamples } from './examples.js';
import type { CliIo } from './main.js';
import { PROGRAM_NAME } from './program-name.js';

/** The shells, and `kubectl-plugin`: the kubectl_complete-secretsync executable kubectl runs for `kubectl secretsync <TAB>`. */
export const SHELLS = ['bash', 'zsh', 'fish', 'kubectl-plugin'] as const;
export type Shell = (typeof SHELLS)[number];

interface CompletionOption {
  /** "--dir", "-h": every spelling. */
  flags: string[];
  takesValue: boolean;
  choices: string[];
  description: string;
}

interface CompletionNode {
  /** Command words after the program name, space-separated ("" for the root). */
  path: string;
  subcommands: { name: string; description: string }[];
  options: CompletionOption[];
  /** The choices of the command's first argument (`completion <shell>`), offered where it has no subcommands. */
  argumentChoices: string[];
}

/** Every command of the tree with what can follow it, as commander's own help sees them. */
export function completionTree(program: Command): CompletionNode[] {
  const nodes: CompletionNode[] = [];
  const visit = (cmd: Command, path: string[]) => {
    const help = cmd.createHelp();
    nodes.push({
      path: path.join(' '),
      subcommands: help.visibleCommands(cmd).map((c) => ({ name: c.name(), description: describe(c) })),
      options: help.visibleOptions(cmd).map((o: Option) => ({
        flags: [o.long, o.short].filter((f): f is string => f !== undefined),
        takesValue: o.required || o.optional,
        choices: o.argChoices ?? [],
        description: firstLine(o.description),
      })),
      argumentChoices: cmd.registeredArguments[0]?.argChoices ?? [],
    });
    for (const sub of cmd.commands) visit(sub, [...path, sub.name()]);
    // commander's implicit `help [command]` is in visibleCommands but not in cmd.commands.
    if (cmd.commands.length > 0 && !cmd.commands.some((c) => c.name() === 'help')) {
      nodes.push({
        path: [...path, 'help'].join(' '),
        subcommands: [],
        options: [],
        argumentChoices: cmd.commands.map((c) => c.name()),
      });
    }
  };
  visit(program, []);
  return nodes;
}

export function completionScript(program: Command, shell: Shell): string {
  const nodes = completionTree(program);
  switch (shell) {
    case 'bash':
      return bashScript(nodes);
    case 'zsh':
      return zshScript(nodes);
    case 'fish':
      return fishScript(nodes);
    case 'kubectl-plugin':
      return kubectlPluginScript(nodes);
  }
}

export function registerCompletionCommand(program: Command, io: CliIo): void {
  const cmd = program
    .command('completion')
    .summary('print a shell completion script (bash, zsh or fish, or for kubectl secretsync)')
    .description(
      'print a completion script for the shell, made from this version of the command tree (commands, ' +
        'subcommands, options and their choices). Load it in the shell: bash `source <(secretsync completion ' +
        'bash)`, zsh `source <(secretsync completion zsh)` after compinit, fish `secretsync completion fish | ' +
        'source`, or save it where the shell loads completions from. kubectl-plugin prints an executable ' +
        'kubectl (1.26 and later) runs to complete `kubectl secretsync …`: save it as kubectl_complete-secretsync ' +
        'on the PATH and make it executable.',
    )
    .addArgument(new Argument('<shell>', 'the shell, or kubectl-plugin').choices(SHELLS))
    .action((shell: Shell) => {
      io.out(completionScript(program, shell).trimEnd());
    });
  addExamples(cmd, [
    { command: 'source <(secretsync completion bash)', explain: 'bash, for this shell (add the line to ~/.bashrc)' },
    {
      command: 'secretsync completion zsh > "${fpath[1]}/_secretsync"',
      explain: 'zsh, for every new shell (any directory on $fpath; run compinit after)',
    },
    {
      command: 'secretsync completion fish > ~/.config/fish/completions/secretsync.fish',
      explain: 'fish, for every new shell',
    },
    {
      command:
        'secretsync completion kubectl-plugin > ~/.local/bin/kubectl_complete-secretsync && chmod +x ~/.local/bin/kubectl_complete-secretsync',
      explain: 'complete `kubectl secretsync …` in any shell kubectl completion is set up for (a directory on $PATH)',
    },
  ]);
}

function describe(cmd: Command): string {
  return firstLine(cmd.summary() || cmd.description());
}

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? '').trim();
}

/** A POSIX shell single-quoted word (also valid in zsh). */
function shq(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A fish single-quoted word: only \ and ' are special inside. */
function fishq(text: string): string {
  return `'${text.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

const header = (shell: Shell, load: string) =>
  [
    `# ${shell} completion for ${PROGRAM_NAME}, generated from its command tree by \`${PROGRAM_NAME} completion ${shell}\`.`,
    `# Load it with: ${load}`,
    '# Regenerate it after upgrading secretsync.',
  ].join('\n');

const valueOptions = (n: CompletionNode) =>
  n.options
    .filter((o) => o.takesValue)
    .flatMap((o) => o.flags)
    .join(' ');

/** A `case "$1" in` function for bash and zsh that echoes one line per command path. */
function caseFunction(name: string, nodes: CompletionNode[], body: (n: CompletionNode) => string | undefined): string {
  const arms = nodes
    .map((n) => [n.path, body(n)] as const)
    .filter((a): a is readonly [string, string] => a[1] !== undefined && a[1] !== '')
    .map(([path, text]) => `    ${shq(path)}) echo ${shq(text)} ;;`);
  return [`${name}() {`, '  case "$1" in', ...arms, '  esac', '}'].join('\n');
}

function choicesFunction(name: string, nodes: CompletionNode[]): string {
  const arms = nodes.flatMap((n) =>
    n.options
      .filter((o) => o.choices.length > 0)
      .flatMap((o) => o.flags.map((f) => `    ${shq(`${n.path}|${f}`)}) echo ${shq(o.choices.join(' '))} ;;`)),
  );
  return [`${name}() {`, '  case "$1|$2" in', ...arms, '  esac', '}'].join('\n');
}

/** The shared walk over the typed words, in bash/zsh syntax; `words`, `first` and `last` index them. */
function walkWords(words: string, first: string, last: string): string {
  return `  local cmdpath='' word i skip=0
  for (( i = ${first}; i < ${last}; i++ )); do
    word="\${${words}[i]}"
    if (( skip )); then skip=0; continue; fi
    case "$word" in
      --*=*) continue ;;
      -*) [[ " $(__secretsync_value_options "$cmdpath") " == *" $word "* ]] && skip=1; continue ;;
    esac
    [[ " $(__secretsync_commands "$cmdpath") " == *" $word "* ]] && cmdpath="\${cmdpath:+$cmdpath }$word"
  done`;
}

function bashScript(nodes: CompletionNode[]): string {
  return `${header('bash', `source <(${PROGRAM_NAME} completion bash)`)}
${bashFunctions(nodes)}
complete -F _secretsync ${PROGRAM_NAME}
`;
}

/**
 * kubectl runs kubectl_complete-secretsync with the words after `secretsync`
 * (the last one being completed) and reads Cobra's answer: one completion a
 * line, then a directive, :4 for "no files" or :0 to let the shell complete
 * files. The bash function answers, run as a plain bash script.
 */
function kubectlPluginScript(nodes: CompletionNode[]): string {
  return `#!/usr/bin/env bash
${header('kubectl-plugin', `save as kubectl_complete-${PROGRAM_NAME} in a directory on $PATH and chmod +x it (kubectl 1.26+)`)}
${bashFunctions(nodes)}
(( $# > 0 )) || set -- ''
COMP_WORDS=(${PROGRAM_NAME} "$@")
COMP_CWORD=$#
_secretsync
if (( __secretsync_files )); then
  echo ':0'
else
  (( \${#COMPREPLY[@]} == 0 )) || printf '%s\\n' "\${COMPREPLY[@]}"
  echo ':4'
fi
`;
}

function bashFunctions(nodes: CompletionNode[]): string {
  return `${caseFunction('__secretsync_commands', nodes, (n) => n.subcommands.map((s) => s.name).join(' '))}
${caseFunction('__secretsync_words', nodes, (n) => [...n.subcommands.map((s) => s.name), ...n.argumentChoices].join(' '))}
${caseFunction('__secretsync_options', nodes, (n) => n.options.flatMap((o) => o.flags).join(' '))}
${caseFunction('__secretsync_value_options', nodes, valueOptions)}
${choicesFunction('__secretsync_choices', nodes)}
_secretsync() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" subs choices
${walkWords('COMP_WORDS', '1', 'COMP_CWORD')}
  COMPREPLY=()
  __secretsync_files=0
  if (( COMP_CWORD > 1 )) && [[ "$prev" == -* && " $(__secretsync_value_options "$cmdpath") " == *" $prev "* ]]; then
    choices="$(__secretsync_choices "$cmdpath" "$prev")"
    if [[ -n "$choices" ]]; then
      mapfile -t COMPREPLY < <(compgen -W "$choices" -- "$cur")
    else
      __secretsync_files=1
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
    return 0
  fi
  if [[ "$cur" == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(__secretsync_options "$cmdpath")" -- "$cur")
    return 0
  fi
  subs="$(__secretsync_words "$cmdpath")"
  if [[ -n "$subs" ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
  else
    __secretsync_files=1
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  fi
  return 0
}`;
}

/** zsh: arrays of "name:description" for _describe, set in `reply`. */
function zshDescribed(name: string, nodes: CompletionNode[], items: (n: CompletionNode) => string[]): string {
  const arms = nodes
    .map((n) => [n.path, items(n)] as const)
    .filter(([, list]) => list.length > 0)
    .map(([path, list]) => `    ${shq(path)}) reply=( ${list.map(shq).join(' ')} ) ;;`);
  return [`${name}() {`, '  reply=()', '  case "$1" in', ...arms, '  esac', '}'].join('\n');
}

function zshScript(nodes: CompletionNode[]): string {
  const esc = (s: string) => s.replace(/:/g, '\\:');
  return `#compdef ${PROGRAM_NAME}
${header('zsh', `source <(${PROGRAM_NAME} completion zsh) after compinit, or save it as _${PROGRAM_NAME} in a directory on $fpath`)}
${caseFunction('__secretsync_commands', nodes, (n) => n.subcommands.map((s) => s.name).join(' '))}
${caseFunction('__secretsync_value_options', nodes, valueOptions)}
${choicesFunction('__secretsync_choices', nodes)}
${zshDescribed('__secretsync_described_commands', nodes, (n) => [
  ...n.subcommands.map((s) => `${esc(s.name)}:${s.description}`),
  ...n.argumentChoices.map(esc),
])}
${zshDescribed('__secretsync_described_options', nodes, (n) => n.options.flatMap((o) => o.flags.map((f) => `${esc(f)}:${o.description}`)))}
_secretsync() {
  local cur="\${words[CURRENT]}" prev="\${words[CURRENT-1]}"
  local -a reply choices
${walkWords('words', '2', 'CURRENT')}
  if (( CURRENT > 2 )) && [[ "$prev" == -* && " $(__secretsync_value_options "$cmdpath") " == *" $prev "* ]]; then
    choices=( \${=$(__secretsync_choices "$cmdpath" "$prev")} )
    if (( \${#choices} )); then compadd -a choices; else _files; fi
    return
  fi
  if [[ "$cur" == -* ]]; then
    __secretsync_described_options "$cmdpath"
    _describe -t options option reply
    return
  fi
  __secretsync_described_commands "$cmdpath"
  if (( \${#reply} )); then _describe -t commands command reply; else _files; fi
}
if [[ "\${zsh_eval_context[-1]}" == loadautofunc ]]; then
  _secretsync "$@"
else
  compdef _secretsync ${PROGRAM_NAME}
fi
`;
}

function fishScript(nodes: CompletionNode[]): string {
  const lines: string[] = [
    header(
      'fish',
      `${PROGRAM_NAME} completion fish | source, or save it as ~/.config/fish/completions/${PROGRAM_NAME}.fish`,
    ),
    fishSwitch('__secretsync_commands', nodes, (n) => n.subcommands.map((s) => s.name)),
    fishSwitch('__secretsync_value_options', nodes, (n) => valueOptions(n).split(' ').filter(Boolean)),
    `function __secretsync_path
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l cmdpath ''
    set -l skip 0
    for word in $tokens
        if test $skip = 1
            set skip 0
            continue
        end
        switch $word
            case '--*=*'
                continue
            case '-*'
                if contains -- $word (__secretsync_value_options "$cmdpath")
                    set skip 1
                end
                continue
        end
        if contains -- $word (__secretsync_commands "$cmdpath")
            set cmdpath (string trim -- "$cmdpath $word")
        end
    end
    echo $cmdpath
end`,
    `function __secretsync_at
    set -l current (__secretsync_path)
    test "$current" = "$argv[1]"
end`,
    `complete -c ${PROGRAM_NAME} -f`,
  ];
  for (const n of nodes) {
    const at = `-n ${fishq(`__secretsync_at ${fishq(n.path)}`)}`;
    for (const s of n.subcommands) {
      lines.push(`complete -c ${PROGRAM_NAME} ${at} -a ${fishq(s.name)} -d ${fishq(s.description)}`);
    }
    if (n.argumentChoices.length > 0)
      lines.push(`complete -c ${PROGRAM_NAME} ${at} -a ${fishq(n.argumentChoices.join(' '))}`);
    else if (n.subcommands.length === 0) lines.push(`complete -c ${PROGRAM_NAME} ${at} -F`);
    for (const o of n.options) {
      const spell = o.flags.map((f) => (f.startsWith('--') ? `-l ${fishq(f.slice(2))}` : `-s ${fishq(f.slice(1))}`));
      const value = !o.takesValue ? '' : o.choices.length > 0 ? ` -x -a ${fishq(o.choices.join(' '))}` : ' -r -F';
      lines.push(`complete -c ${PROGRAM_NAME} ${at} ${spell.join(' ')}${value} -d ${fishq(o.description)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function fishSwitch(name: string, nodes: CompletionNode[], items: (n: CompletionNode) => string[]): string {
  const arms = nodes
    .map((n) => [n.path, items(n)] as const)
    .filter(([, list]) => list.length > 0)
    .map(([path, list]) => `        case ${fishq(path)}\n            printf '%s\\n' ${list.map(fishq).join(' ')}`);
  return [`function ${name}`, '    switch "$argv[1]"', ...arms, '    end', 'end'].join('\n');
}
