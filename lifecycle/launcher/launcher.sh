#!/bin/sh
# pybuild launcher, installed as /cnb/lifecycle/launcher in app images.
#
# Starts one process of a buildpacks-built image (cnb-spec.md LCH-1..LCH-8) by applying
# the launch plan the exporter wrote to <layers>/config/launch-plan.sh (format: see
# lifecycle/launcher/planfile.py). Env files, process tables and script lists are
# resolved at export time; the env operations themselves run here, against the
# container's env, because a rebase can change the run image's env under us.
#
# Plain POSIX sh: it must run under dash, busybox ash and bash with no other tool.
# sh has no arrays, so the plan is sourced three times and each pass gives the plan's
# verbs (cnb_*) meaning while leaving the others inert:
#   index   - the process types eligible here, the default type (LCH-2)
#   process - kind, command, args and working dir of the selected process (LCH-3, LCH-8)
#   apply   - layer bin/lib, env files, exec.d, profile.d, in plan order (LCH-5..LCH-7)
# Internal names start with _cnb_ so that sourced profile.d scripts do not clash with them.

_cnb_nl='
'
_cnb_tab=$(printf '\t')
_cnb_cr=$(printf '\r')
_cnb_blank=" $_cnb_tab"

_cnb_die() {
	printf 'ERROR: failed to launch: %s\n' "$1" >&2
	exit "${2:-82}"
}

# Sets _cnb_q to $1 as one single-quoted word that eval turns back into $1.
_cnb_quote() {
	_cnb_q='' _cnb_s=$1
	while :; do
		case $_cnb_s in
		*\'*)
			_cnb_q=$_cnb_q${_cnb_s%%\'*}"'\\''"
			_cnb_s=${_cnb_s#*\'}
			;;
		*) break ;;
		esac
	done
	_cnb_q="'$_cnb_q$_cnb_s'"
}

_cnb_check_name() {
	case $1 in
	'' | [0-9]* | *[!A-Za-z0-9_]* | _cnb_*) return 1 ;;
	esac
}

_cnb_source_plan() {
	_cnb_pass=$1
	# shellcheck source=/dev/null # the plan is written at export time
	. "$_cnb_plan_file"
}

# ---- plan verbs ---------------------------------------------------------------------

cnb_plan() {
	[ "$1" = 1 ] || _cnb_die "launch plan $_cnb_plan_file has format '$1'; this launcher reads format 1"
}

# cnb_process TYPE direct|shell default|- replace|append WORKING_DIR EXEC_ENVS BUILDPACK_ID API
cnb_process() {
	_cnb_eligible "$6" || return 0
	case $_cnb_pass in
	index)
		_cnb_types="$_cnb_types $1 "
		if [ "$3" = default ]; then _cnb_default=$1; fi
		;;
	process)
		if [ "$1" = "$_cnb_type" ]; then _cnb_kind=$2 _cnb_args_mode=$4 _cnb_wd=$5; fi
		;;
	esac
}

# cnb_command TYPE WORD... and cnb_args TYPE WORD... (LCH-3)
cnb_command() { _cnb_words cmd "$@"; }
cnb_args() { _cnb_words args "$@"; }

# cnb_layer BUILDPACK_ID NAME PATH bin|- lib|-  (LCH-5: a buildpack's layer records come
# before its env records, so every bin/lib of a buildpack precedes its env files)
cnb_layer() {
	[ "$_cnb_pass" = apply ] || return 0
	if [ "$4" = bin ]; then _cnb_env_op prepend PATH "$3/bin" :; fi
	if [ "$5" = lib ]; then _cnb_env_op prepend LD_LIBRARY_PATH "$3/lib" :; fi
}

# cnb_env BUILDPACK_ID LAYER PROCESS_TYPE ACTION NAME VALUE DELIM  (BLD-7, LCH-5)
cnb_env() {
	_cnb_applies "$3" || return 0
	_cnb_env_op "$4" "$5" "$6" "$7"
}

