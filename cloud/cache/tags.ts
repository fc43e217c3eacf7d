/** Tag of every cached entry derived from participants (roster deltas, token look-ups). */
export const ROSTER_TAG = 'participants'
/** Tag of the cached counts (stats endpoints). */
export const STATS_TAG = 'stats'
