/**
 * A program started by a supervisor with an IPC channel (the demo, `npm start`, starts the cloud and the
 * gates so) stops as on SIGTERM when that channel closes: the supervisor is gone, even killed
 * with SIGKILL, and must not leave orphans behind. The channel does not keep the program alive.
 */
export function watchSupervisor(stop: (reason: string) => void): void {
  if (!process.channel) return
  process.channel.unref()
  process.once('disconnect', () => stop('supervisor gone'))
}