# cnb_exec_d BUILDPACK_ID LAYER PROCESS_TYPE PATH  (LCH-6)
cnb_exec_d() {
	_cnb_applies "$3" || return 0
	_cnb_run_exec_d "$4"
}

# cnb_profile_d BUILDPACK_ID LAYER PROCESS_TYPE PATH  (LCH-7). Sourced later, at top level,
# because bash makes `declare` inside a function local.
cnb_profile_d() {
	_cnb_applies "$3" && [ "$_cnb_kind" = shell ] || return 0
	_cnb_quote "$4"
	_cnb_profiles="$_cnb_profiles $_cnb_q"
}

# ---- selection (LCH-2) --------------------------------------------------------------

_cnb_eligible() {
	case " $1 " in
	*" * "* | *" $_cnb_exec_env "*) return 0 ;;
	esac
	return 1
}

_cnb_known() {
	case $_cnb_types in
	*" $1 "*) return 0 ;;
	esac
	return 1
}

_cnb_select() {
	_cnb_self=${0##*/}
	if [ "$_cnb_self" != launcher ] && _cnb_known "$_cnb_self"; then
		_cnb_type=$_cnb_self
	elif [ -n "${CNB_PROCESS_TYPE-}" ]; then
		_cnb_known "$CNB_PROCESS_TYPE" || _cnb_die "unknown process type '$CNB_PROCESS_TYPE'"
		_cnb_type=$CNB_PROCESS_TYPE
	elif [ "$#" -gt 0 ]; then
		_cnb_select_user "$@"
	elif [ -n "$_cnb_default" ]; then
		_cnb_type=$_cnb_default
	else
		_cnb_die "no default process type and no command given"
	fi
}

_cnb_select_user() {
	_cnb_kind=shell
	[ "$1" = -- ] || return 0
	[ "$#" -gt 1 ] || _cnb_die "'--' must be followed by a command"
	_cnb_kind=direct _cnb_dashdash=1
}

_cnb_words() {
	[ "$_cnb_pass" = process ] && [ "$2" = "$_cnb_type" ] || return 0
	_cnb_into=$1
	shift 2
	for _cnb_w in "$@"; do
		_cnb_quote "$_cnb_w"
		if [ "$_cnb_into" = cmd ]; then _cnb_cmd="$_cnb_cmd $_cnb_q"; else _cnb_args="$_cnb_args $_cnb_q"; fi
	done
}

# ---- environment (LCH-4, LCH-5, BLD-7) ----------------------------------------------

_cnb_applies() {
	[ "$_cnb_pass" = apply ] && { [ -z "$1" ] || [ "$1" = "$_cnb_type" ]; }
}

# ACTION NAME VALUE DELIM; an empty old value gets no delimiter, so PATH never gains an
# empty entry (which would mean the working directory).
_cnb_env_op() {
	_cnb_check_name "$2" || _cnb_die "launch plan sets '$2', which is not a shell variable name"
	eval "_cnb_old=\${$2-}"
	case $1 in
	override) _cnb_new=$3 ;;
	default)
		[ -z "$_cnb_old" ] || return 0
		_cnb_new=$3
		;;
	prepend) _cnb_new=$3${_cnb_old:+$4$_cnb_old} ;;
	append) _cnb_new=${_cnb_old:+$_cnb_old$4}$3 ;;
	*) _cnb_die "launch plan has unknown env action '$1'" ;;
	esac
	eval "$2=\$_cnb_new"
	export "${2?}"
}

