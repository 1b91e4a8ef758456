# shellcheck shell=bash
# Procfile parsing shared by bin/detect and bin/build (sourced, not executed).
#
# A Procfile line is `type: command`. Types follow the CNB process type rule
# (BLD-10: [A-Za-z0-9._-]); blank lines and `#` comments are skipped; a
# trailing CR (a Procfile saved on Windows) is dropped.

# procfile_parse FILE: fills the global arrays PROCFILE_TYPES and
# PROCFILE_COMMANDS (same index, file order). Lines that are not `type: command`
# are reported on stderr and skipped, like Heroku does. A type given twice is an
# error (exit status 1), since launch.toml types must be unique per buildpack.
procfile_parse() {
  local file=$1 line type command lineno=0 i
  PROCFILE_TYPES=()
  PROCFILE_COMMANDS=()
  while IFS= read -r line || [[ -n $line ]]; do
    lineno=$((lineno + 1))
    line=${line%$'\r'}
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    if [[ ! $line =~ ^[[:space:]]*([A-Za-z0-9._-]+)[[:space:]]*:[[:space:]]*(.*[^[:space:]])[[:space:]]*$ ]]; then
      printf 'Procfile:%d: skipped, not a "type: command" line: %s\n' "$lineno" "$line" >&2
      continue
    fi
    type=${BASH_REMATCH[1]}
    command=${BASH_REMATCH[2]}
    for ((i = 0; i < ${#PROCFILE_TYPES[@]}; i++)); do
      if [[ ${PROCFILE_TYPES[i]} == "$type" ]]; then
        printf 'Procfile:%d: process type "%s" is defined twice\n' "$lineno" "$type" >&2
        return 1
      fi
    done
    PROCFILE_TYPES+=("$type")
    PROCFILE_COMMANDS+=("$command")
  done <"$file"
}

# procfile_exec_form COMMAND: prints COMMAND, with `exec ` in front when it is
# one simple command. dash (bookworm's /bin/sh) does not replace itself with the
# last command of `sh -c` as bash and busybox ash do; with `exec` the app is the
# process the launcher started, so it gets signals such as SIGTERM from
# `docker stop` itself. Lists, pipelines, compound commands, assignments and
# shell builtins are left as written.
procfile_exec_form() {
  local command=$1 first
  first=${command%%[[:space:]]*}
  case $first in
    '!' | '[[' | 'case' | 'do' | 'done' | 'elif' | 'else' | 'esac' | 'fi' | 'for' | 'function' | \
      'if' | 'in' | 'select' | 'then' | 'time' | 'until' | 'while' | '{' | '}' | \
      . | : | alias | break | cd | command | continue | eval | exec | exit | export | \
      getopts | hash | local | read | readonly | return | set | shift | source | times | \
      trap | type | ulimit | umask | unalias | unset | wait)
      printf '%s' "$command"
      return
      ;;
  esac
  if [[ $first == *=* || $command == *[\;\&\|\(\)\{\}\`]* ]]; then
    printf '%s' "$command"
  else
    printf 'exec %s' "$command"
  fi
}

# toml_string VALUE: prints VALUE as a TOML basic string, quotes included.
toml_string() {
  local s=$1 escaped="" c i
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  if [[ $s == *[[:cntrl:]]* ]]; then
    for ((i = 0; i < ${#s}; i++)); do
      c=${s:i:1}
      if [[ $c == [[:cntrl:]] ]]; then
        printf -v c '\\u%04X' "'$c"
      fi
      escaped+=$c
    done
    s=$escaped
  fi
  printf '"%s"' "$s"
}
