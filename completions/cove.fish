complete -c cove -s t -l target -d 'Account, OU or root ID to run in (repeatable, or comma-separated). An OU or the root means every account beneath it. Default: every account in the organization' -r
complete -c cove -s i -l ignore -d 'Account, OU or root ID to leave out (repeatable, or comma-separated). An ignore always wins over a target; an ignored OU ignores everything beneath it' -r
complete -c cove -l region -d 'Region to run in (repeatable, or comma-separated). Default: the region of the credential chain (AWS_REGION, the profile)' -r
complete -c cove -s r -l role -d 'Role to assume in each target account' -r
complete -c cove -l role-session-name -d 'Session name for the assumed role. Default: the role name' -r
complete -c cove -l policy -d 'Session policy JSON, or @FILE to read it from a file. Never printed' -r
complete -c cove -l policy-arn -d 'Managed policy ARN to scope the session with (repeatable)' -r
complete -c cove -l external-id -d 'External ID required by the role\'s trust policy. Never printed' -r
complete -c cove -l duration -d 'Session duration in seconds (900 to 43200). Default: the role\'s own default' -r
complete -c cove -l max-assume-rate -d 'At most N AssumeRole calls per second, to stay under a known STS quota. Default: unlimited' -r
complete -c cove -l profile -d 'AWS profile that supplies the assuming credentials' -r
complete -c cove -s w -l workers -d 'How many targets run at once' -r
complete -c cove -l timeout -d 'Stop a command that runs longer than this (for example 30s, 5m, 1h30m). Its whole process group gets SIGTERM, then SIGKILL after a grace period. Default: no limit' -r
complete -c cove -l max-output-bytes -d 'Keep at most this much of each command\'s stdout, and as much of its stderr (suffixes K, M, G are powers of 1024). The rest is read and dropped, and the record says so' -r
complete -c cove -s o -l output -d 'Output format on stdout: `json`, one document at the end; `jsonl`, one record per line as each target finishes, then a summary line' -r -f -a "json\t'One document when every target has finished'
jsonl\t'One record per line as each target finishes, then a summary line'"
complete -c cove -l output-dir -d 'Also write each target\'s stdout and stderr to DIR/<account-id>/<region>/stdout and stderr, and the final document to DIR/results.json' -r -F
complete -c cove -l allow-unknown-region -d 'Accept a well-formed region name that cove\'s built-in list does not know yet'
complete -c cove -l dry-run -d 'Resolve the targets and print the account × region matrix as JSON, then stop. No role is assumed and nothing runs'
complete -c cove -l fail-fast -d 'On the first failure (assume or command), start nothing new, stop running children, and report what finished'
complete -c cove -s q -l quiet -d 'No progress bar, notes or summary on stderr; errors and warnings still show'
complete -c cove -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cove -s V -l version -d 'Print version'