_cnb_clean_env() {
	unset CNB_LAYERS_DIR CNB_APP_DIR CNB_PROCESS_TYPE CNB_PLATFORM_API CNB_DEPRECATION_MODE
	[ -n "${PATH+set}" ] || return 0
	_cnb_rest=$PATH: _cnb_new='' _cnb_sep=''
	while [ -n "$_cnb_rest" ]; do
		_cnb_dir=${_cnb_rest%%:*}
		_cnb_rest=${_cnb_rest#*:}
		case $_cnb_dir in
		/cnb/process | /cnb/lifecycle) ;;
		*) _cnb_new=$_cnb_new$_cnb_sep$_cnb_dir _cnb_sep=: ;;
		esac
	done
	PATH=$_cnb_new
}

# ---- exec.d (LCH-6) -----------------------------------------------------------------

# fd 9 carries our stdout past the capture, so that only fd 3 is read as TOML while the
# script's own stdout still reaches the container log.
_cnb_run_exec_d() {
	{ _cnb_out=$(cd "$_cnb_app" && exec "$1" 3>&1 1>&9 9>&-); } 9>&1 ||
		_cnb_die "exec.d $1 exited with status $?"
	_cnb_rest=$_cnb_out$_cnb_nl
	while [ -n "$_cnb_rest" ]; do
		_cnb_line=${_cnb_rest%%"$_cnb_nl"*}
		_cnb_rest=${_cnb_rest#*"$_cnb_nl"}
		_cnb_toml_line || _cnb_die "exec.d $1 wrote a line that is not KEY = \"string\": $_cnb_line"
	done
}

# One line of exec.d output: blank, a comment, or KEY = STRING with an optional comment.
_cnb_toml_line() {
	_cnb_s=${_cnb_line%"$_cnb_cr"}
	_cnb_skip_blanks
	case $_cnb_s in '' | '#'*) return 0 ;; esac
	_cnb_toml_key || return 1
	_cnb_key=$_cnb_val
	_cnb_skip_blanks
	case $_cnb_s in =*) _cnb_s=${_cnb_s#=} ;; *) return 1 ;; esac
	_cnb_skip_blanks
	_cnb_toml_string || return 1
	_cnb_skip_blanks
	case $_cnb_s in '' | '#'*) ;; *) return 1 ;; esac
	_cnb_export_output "$_cnb_key" "$_cnb_val"
}

_cnb_skip_blanks() {
	_cnb_s=${_cnb_s#"${_cnb_s%%[!"$_cnb_blank"]*}"}
}

_cnb_toml_key() {
	case $_cnb_s in
	\"* | \'*) _cnb_toml_string ;;
	*)
		_cnb_val=${_cnb_s%%[!A-Za-z0-9_-]*}
		[ -n "$_cnb_val" ] || return 1
		_cnb_s=${_cnb_s#"$_cnb_val"}
		;;
	esac
}

# Multi-line strings are refused: output is read line by line.
_cnb_toml_string() {
	case $_cnb_s in
	\'\'\'* | \"\"\"*) return 1 ;;
	\'*\'*)
		_cnb_s=${_cnb_s#?}
		_cnb_val=${_cnb_s%%\'*}
		_cnb_s=${_cnb_s#*\'}
		;;
	\"*)
		_cnb_s=${_cnb_s#?}
		_cnb_basic_string
		;;
	*) return 1 ;;
	esac
}

_cnb_basic_string() {
	_cnb_val=
	while :; do
		_cnb_chunk=${_cnb_s%%[\"\\]*}
		_cnb_val=$_cnb_val$_cnb_chunk
		_cnb_s=${_cnb_s#"$_cnb_chunk"}
		case $_cnb_s in
		'') return 1 ;;
		\"*)
			_cnb_s=${_cnb_s#?}
			return 0
			;;
		esac
		_cnb_s=${_cnb_s#?}
		_cnb_escape || return 1
	done
}

# The escape after a backslash in a basic string; consumes it from _cnb_s.
_cnb_escape() {
	case $_cnb_s in
	n*) _cnb_val=$_cnb_val$_cnb_nl ;;
	t*) _cnb_val=$_cnb_val$_cnb_tab ;;
	r*) _cnb_val=$_cnb_val$_cnb_cr ;;
	\"*) _cnb_val=$_cnb_val\" ;;
	\\*) _cnb_val=$_cnb_val\\ ;;
	b*) _cnb_bytes 8 ;;
	f*) _cnb_bytes 12 ;;
	e*) _cnb_bytes 27 ;;
	u*) _cnb_unicode 4 && return 0 ;;
	U*) _cnb_unicode 8 && return 0 ;;
	*) return 1 ;;
	esac || return 1
	_cnb_s=${_cnb_s#?}
}

