/** Tag of every cached entry derived from participants (roster deltas, token look-ups). */
export const ROSTER_TAG = 'participants'
/** Tag of the cached counts (stats endpoints). */
export const STATS_TAG = 'stats'
/** Tag of the cached gate list (active_gates). */
export const GATES_TAG = 'gates'
/** Tag of the cached event configuration (event_config). */
export const EVENTS_TAG = 'events'
