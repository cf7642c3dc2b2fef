# bash completion for agentctl and kubectl-corral (installed by cmake
# --install into share/bash-completion/completions). The candidates come
# from the program itself (`agentctl __complete WORDS... CURRENT`, the
# protocol kubectl uses for plugins), so they follow its flag table: a
# last line ":4" means no file names, ":0" file names as well.
_agentctl()
{
	local cur=${COMP_WORDS[COMP_CWORD]} out directive
	out=$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null) || return
	directive=${out##*:}
	out=${out%:*}
	COMPREPLY=($(compgen -W "$out" -- "$cur"))
	if [ "$directive" = 0 ] && [ ${#COMPREPLY[@]} -eq 0 ]; then
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -o filenames -F _agentctl agentctl kubectl-corral
