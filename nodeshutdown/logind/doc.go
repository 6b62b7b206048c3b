// Package logind starts the node's graceful shutdown when systemd-logind
// announces that the machine shuts down, as the kubelet's
// pkg/kubelet/nodeshutdown/systemd and nodeshutdown_manager_linux.go
// (v1.36.3) do, through D-Bus (github.com/godbus/dbus/v5).
//
// # The inhibitor lock
//
// Run connects to the system bus and asks logind
// (org.freedesktop.login1.Manager.Inhibit) for a "delay" inhibitor lock on
// "shutdown", as "nodeagent" (`systemd-inhibit --list` shows it): a file
// descriptor that Run keeps open. When something asks for a shutdown or
// reboot, logind sends the signal PrepareForShutdown(true) and then waits,
// at most InhibitDelayMaxUSec, until every delay lock is closed before it
// starts the shutdown. On that signal Run calls Config.Drain, which drains
// the node (package nodeshutdown) and returns when the drain is over; Run
// then closes the lock and the machine goes down. PrepareForShutdown(false)
// says a shutdown was cancelled: Run takes the lock again (a new one in
// place of the one it may still hold), ready for the next. Run closes the
// lock when its context ends.
//
// Only logind's own signals count: the match rule Run adds names
// org.freedesktop.login1 as the sender, and Run checks that the sender of
// each PrepareForShutdown is the bus name's current owner. Any local user
// may send a signal on the system bus; the kubelet accepts one from
// anyone, which would let that user drain the node.
//
// # InhibitDelayMaxUSec
//
// logind lets a delay lock hold a shutdown back for InhibitDelayMaxSec (5 s
// by default), far less than a shutdownGracePeriod. Run does what the
// kubelet does: when logind's InhibitDelayMaxUSec is shorter than
// Config.GracePeriod (nodeshutdown.Period: the sum of the groups' seconds)
// it writes the drop-in /etc/systemd/logind.conf.d/99-nodeagent.conf with
// InhibitDelayMaxSec set to the grace period in whole seconds (rounded
// up), asks systemd to send logind SIGHUP (org.freedesktop.systemd1
// KillUnit, which makes logind read its configuration again), and reads the
// property again until it has the new value, for about 3 s. The file is
// ours (the kubelet's is 99-kubelet.conf); it sorts after the usual
// drop-ins, so it wins over them. A longer delay already configured is left
// as it is, and the file is never removed. Every start logs which of these
// happened. When the delay cannot be raised (a read-only /etc, a logind
// that keeps the old value, no systemd on the bus) Run logs the error and
// takes the lock all the same: a shutdown then cuts the drain short after
// the shorter delay. The kubelet instead refuses to watch logind at all
// and tries again every second.
//
// # Without logind
//
// When there is no system bus (no /run/dbus/system_bus_socket, as in a
// container or on a host without systemd), or the bus has no
// org.freedesktop.login1, Run logs once that only SIGTERM triggers
// graceful node shutdown and returns: that is not an error. Once it has
// reached logind, a lost connection or a failed call makes it start over
// (connect, check the delay, take the lock), after 1 s and then up to 30 s
// between tries, logging each failure.
//
// Config.Connect and Config.DropInDir are the seams tests use: a private
// dbus-daemon and a fake logind exported on it, and a temporary directory.
package logind