# \uXXXX or \UXXXXXXXX: $1 hex digits follow the letter in _cnb_s.
_cnb_unicode() {
	_cnb_hex=${_cnb_s#?}
	case $1 in
	4) _cnb_tail=${_cnb_hex#????} ;;
	*) _cnb_tail=${_cnb_hex#????????} ;;
	esac
	_cnb_hex=${_cnb_hex%"$_cnb_tail"}
	case $_cnb_hex in '' | *[!0-9A-Fa-f]*) return 1 ;; esac
	[ "${#_cnb_hex}" = "$1" ] || return 1
	_cnb_utf8 $((0x$_cnb_hex)) || return 1
	_cnb_s=$_cnb_tail
}

_cnb_utf8() {
	if [ "$1" -lt 1 ] || [ "$1" -gt 1114111 ]; then return 1; fi
	if [ "$1" -ge 55296 ] && [ "$1" -le 57343 ]; then return 1; fi
	if [ "$1" -lt 128 ]; then
		_cnb_bytes "$1"
	elif [ "$1" -lt 2048 ]; then
		_cnb_bytes $((192 + $1 / 64)) $((128 + $1 % 64))
	elif [ "$1" -lt 65536 ]; then
		_cnb_bytes $((224 + $1 / 4096)) $((128 + $1 / 64 % 64)) $((128 + $1 % 64))
	else
		_cnb_bytes $((240 + $1 / 262144)) $((128 + $1 / 4096 % 64)) $((128 + $1 / 64 % 64)) $((128 + $1 % 64))
	fi
}

# Appends the bytes with these decimal values to _cnb_val (printf understands only octal).
_cnb_bytes() {
	_cnb_fmt=''
	for _cnb_b in "$@"; do
		_cnb_fmt="$_cnb_fmt\\$((_cnb_b / 64))$((_cnb_b / 8 % 8))$((_cnb_b % 8))"
	done
	# shellcheck disable=SC2059 # the format is built from octal escapes only
	_cnb_b=$(printf "$_cnb_fmt.")
	_cnb_val=$_cnb_val${_cnb_b%.}
}

_cnb_export_output() {
	if _cnb_check_name "$1"; then
		eval "$1=\$2"
		export "${1?}"
	else
		printf 'WARNING: launcher: ignoring exec.d output %s: not a usable variable name\n' "$1" >&2
	fi
}

# ---- start (LCH-3, LCH-7, LCH-8) ----------------------------------------------------

_cnb_enter_working_dir() {
	case $_cnb_wd in
	'') _cnb_wd=$_cnb_app ;;
	/*) ;;
	*) _cnb_wd=$_cnb_app/$_cnb_wd ;;
	esac
	_cnb_had_oldpwd=${OLDPWD+1}
	cd "$_cnb_wd" || _cnb_die "cannot enter working directory $_cnb_wd"
	# cd exports OLDPWD in some shells; the process should not inherit our detour
	if [ -z "$_cnb_had_oldpwd" ]; then unset OLDPWD; fi
}

# A missing executable is a launch error (82), not the shell's 127.
_cnb_lookup() {
	case $1 in
	'') ;;
	*/*) [ -f "$1" ] && [ -x "$1" ] && return 0 ;;
	*)
		_cnb_rest=${PATH-}:
		while [ -n "$_cnb_rest" ]; do
			_cnb_dir=${_cnb_rest%%:*}
			_cnb_rest=${_cnb_rest#*:}
			[ -f "${_cnb_dir:-.}/$1" ] && [ -x "${_cnb_dir:-.}/$1" ] && return 0
		done
		;;
	esac
	_cnb_die "command '$1' not found or not executable"
}

