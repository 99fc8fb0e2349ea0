# Helpers shared by the local-stack scripts (sourced, not run).

port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# A live, non-zombie process. An unreaped zombie still passes `kill -0` (the detached broker
# is re-parented to init; pg_ctl and the postmaster's lock-file check use `kill -0`). Any
# thread not yet dead counts: after SIGKILL a JVM's main thread can show as a zombie while
# other threads (holding the sockets) are still exiting.
alive() {
  local f st
  for f in /proc/"$1"/task/*/stat; do
    st="$(sed 's/.*) //' "$f" 2>/dev/null | cut -d' ' -f1)" || continue
    [[ -n "$st" && "$st" != Z && "$st" != X ]] && return 0
  done
  return 1
}
