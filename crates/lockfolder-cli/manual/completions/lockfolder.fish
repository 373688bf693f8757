# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_lockfolder_global_optspecs
    string join \n h/help V/version
end

function __fish_lockfolder_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_lockfolder_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_lockfolder_using_subcommand
    set -l cmd (__fish_lockfolder_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c lockfolder -n "__fish_lockfolder_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lockfolder -n "__fish_lockfolder_needs_command" -s V -l version -d 'Print version'
complete -c lockfolder -n "__fish_lockfolder_needs_command" -f -a "run" -d 'Take the lock in DIR, run the command, release the lock'
complete -c lockfolder -n "__fish_lockfolder_needs_command" -f -a "status" -d 'Show every entry of the lock folder DIR, who holds the lock, who waits, and what a new acquisition would wait for'
complete -c lockfolder -n "__fish_lockfolder_needs_command" -f -a "clean" -d 'Remove stale bids from the lock folder DIR'
complete -c lockfolder -n "__fish_lockfolder_using_subcommand run" -s w -l timeout -d 'Give up after SECONDS (fractions allowed) with the -E code; 0 is -n' -r
complete -c lockfolder -n "__fish_lockfolder_using_subcommand run" -s E -l conflict-exit-code -d 'Exit status for a conflict (-n) or a timeout (-w), 0-255' -r
complete -c lockfolder -n "__fish_lockfolder_using_subcommand run" -l label -d 'Free text stored in the bid and shown by `lockfolder status`' -r
complete -c lockfolder -n "__fish_lockfolder_using_subcommand run" -l slots -d 'Counting semaphore: at most N holders at once. Every user of DIR must give the same N' -r
complete -c lockfolder -n "__fish_lockfolder_using_subcommand run" -l hold-while -d 'How long the lock is held: `group` (default) until the command and every process left in its process group have exited, like flock(1); `command` until the command itself exits (it then stays in lockfolder\'s process group). Windows has no process groups: there `command` is the default and `group` is refused' -r -f -a "group\t'Until the command and every process of its process group are gone (background children included), like flock(1)'
command\t'Until the command\'s own process exits; background children it left run on without the lock'"
complete -c lockfolder -n "__fish_lockfolder_using_subcommand run" -l lease -d 'Hold the lock under a lease of SECONDS (at least 1): this launcher renews the bid; a machine that cannot judge our processes (another host sharing the folder) may remove it once it has not been renewed for the lease. If the lease cannot be renewed in time the command gets SIGTERM. Implies --fencing. Killing the launcher kills the command (Linux)' -r
complete -c lockfolder -n "__fish_lockfolder_using_subcommand run" -l allow-fs -d 'Accept the filesystem NAME (as `lockfolder status` names it: cifs, fuse.rclone, ... or `*`) although lockfolder has no evidence it is safe there. Repeat for several. LOCKFOLDER_ALLOW_FS does the same' -r
complete -c lockfolder -n "__fish_lockfolder_using_subcommand run" -s c -l command -d 'Run SHELL_COMMAND with `/bin/sh -c` instead of COMMAND' -r
complete -c lockfolder -n "__fish_lockfolder_using_subcommand run" -s n -l nonblock -d 'Fail at once (with the -E code) if the lock is held'
complete -c lockfolder -n "__fish_lockfolder_using_subcommand run" -s q -l quiet -d 'No status line while waiting, no message on conflict or timeout'
complete -c lockfolder -n "__fish_lockfolder_using_subcommand run" -s v -l verbose -d 'Say how long the wait for the lock took, and when the lock stays with background processes'
complete -c lockfolder -n "__fish_lockfolder_using_subcommand run" -s s -l shared -d 'Take a shared (reader) lock: any number of shared holders run at once, never together with an exclusive one'
complete -c lockfolder -n "__fish_lockfolder_using_subcommand run" -l fencing -d 'Draw a fencing token (larger than every earlier holder\'s) and give it to the command in the environment as LOCKFOLDER_FENCE'
complete -c lockfolder -n "__fish_lockfolder_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lockfolder -n "__fish_lockfolder_using_subcommand status" -l json -d 'Print JSON (format 1, see the manual) instead of text'
complete -c lockfolder -n "__fish_lockfolder_using_subcommand status" -s q -l quiet -d 'Print nothing; only the exit status tells'
complete -c lockfolder -n "__fish_lockfolder_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lockfolder -n "__fish_lockfolder_using_subcommand clean" -l force -d 'Remove this entry (a file name in DIR) although nothing proves its owner gone; repeat for several. Only bids and lockfolder side files, never a bid whose process this machine sees alive' -r
complete -c lockfolder -n "__fish_lockfolder_using_subcommand clean" -l dry-run -d 'Only show what would be removed'
complete -c lockfolder -n "__fish_lockfolder_using_subcommand clean" -s h -l help -d 'Print help (see more with \'--help\')'
