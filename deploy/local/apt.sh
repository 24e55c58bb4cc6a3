#!/usr/bin/env bash
# Sourced by the setup scripts (bootstrap.sh, postgres.sh): every apt-get of the setup goes through
# apt_get, which waits, with a message, while another apt or dpkg process holds one of apt's locks (an
# unattended upgrade just after boot, a second terminal) instead of failing at once with "Could not get lock".
#
# apt-get's own -o DPkg::Lock::Timeout waits for the dpkg lock only: `apt-get update` takes the package
# lists' lock, which that option does not cover (apt 2.6 fails at once), so apt_get first waits for every
# lock here, and the option covers the moment between that wait and apt-get taking its locks.

APT_LOCK_TIMEOUT_S=${APT_LOCK_TIMEOUT_S:-600}
APT_LOCK_FILES=${APT_LOCK_FILES:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock}

# Prints the pid of a process that holds a lock on one of the files (apt takes fcntl locks; flock ones count
# too), or nothing. Read from /proc/locks, so it needs no root and takes no lock itself.
apt_lock_holder() {
  local file dev inode id
  for file in "$@"; do
    dev=$(stat -c %d "$file" 2>/dev/null) || continue
    inode=$(stat -c %i "$file")
    # /proc/locks names a file as MAJOR:MINOR:INODE, the device numbers in hex.
    id=$(printf '%02x:%02x:%s' $(((dev >> 8) & 0xfff)) $(((dev & 0xff) | ((dev >> 12) & 0xfff00))) "$inode")
    # A line with "->" is a process waiting for the lock, not holding it.
    awk -v id="$id" '$2 != "->" && $6 == id { print $5; exit }' /proc/locks
  done | head -n 1
}

# apt_get ARGS...: apt-get ARGS once no other process holds apt's locks (waits up to APT_LOCK_TIMEOUT_S).
apt_get() {
  local holder waited=0
  while holder=$(apt_lock_holder $APT_LOCK_FILES) && [ -n "$holder" ]; do
    if [ "$waited" -ge "$APT_LOCK_TIMEOUT_S" ]; then
      echo "setup: gave up after ${APT_LOCK_TIMEOUT_S}s: process $holder still holds apt's lock (set APT_LOCK_TIMEOUT_S to wait longer)" >&2
      return 1
    fi
    if [ "$waited" -eq 0 ]; then
      echo "setup: waiting for another apt/dpkg process to finish… (process $holder holds apt's lock; up to ${APT_LOCK_TIMEOUT_S}s)" >&2
    fi
    sleep 1
    waited=$((waited + 1))
  done
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT_S" "$@"
}