# Sets _cnb_argv for a direct exec: the process's command, then its args unless user
# arguments replace them (buildpack API >= 0.9), then the user arguments.
_cnb_direct_argv() {
	if [ -z "$_cnb_type" ]; then
		_cnb_argv=$_cnb_user
	elif [ "$_cnb_args_mode" = replace ] && [ -n "$_cnb_user" ]; then
		_cnb_argv=$_cnb_cmd$_cnb_user
	else
		_cnb_argv=$_cnb_cmd$_cnb_args$_cnb_user
	fi
}

# A legacy shell process with arguments: each token is expanded as if inside "..." (so
# $VARS set by profile.d work) and becomes exactly one argument.
_cnb_expand_tokens() {
	_cnb_argv=
	for _cnb_t in "$@"; do
		eval "_cnb_t=\"$_cnb_t\""
		_cnb_quote "$_cnb_t"
		_cnb_argv="$_cnb_argv $_cnb_q"
	done
}

[ -n "${CNB_PLATFORM_API-}" ] || _cnb_die "CNB_PLATFORM_API is not set" 11
_cnb_app=${CNB_APP_DIR:-/workspace}
_cnb_plan_file=${CNB_LAYERS_DIR:-/layers}/config/launch-plan.sh
_cnb_exec_env=${CNB_EXEC_ENV:-production}
_cnb_types='' _cnb_default='' _cnb_type='' _cnb_kind='' _cnb_args_mode='' _cnb_wd='' _cnb_dashdash=''
_cnb_cmd='' _cnb_args='' _cnb_user='' _cnb_profiles=''
[ -f "$_cnb_plan_file" ] || _cnb_die "no launch plan at $_cnb_plan_file"

_cnb_source_plan index
_cnb_select "$@"
_cnb_source_plan process
# LCH-7 names bash: profile.d scripts written for it keep working wherever the image has it.
if [ "$_cnb_kind" = shell ] && [ -z "${BASH_VERSION-}" ] && [ -x /bin/bash ]; then
	exec /bin/bash "$0" "$@"
fi
_cnb_sh=/bin/sh
if [ -n "${BASH_VERSION-}" ]; then _cnb_sh=${BASH:-/bin/bash}; fi

if [ -n "$_cnb_dashdash" ]; then shift; fi
for _cnb_w in "$@"; do
	_cnb_quote "$_cnb_w"
	_cnb_user="$_cnb_user $_cnb_q"
done
_cnb_clean_env
_cnb_enter_working_dir
_cnb_source_plan apply

if [ "$_cnb_kind" = direct ]; then
	_cnb_direct_argv
	eval "set -- $_cnb_argv"
	_cnb_lookup "$1"
	exec "$@"
fi

eval "set -- $_cnb_profiles"
for _cnb_p in "$@"; do
	set --
	# shellcheck source=/dev/null # profile.d scripts come from buildpack layers
	. "$_cnb_p"
done
if [ -f "$_cnb_app/.profile" ]; then
	set --
	# shellcheck source=/dev/null # the app's own .profile
	. "$_cnb_app/.profile"
fi
if [ -z "$_cnb_type" ]; then
	eval "set -- $_cnb_user"
	exec "$_cnb_sh" -c "$@"
fi
eval "set -- $_cnb_cmd$_cnb_args$_cnb_user"
if [ "$#" -eq 1 ]; then
	exec "$_cnb_sh" -c "$1"
fi
_cnb_expand_tokens "$@"
eval "set -- $_cnb_argv"
_cnb_lookup "$1"
exec "$@"
